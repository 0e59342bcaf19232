"""The kubelet's runtime records: one per pod sandbox (its network namespace, veth, address and
container processes), kept in the cluster's run folder as a container runtime keeps its state.

They are not in the API: a restarted agent reads them to adopt running pods instead of recreating
them, the datapath and the name service find pods' interfaces through them, and ``fleetnet down``
needs none of them (it finds processes by namespace).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Container:
    process: dict[str, Any] | None = None  # a procs.ProcRecord as a dict
    restarts: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    exit_code: int | None = None
    backoff_until: float = 0.0
    error: str | None = None  # why it cannot start (an image that cannot run)
    last: dict[str, Any] | None = None  # lastState.terminated


@dataclass(frozen=True, slots=True)
class Sandbox:
    namespace: str
    name: str
    uid: str
    node: str
    netns: str
    node_netns: str
    ifname: str
    ip: str
    started: str
    containers: dict[str, Container] = field(default_factory=dict)

    def with_container(self, name: str, c: Container) -> Sandbox:
        return replace(self, containers={**self.containers, name: c})

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @staticmethod
    def from_json(text: str) -> Sandbox:
        d = json.loads(text)
        d["containers"] = {k: Container(**v) for k, v in (d.get("containers") or {}).items()}
        return Sandbox(**d)


class Sandboxes:
    """Thread-safe registry of sandboxes, written through to ``<run>/pods/<uid>.json``."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._by_uid: dict[str, Sandbox] = {}
        for f in self.dir.glob("*.json"):
            try:
                sb = Sandbox.from_json(f.read_text())
            except (OSError, ValueError, TypeError, KeyError):
                f.unlink(missing_ok=True)
                continue
            self._by_uid[sb.uid] = sb

    def all(self) -> list[Sandbox]:
        with self._lock:
            return list(self._by_uid.values())

    def get(self, uid: str) -> Sandbox | None:
        with self._lock:
            return self._by_uid.get(uid)

    def by_name(self, namespace: str, name: str) -> Sandbox | None:
        with self._lock:
            return next((s for s in self._by_uid.values() if (s.namespace, s.name) == (namespace, name)), None)

    def put(self, sb: Sandbox) -> None:
        with self._lock:
            self._by_uid[sb.uid] = sb
            path = self.dir / f"{sb.uid}.json"
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(sb.to_json())
            os.replace(tmp, path)

    def remove(self, uid: str) -> None:
        with self._lock:
            self._by_uid.pop(uid, None)
            (self.dir / f"{uid}.json").unlink(missing_ok=True)

    def ips_on(self, node: str) -> set[str]:
        with self._lock:
            return {s.ip for s in self._by_uid.values() if s.node == node}
