"""Services of a local cluster: names in pods, and the load-balancer state merged with the
services of remote clusters.

ClusterIPs come from the API server and EndpointSlices from the controller manager, as on a real
cluster; this feature does what a DNS server does (names in pods) and what cilium-agent's service
cache does, with Cilium's merge (``plan/services.py``). The result — every frontend with its
backends — is handed to the datapath reconciler, which writes the BPF maps.
Remote ClusterServices arrive through the ClusterMesh watch; those of a remote that stays
unreachable longer than the network's service cache TTL are withdrawn (and come back on reconnect).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from fleetnet.agent.clustermesh import ClusterMesh
from fleetnet.agent.datapath import Datapath
from fleetnet.agent.objects import AgentObjects
from fleetnet.agent.sandboxes import Sandboxes
from fleetnet.kube.typed import stored
from fleetnet.kvstore.client import KeyValue
from fleetnet.local import topology
from fleetnet.model.cilium import ClusterService
from fleetnet.model.cluster import ClusterConfig
from fleetnet.model.kube import EndpointSlice, Service
from fleetnet.plan.services import BackendChoice, local_backends_from_slices, select_backends

log = logging.getLogger(__name__)

CLUSTER_DOMAIN = "cluster.local"


def hosts_entries(services: Iterable[Service], pod_namespace: str) -> dict[str, list[str]]:
    """/etc/hosts of a pod: <svc>.<ns>.svc.cluster.local and <svc>.<ns> for every service, and the
    bare <svc> for services of the pod's own namespace (the search path of a pod's resolv.conf)."""
    out: dict[str, list[str]] = {}
    for s in services:
        if not s.cluster_ip or s.headless:
            continue
        ns = s.meta.namespace or "default"
        names = [f"{s.meta.name}.{ns}.svc.{CLUSTER_DOMAIN}", f"{s.meta.name}.{ns}.svc", f"{s.meta.name}.{ns}"]
        if ns == pod_namespace:
            names.append(s.meta.name)
        out.setdefault(s.cluster_ip, []).extend(names)
    return out


class Services:
    uses_remote_state = True  # remote backends: see Agent.remotes_synced

    def __init__(
        self,
        objects: AgentObjects,
        mesh: ClusterMesh,
        config: Callable[[], ClusterConfig],
        datapath: Datapath,
        sandboxes: Sandboxes,
    ) -> None:
        self.objects = objects
        self.mesh = mesh
        self.config = config
        self.datapath = datapath
        self.sandboxes = sandboxes
        self.remote: dict[str, dict[tuple[str, str], ClusterService]] = {}  # cluster → (ns, name) → service
        self.choices: list[BackendChoice] = []
        self._hosts: dict[str, dict[str, list[str]]] = {}
        mesh.handlers["services"] = (self._remote_upsert, self._remote_delete)

    # ---------------------------------------------------------------- remote ClusterServices
    def _remote_upsert(self, cluster: str, kv: KeyValue) -> None:
        rc = self.mesh.remotes.get(cluster)
        cid = rc.cluster_id if rc is not None else None
        try:
            cs = ClusterService.from_json(kv.value, kv.key, cluster=cluster, cluster_id=cid)
        except Exception as e:  # Cilium's validators: log and skip
            log.warning("skipping invalid service %s from %s: %s", kv.key, cluster, e)
            return
        self.remote.setdefault(cluster, {})[(cs.namespace, cs.name)] = cs

    def _remote_delete(self, cluster: str, key: str) -> None:
        parts = key.rstrip("/").split("/")
        if len(parts) >= 2:
            self.remote.get(cluster, {}).pop((parts[-2], parts[-1]), None)
            if cluster in self.remote and not self.remote[cluster]:
                del self.remote[cluster]

    def live_remote(self) -> dict[int, list[ClusterService]]:
        """Remote services by cluster id, without those of remotes past the cache TTL."""
        mesh = self.mesh
        cfg = self.config()
        if not cfg.mesh_enabled:
            return {}
        ttl = cfg.mesh.service_cache_ttl_seconds if cfg.mesh is not None else 30.0
        now = time.monotonic()
        out: dict[int, list[ClusterService]] = {}
        for cluster, svcs in self.remote.items():
            rc = mesh.remotes.get(cluster)
            if rc is None or rc.cluster_id is None:
                continue
            if rc.disconnected_since is not None and now - rc.disconnected_since > ttl:
                continue  # unreachable for longer than the TTL: withdraw its backends
            out[rc.cluster_id] = list(svcs.values())
        return out

    # ---------------------------------------------------------------- controllers
    def reconcile(self) -> None:
        cfg = self.config()
        services: list[Service] = [stored(s) for s in self.objects.list("Service")]
        slices: list[EndpointSlice] = [stored(e) for e in self.objects.list("EndpointSlice")]
        self._names(services)
        remote = self.live_remote()
        choices: list[BackendChoice] = []
        for svc in services:
            if not svc.cluster_ip:
                continue
            ns, name = svc.meta.namespace or "default", svc.meta.name
            rs = {cid: cs for cid, lst in remote.items() for cs in lst if (cs.namespace, cs.name) == (ns, name)}
            choices.extend(
                select_backends(
                    svc, local_backends_from_slices(svc, slices), rs, cluster=cfg.name, cluster_id=cfg.cluster_id
                )
            )
        self.choices = choices
        self.datapath.sync_services(choices)

    def _names(self, services: list[Service]) -> None:
        for sb in self.sandboxes.all():
            entries = hosts_entries(services, sb.namespace)
            if self._hosts.get(sb.netns) != entries:
                topology.write_hosts(sb.netns, entries)
                self._hosts[sb.netns] = entries

    def pod_network_ready(self, spec: topology.PodSpec) -> None:
        """Before the container starts: its /etc/hosts must exist to be mounted into the pod."""
        services = [stored(s) for s in self.objects.list("Service")]
        entries = hosts_entries(services, spec.namespace)
        topology.write_hosts(spec.netns, entries)
        self._hosts[spec.netns] = entries

    # ---------------------------------------------------------------- status and API
    def status(self) -> dict[str, Any]:
        frontends = len(self.choices)
        remote = sum(1 for c in self.choices for b in c.backends if not b.local)
        return {"summary": f"{frontends} frontends, {remote} remote backends", "frontends": frontends}

    def service_list(self) -> list[dict[str, Any]]:
        return [
            {
                "id": i + 1,
                "frontend": c.frontend,
                "namespace": c.namespace,
                "name": c.name,
                "portName": c.port_name,
                "global": c.global_service,
                "affinity": str(c.affinity),
                "backends": [
                    {
                        "address": f"{b.ip}:{b.port}/{b.protocol}",
                        "cluster": b.cluster,
                        "clusterID": b.cluster_id,
                        "state": str(b.state),
                        "preferred": b.preferred,
                        "local": b.local,
                    }
                    for b in c.backends
                ],
            }
            for i, c in enumerate(self.choices)
        ]

    def api_get(self, path: str, _query: dict[str, str]) -> Any:
        if path == "service":
            return self.service_list()
        return None
