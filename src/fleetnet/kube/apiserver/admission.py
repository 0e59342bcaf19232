"""What kube-apiserver's admission chain and kind-specific REST storage add to writes.

NamespaceLifecycle (no content in a missing or terminating namespace), Service ClusterIP allocation,
the ServiceAccount default of pods, and the subresources that are not plain object writes: pod
binding (the scheduler's), pod eviction, namespace finalize, and ServiceAccount tokens.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fleetnet.kube import status as st
from fleetnet.kube.apiserver import allocator, deletion
from fleetnet.kube.apiserver.bodies import decode_body, encode
from fleetnet.kube.apiserver.call import Call, Reply
from fleetnet.kube.resources import REGISTRY, Resource

if TYPE_CHECKING:
    from fleetnet.kube.apiserver.handlers import Handlers

# mints a ServiceAccount token: (namespace, name, audiences, expiry seconds) -> (token, expiry RFC 3339)
TokenMinter = Callable[[str, str, list[str], int], tuple[str, str]]


class Admission:
    def __init__(self, service_cidr: str, mint_token: TokenMinter | None = None) -> None:
        self.service_cidr = service_cidr
        self.mint_token = mint_token
        self.handlers: Handlers | None = None

    # ------------------------------------------------------------------ namespace lifecycle
    def check_namespace(self, res: Resource, name: str, namespace: str) -> None:
        assert self.handlers is not None
        ns_res = REGISTRY.by_kind("Namespace")
        assert ns_res is not None
        e = self.handlers.storage.get(ns_res.storage_key(None, namespace))
        if e is None:
            raise st.not_found("namespaces", "", namespace)
        if e.obj["metadata"].get("deletionTimestamp") or (e.obj.get("status") or {}).get("phase") == "Terminating":
            err = st.forbidden(
                res.plural,
                res.group,
                name or None,
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )
            assert err.details is not None
            err.details["causes"] = [
                {
                    "reason": "NamespaceTerminating",
                    "message": f"namespace {namespace} is being terminated",
                    "field": "metadata.namespace",
                }
            ]
            raise err

    # ------------------------------------------------------------------ kind-specific writes
    def on_create(self, res: Resource, obj: dict[str, Any], dry_run: bool) -> None:
        if res.kind == "Service":
            self._allocate(obj)
        elif res.kind == "Pod":
            spec = obj.setdefault("spec", {})
            spec.setdefault("serviceAccountName", "default")

    def on_update(self, res: Resource, new: dict[str, Any], old: dict[str, Any]) -> None:
        if res.kind == "Service":
            spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
            if not old_spec.get("clusterIP") and spec.get("type") != "ExternalName":
                self._allocate(new)

    def _allocate(self, svc: dict[str, Any]) -> None:
        assert self.handlers is not None
        spec = svc.setdefault("spec", {})
        if spec.get("type") == "ExternalName":
            return
        requested = spec.get("clusterIP") or ((spec.get("clusterIPs") or [None])[0])
        if requested is not None and str(requested).lower() == "none":
            spec["clusterIP"] = "None"
            spec["clusterIPs"] = ["None"]
            return
        res = REGISTRY.by_kind("Service")
        assert res is not None
        used = [
            (e.obj.get("spec") or {}).get("clusterIP", "") for e in self.handlers.storage.list("/registry/services/")
        ]
        try:
            ip = allocator.allocate(self.service_cidr, [u for u in used if u], requested or None)
        except allocator.AllocationError as e:
            name = str((svc.get("metadata") or {}).get("name", ""))
            if e.cause is None:
                raise st.internal(str(e)) from e
            raise st.invalid("Service", "", name, [e.cause]) from e
        spec["clusterIP"] = ip
        spec["clusterIPs"] = [ip]

    def deletable_now(self, res: Resource, obj: dict[str, Any]) -> bool:
        return deletion.deletable_now(res, obj)

    # ------------------------------------------------------------------ subresources
    def create_subresource(self, h: Handlers, call: Call) -> Reply:

        info = call.info
        assert info.name is not None
        if info.resource.kind == "Pod" and info.subresource == "binding":
            body, _ = decode_body(call, None)
            target = (body.get("target") or {}).get("name")
            e = h.get_entry(info.resource, info.namespace, info.name)
            if (e.obj.get("spec") or {}).get("nodeName"):
                raise st.conflict(
                    "pods", "", info.name, f'pod {info.name} is already assigned to node "{e.obj["spec"]["nodeName"]}"'
                )
            obj = copy.deepcopy(e.obj)
            obj["spec"]["nodeName"] = target
            obj["metadata"].pop("resourceVersion", None)
            h.storage.put(e.key, obj)
            return Reply(201, encode(st.success()))
        if info.resource.kind == "Pod" and info.subresource == "eviction":
            e = h.get_entry(info.resource, info.namespace, info.name)
            opts = deletion.DeleteOptions(None, None, None, None, call.dry_run)
            deletion.delete_one(h, info.resource, e, opts, call)
            return Reply(201, encode(st.success()))
        if info.resource.kind == "ServiceAccount" and info.subresource == "token":
            return self._token(h, call)
        raise st.method_not_allowed()

    def _token(self, h: Handlers, call: Call) -> Reply:

        info = call.info
        assert info.name is not None and info.namespace is not None
        h.get_entry(info.resource, info.namespace, info.name)
        if self.mint_token is None:
            raise st.ApiError(503, "ServiceUnavailable", "this server does not issue service account tokens")
        body, _ = decode_body(call, None)
        spec = body.get("spec") or {}
        expiry = int(spec.get("expirationSeconds") or 3600)
        token, expires = self.mint_token(info.namespace, info.name, list(spec.get("audiences") or []), expiry)
        out = {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": info.name, "namespace": info.namespace},
            "spec": {**spec, "expirationSeconds": expiry},
            "status": {"token": token, "expirationTimestamp": expires},
        }
        return Reply(201, encode(out))

    def finalize(self, h: Handlers, call: Call) -> Reply:
        """PUT /api/v1/namespaces/<ns>/finalize: the namespace controller removes spec.finalizers."""
        info = call.info
        assert info.name is not None
        body, _ = decode_body(call, info.resource)
        old = h.get_entry(info.resource, None, info.name)
        obj = copy.deepcopy(old.obj)
        obj.setdefault("spec", {})["finalizers"] = list((body.get("spec") or {}).get("finalizers") or [])
        if obj["metadata"].get("deletionTimestamp") and self.deletable_now(info.resource, obj):
            gone = h.storage.delete(old.key)
            assert gone is not None

            return Reply(200, gone.raw)
        e = h.storage.put(old.key, obj)

        return Reply(200, e.raw)
