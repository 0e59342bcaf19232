"""The recorded state of what a fleet created on the host, for `fleetnet down`.

Kept as a small JSON file beside the store and rewritten (atomically) before each effect, so that a
crash at any point leaves a record that covers everything that may exist. ``down`` reads only this
file (and the naming prefix), never the daemon.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetnet.model.cluster import write_atomic


@dataclass
class HostRecord:
    prefix: str  # every network namespace of this fleet starts with it
    processes: dict[str, dict[str, Any]] = field(default_factory=dict)  # role → ProcRecord dict
    mounts: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(
            {"prefix": self.prefix, "processes": self.processes, "mounts": self.mounts}, indent=2, sort_keys=True
        )

    @staticmethod
    def from_json(text: str) -> HostRecord:
        d = json.loads(text)
        return HostRecord(
            prefix=d["prefix"], processes=dict(d.get("processes") or {}), mounts=list(d.get("mounts") or [])
        )


class Recorder:
    """Thread-safe owner of the record file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        if path.exists():
            self.record = HostRecord.from_json(path.read_text())
        else:
            # 'fn' + 4 hex: short enough for names, random so parallel fleets (tests) never collide
            self.record = HostRecord(prefix="fn" + secrets.token_hex(2))
            self._save()

    def _save(self) -> None:
        write_atomic(self.path, self.record.to_json())

    def add_process(self, role: str, proc: dict[str, Any]) -> None:
        with self._lock:
            self.record.processes[role] = proc
            self._save()

    def remove_process(self, role: str) -> None:
        with self._lock:
            if self.record.processes.pop(role, None) is not None:
                self._save()

    def add_mount(self, path: str) -> None:
        with self._lock:
            if path not in self.record.mounts:
                self.record.mounts.append(path)
                self._save()


def read_record(path: Path) -> HostRecord | None:
    try:
        return HostRecord.from_json(path.read_text())
    except (OSError, ValueError, KeyError):
        return None
