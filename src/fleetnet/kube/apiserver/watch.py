"""Watches: storage events turned into the event stream one client asked for.

A watch sees its resource (and namespace, name, label and field selectors) the way kube's watch
cache shows it: an object that starts matching arrives as ADDED, one that stops matching as
DELETED. A watch without a resourceVersion (or with "0") starts with the current objects as ADDED
events; with N it replays every event after N from the revision log, then follows live ones;
N older than the compacted window ends with an ERROR event carrying a 410 Expired Status.
``sendInitialEvents=true`` ends the initial objects with the ``k8s.io/initial-events-end`` bookmark.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fleetnet.kube import status as st
from fleetnet.kube.apiserver.storage import Event, Expired, Storage
from fleetnet.kube.resources import Resource
from fleetnet.kube.selectors import FieldSelector, LabelSelector

MAX_QUEUE = 10_000  # a watcher this far behind is cut off, as kube-apiserver cuts slow watchers


@dataclass(frozen=True, slots=True)
class WatchSpec:
    resource: Resource
    prefix: str  # storage prefix: the resource, or one namespace of it
    name: str | None
    labels: LabelSelector
    fields: FieldSelector

    def matches(self, obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        md = obj.get("metadata") or {}
        if self.name is not None and md.get("name") != self.name:
            return False
        return self.labels.matches(md.get("labels")) and self.fields.matches(obj)


def translate(spec: WatchSpec, ev: Event) -> tuple[str, dict[str, Any], bytes] | None:
    """What this watcher sees of a storage event: (type, object, raw JSON) or None."""
    if not ev.key.startswith(spec.prefix):
        return None
    now = spec.matches(ev.obj) if ev.type != "DELETED" else False
    before = spec.matches(ev.prev) if ev.prev is not None else False
    if ev.type == "DELETED":
        return ("DELETED", ev.obj, ev.raw) if spec.matches(ev.obj) or before else None
    if now and before:
        return "MODIFIED", ev.obj, ev.raw
    if now:
        return "ADDED", ev.obj, ev.raw
    if before:
        return "DELETED", ev.obj, ev.raw  # no longer selected: gone, as far as this watcher knows
    return None


def event_line(typ: str, raw: bytes) -> bytes:
    return b'{"type":"' + typ.encode() + b'","object":' + raw + b"}\n"


def bookmark(res: Resource, rv: int, initial_end: bool = False) -> bytes:
    md: dict[str, Any] = {"resourceVersion": str(rv)}
    if initial_end:
        md["annotations"] = {"k8s.io/initial-events-end": "true"}
    obj = {"kind": res.kind, "apiVersion": res.api_version, "metadata": md}
    return event_line("BOOKMARK", json.dumps(obj, separators=(",", ":")).encode())


def error_line(err: st.ApiError) -> bytes:
    return event_line("ERROR", json.dumps(err.status, separators=(",", ":")).encode())


class Watcher:
    """A queue of lines fed by the storage; ``start`` returns the initial lines (or an error line)."""

    def __init__(
        self, storage: Storage, spec: WatchSpec, render: Callable[[str, dict[str, Any], bytes], bytes]
    ) -> None:
        self.storage = storage
        self.spec = spec
        self.render = render  # (type, obj, raw) -> one line (JSON or Table event)
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._cancel: Callable[[], None] | None = None
        self.overflowed = False

    def start(self, rv: str | None, send_initial: bool, bookmarks: bool) -> list[bytes]:
        """Initial lines, and subscribe for live events in the same step (nothing slips between)."""
        out: list[bytes] = []
        if send_initial or rv in (None, "", "0"):
            for e in self.storage.list(self.spec.prefix):
                if self.spec.matches(e.obj):
                    out.append(self.render("ADDED", e.obj, e.raw))
            if send_initial and bookmarks:
                out.append(bookmark(self.spec.resource, self.storage.rev, initial_end=True))
        else:
            try:
                start = int(str(rv))
            except ValueError:
                return [error_line(st.bad_request(f"invalid resource version: {rv}"))]
            try:
                for ev in self.storage.since(start, self.spec.prefix):
                    t = translate(self.spec, ev)
                    if t is not None:
                        out.append(self.render(*t))
            except Expired as e:
                return [error_line(st.expired(str(e)))]
        self._cancel = self.storage.subscribe(self._on_event)
        return out

    def _on_event(self, ev: Event) -> None:
        t = translate(self.spec, ev)
        if t is None:
            return
        if self.queue.qsize() >= MAX_QUEUE:
            self.overflowed = True
            self.queue.put_nowait(None)
            self.stop()
            return
        self.queue.put_nowait(self.render(*t))

    def stop(self) -> None:
        if self._cancel is not None:
            self._cancel()
            self._cancel = None
