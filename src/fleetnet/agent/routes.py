"""Native routing: the routes every node namespace of a cluster needs.

Cilium's auto-direct-node-routes: for every known node — the other nodes of this cluster, and
while we are in a network the nodes of every remote cluster — a route to its pod CIDR via its
underlay address. No tunnel and no NAT: the source pod IP arrives unchanged. The desired set is
computed purely; the reconciler changes only what differs and owns every gateway route in the
node namespaces (so routes to a cluster that left are removed, even after an agent restart).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fleetnet.local import netlink
from fleetnet.model.cluster import NodeConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NodeRoute:
    node: str
    ip: str
    pod_cidr: str


def node_route_from_json(data: bytes) -> NodeRoute | None:
    """The InternalIP and IPv4AllocCIDR of a Cilium ``Node`` value; None when it has no route to give."""
    d = json.loads(data)
    ip = next(
        (a["IP"] for a in d.get("IPAddresses") or [] if a.get("Type") == "InternalIP" and ":" not in a["IP"]), None
    )
    alloc = d.get("IPv4AllocCIDR")
    if not ip or not alloc:
        return None
    mask = base64.b64decode(alloc["Mask"])
    prefix = sum(bin(b).count("1") for b in mask)
    net = ipaddress.IPv4Network(f"{alloc['IP']}/{prefix}", strict=False)
    return NodeRoute(node=str(d.get("Name")), ip=ip, pod_cidr=str(net))


def desired_routes(local: Iterable[NodeConfig], remote: Iterable[NodeRoute]) -> dict[str, dict[str, str]]:
    """For each local node namespace: pod CIDR → gateway (a node's underlay address)."""
    local = list(local)
    others = [NodeRoute(n.name, n.ip, n.pod_cidr) for n in local] + list(remote)
    out: dict[str, dict[str, str]] = {}
    for n in local:
        out[n.netns] = {r.pod_cidr: r.ip for r in others if r.ip != n.ip}
    return out


class RouteReconciler:
    def __init__(self) -> None:
        self.installed: dict[str, dict[str, str]] | None = None

    def reconcile(self, desired: Mapping[str, Mapping[str, str]]) -> int:
        """Make the gateway routes of each namespace equal ``desired``; returns the number of changes."""
        changes = 0
        for ns, routes in desired.items():
            if self.installed is not None and self.installed.get(ns) == routes:
                continue
            current = {r.dst: r.via for r in netlink.list_routes(ns) if r.via}
            for dst, via in routes.items():
                if current.get(dst) != via:
                    netlink.replace_route(ns, dst, via=via)
                    changes += 1
            for dst in set(current) - set(routes):
                netlink.delete_route(ns, dst)
                changes += 1
        self.installed = {ns: dict(r) for ns, r in desired.items()}
        return changes
