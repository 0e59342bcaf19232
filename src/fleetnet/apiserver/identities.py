"""Projections of security identities and ipcache entries, as the clustermesh-apiserver exports
CiliumIdentities and CiliumEndpoints (reference §3.3.2, §3.3.4, §3.5): only those of global
namespaces leave the cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fleetnet.kube.typed import stored
from fleetnet.model.cilium import IPIdentityPair
from fleetnet.model.cluster import ClusterConfig
from fleetnet.model.keys import identity_key, ip_key
from fleetnet.plan.labels import LabelSet

if TYPE_CHECKING:
    from fleetnet.apiserver.exporter import ObjectReader


def _global_namespaces(cfg: ClusterConfig, objects: ObjectReader) -> set[str]:
    from fleetnet.plan.services import is_global_namespace

    default_global = not (cfg.mesh is not None and cfg.mesh.require_global_namespace)
    return {n["metadata"]["name"] for n in objects.list("Namespace") if is_global_namespace(stored(n), default_global)}


def identities_projection(cfg: ClusterConfig, objects: ObjectReader) -> dict[str, bytes]:
    shared = _global_namespaces(cfg, objects)
    out: dict[str, bytes] = {}
    for o in objects.list("CiliumIdentity"):
        try:
            labels = LabelSet.from_cilium_key(o["labelsKey"])
            identity = int(o["metadata"]["name"])
        except Exception:
            continue
        if labels.namespace in shared:
            out[identity_key(identity)] = labels.to_cilium_key().encode()
    return out


def _ipv4(ep: dict[str, Any]) -> str | None:
    for a in (ep.get("status") or {}).get("networking", {}).get("addressing") or []:
        if a.get("ipv4"):
            return str(a["ipv4"])
    return None


def ipcache_projection(cfg: ClusterConfig, objects: ObjectReader) -> dict[str, bytes]:
    shared = _global_namespaces(cfg, objects)
    out: dict[str, bytes] = {}
    for ep in objects.list("CiliumEndpoint"):
        ns = ep["metadata"].get("namespace") or ""
        ip = _ipv4(ep)
        if ns not in shared or ip is None:
            continue
        st = ep["status"]
        pair = IPIdentityPair(
            ip=ip,
            identity=int(st["identity"]["id"]),
            host_ip=st["networking"].get("node"),
            k8s_namespace=ns,
            k8s_pod_name=ep["metadata"]["name"],
            k8s_service_account="default",
        )
        out[ip_key(ip)] = pair.to_json()
    return out
