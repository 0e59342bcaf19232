"""The agent's side of the eBPF datapath: load once, attach to every pod, keep the maps in step.

Maps are pinned per cluster under the fleet's bpffs, so a restarted agent reuses them as they are
(no flush and refill: established connections and service traffic keep flowing) and only writes
differences. Endpoint ids are the low 16 bits of the pod IP — unique inside a cluster's pod CIDR
(a /16 by default) and stable across restarts without any stored allocation.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fleetnet.agent.sandboxes import Sandboxes
from fleetnet.datapath.loader import ClusterDatapath, is_bpffs, mount_bpffs
from fleetnet.datapath.maps import Backend, EndpointInfo, Frontend
from fleetnet.local import netlink, topology
from fleetnet.model.cluster import ClusterConfig
from fleetnet.plan.services import BackendChoice

log = logging.getLogger(__name__)

PLACEHOLDER_IDENTITY = 3  # "unmanaged" until the identity feature gives the endpoint its own


def endpoint_id(ip: str) -> int:
    return int(ipaddress.IPv4Address(ip)) & 0xFFFF or 1


def desired_lb(choices: Iterable[BackendChoice]) -> dict[Frontend, list[Backend]]:
    out: dict[Frontend, list[Backend]] = {}
    for c in choices:
        if c.protocol not in ("TCP", "UDP") or ":" in c.frontend_ip:
            continue
        fe = Frontend(c.frontend_ip, c.port, c.protocol)  # type: ignore[arg-type]
        out[fe] = [Backend(b.ip, b.port, b.cluster_id) for b in c.backends if ":" not in b.ip]
    return out


class Datapath:
    def __init__(self, cfg: ClusterConfig, sandboxes: Sandboxes) -> None:
        self.sandboxes = sandboxes
        bpffs = Path(cfg.bpffs)
        bpffs.mkdir(parents=True, exist_ok=True)
        if not is_bpffs(bpffs):
            mount_bpffs(bpffs)
        self.dp = ClusterDatapath(bpffs, cfg.name)
        fresh = self.dp.load()
        log.info("datapath of %s %s", cfg.name, "loaded" if fresh else "restored from pins")
        self._lb: dict[Frontend, list[Backend]] | None = None
        self.identities: dict[str, int] = {}  # pod IP → identity, set by the policy feature

    def endpoint_info(self, ip: str) -> EndpointInfo:
        return EndpointInfo(endpoint_id(ip), self.identities.get(ip, PLACEHOLDER_IDENTITY), ip)

    def pod_network_ready(self, spec: topology.PodSpec) -> None:
        self.dp.attach(spec.node.netns, spec.host_ifname, self.endpoint_info(spec.ip))

    def reconcile(self) -> None:
        # after a restart, or when a pod's sandbox was made before the datapath: attach is idempotent
        attached = {(ns, ifname) for ns, ifname in self.dp.attachments()}
        for sb in self.sandboxes.all():
            if (sb.node_netns, sb.ifname) not in attached and netlink.netns_exists(sb.node_netns):
                try:
                    self.dp.attach(sb.node_netns, sb.ifname, self.endpoint_info(sb.ip))
                except Exception as e:
                    log.warning("attaching the datapath to pod %s/%s failed: %s", sb.namespace, sb.name, e)
        self.dp.prune()

    def sync_services(self, choices: Iterable[BackendChoice]) -> None:
        desired = desired_lb(choices)
        if desired == self._lb:
            return
        stats = self.dp.services.sync(desired)
        self._lb = desired
        log.info("load-balancer maps synced: %s", stats)

    def lb_entries(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        rev = self.dp.services.rev_nat_ids()
        for fe, backends in sorted(self.dp.services.list_services().items()):
            for slot, b in enumerate(backends, start=1):
                out.append(
                    {
                        "frontend": str(fe),
                        "backend": f"{b.ip}:{b.port} ({rev.get(fe, 0)}) ({slot})",
                        "clusterID": b.cluster_id,
                    }
                )
            if not backends:
                out.append({"frontend": str(fe), "backend": "0.0.0.0:0 (0) (0) [no backends]", "clusterID": 0})
        return out

    def counters(self) -> Mapping[str, int]:
        return self.dp.metrics.read()

    def status(self) -> dict[str, Any]:
        counters = dict(self.counters())
        drops = sum(v for k, v in counters.items() if k.startswith("DROP"))
        return {
            "summary": f"eBPF ({self.dp.attach_mode}), {len(self._lb or {})} services, "
            f"{counters.get('forwarded', 0)} packets forwarded, {drops} dropped",
            "counters": counters,
        }

    def api_get(self, path: str, _query: dict[str, str]) -> Any:
        if path == "bpf/lb":
            return self.lb_entries()
        if path == "bpf/ct":
            return [str(e) for e in self.dp.conntrack.entries()]
        if path == "bpf/ipcache":
            return {k: {"identity": v.identity, "clusterID": v.cluster_id} for k, v in self.dp.ipcache.items().items()}
        return None
