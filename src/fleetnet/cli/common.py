"""State shared by the CLI commands: the resolved home, the output format, the client."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import typer

from fleetnet.cli.client import Client
from fleetnet.errors import FleetnetError
from fleetnet.hub.paths import resolve_home


@dataclass
class Ctx:
    home: Path
    output: str
    _client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.home)
        return self._client


def ctx(c: typer.Context) -> Ctx:
    root = c.find_root()
    if not isinstance(root.obj, Ctx):
        root.obj = Ctx(home=resolve_home(None), output="table")
    return root.obj


def fail(message: str, code: int = 1) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def run(fn: object) -> None:
    """Kept for symmetry with the commands that catch FleetnetError themselves."""


def handle(e: FleetnetError) -> NoReturn:
    fail(str(e), 1)


def labels_arg(text: str | None) -> dict[str, str] | None:
    if text is None:
        return None
    from fleetnet.plan.selector import parse_labels

    return parse_labels(text)
