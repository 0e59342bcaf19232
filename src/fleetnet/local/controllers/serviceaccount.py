"""The ServiceAccount controller: every active namespace has a ``default`` ServiceAccount.

Made when a namespace appears, made again if it is deleted; a namespace being deleted gets none.
"""

from __future__ import annotations

from collections.abc import Iterable

from fleetnet.kube.status import ApiError
from fleetnet.local.controllers.runtime import Controller
from fleetnet.plan.controllers.meta import Obj, deleting, name, namespace

DEFAULT = "default"


class ServiceAccountController(Controller[str]):
    name = "serviceaccount"
    kinds = ("Namespace", "ServiceAccount")

    def on_event(self, kind: str, typ: str, obj: Obj) -> None:
        if kind == "Namespace" and typ != "DELETED" and not deleting(obj):
            self.queue.add(name(obj))
        elif kind == "ServiceAccount" and typ == "DELETED" and name(obj) == DEFAULT:
            self.queue.add(namespace(obj))

    def keys(self) -> Iterable[str]:
        return [name(n) for n in self.cluster.list("Namespace")]

    def reconcile(self, key: str) -> float | None:
        ns = self.cluster.get("Namespace", "", key)
        if ns is None or deleting(ns) or (ns.get("status") or {}).get("phase", "Active") != "Active":
            return None
        if self.cluster.get("ServiceAccount", key, DEFAULT) is not None:
            return None
        try:
            self.cluster.create(
                {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": DEFAULT, "namespace": key}}
            )
        except ApiError as e:
            if e.code != 409:
                raise
        return None
