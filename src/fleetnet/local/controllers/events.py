"""core/v1 Events, as client-go's event recorder writes them for controllers.

Recording never blocks a controller: events go on a queue that one thread writes to the API.
The same event about the same object again (same type, reason, message and source) within ten
minutes bumps ``count`` and ``lastTimestamp`` of the first one instead of making another, as
client-go's correlator does. Failures are logged and dropped: events are best effort.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from fleetnet.kube.client import KubeClient
from fleetnet.kube.resources import REGISTRY
from fleetnet.kube.status import ApiError
from fleetnet.plan.controllers.meta import Obj, format_time, meta

log = logging.getLogger(__name__)

AGGREGATE_WINDOW = 600.0
_CACHE_MAX = 4096


class EventRecorder:
    def __init__(self, client: KubeClient, host: str = "") -> None:
        self.client = client
        self.host = host
        self._queue: queue.Queue[tuple[Obj, str, str, str, str, float] | None] = queue.Queue()
        self._seen: dict[tuple[str, ...], tuple[str, str, int, float]] = {}  # key -> (ns, name, count, first)
        self._thread: threading.Thread | None = None
        self.written = 0

    def start(self) -> EventRecorder:
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._queue.put(None)

    def record(self, obj: Obj, type_: str, reason: str, message: str, component: str) -> None:
        self._queue.put((obj, type_, reason, message, component, time.time()))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self._write(*item)
            except ApiError as e:
                log.debug("event %s not written: %s", item[2], e)
            except Exception:
                log.exception("writing an event failed")

    def _write(self, obj: Obj, type_: str, reason: str, message: str, component: str, now: float) -> None:
        md = meta(obj)
        kind = str(obj.get("kind") or "")
        ns = str(md.get("namespace") or "default")
        involved: dict[str, Any] = {
            "kind": kind,
            "namespace": md.get("namespace") or None,
            "name": md.get("name"),
            "uid": md.get("uid"),
            "apiVersion": obj.get("apiVersion"),
            "resourceVersion": md.get("resourceVersion"),
        }
        involved = {k: v for k, v in involved.items() if v}
        key = (component, kind, ns, str(md.get("name")), str(md.get("uid")), type_, reason, message)
        res = REGISTRY.by_kind("Event")
        assert res is not None
        seen = self._seen.get(key)
        if seen is not None and now - seen[3] < AGGREGATE_WINDOW:
            ev_ns, ev_name, count, first = seen
            patch = {"count": count + 1, "lastTimestamp": format_time(now)}
            try:
                self.client.patch(res, ev_name, patch, namespace=ev_ns)
                self._seen[key] = (ev_ns, ev_name, count + 1, first)
                return
            except ApiError as e:
                if e.code != 404:
                    raise
        ts = format_time(now)
        ev_name = f"{md.get('name')}.{time.time_ns():x}"
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": ev_name, "namespace": ns},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "source": {"component": component, **({"host": self.host} if self.host else {})},
            "firstTimestamp": ts,
            "lastTimestamp": ts,
            "count": 1,
            "type": type_,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": self.host,
        }
        self.client.create(body)
        self.written += 1
        if len(self._seen) >= _CACHE_MAX:
            self._seen.clear()
        self._seen[key] = (ns, ev_name, 1, now)
