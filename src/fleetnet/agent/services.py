"""Services of a local cluster: ClusterIPs, EndpointSlices, names in pods, and the load-balancer
state merged with the services of remote clusters.

The controllers here do what kube-apiserver (ClusterIP allocation), the EndpointSlice controller and
a DNS server do on a real cluster; the merge is Cilium's (``plan/services.py``). The result — every
frontend with its backends — is handed to the datapath reconciler, which writes the BPF maps.
Remote ClusterServices arrive through the ClusterMesh watch; those of a remote that stays
unreachable longer than the network's service cache TTL are withdrawn (and come back on reconnect).
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from fleetnet.kube.objstore import key_of
from fleetnet.kube.typed import stored
from fleetnet.kvstore.client import KeyValue
from fleetnet.local import topology
from fleetnet.model.cilium import ClusterService
from fleetnet.model.kube import EndpointSlice, Pod, Service
from fleetnet.plan.endpoints import endpoint_slices
from fleetnet.plan.services import BackendChoice, local_backends_from_slices, select_backends

if TYPE_CHECKING:
    from fleetnet.agent.agent import Agent

log = logging.getLogger(__name__)

CLUSTER_DOMAIN = "cluster.local"


def allocate_cluster_ip(service_cidr: str, used: Iterable[str]) -> str:
    taken = set(used)
    net = ipaddress.IPv4Network(service_cidr)
    for i, host in enumerate(net.hosts()):
        if i == 0:
            continue  # .1 is kept for the cluster's "kubernetes" service, as kube-apiserver does
        if str(host) not in taken:
            return str(host)
    raise RuntimeError(f"service CIDR {service_cidr} is full")


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

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.remote: dict[str, dict[tuple[str, str], ClusterService]] = {}  # cluster → (ns, name) → service
        self.choices: list[BackendChoice] = []
        self._hosts: dict[str, dict[str, list[str]]] = {}
        agent.mesh.handlers["services"] = (self._remote_upsert, self._remote_delete)

    # ---------------------------------------------------------------- remote ClusterServices
    def _remote_upsert(self, cluster: str, kv: KeyValue) -> None:
        rc = self.agent.mesh.remotes.get(cluster)
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
        mesh = self.agent.mesh
        cfg = self.agent.cfg
        if not self.agent.mesh_enabled:
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
        objs = self.agent.objects
        cfg = self.agent.cfg
        raw_services = objs.list("Service")
        used = {s["spec"].get("clusterIP") for s in raw_services if s.get("spec")}
        for s in raw_services:
            spec = s.get("spec") or {}
            if spec.get("clusterIP") in (None, ""):
                try:
                    ip = allocate_cluster_ip(cfg.service_cidr, (u for u in used if u))
                except RuntimeError:
                    log.warning(
                        "service %s/%s has no ClusterIP: %s is full",
                        s["metadata"].get("namespace"),
                        s["metadata"]["name"],
                        cfg.service_cidr,
                    )
                    continue
                used.add(ip)
                new = dict(s)
                new["spec"] = {**spec, "clusterIP": ip, "clusterIPs": [ip]}
                objs.apply([new])
        services: list[Service] = [stored(s) for s in objs.list("Service")]
        pods: list[Pod] = [stored(p) for p in objs.list("Pod")]
        self._endpoint_slices(services, pods)
        slices: list[EndpointSlice] = [stored(e) for e in objs.list("EndpointSlice")]
        self._names(services)
        remote = self.live_remote()
        choices: list[BackendChoice] = []
        for svc in services:
            ns, name = svc.meta.namespace or "default", svc.meta.name
            rs = {cid: cs for cid, lst in remote.items() for cs in lst if (cs.namespace, cs.name) == (ns, name)}
            choices.extend(
                select_backends(
                    svc, local_backends_from_slices(svc, slices), rs, cluster=cfg.name, cluster_id=cfg.cluster_id
                )
            )
        self.choices = choices
        dp = self.agent.datapath
        if dp is not None:
            dp.sync_services(choices)

    def _endpoint_slices(self, services: list[Service], pods: list[Pod]) -> None:
        objs = self.agent.objects
        desired: dict[tuple[str, str, str], dict[str, Any]] = {}
        for svc in services:
            for sl in endpoint_slices(svc, pods):
                d = sl.to_dict()
                desired[key_of(d)] = d
        current = {key_of(e): e for e in objs.list("EndpointSlice")}
        changed = [d for k, d in desired.items() if current.get(k) != d]
        if changed:
            objs.apply(changed)
        stale = [k for k in current if k not in desired]
        if stale:
            objs.delete(stale)

    def _names(self, services: list[Service]) -> None:
        cfg = self.agent.cfg
        for p in self.agent.objects.list("Pod"):
            netns = ((p.get("status") or {}).get("fleetnet") or {}).get("netns")
            if not netns:
                continue
            entries = hosts_entries(services, p["metadata"].get("namespace") or "default")
            if self._hosts.get(netns) != entries:
                topology.write_hosts(netns, entries)
                self._hosts[netns] = entries
        del cfg

    def pod_network_ready(self, spec: topology.PodSpec) -> None:
        """Before the container starts: its /etc/hosts must exist to be mounted into the pod."""
        services = [stored(s) for s in self.agent.objects.list("Service")]
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
