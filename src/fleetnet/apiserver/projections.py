"""Projections of a cluster's objects beyond its nodes: services (and, with policy, identities and
ipcache entries). Kept apart so each feature adds its prefix without touching the exporter loop."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fleetnet.kube.typed import stored
from fleetnet.model.cluster import ClusterConfig
from fleetnet.model.keys import service_key

if TYPE_CHECKING:
    from fleetnet.apiserver.exporter import ObjectReader, Prefix


def services_projection(cfg: ClusterConfig, objects: ObjectReader) -> dict[str, bytes]:
    """ClusterService of every global and shared Service in a global namespace (reference §3.3.1)."""
    from fleetnet.plan.services import cluster_service, should_export

    default_global = not (cfg.mesh is not None and cfg.mesh.require_global_namespace)
    namespaces = {n["metadata"]["name"]: stored(n) for n in objects.list("Namespace")}
    slices = [stored(e) for e in objects.list("EndpointSlice")]
    out: dict[str, bytes] = {}
    for raw in objects.list("Service"):
        svc = stored(raw)
        ns = svc.meta.namespace or "default"
        if not svc.cluster_ip and not svc.headless:
            continue  # no ClusterIP yet: the agent allocates it, the next pass exports it
        if should_export(svc, namespaces.get(ns), default_global):
            cs = cluster_service(cfg.name, cfg.cluster_id, svc, slices)
            out[service_key(cfg.name, ns, svc.meta.name)] = cs.to_json()
    return out


def extra_prefixes(cfg: ClusterConfig) -> list[Prefix]:
    from fleetnet.apiserver import identities
    from fleetnet.apiserver.exporter import Prefix

    return [
        Prefix("cilium/state/services/v1", f"cilium/state/services/v1/{cfg.name}/", services_projection),
        Prefix("cilium/state/identities/v1", "cilium/state/identities/v1/id/", identities.identities_projection),
        Prefix("cilium/state/ip/v1", "cilium/state/ip/v1/default/", identities.ipcache_projection),
    ]
