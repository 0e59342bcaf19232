"""The agent's CiliumNode objects: one per node of the cluster, as cilium-agent writes its own.

Each carries the node's addresses (InternalIP on the flat network, CiliumInternalIP the gateway of
its pod CIDR) and its pod CIDR (``spec.ipam.podCIDRs``, Kubernetes IPAM mode). The
clustermesh-apiserver exports them as the cluster's nodes, and the hub reads them to learn pod CIDRs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from fleetnet.agent.objects import AgentObjects
from fleetnet.model.cluster import ClusterConfig, NodeConfig


def cilium_node(cfg: ClusterConfig, n: NodeConfig) -> dict[str, Any]:
    gateway = str(ipaddress.IPv4Network(n.pod_cidr).network_address + 1)
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNode",
        "metadata": {
            "name": n.name,
            "labels": {"kubernetes.io/hostname": n.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"},
        },
        "spec": {
            "addresses": [{"type": "InternalIP", "ip": n.ip}, {"type": "CiliumInternalIP", "ip": gateway}],
            "ipam": {"podCIDRs": [n.pod_cidr]},
            "health": {},
            "encryption": {},
        },
    }


class CiliumNodes:
    def __init__(self, objects: AgentObjects, config: Callable[[], ClusterConfig]) -> None:
        self.objects = objects
        self.config = config

    def reconcile(self) -> None:
        cfg = self.config()
        self.objects.apply([cilium_node(cfg, n) for n in cfg.nodes])

    def status(self) -> dict[str, Any]:
        n = len(self.objects.list("CiliumNode"))
        return {"summary": f"{n} CiliumNodes", "nodes": n}
