"""Node, a cluster's node as Cilium shares it: addresses, pod CIDRs, health and ingress IPs.

Key: ``cilium/state/nodes/v1/<cluster>/<node>``. Source: ``pkg/node/types/node.go`` and
``pkg/node/store``.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fleetnet.model import keys
from fleetnet.model.cilium_ids import DEFAULT_MAX_CONNECTED_CLUSTERS, _check_cluster, _parse_key, cluster_id_problem
from fleetnet.model.gojson import _Decoder, _mask_bytes, _mask_prefix, _sorted_map, go_ip_string, go_json
from fleetnet.model.kube_types import EMPTY, freeze

NODE_SOURCE_CUSTOM_RESOURCE = "custom-resource"

# Go field names (json tags where Cilium has them), in struct order
_NODE_FIELDS = (
    "Name",
    "Cluster",
    "IPAddresses",
    "IPv4AllocCIDR",
    "IPv4SecondaryAllocCIDRs",
    "IPv6AllocCIDR",
    "IPv6SecondaryAllocCIDRs",
    "IPv4HealthIP",
    "IPv6HealthIP",
    "IPv4IngressIP",
    "IPv6IngressIP",
    "ClusterID",
    "Source",
    "EncryptionKey",
    "Labels",
    "Annotations",
    "NodeIdentity",
    "WireguardPubKey",
    "BootID",
)


@dataclass(frozen=True, slots=True)
class NodeAddress:
    type: str  # InternalIP, ExternalIP, CiliumInternalIP, ...
    ip: str

    def to_go(self) -> dict[str, Any]:
        return {"Type": self.type, "IP": self.ip}


def _cidr_to_go(cidr: str | None) -> dict[str, Any] | None:
    if cidr is None:
        return None
    iface = ipaddress.ip_interface(cidr)
    return {
        "IP": go_ip_string(iface.ip),
        "Mask": base64.b64encode(_mask_bytes(iface.network.prefixlen, iface.version)).decode(),
    }


@dataclass(frozen=True, slots=True)
class Node:
    """``nodeTypes.Node`` (no json tags: Go field names). CIDRs are written ``ip/len``."""

    name: str
    cluster: str
    ip_addresses: tuple[NodeAddress, ...] = ()
    ipv4_alloc_cidr: str | None = None
    ipv4_secondary_alloc_cidrs: tuple[str, ...] = ()
    ipv6_alloc_cidr: str | None = None
    ipv6_secondary_alloc_cidrs: tuple[str, ...] = ()
    ipv4_health_ip: str | None = None
    ipv6_health_ip: str | None = None
    ipv4_ingress_ip: str | None = None
    ipv6_ingress_ip: str | None = None
    cluster_id: int = 0
    source: str = NODE_SOURCE_CUSTOM_RESOURCE
    encryption_key: int = 0
    labels: Mapping[str, str] = EMPTY
    annotations: Mapping[str, str] = EMPTY
    node_identity: int = 0
    wireguard_pub_key: str = ""
    boot_id: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "ip_addresses", tuple(self.ip_addresses))
        object.__setattr__(self, "ipv4_secondary_alloc_cidrs", tuple(self.ipv4_secondary_alloc_cidrs))
        object.__setattr__(self, "ipv6_secondary_alloc_cidrs", tuple(self.ipv6_secondary_alloc_cidrs))
        object.__setattr__(self, "labels", freeze(self.labels))
        object.__setattr__(self, "annotations", freeze(self.annotations))

    @property
    def key(self) -> str:
        return keys.node_key(self.cluster, self.name)

    def node_ip(self, ipv6: bool = False) -> str | None:
        """Cilium's ``GetNodeIP``: InternalIP first, then ExternalIP, then any non-CiliumInternalIP."""
        backup: str | None = None
        for a in self.ip_addresses:
            if (":" in a.ip) != ipv6 or a.type == "CiliumInternalIP":
                continue
            if a.type == "InternalIP":
                return a.ip
            if a.type == "ExternalIP" or backup is None:
                backup = a.ip
        return backup

    def address(self, addr_type: str, ipv6: bool = False) -> str | None:
        return next((a.ip for a in self.ip_addresses if a.type == addr_type and (":" in a.ip) == ipv6), None)

    def to_go(self) -> dict[str, Any]:
        def secondary(cidrs: tuple[str, ...]) -> list[Any] | None:
            return [_cidr_to_go(c) for c in cidrs] if cidrs else None

        return {
            "Name": self.name,
            "Cluster": self.cluster,
            "IPAddresses": [a.to_go() for a in self.ip_addresses] if self.ip_addresses else None,
            "IPv4AllocCIDR": _cidr_to_go(self.ipv4_alloc_cidr),
            "IPv4SecondaryAllocCIDRs": secondary(self.ipv4_secondary_alloc_cidrs),
            "IPv6AllocCIDR": _cidr_to_go(self.ipv6_alloc_cidr),
            "IPv6SecondaryAllocCIDRs": secondary(self.ipv6_secondary_alloc_cidrs),
            "IPv4HealthIP": self.ipv4_health_ip or "",
            "IPv6HealthIP": self.ipv6_health_ip or "",
            "IPv4IngressIP": self.ipv4_ingress_ip or "",
            "IPv6IngressIP": self.ipv6_ingress_ip or "",
            "ClusterID": self.cluster_id,
            "Source": self.source,
            "EncryptionKey": self.encryption_key,
            # a nil Go map (no labels) is written as null
            "Labels": _sorted_map(self.labels) if self.labels else None,
            "Annotations": _sorted_map(self.annotations) if self.annotations else None,
            "NodeIdentity": self.node_identity,
            "WireguardPubKey": self.wireguard_pub_key,
            "BootID": self.boot_id,
        }

    def to_json(self) -> bytes:
        return go_json(self.to_go())

    @classmethod
    def from_json(
        cls,
        data: bytes | str,
        key: str,
        *,
        cluster: str | None = None,
        cluster_id: int | None = None,
        local_cluster_id: int | None = None,
        max_connected_clusters: int = DEFAULT_MAX_CONNECTED_CLUSTERS,
    ) -> Node:
        """Decode and validate: Cilium's ``Node.validate`` plus the remote validators
        (``ClusterNameValidator``, ``NameValidator``, ``ClusterIDValidator``)."""
        dec = _Decoder("Node", key)
        f = dec.struct(dec.load(data), "", _NODE_FIELDS)

        def cidr(v: Any, path: str) -> str | None:
            if v is None:
                return None
            c = dec.struct(v, path, ("IP", "Mask"))
            ip = dec.ip(c.get("IP"), path + ".IP")
            mask = dec.mask(c.get("Mask"), path + ".Mask")
            if ip is None:
                return None
            prefix = _mask_prefix(mask or b"", 6 if ":" in ip else 4)
            if prefix is None:
                dec.fail(path + ".Mask", "not a canonical mask of the address family")
            return f"{ip}/{prefix}"

        def cidrs(v: Any, path: str) -> tuple[str, ...]:
            out = (cidr(x, f"{path}[{i}]") for i, x in enumerate(dec.array(v, path)))
            return tuple(c for c in out if c is not None)

        addresses: list[NodeAddress] = []
        for i, a in enumerate(dec.array(f.get("IPAddresses"), "IPAddresses")):
            af = dec.struct(a, f"IPAddresses[{i}]", ("Type", "IP"))
            ip = dec.ip(af.get("IP"), f"IPAddresses[{i}].IP")
            addresses.append(NodeAddress(dec.string(af.get("Type"), f"IPAddresses[{i}].Type"), ip or ""))
        node = cls(
            name=dec.string(f.get("Name"), "Name"),
            cluster=dec.string(f.get("Cluster"), "Cluster"),
            ip_addresses=tuple(addresses),
            ipv4_alloc_cidr=cidr(f.get("IPv4AllocCIDR"), "IPv4AllocCIDR"),
            ipv4_secondary_alloc_cidrs=cidrs(f.get("IPv4SecondaryAllocCIDRs"), "IPv4SecondaryAllocCIDRs"),
            ipv6_alloc_cidr=cidr(f.get("IPv6AllocCIDR"), "IPv6AllocCIDR"),
            ipv6_secondary_alloc_cidrs=cidrs(f.get("IPv6SecondaryAllocCIDRs"), "IPv6SecondaryAllocCIDRs"),
            ipv4_health_ip=dec.ip(f.get("IPv4HealthIP"), "IPv4HealthIP"),
            ipv6_health_ip=dec.ip(f.get("IPv6HealthIP"), "IPv6HealthIP"),
            ipv4_ingress_ip=dec.ip(f.get("IPv4IngressIP"), "IPv4IngressIP"),
            ipv6_ingress_ip=dec.ip(f.get("IPv6IngressIP"), "IPv6IngressIP"),
            cluster_id=dec.uint(f.get("ClusterID"), "ClusterID", 32),
            source=dec.string(f.get("Source"), "Source"),
            encryption_key=dec.uint(f.get("EncryptionKey"), "EncryptionKey", 8),
            labels=dec.string_map(f.get("Labels"), "Labels"),
            annotations=dec.string_map(f.get("Annotations"), "Annotations"),
            node_identity=dec.uint(f.get("NodeIdentity"), "NodeIdentity", 32),
            wireguard_pub_key=dec.string(f.get("WireguardPubKey"), "WireguardPubKey"),
            boot_id=dec.string(f.get("BootID"), "BootID"),
        )
        if not node.cluster:
            dec.fail("Cluster", "cluster is unset")
        if not node.name:
            dec.fail("Name", "name is unset")
        if node.cluster_id != local_cluster_id:
            problem = cluster_id_problem(node.cluster_id, max_connected_clusters)
            if problem:
                dec.fail("ClusterID", problem)
        parsed = _parse_key(dec, key, keys.KeyKind.NODE)
        if node.name != parsed.name:
            dec.fail("Name", f"name does not match key: got {node.name}, expected {parsed.name}")
        _check_cluster(dec, node.cluster, parsed.cluster, cluster)
        if cluster_id is not None and node.cluster_id != cluster_id:
            dec.fail("ClusterID", f"unexpected cluster ID: got {node.cluster_id}, expected {cluster_id}")
        return node
