"""What every controller of the manager stands on: the cluster as informers show it, the writes it
may make, and the reconcile loop over a work queue.

``Cluster`` reads from the shared informers of a ``ClusterObjects`` and writes through its
client; every write is put into the informer's store at once (read-your-writes), and an object
this process deleted stays hidden from reads until the informer learns of the deletion, so a
late event cannot bring it back for a moment (kube's controllers keep "expectations" for this).
``Controller`` is one reconcile loop: ``on_event`` (called from informer threads, cheap) queues
keys, workers take them and call ``reconcile``; a failure retries the key with back-off.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from fleetnet.kube.informer import rv_of
from fleetnet.kube.objects import ClusterObjects, covers
from fleetnet.kube.resources import REGISTRY, Resource
from fleetnet.kube.status import ApiError
from fleetnet.local.controllers.events import EventRecorder
from fleetnet.local.controllers.workqueue import WorkQueue
from fleetnet.plan.controllers.meta import Obj, name, namespace

log = logging.getLogger(__name__)

Key3 = tuple[str, str, str]  # (kind, namespace, name)
K = TypeVar("K", bound=Hashable)
Applied = list[tuple[Key3, str]]
Objs = list[Obj]  # named outside the class, whose `list` shadows the builtin
TOMBSTONE_TTL = 300.0


class Retry(Exception):
    """Reconcile again later, with back-off (nothing to log: the next try may well succeed)."""


def namespace_terminating(e: ApiError) -> bool:
    causes = (e.details or {}).get("causes") or []
    return e.code == 403 and any(c.get("reason") == "NamespaceTerminating" for c in causes)


def resource_of(kind: str) -> Resource:
    res = REGISTRY.by_kind(kind)
    if res is None:
        raise KeyError(kind)
    return res


class Cluster:
    def __init__(self, objects: ClusterObjects) -> None:
        self.objects = objects
        self.client = objects.client
        self._lock = threading.Lock()
        self._tombstones: dict[Key3, tuple[int, float]] = {}  # key -> (rv of the deletion, when)

    # ------------------------------------------------------------------ reads
    def watches(self, kind: str) -> bool:
        return kind in self.objects.informers

    def synced(self, kinds: Iterable[str]) -> bool:
        return all(self.objects.informers[k].synced.is_set() for k in kinds if k in self.objects.informers)

    def _hidden(self, kind: str, obj: Obj) -> bool:
        k = (kind, namespace(obj), name(obj))
        with self._lock:
            t = self._tombstones.get(k)
            if t is None:
                return False
            if rv_of(obj) > t[0]:  # a new object of the same name
                del self._tombstones[k]
                return False
            return True

    def list(self, kind: str, ns: str | None = None) -> Objs:
        items = self.objects.list(kind, ns)
        if not self._tombstones:
            return items
        return [o for o in items if not self._hidden(kind, o)]

    def get(self, kind: str, ns: str, nm: str) -> Obj | None:
        obj = self.objects.get(kind, ns, nm)
        if obj is None or (self._tombstones and self._hidden(kind, obj)):
            return None
        return obj

    def seen_deleted(self, kind: str, obj: Obj) -> None:
        """The informer reported the deletion: the tombstone has done its job."""
        with self._lock:
            self._tombstones.pop((kind, namespace(obj), name(obj)), None)

    # ------------------------------------------------------------------ writes
    def _observe(self, obj: Obj, typ: str = "MODIFIED") -> None:
        inf = self.objects.informers.get(str(obj.get("kind")))
        if inf is not None:
            inf.observe(typ, obj)

    def create(self, obj: Obj) -> Obj:
        out = self.client.create(obj, field_manager=self.objects.field_manager)
        self._observe(out, "ADDED")
        return out

    def update(self, obj: Obj) -> Obj:
        """PUT, conditional on the object's resourceVersion (a stale copy is a 409 Conflict)."""
        out = self.client.replace(obj, field_manager=self.objects.field_manager)
        self._observe(out)
        return out

    def apply(self, objs: Iterable[Obj]) -> Applied:
        """Create each object, or make the live one hold this content (unconditionally); objects
        whose live version already holds it are not written (as ``ClusterObjects.apply``)."""
        out: Applied = []
        for obj in objs:
            key = (str(obj["kind"]), namespace(obj), name(obj))
            live = self.get(*key)
            if live is not None and covers(live, obj):
                out.append((key, "unchanged"))
                continue
            if live is None:
                try:
                    self.create(obj)
                    out.append((key, "created"))
                    continue
                except ApiError as e:
                    if e.code != 409:
                        raise
            body = copy.deepcopy(obj)
            body["metadata"].pop("resourceVersion", None)
            self.update(body)
            out.append((key, "configured"))
        return out

    def update_status(self, obj: Obj, status: Mapping[str, Any]) -> bool:
        return self.objects.update_status(
            (str(obj.get("kind")), namespace(obj), name(obj)), copy.deepcopy(dict(status))
        )

    def delete(
        self,
        kind: str,
        ns: str,
        nm: str,
        *,
        uid: str | None = None,
        resource_version: str | None = None,
        propagation: str | None = None,
        grace: int | None = None,
    ) -> Obj | None:
        pre = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
        out = self.client.delete(
            resource_of(kind), nm, ns or None, grace_period=grace, propagation=propagation, preconditions=pre or None
        )
        if out is None or out.get("kind") == "Status":
            return out
        out.setdefault("kind", kind)
        if (out.get("metadata") or {}).get("deletionTimestamp"):
            self._observe(out)
        else:
            self._observe(out, "DELETED")
            now = time.monotonic()
            with self._lock:
                self._tombstones[(kind, ns, nm)] = (rv_of(out), now)
                for k, (_, when) in list(self._tombstones.items()):
                    if now - when > TOMBSTONE_TTL:
                        del self._tombstones[k]
        return out

    def delete_collection(self, res: Resource, ns: str) -> Objs:
        doc = self.client.request("DELETE", res.path(ns), body={"kind": "DeleteOptions", "apiVersion": "v1"})
        return list((doc or {}).get("items") or [])

    def list_live(self, res: Resource, ns: str | None = None) -> Objs:
        return self.client.list(res, ns)[0]

    def bind(self, pod: Obj, node: str) -> None:
        res = resource_of("Pod")
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name(pod), "namespace": namespace(pod), "uid": (pod.get("metadata") or {}).get("uid")},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        self.client.request("POST", res.path(namespace(pod), name(pod), "binding"), body=body)

    def finalize_namespace(self, ns_obj: Obj, finalizers: Sequence[str]) -> Obj:
        res = resource_of("Namespace")
        body = copy.deepcopy(ns_obj)
        body.setdefault("spec", {})["finalizers"] = [*finalizers]
        out = dict(self.client.request("PUT", res.path(None, name(ns_obj), "finalize"), body=body))
        out.setdefault("kind", "Namespace")
        self._observe(out)
        return out


class Controller(Generic[K]):
    """One reconcile loop. Subclasses set ``name`` and ``kinds`` and write ``on_event``,
    ``keys`` (everything, for a resync) and ``reconcile`` (returns seconds to look again, or None)."""

    name: ClassVar[str] = "controller"
    kinds: ClassVar[tuple[str, ...]] = ()  # informers it reads; its workers start once they are synced
    workers: ClassVar[int] = 1

    def __init__(self, cluster: Cluster, events: EventRecorder, clock: Callable[[], float] = time.time) -> None:
        self.cluster = cluster
        self.events = events
        self.clock = clock
        self.queue: WorkQueue[K] = WorkQueue(self.name)

    def on_event(self, kind: str, typ: str, obj: Obj) -> None:
        raise NotImplementedError

    def keys(self) -> Iterable[K]:
        raise NotImplementedError

    def reconcile(self, key: K) -> float | None:
        raise NotImplementedError

    def resync(self) -> None:
        for k in self.keys():
            self.queue.add(k)

    def process(self, key: K) -> None:
        """One key, with kube's handling of the outcome."""
        try:
            after = self.reconcile(key)
        except Retry:
            self.queue.add_rate_limited(key)
        except ApiError as e:
            if e.code == 409 or e.code == 0 or e.code >= 500 or e.code == 429:
                log.debug("%s: %s: %s", self.name, key, e)
            elif namespace_terminating(e) or e.code == 404:
                self.queue.forget(key)
                return
            else:
                log.warning("%s: %s: %s", self.name, key, e)
            self.queue.add_rate_limited(key)
        except Exception:
            if not self.queue.shutting_down:  # the client closes under a reconcile at shutdown
                log.exception("%s: reconciling %s failed", self.name, key)
            self.queue.add_rate_limited(key)
        else:
            self.queue.forget(key)
            if after is not None:
                self.queue.add_after(key, after)

    def run_worker(self) -> None:
        while True:
            key = self.queue.get()
            if key is None:
                return
            try:
                self.process(key)
            finally:
                self.queue.done(key)
