"""kube-scheduler for a local cluster: binds each pod without a node to one that can take it.

A pod that needs a node is bound through ``pods/<p>/binding`` to the node ``plan/controllers/
scheduling.py`` picks; until the informer shows the binding the pod is "assumed" there, so the
next decision counts it. A pod with nowhere to go stays Pending with ``PodScheduled=False``
(reason ``Unschedulable``, kube's message) and a ``FailedScheduling`` event, and is tried again
whenever a Node changes. Events: ``Scheduled``.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterable

from fleetnet.kube.status import ApiError
from fleetnet.local.controllers.events import EventRecorder
from fleetnet.local.controllers.runtime import Cluster, Controller
from fleetnet.plan.controllers.meta import Obj, condition, format_time, name, namespace, node_name
from fleetnet.plan.controllers.scheduling import DEFAULT_SCHEDULER, place, pods_per_node, wants_scheduling

Key = tuple[str, str]


class Scheduler(Controller[Key]):
    name = "scheduler"
    kinds = ("Pod", "Node")

    def __init__(self, cluster: Cluster, events: EventRecorder, clock: Callable[[], float] = time.time) -> None:
        super().__init__(cluster, events, clock)
        self._lock = threading.Lock()
        self._assumed: dict[Key, str] = {}
        self._last_failure: dict[Key, str] = {}

    def on_event(self, kind: str, typ: str, obj: Obj) -> None:
        if kind == "Pod":
            key = (namespace(obj), name(obj))
            if typ == "DELETED" or node_name(obj):
                with self._lock:
                    self._assumed.pop(key, None)
                    self._last_failure.pop(key, None)
            elif wants_scheduling(obj):
                self.queue.add(key)
        elif kind == "Node" and typ != "DELETED":
            for k in self.keys():
                self.queue.add(k)

    def keys(self) -> Iterable[Key]:
        return [(namespace(p), name(p)) for p in self.cluster.list("Pod") if wants_scheduling(p)]

    def reconcile(self, key: Key) -> float | None:
        pod = self.cluster.get("Pod", *key)
        if pod is None or not wants_scheduling(pod):
            return None
        with self._lock:
            if key in self._assumed:
                return None
            assumed = list(self._assumed.values())
        load = pods_per_node(self.cluster.list("Pod"))
        for n in assumed:
            load[n] += 1
        placement = place(pod, self.cluster.list("Node"), load)
        if placement.node is None:
            self._unschedulable(key, pod, placement.message)
            return None
        try:
            self.cluster.bind(pod, placement.node)
        except ApiError as e:
            if e.code == 409 or e.code == 404:  # bound meanwhile, or gone
                return None
            raise
        with self._lock:
            self._assumed[key] = placement.node
        msg = f"Successfully assigned {key[0]}/{key[1]} to {placement.node}"
        self.events.record(pod, "Normal", "Scheduled", msg, DEFAULT_SCHEDULER)
        scheduled = condition(pod, "PodScheduled")
        if scheduled is not None and scheduled.get("status") != "True":
            # kube's binding marks the pod scheduled; ours leaves the earlier False in place
            self._set_scheduled(pod, "True", None, None)
        return None

    def _unschedulable(self, key: Key, pod: Obj, message: str) -> None:
        current = condition(pod, "PodScheduled")
        if not (
            current is not None
            and current.get("status") == "False"
            and current.get("reason") == "Unschedulable"
            and current.get("message") == message
        ):
            self._set_scheduled(pod, "False", "Unschedulable", message)
        with self._lock:
            repeat = self._last_failure.get(key) == message
            self._last_failure[key] = message
        if not repeat:
            self.events.record(pod, "Warning", "FailedScheduling", message, DEFAULT_SCHEDULER)

    def _set_scheduled(self, pod: Obj, status: str, reason: str | None, message: str | None) -> None:
        st = copy.deepcopy(pod.get("status") or {})
        old = condition(pod, "PodScheduled")
        cond: Obj = {"type": "PodScheduled", "status": status, "lastProbeTime": None}
        same = old is not None and old.get("status") == status
        cond["lastTransitionTime"] = old.get("lastTransitionTime") if same and old else format_time(self.clock())
        if reason:
            cond["reason"] = reason
        if message:
            cond["message"] = message
        conds = [c for c in st.get("conditions") or [] if c.get("type") != "PodScheduled"]
        st["conditions"] = [*conds, cond]
        st.setdefault("phase", "Pending")
        self.cluster.update_status(pod, st)
