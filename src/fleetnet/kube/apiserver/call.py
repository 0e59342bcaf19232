"""One request as the handlers see it, and the reply they give: the values every part of the API
server passes around (kept apart from the handlers so that bodies, patches and streams need not
import them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from fleetnet.kube.apiserver.request import RequestInfo


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Call:
    """One request as the handlers see it."""

    info: RequestInfo
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    user: str
    user_agent: str = ""

    @property
    def dry_run(self) -> bool:
        return self.query.get("dryRun") == "All"

    @property
    def accept(self) -> str | None:
        return self.headers.get("Accept") or self.headers.get("accept")
