"""The garbage collector: dependents follow their owners, as ``ownerReferences`` and finalizers say.

It keeps kube's dependency graph — every object of every watched kind by uid, its owners, and the
reverse index of dependents — up to date from the informer events, and queues what an event may
have changed: an object whose owners changed, the dependents of an object that went away or
started a foreground deletion, an owner waiting on a dependent that went away. For each it
applies ``plan/controllers/garbage.py``: an object whose owners are all gone is deleted (with
uid and resourceVersion preconditions, so a changed object is looked at again instead);
``orphan`` strips the owner from its dependents, then drops the finalizer; ``foregroundDeletion``
deletes the dependents and drops the finalizer once none that blocks owner deletion is left.
An owner missing from the graph is looked up in the API before anything is deleted for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fleetnet.kube.resources import REGISTRY, Resource
from fleetnet.kube.status import ApiError
from fleetnet.local.controllers.events import EventRecorder
from fleetnet.local.controllers.runtime import Cluster, Controller, Retry
from fleetnet.plan.controllers.garbage import Owner, blocking, deletion_mode, verdict, without_finalizer
from fleetnet.plan.controllers.meta import (
    FOREGROUND_FINALIZER,
    ORPHAN_FINALIZER,
    Obj,
    deleting,
    meta,
    name,
    namespace,
    owner_refs,
    uid,
)
from fleetnet.plan.controllers.ownership import without_owner

Key = tuple[str, str, str]  # kind, namespace, name

# Events are many, short-lived and never owners: the collector leaves them to their TTL
KINDS: tuple[str, ...] = tuple(r.kind for r in REGISTRY.resources if r.kind != "Event" and "delete" in r.verbs)


@dataclass(frozen=True, slots=True)
class _Node:
    key: Key
    owners: tuple[tuple[str, str, str, str], ...]  # (uid, apiVersion, kind, name)
    mode: str | None  # orphan | foreground | None


class GarbageCollector(Controller[Key]):
    name = "garbagecollector"
    kinds = KINDS
    workers = 2

    def __init__(self, cluster: Cluster, events: EventRecorder, clock: Callable[[], float] = time.time) -> None:
        super().__init__(cluster, events, clock)
        self._lock = threading.Lock()
        self._nodes: dict[str, _Node] = {}
        self._dependents: dict[str, set[str]] = {}

    # ------------------------------------------------------------------ the graph
    def on_event(self, kind: str, typ: str, obj: Obj) -> None:
        u = uid(obj)
        if not u or kind not in KINDS:
            return
        wake: set[Key] = set()
        with self._lock:
            old = self._nodes.get(u)
            if typ == "DELETED":
                if old is None:
                    return
                del self._nodes[u]
                self._unindex(u, old.owners)
                wake.update(self._nodes[d].key for d in self._dependents.get(u, ()) if d in self._nodes)
                wake.update(self._foreground_owners(old.owners))
            else:
                owners = tuple(
                    (str(r.get("uid")), str(r.get("apiVersion")), str(r.get("kind")), str(r.get("name")))
                    for r in owner_refs(obj)
                )
                node = _Node((kind, namespace(obj), name(obj)), owners, deletion_mode(obj))
                self._nodes[u] = node
                before = old.owners if old is not None else ()
                if before != owners:
                    self._unindex(u, before)
                    for o in owners:
                        self._dependents.setdefault(o[0], set()).add(u)
                    if owners:
                        wake.add(node.key)
                    gone = {o[0] for o in before} - {o[0] for o in owners}
                    wake.update(self._foreground_owners(tuple(o for o in before if o[0] in gone)))
                if node.mode is not None and (old is None or old.mode != node.mode):
                    wake.add(node.key)
                    if node.mode == "foreground":
                        wake.update(self._nodes[d].key for d in self._dependents.get(u, ()) if d in self._nodes)
        for k in wake:
            self.queue.add(k)

    def _unindex(self, u: str, owners: tuple[tuple[str, str, str, str], ...]) -> None:
        for o in owners:
            deps = self._dependents.get(o[0])
            if deps is not None:
                deps.discard(u)
                if not deps:
                    del self._dependents[o[0]]

    def _foreground_owners(self, owners: tuple[tuple[str, str, str, str], ...]) -> list[Key]:
        out = []
        for o in owners:
            n = self._nodes.get(o[0])
            if n is not None and n.mode == "foreground":
                out.append(n.key)
        return out

    def dependents(self, owner_uid: str) -> list[Obj]:
        with self._lock:
            keys = [self._nodes[d].key for d in self._dependents.get(owner_uid, ()) if d in self._nodes]
        return [o for o in (self.cluster.get(*k) for k in keys) if o is not None]

    def keys(self) -> Iterable[Key]:
        with self._lock:
            return [n.key for n in self._nodes.values() if n.owners or n.mode is not None]

    # ------------------------------------------------------------------ decisions
    def _owner(self, dependent: Obj, owner_uid: str, api_version: str, kind: str, owner_name: str) -> Owner:
        with self._lock:
            node = self._nodes.get(owner_uid)
        if node is not None:
            live = self.cluster.get(*node.key)
            if live is not None and uid(live) == owner_uid:
                return Owner(True, deletion_mode(live) == "foreground")
        res = _resource(self.cluster, kind, api_version)
        if res is None:
            return Owner(True)  # a kind this cluster cannot resolve: never delete for it
        if res.namespaced and not namespace(dependent):
            return Owner(False)  # a cluster-scoped object cannot be owned by a namespaced one
        live = self.cluster.client.get_or_none(res, owner_name, namespace(dependent) if res.namespaced else None)
        if live is None or uid(live) != owner_uid:
            return Owner(False)
        return Owner(True, deletion_mode(live) == "foreground")

    def reconcile(self, key: Key) -> float | None:
        obj = self.cluster.get(*key)
        if obj is None:
            return None
        mode = deletion_mode(obj)
        if mode == "orphan":
            self._orphan(obj)
            return None
        if mode == "foreground":
            self._foreground(obj)
            return None
        if deleting(obj) or not owner_refs(obj):
            return None
        owners: dict[str, Owner] = {}
        for r in owner_refs(obj):
            owners[str(r.get("uid"))] = self._owner(
                obj, str(r.get("uid")), str(r.get("apiVersion")), str(r.get("kind")), str(r.get("name"))
            )
        v = verdict(obj, owners, bool(self.dependents(uid(obj))))
        if v.action == "unlink":
            out = obj
            for u in v.unlink:
                out = without_owner(out, u)
            self.cluster.update(out)
        elif v.action == "delete":
            rv = str(meta(obj).get("resourceVersion") or "")
            self.cluster.delete(key[0], key[1], key[2], uid=uid(obj), resource_version=rv, propagation=v.policy)
        return None

    def _orphan(self, owner: Obj) -> None:
        u = uid(owner)
        for dep in self.dependents(u):
            if any(r.get("uid") == u for r in owner_refs(dep)):
                self._update_retrying(dep, lambda o: without_owner(o, u))
        self._update_retrying(owner, lambda o: without_finalizer(o, ORPHAN_FINALIZER))

    def _foreground(self, owner: Obj) -> None:
        u = uid(owner)
        deps = self.dependents(u)
        if not blocking(u, deps):
            self._update_retrying(owner, lambda o: without_finalizer(o, FOREGROUND_FINALIZER))
            return
        for dep in deps:
            if deletion_mode(dep) != "foreground":
                self.queue.add((str(dep.get("kind")), namespace(dep), name(dep)))

    def _update_retrying(self, obj: Obj, change: Callable[[Obj], Obj]) -> None:
        """Write ``change(obj)``; on a conflict read the object again and redo the change."""
        for _ in range(5):
            try:
                self.cluster.update(change(obj))
                return
            except ApiError as e:
                if e.code == 404:
                    return
                if e.code != 409:
                    raise
            res = REGISTRY.by_kind(str(obj.get("kind")))
            assert res is not None
            fresh = self.cluster.client.get_or_none(res, name(obj), namespace(obj) or None)
            if fresh is None:
                return
            fresh.setdefault("kind", obj.get("kind"))
            obj = fresh
        raise Retry


def _resource(cluster: Cluster, kind: str, api_version: str) -> Resource | None:
    res = REGISTRY.by_kind(kind, api_version) or REGISTRY.by_kind(kind)
    if res is not None and res.group == api_version.rpartition("/")[0]:
        return res
    try:
        return cluster.client.resource(kind, api_version)
    except Exception:
        return None
