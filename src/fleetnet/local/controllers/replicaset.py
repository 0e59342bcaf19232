"""The ReplicaSet controller: keeps ``spec.replicas`` pods of each ReplicaSet, and its status.

Pods are claimed as kube does (matching orphans adopted, non-matching ones released), created
from the template (the server names them ``<replicaset>-<5 chars>``) or deleted in kube's order
(``plan/controllers/replicaset.py``), and the status is written from what the informers show.
A ReplicaSet with ``minReadySeconds`` is looked at again when its next pod becomes available.
Events: ``SuccessfulCreate``, ``SuccessfulDelete``, ``FailedCreate``, ``FailedDelete``.
"""

from __future__ import annotations

from collections.abc import Iterable

from fleetnet.kube.status import ApiError
from fleetnet.local.controllers.runtime import Controller, Retry, namespace_terminating
from fleetnet.plan.controllers import replicaset as plan
from fleetnet.plan.controllers.meta import (
    Obj,
    controller_ref,
    labels,
    name,
    namespace,
    new_controller_ref,
    pod_active,
    selector,
    semantic_equal,
    uid,
)
from fleetnet.plan.controllers.ownership import claim, with_controller, without_owner

Key = tuple[str, str]
COMPONENT = "replicaset-controller"


class ReplicaSetController(Controller[Key]):
    name = "replicaset"
    kinds = ("ReplicaSet", "Pod")
    workers = 2

    def on_event(self, kind: str, typ: str, obj: Obj) -> None:
        ns = namespace(obj)
        if kind == "ReplicaSet":
            self.queue.add((ns, name(obj)))
            return
        if kind != "Pod":
            return
        ref = controller_ref(obj)
        if ref is not None:
            if ref.get("kind") == "ReplicaSet":
                self.queue.add((ns, str(ref.get("name"))))
            return
        if typ == "DELETED":
            return
        for rs in self.cluster.list("ReplicaSet", ns):
            if selector(rs).matches(labels(obj)):
                self.queue.add((ns, name(rs)))

    def keys(self) -> Iterable[Key]:
        return [(namespace(rs), name(rs)) for rs in self.cluster.list("ReplicaSet")]

    def _claim(self, rs: Obj, pods: list[Obj]) -> list[Obj]:
        sel = selector(rs)
        c = claim(rs, [p for p in pods if pod_active(p)], lambda p: sel.matches(labels(p)))
        owned = list(c.owned)
        for p in c.adopt:
            try:
                owned.append(self.cluster.update(with_controller(p, new_controller_ref(rs, "ReplicaSet", "apps/v1"))))
            except ApiError as e:
                if e.code not in (404, 409):
                    raise
        for p in c.release:
            try:
                self.cluster.update(without_owner(p, uid(rs)))
            except ApiError as e:
                if e.code not in (404, 409):
                    raise
        return owned

    def _related(self, rs: Obj, pods: list[Obj], owned: list[Obj]) -> list[Obj]:
        owner = controller_ref(rs)
        if owner is None:
            return owned
        siblings = {
            uid(r)
            for r in self.cluster.list("ReplicaSet", namespace(rs))
            if (controller_ref(r) or {}).get("uid") == owner.get("uid")
        }
        return [p for p in pods if (controller_ref(p) or {}).get("uid") in siblings]

    def reconcile(self, key: Key) -> float | None:
        rs = self.cluster.get("ReplicaSet", *key)
        if rs is None:
            return None
        pods = self.cluster.list("Pod", key[0])
        owned = self._claim(rs, pods)
        now = self.clock()
        decision = plan.plan_replicaset(rs, owned, self._related(rs, pods, owned), now)
        failure: str | None = None
        for _ in range(decision.create):
            try:
                pod = self.cluster.create(plan.pod_from_template(rs))
            except ApiError as e:
                if namespace_terminating(e):
                    break
                failure = e.message
                self.events.record(rs, "Warning", "FailedCreate", f"Error creating: {e.message}", COMPONENT)
                break
            self.events.record(rs, "Normal", "SuccessfulCreate", f"Created pod: {name(pod)}", COMPONENT)
        for pod in decision.delete:
            try:
                self.cluster.delete("Pod", key[0], name(pod))
            except ApiError as e:
                failure = e.message
                self.events.record(rs, "Warning", "FailedDelete", f"Error deleting: {e.message}", COMPONENT)
                break
            self.events.record(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {name(pod)}", COMPONENT)
        status = plan.calculate_status(rs, owned, now, failure)
        if not semantic_equal(status, rs.get("status") or {}):
            self.cluster.update_status(rs, status)
        if failure is not None:
            raise Retry
        return decision.requeue_after
