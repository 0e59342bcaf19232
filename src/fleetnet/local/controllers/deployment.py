"""The Deployment controller: ReplicaSets per pod template, rolled over as the strategy says.

It claims the ReplicaSets a Deployment's selector matches, asks ``plan/controllers/deployment.py``
for one sync, and applies it: ReplicaSet creates, scales and deletions in order (recording each
``ScalingReplicaSet`` event once its write succeeded), the revision annotation on the Deployment,
then its status. A write that meets a newer object (409) makes the whole sync start again from
the informers, as kube's requeue does. Progress deadlines are looked at again when they fall due.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from fleetnet.kube.status import ApiError
from fleetnet.local.controllers.runtime import Controller, Retry
from fleetnet.plan.controllers.deployment import plan_deployment
from fleetnet.plan.controllers.meta import (
    Obj,
    controller_ref,
    labels,
    name,
    namespace,
    new_controller_ref,
    selector,
    selects_everything,
    uid,
)
from fleetnet.plan.controllers.ownership import claim, with_controller, without_owner

Key = tuple[str, str]
COMPONENT = "deployment-controller"


class DeploymentController(Controller[Key]):
    name = "deployment"
    kinds = ("Deployment", "ReplicaSet", "Pod")
    workers = 2

    def on_event(self, kind: str, typ: str, obj: Obj) -> None:
        ns = namespace(obj)
        if kind == "Deployment":
            self.queue.add((ns, name(obj)))
        elif kind == "ReplicaSet":
            ref = controller_ref(obj)
            if ref is not None:
                if ref.get("kind") == "Deployment":
                    self.queue.add((ns, str(ref.get("name"))))
            elif typ != "DELETED":
                for d in self.cluster.list("Deployment", ns):
                    if not selects_everything(d) and selector(d).matches(labels(obj)):
                        self.queue.add((ns, name(d)))
        elif kind == "Pod" and typ == "DELETED":
            # Recreate waits for the old pods to be gone
            ref = controller_ref(obj)
            if ref is not None and ref.get("kind") == "ReplicaSet":
                rs = self.cluster.get("ReplicaSet", ns, str(ref.get("name")))
                owner = controller_ref(rs) if rs is not None else None
                if owner is not None and owner.get("kind") == "Deployment":
                    self.queue.add((ns, str(owner.get("name"))))

    def keys(self) -> Iterable[Key]:
        return [(namespace(d), name(d)) for d in self.cluster.list("Deployment")]

    def _claim(self, d: Obj, rss: list[Obj]) -> list[Obj]:
        if selects_everything(d):
            return []
        sel = selector(d)
        c = claim(d, rss, lambda rs: sel.matches(labels(rs)))
        owned = list(c.owned)
        for rs in c.adopt:
            try:
                owned.append(self.cluster.update(with_controller(rs, new_controller_ref(d, "Deployment", "apps/v1"))))
            except ApiError as e:
                if e.code not in (404, 409):
                    raise
        for rs in c.release:
            try:
                self.cluster.update(without_owner(rs, uid(d)))
            except ApiError as e:
                if e.code not in (404, 409):
                    raise
        return owned

    def reconcile(self, key: Key) -> float | None:
        d = self.cluster.get("Deployment", *key)
        if d is None:
            return None
        all_rss = self.cluster.list("ReplicaSet", key[0])
        owned = self._claim(d, all_rss)
        uids = {uid(rs) for rs in owned}
        pods = [p for p in self.cluster.list("Pod", key[0]) if (controller_ref(p) or {}).get("uid") in uids]
        plan = plan_deployment(d, owned, pods, self.clock(), {name(rs): rs for rs in all_rss})
        for w in plan.writes:
            if w.verb == "create":
                try:
                    self.cluster.create(w.obj)
                except ApiError as e:
                    if e.code == 409:  # our view is behind: start over from the informers
                        raise Retry from e
                    self.events.record(
                        d, "Warning", "FailedCreate", f"Failed to create new replica set {name(w.obj)}: {e}", COMPONENT
                    )
                    raise
            elif w.verb == "update":
                self.cluster.update(w.obj)
            elif w.verb == "delete":
                self.cluster.delete("ReplicaSet", key[0], name(w.obj), uid=uid(w.obj))
            for ev in w.events:
                self.events.record(d, ev.type, ev.reason, ev.message, COMPONENT)
        if plan.annotations is not None:
            body = copy.deepcopy(d)
            body["metadata"]["annotations"] = plan.annotations
            d = self.cluster.update(body)
        if plan.status is not None:
            self.cluster.update_status(d, plan.status)
        for ev in plan.events:
            self.events.record(d, ev.type, ev.reason, ev.message, COMPONENT)
        if plan.retry:
            raise Retry
        return plan.requeue_after
