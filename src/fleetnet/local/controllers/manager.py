"""kube-controller-manager (and kube-scheduler) of a local cluster, in one process.

One informer per kind, shared by every controller (``ClusterObjects``); each informer event is
handed to every controller's ``on_event``, which queues keys. A controller's workers start once
the informers it reads have listed, so no decision is made on a partial view; a periodic resync
re-queues everything (a safety net, not a poll: nothing runs between events). ``stop`` ends the
workers and the informers; idle, every thread is blocked on a socket or a condition.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fleetnet.kube.client import KubeClient
from fleetnet.kube.objects import ClusterObjects
from fleetnet.kube.resources import REGISTRY
from fleetnet.local.controllers.deployment import DeploymentController
from fleetnet.local.controllers.endpointslice import EndpointSliceController
from fleetnet.local.controllers.events import EventRecorder
from fleetnet.local.controllers.garbagecollector import GarbageCollector
from fleetnet.local.controllers.namespace import NamespaceController
from fleetnet.local.controllers.replicaset import ReplicaSetController
from fleetnet.local.controllers.runtime import Cluster, Controller
from fleetnet.local.controllers.scheduler import Scheduler
from fleetnet.local.controllers.serviceaccount import ServiceAccountController

log = logging.getLogger(__name__)

CONTROLLERS: dict[str, type[Controller[Any]]] = {
    "scheduler": Scheduler,
    "deployment": DeploymentController,
    "replicaset": ReplicaSetController,
    "endpointslice": EndpointSliceController,
    "namespace": NamespaceController,
    "garbagecollector": GarbageCollector,
    "serviceaccount": ServiceAccountController,
}
FIELD_MANAGER = "kube-controller-manager"
USER_AGENT = "kube-controller-manager/fleetnet"


@dataclass(frozen=True, slots=True)
class Settings:
    controllers: tuple[str, ...] = tuple(CONTROLLERS)
    resync: float = 300.0  # seconds between full resyncs
    sync_warning: float = 30.0  # say so when informers have not listed after this long


def select(spec: str) -> tuple[str, ...]:
    """kube's ``--controllers``: ``*`` for all, names, ``-name`` to leave one out."""
    chosen: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if part == "*":
            chosen.extend(c for c in CONTROLLERS if c not in chosen)
        elif part.startswith("-"):
            if part[1:] not in CONTROLLERS:
                raise ValueError(f"unknown controller {part[1:]!r}; known: {', '.join(CONTROLLERS)}")
            chosen = [c for c in chosen if c != part[1:]]
        elif part in CONTROLLERS:
            if part not in chosen:
                chosen.append(part)
        else:
            raise ValueError(f"unknown controller {part!r}; known: {', '.join(CONTROLLERS)}")
    return tuple(chosen)


class ControllerManager:
    def __init__(
        self,
        client_factory: Callable[[], KubeClient],
        settings: Settings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings or Settings()
        classes = [CONTROLLERS[n] for n in self.settings.controllers]
        wanted = {k for c in classes for k in c.kinds}
        kinds = [r.kind for r in REGISTRY.resources if r.kind in wanted]
        self.objects = ClusterObjects(client_factory, kinds, field_manager=FIELD_MANAGER)
        self.cluster = Cluster(self.objects)
        self.events = EventRecorder(self.objects.client)
        self.controllers: list[Controller[Any]] = [c(self.cluster, self.events, clock) for c in classes]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        for kind, inf in self.objects.informers.items():
            inf.on_change = self._fan_out(kind, inf.on_change)

    def _fan_out(
        self, kind: str, inner: Callable[[str, dict[str, Any]], None] | None
    ) -> Callable[[str, dict[str, Any]], None]:
        def on_change(typ: str, obj: dict[str, Any]) -> None:
            if inner is not None:
                inner(typ, obj)
            if typ == "DELETED":
                self.cluster.seen_deleted(kind, obj)
            for c in self.controllers:
                try:
                    c.on_event(kind, typ, obj)
                except Exception:
                    log.exception("%s: handling a %s event failed", c.name, kind)

        return on_change

    def controller(self, name: str) -> Controller[Any]:
        return next(c for c in self.controllers if c.name == name)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> ControllerManager:
        self.events.start()
        self.objects.start()
        for c in self.controllers:
            self._spawn(f"start-{c.name}", self._start_controller, c, join=False)
        self._spawn("resync", self._resync_loop)
        return self

    def _spawn(self, name: str, target: Callable[..., None], *args: Any, join: bool = True) -> None:
        # daemon threads: a reconcile stuck in a request must not keep the process alive
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        if join:
            self._threads.append(t)
        t.start()

    def _start_controller(self, c: Controller[Any]) -> None:
        informers = [self.objects.informers[k] for k in c.kinds]
        for inf in informers:
            while not inf.synced.wait(self.settings.sync_warning):
                if self._stop.is_set():
                    return
                log.warning("%s: waiting for the %s informer to list (%s)", c.name, inf.resource.plural, inf.last_error)
            if self._stop.is_set():
                return
        log.info("%s: started", c.name)
        for i in range(c.workers):
            self._spawn(f"{c.name}-{i}", c.run_worker)

    def _resync_loop(self) -> None:
        while not self._stop.wait(self.settings.resync):
            for c in self.controllers:
                if self.cluster.synced(c.kinds):
                    c.resync()

    def wait_synced(self, timeout: float) -> bool:
        return self.objects.wait_synced(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop taking work, let the reconciles under way finish (up to ``timeout``), then close."""
        self._stop.set()
        for c in self.controllers:
            c.queue.shutdown()
        self.join(timeout)
        self.events.stop()
        self.objects.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until stopped (True), or ``timeout`` passed (False)."""
        return self._stop.wait(timeout)

    def join(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        for t in list(self._threads):
            if t is not threading.current_thread():
                t.join(max(0.0, deadline - time.monotonic()))


def run(client_factory: Callable[[], KubeClient], controllers: Sequence[str] | None = None) -> ControllerManager:
    settings = Settings(tuple(controllers)) if controllers is not None else Settings()
    return ControllerManager(client_factory, settings).start()
