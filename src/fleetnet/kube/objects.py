"""A cluster's objects as a component of that cluster sees them: informers for reading, the API for
writing.

The agent, the controllers and the clustermesh-apiserver each hold one of these. Reads come from
the informers' stores (no request); writes go to the API server and are put into the store at once
(read-your-writes), and a write whose content the live object already has is not sent at all —
the server would answer it unchanged, but a controller that rewrites what it sees would otherwise
spin. ``revision()`` counts the changes seen, so a loop can tell cheaply whether to reconcile.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from fleetnet.kube.client import KubeClient
from fleetnet.kube.informer import Informer
from fleetnet.kube.resources import REGISTRY, Resource
from fleetnet.kube.status import ApiError

log = logging.getLogger(__name__)

Key = tuple[str, str, str]  # (kind, namespace, name); namespace "" for cluster-scoped kinds
# named outside the classes, whose `list` methods shadow the builtin
Objs = list[dict[str, Any]]
Results = list[tuple[Key, str]]
Keys = list[Key]


def key_of(obj: dict[str, Any]) -> Key:
    md = obj.get("metadata") or {}
    return (str(obj["kind"]), str(md.get("namespace") or ""), str(md["name"]))


def covers(live: Any, desired: Any) -> bool:
    """Whether ``live`` already holds everything ``desired`` says (extra live fields, such as the
    server's defaults and metadata, do not count)."""
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        return all(k in live and covers(live[k], v) for k, v in desired.items() if v is not None) and all(
            live.get(k) is None for k, v in desired.items() if v is None
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(covers(a, b) for a, b in zip(live, desired, strict=True))
        )
    return bool(live == desired)


class ClusterObjects:
    def __init__(
        self,
        client_factory: Callable[[], KubeClient],
        kinds: Sequence[str],
        on_change: Callable[[], None] | None = None,
        field_manager: str = "fleetnet",
        patch_kinds: Sequence[str] = (),
    ) -> None:
        self.client_factory = client_factory
        self.client = client_factory()
        self.field_manager = field_manager
        # kinds this component may only patch, not update (its RBAC says so: cilium-agent and
        # CiliumEndpoints); their updates are JSON merge patches of the desired content
        self.patch_kinds = frozenset(patch_kinds)
        self._on_change = on_change
        self._rev = 0
        self._rev_lock = threading.Lock()
        self.informers: dict[str, Informer] = {}
        for kind in kinds:
            res = REGISTRY.by_kind(kind)
            if res is None:
                raise ValueError(f"unknown kind {kind}")
            self.informers[kind] = Informer(client_factory, res, on_change=self._changed)

    def _changed(self, _typ: str, _obj: dict[str, Any]) -> None:
        with self._rev_lock:
            self._rev += 1
        if self._on_change is not None:
            self._on_change()

    def start(self) -> ClusterObjects:
        for inf in self.informers.values():
            inf.start()
        return self

    def wait_synced(self, timeout: float) -> bool:
        import time

        deadline = time.monotonic() + timeout
        return all(inf.wait_synced(max(0.0, deadline - time.monotonic())) for inf in self.informers.values())

    def stop(self) -> None:
        for inf in self.informers.values():
            inf.stop()
        self.client.close()

    def revision(self) -> int:
        with self._rev_lock:
            return self._rev

    # ------------------------------------------------------------------ reads
    def _inf(self, kind: str) -> Informer:
        inf = self.informers.get(kind)
        if inf is None:
            raise KeyError(f"{kind} is not watched by this component")
        return inf

    def list(self, kind: str, namespace: str | None = None) -> Objs:
        items = self._inf(kind).items()
        if namespace is None:
            return items
        return [o for o in items if (o.get("metadata") or {}).get("namespace") == namespace]

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self._inf(kind).get(namespace, name)

    @staticmethod
    def resource(kind: str) -> Resource:
        res = REGISTRY.by_kind(kind)
        assert res is not None, kind
        return res

    # ------------------------------------------------------------------ writes
    def _observe(self, kind: str, typ: str, obj: dict[str, Any]) -> None:
        inf = self.informers.get(kind)
        if inf is not None:
            inf.observe(typ, obj)

    def apply(self, objs: Iterable[dict[str, Any]]) -> Results:
        """Create each object, or update it to this content (status kept where it is a subresource)."""
        out: Results = []
        for obj in objs:
            k = key_of(obj)
            live = self.get(*k) if k[0] in self.informers else None
            if live is not None and covers(live, _without_status(obj) if self.resource(k[0]).has_status else obj):
                out.append((k, "unchanged"))
                continue
            try:
                if live is None:
                    try:
                        written = self.client.create(obj, field_manager=self.field_manager)
                        out.append((k, "created"))
                    except ApiError as e:
                        if e.code != 409 or e.reason != "AlreadyExists":
                            raise
                        written = self._replace(obj)
                        out.append((k, "configured"))
                else:
                    written = self._replace(obj)
                    out.append((k, "configured"))
            except ApiError as e:
                log.warning("writing %s %s/%s failed: %s", *k, e)
                raise
            self._observe(k[0], "MODIFIED", written)
        return out

    def _replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        if obj["kind"] in self.patch_kinds:
            md = obj["metadata"]
            return self.client.patch(
                self.resource(obj["kind"]),
                md["name"],
                obj,
                namespace=md.get("namespace"),
                field_manager=self.field_manager,
            )
        body = copy.deepcopy(obj)
        body.get("metadata", {}).pop("resourceVersion", None)  # unconditional: this content wins
        return self.client.replace(body, field_manager=self.field_manager)

    def update_status(self, key: Key, status: dict[str, Any]) -> bool:
        """Replace only the status (through /status when the kind has it); False if the object is gone."""
        kind, ns, name = key
        res = self.resource(kind)
        for _ in range(5):
            live = self.get(kind, ns, name) if kind in self.informers else None
            if live is None:
                live = self.client.get_or_none(res, name, ns or None)
                if live is None:
                    return False
            if covers(live.get("status"), status) and covers(status, live.get("status")):
                return True
            body = copy.deepcopy(live)
            body["status"] = status
            try:
                written = self.client.replace(
                    body, subresource="status" if res.has_status else None, field_manager=self.field_manager
                )
            except ApiError as e:
                if e.code == 404:
                    return False
                if e.code == 409:  # our copy is stale: read the object again
                    fresh = self.client.get_or_none(res, name, ns or None)
                    if fresh is None:
                        return False
                    self._observe(kind, "MODIFIED", fresh)
                    continue
                raise
            self._observe(kind, "MODIFIED", written)
            return True
        return False

    def delete(self, keys: Iterable[Key], grace_period: int | None = None) -> Keys:
        deleted: Keys = []
        for k in keys:
            kind, ns, name = k
            out = self.client.delete(self.resource(kind), name, ns or None, grace_period=grace_period)
            if out is not None:
                deleted.append(k)
                if not (out.get("metadata") or {}).get("deletionTimestamp"):
                    self._observe(kind, "DELETED", out)
                else:
                    self._observe(kind, "MODIFIED", out)
        return deleted


def _without_status(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != "status"}
