"""The namespace controller: a Terminating namespace is emptied, then finalized.

For a namespace marked for deletion whose ``spec.finalizers`` still hold ``kubernetes``: every
namespaced kind of the registry is deleted with ``deletecollection`` (one object at a time where
a kind does not allow it), what remains is listed from the API (not the informers, which may be
behind), the namespace's deletion conditions say what is left, and once nothing is, ``PUT
.../finalize`` drops the finalizer — the API server then removes the namespace. Until then, the
deletion of anything in the namespace wakes it, and pods still terminating set when to look again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from fleetnet.kube.resources import REGISTRY, Resource
from fleetnet.kube.status import ApiError
from fleetnet.local.controllers.runtime import Controller, Retry
from fleetnet.plan.controllers.meta import Obj, deleting, finalizers, meta, name, namespace, parse_time
from fleetnet.plan.controllers.namespaces import KUBERNETES_FINALIZER, deletion_conditions

NAMESPACED: tuple[Resource, ...] = tuple(r for r in REGISTRY.resources if r.namespaced and "list" in r.verbs)


class NamespaceController(Controller[str]):
    name = "namespace"
    kinds = ("Namespace",)

    def on_event(self, kind: str, typ: str, obj: Obj) -> None:
        if kind == "Namespace":
            if deleting(obj) and typ != "DELETED":
                self.queue.add(name(obj))
            return
        ns = namespace(obj)
        if typ == "DELETED" and ns:
            live = self.cluster.get("Namespace", "", ns)
            if live is not None and deleting(live):
                self.queue.add(ns)

    def keys(self) -> Iterable[str]:
        return [name(n) for n in self.cluster.list("Namespace") if deleting(n)]

    def _empty(self, res: Resource, ns: str) -> list[Obj]:
        """Delete everything of ``res`` in ``ns``; what is still there afterwards."""
        try:
            if "deletecollection" in res.verbs:
                self.cluster.delete_collection(res, ns)
            else:
                for obj in self.cluster.list_live(res, ns):
                    self.cluster.delete(res.kind, ns, name(obj))
        except ApiError as e:
            if e.code not in (404, 405):
                raise
        return self.cluster.list_live(res, ns)

    def reconcile(self, key: str) -> float | None:
        ns = self.cluster.get("Namespace", "", key)
        if ns is None or not deleting(ns):
            return None
        spec_finalizers = list((ns.get("spec") or {}).get("finalizers") or [])
        if KUBERNETES_FINALIZER not in spec_finalizers:
            return None
        remaining: dict[str, int] = {}
        held: Counter[str] = Counter()
        failures: list[str] = []
        wait = 0.0
        now = self.clock()
        for res in NAMESPACED:
            try:
                left = self._empty(res, key)
            except ApiError as e:
                failures.append(f"{res.plural}.{res.group}: {e.message}")
                continue
            if not left:
                continue
            remaining[f"{res.plural}.{res.group}"] = len(left)
            for obj in left:
                held.update(finalizers(obj))
                due = parse_time(meta(obj).get("deletionTimestamp"))
                if res.kind == "Pod" and due is not None:
                    wait = max(wait, due - now)
        status = dict(ns.get("status") or {})
        status["phase"] = "Terminating"
        status["conditions"] = deletion_conditions(status.get("conditions") or [], remaining, held, failures, now)
        self.cluster.update_status(ns, status)
        if remaining or failures:
            if wait > 0:
                return wait + 0.5
            raise Retry
        fresh = self.cluster.get("Namespace", "", key) or ns
        self.cluster.finalize_namespace(fresh, [f for f in spec_finalizers if f != KUBERNETES_FINALIZER])
        return None
