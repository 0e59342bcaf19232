"""The EndpointSlice controller: the slices of every Service with a selector follow its pods.

Desired slices come from ``plan/controllers/endpointslices.py``; they are written when the live
ones differ, and the slices this controller manages (label ``endpointslice.kubernetes.io/managed-by:
endpointslice-controller.k8s.io``) that are no longer wanted are deleted. Any other slice — a
user's, for a Service without a selector, or the API server's own for ``kubernetes`` — is never
touched. A Service that is deleted loses its slices through their owner reference (the garbage
collector). A pod event wakes the Services whose selector matches it now or matched it before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from fleetnet.kube.status import ApiError
from fleetnet.local.controllers.events import EventRecorder
from fleetnet.local.controllers.runtime import Cluster, Controller
from fleetnet.plan.controllers.endpointslices import (
    SERVICE_NAME,
    ZONE,
    desired_slices,
    managed_by_us,
    selector_of,
    zones_of,
)
from fleetnet.plan.controllers.meta import Obj, deleting, labels, name, namespace, uid

Key = tuple[str, str]


class EndpointSliceController(Controller[Key]):
    name = "endpointslice"
    kinds = ("Service", "Pod", "EndpointSlice", "Node", "Namespace")
    workers = 2

    def __init__(self, cluster: Cluster, events: EventRecorder, clock: Callable[[], float] = time.time) -> None:
        super().__init__(cluster, events, clock)
        self._lock = threading.Lock()
        self._pod_services: dict[Key, set[str]] = {}  # pod -> the Services it matched last
        self._zones: dict[str, str] = {}

    def _matching(self, pod: Obj) -> set[str]:
        pl = labels(pod)
        out = set()
        for svc in self.cluster.list("Service", namespace(pod)):
            sel = selector_of(svc)
            if sel is not None and all(pl.get(k) == v for k, v in sel.items()):
                out.add(name(svc))
        return out

    def on_event(self, kind: str, typ: str, obj: Obj) -> None:
        ns = namespace(obj)
        if kind == "Service":
            self.queue.add((ns, name(obj)))
        elif kind == "Pod":
            key = (ns, name(obj))
            now = set() if typ == "DELETED" else self._matching(obj)
            with self._lock:
                before = self._pod_services.pop(key, set())
                if now:
                    self._pod_services[key] = now
            for svc in now | before:
                self.queue.add((ns, svc))
        elif kind == "EndpointSlice":
            if managed_by_us(obj) and labels(obj).get(SERVICE_NAME):
                self.queue.add((ns, labels(obj)[SERVICE_NAME]))
        elif kind == "Node":
            zone = "" if typ == "DELETED" else labels(obj).get(ZONE, "")
            with self._lock:
                changed = self._zones.get(name(obj), "") != zone
                self._zones[name(obj)] = zone
            if changed:
                self.resync()

    def keys(self) -> Iterable[Key]:
        return [(namespace(s), name(s)) for s in self.cluster.list("Service")]

    def reconcile(self, key: Key) -> float | None:
        ns, svc_name = key
        svc = self.cluster.get("Service", ns, svc_name)
        if svc is None:
            return None  # its slices go with it (owner references)
        space = self.cluster.get("Namespace", "", ns)
        if space is None or deleting(space):
            return None  # nothing new may be written there; its slices go with it
        existing = [s for s in self.cluster.list("EndpointSlice", ns) if managed_by_us(s, svc_name)]
        desired = desired_slices(svc, self.cluster.list("Pod", ns), zones_of(self.cluster.list("Node")))
        if desired:
            self.cluster.apply(desired)
        wanted = {name(s) for s in desired}
        for s in existing:
            if name(s) not in wanted:
                try:
                    self.cluster.delete("EndpointSlice", ns, name(s), uid=uid(s))
                except ApiError as e:
                    if e.code != 409:
                        raise
        return None
