"""Cilium's ClusterMesh kvstore values, byte for byte: what one cluster writes and others read.

A fleetnet clustermesh-apiserver must be readable by a real Cilium agent and the other way round,
so these types encode exactly as Go's ``encoding/json`` encodes Cilium's structs (Go field names
where the struct has no tags, struct field order, sorted map keys, Go's HTML escaping) and decode
as ``json.Unmarshal`` does (field names matched case-insensitively, unknown fields ignored, null
leaving the zero value, a wrong JSON type refused), followed by the same validation the Cilium
store applies when it reads a remote key (reference cilium-clustermesh.md §2.3, §3.3). A value
that Cilium would refuse raises ``InvalidInput`` whose sentence is the reason.

Sources: ``pkg/clustermesh/store/store.go`` (ClusterService), ``pkg/identity/identity.go``
(IPIdentityPair), ``pkg/node/types/node.go`` and ``pkg/node/store`` (Node),
``pkg/clustermesh/types/types.go`` (CiliumClusterConfig, cluster ids), ``pkg/labels`` (the
identity's label string).
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fleetnet.errors import InvalidInput
from fleetnet.model import keys
from fleetnet.model.gojson import (
    _Decoder,
    _mask_bytes,
    _mask_prefix,
    _parse_ip,
    _sorted_map,
    go_ip_string,
    go_json,
)
from fleetnet.model.kube_types import EMPTY, FrozenMap, freeze

CLUSTER_ID_MIN = 0
MAX_CONNECTED_CLUSTERS = (255, 511)
DEFAULT_MAX_CONNECTED_CLUSTERS = 255
MINIMAL_NUMERIC_IDENTITY = 256
RESERVED_IDENTITY_HOST = 1
RESERVED_IDENTITY_REMOTE_NODE = 6
LABEL_SOURCE_K8S = "k8s"
LABEL_SOURCE_UNSPEC = "unspec"
POLICY_LABEL_CLUSTER = "io.cilium.k8s.policy.cluster"
NODE_SOURCE_CUSTOM_RESOURCE = "custom-resource"
ENDPOINT_SLICES_EXPORT_MODES = ("", "services-and-endpointslices", "endpointslices-only")

# Go field names (json tags where Cilium has them), in struct order
_SERVICE_FIELDS = (
    "cluster",
    "namespace",
    "name",
    "frontends",
    "backends",
    "hostnames",
    "zones",
    "labels",
    "selector",
    "includeExternal",
    "shared",
    "clusterID",
)
_IP_PAIR_FIELDS = (
    "IP",
    "Mask",
    "HostIP",
    "ID",
    "Key",
    "Metadata",
    "K8sNamespace",
    "K8sPodName",
    "K8sPodUID",
    "K8sServiceAccount",
    "NamedPorts",
)
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
_CAPABILITY_FIELDS = (
    "syncedCanaries",
    "cached",
    "maxConnectedClusters",
    "serviceExportsEnabled",
    "endpointSlicesExportMode",
)

# ---------------------------------------------------------------------------------------------
# cluster ids and identity ranges


def _check_max_connected(max_connected_clusters: int) -> None:
    if max_connected_clusters not in MAX_CONNECTED_CLUSTERS:
        raise InvalidInput(
            f"max-connected-clusters {max_connected_clusters} is not supported; supported values are [255, 511]."
        )


def cluster_id_problem(cluster_id: int, max_connected_clusters: int = DEFAULT_MAX_CONNECTED_CLUSTERS) -> str | None:
    """Cilium's ``ValidateClusterID``: why ``cluster_id`` cannot name a cluster of the mesh, or None."""
    _check_max_connected(max_connected_clusters)
    if cluster_id == CLUSTER_ID_MIN:
        return f"ClusterID {CLUSTER_ID_MIN} is reserved"
    if cluster_id > max_connected_clusters or cluster_id < 0:
        return f"ClusterID > {max_connected_clusters} is not supported"
    return None


def identity_bounds(cluster_id: int, max_connected_clusters: int = DEFAULT_MAX_CONNECTED_CLUSTERS) -> tuple[int, int]:
    """The numeric identities cluster ``cluster_id`` may allocate (inclusive bounds)."""
    _check_max_connected(max_connected_clusters)
    if cluster_id == 0:
        return MINIMAL_NUMERIC_IDENTITY, 65535
    shift = 24 - (max_connected_clusters + 1).bit_length() + 1
    return cluster_id << shift, ((cluster_id + 1) << shift) - 1


# ---------------------------------------------------------------------------------------------
# ClusterService: cilium/state/services/v1/<cluster>/<namespace>/<name>


@dataclass(frozen=True, slots=True)
class L4Addr:
    """``loadbalancer.L4Addr``: ``{"Protocol": "TCP", "Port": 80}``."""

    protocol: str
    port: int

    def to_go(self) -> dict[str, Any]:
        return {"Protocol": self.protocol, "Port": self.port}


@dataclass(frozen=True, slots=True)
class BackendZone:
    zone: str
    for_zones: tuple[str, ...] = ()

    def to_go(self) -> dict[str, Any]:
        return {"zone": self.zone, "forZones": [{"name": z} for z in self.for_zones]}


def _freeze_ports(m: Mapping[str, Mapping[str, L4Addr]]) -> FrozenMap[str, FrozenMap[str, L4Addr]]:
    return FrozenMap({ip: freeze(ports) for ip, ports in m.items()})


@dataclass(frozen=True, slots=True)
class ClusterService:
    """A global service as its cluster exports it: frontends and backends keyed by IP, each with
    a ``PortConfiguration`` (port name → L4Addr). Backend ports are target ports."""

    cluster: str
    namespace: str
    name: str
    frontends: Mapping[str, Mapping[str, L4Addr]] = EMPTY
    backends: Mapping[str, Mapping[str, L4Addr]] = EMPTY
    hostnames: Mapping[str, str] = EMPTY
    zones: Mapping[str, BackendZone] = EMPTY
    labels: Mapping[str, str] = EMPTY
    selector: Mapping[str, str] = EMPTY
    include_external: bool = False
    shared: bool = False
    cluster_id: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "frontends", _freeze_ports(self.frontends))
        object.__setattr__(self, "backends", _freeze_ports(self.backends))
        for name in ("hostnames", "zones", "labels", "selector"):
            object.__setattr__(self, name, freeze(getattr(self, name)))

    @property
    def key(self) -> str:
        return keys.service_key(self.cluster, self.namespace, self.name)

    def to_go(self) -> dict[str, Any]:
        ports = lambda pc: _sorted_map(pc, L4Addr.to_go)  # noqa: E731
        out: dict[str, Any] = {
            "cluster": self.cluster,
            "namespace": self.namespace,
            "name": self.name,
            "frontends": _sorted_map(self.frontends, ports),
            "backends": _sorted_map(self.backends, ports),
        }
        if self.hostnames:
            out["hostnames"] = _sorted_map(self.hostnames)
        if self.zones:
            out["zones"] = _sorted_map(self.zones, BackendZone.to_go)
        out.update(
            labels=_sorted_map(self.labels),
            selector=_sorted_map(self.selector),
            includeExternal=self.include_external,
            shared=self.shared,
            clusterID=self.cluster_id,
        )
        return out

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
    ) -> ClusterService:
        """Decode and validate the value of ``key`` (a full kvstore key, state or cache form).

        ``cluster`` and ``cluster_id`` are the remote this key was read from (Cilium's
        ``ClusterNameValidator`` and ``ClusterIDValidator``); the cluster id is not range-checked
        when it equals ``local_cluster_id``, as in Cilium (which compares with its own, always
        non-zero, id; None here means "check always").
        """
        dec = _Decoder("ClusterService", key)
        top = dec.struct(dec.load(data), "", _SERVICE_FIELDS)

        def port_config(v: Any, path: str) -> dict[str, L4Addr]:
            out: dict[str, L4Addr] = {}
            for pname, l4 in dec.mapping(v, path).items():
                if l4 is None:
                    dec.fail(f"{path}[{pname!r}]", "the port is null")
                f = dec.struct(l4, f"{path}[{pname!r}]", ("Protocol", "Port"))
                out[pname] = L4Addr(
                    dec.string(f.get("Protocol"), f"{path}[{pname!r}].Protocol"),
                    dec.uint(f.get("Port"), f"{path}[{pname!r}].Port", 16),
                )
            return out

        def addr_map(name: str) -> dict[str, dict[str, L4Addr]]:
            m = dec.mapping(top.get(name), name)
            for address in m:
                parsed = _parse_ip(address)
                if parsed is None:
                    zoned = "%" in address and _parse_ip(address.split("%", 1)[0]) is not None
                    reason = "unsupported IPv6 zone in address" if zoned else "invalid IP address"
                    dec.fail(name, f"{reason} {address!r}")
            return {a: port_config(v, f"{name}[{a!r}]") for a, v in m.items()}

        zones: dict[str, BackendZone] = {}
        for ip, z in dec.mapping(top.get("zones"), "zones").items():
            zf = dec.struct(z, f"zones[{ip!r}]", ("zone", "forZones"))
            for_zones = tuple(
                dec.string(dec.struct(fz, f"zones[{ip!r}].forZones", ("name",)).get("name"), "forZones.name")
                for fz in dec.array(zf.get("forZones"), f"zones[{ip!r}].forZones")
            )
            zones[ip] = BackendZone(dec.string(zf.get("zone"), f"zones[{ip!r}].zone"), for_zones)

        svc_cluster = dec.string(top.get("cluster"), "cluster")
        namespace = dec.string(top.get("namespace"), "namespace")
        name = dec.string(top.get("name"), "name")
        svc_cluster_id = dec.uint(top.get("clusterID"), "clusterID", 32)
        # ClusterService.validate()
        for what, value in (("cluster", svc_cluster), ("namespace", namespace), ("name", name)):
            if not value:
                dec.fail("", f"{what} is unset")
        if svc_cluster_id != local_cluster_id:
            problem = cluster_id_problem(svc_cluster_id, max_connected_clusters)
            if problem:
                dec.fail("clusterID", problem)
        svc = cls(
            cluster=svc_cluster,
            namespace=namespace,
            name=name,
            frontends=addr_map("frontends"),
            backends=addr_map("backends"),
            hostnames=dec.string_map(top.get("hostnames"), "hostnames"),
            zones=zones,
            labels=dec.string_map(top.get("labels"), "labels"),
            selector=dec.string_map(top.get("selector"), "selector"),
            include_external=dec.boolean(top.get("includeExternal"), "includeExternal"),
            shared=dec.boolean(top.get("shared"), "shared"),
            cluster_id=svc_cluster_id,
        )
        parsed = _parse_key(dec, key, keys.KeyKind.SERVICE)
        if (parsed.namespace, parsed.name) != (namespace, name):
            dec.fail(
                "",
                f"namespaced name does not match key: got {namespace}/{name}, expected "
                f"{parsed.namespace}/{parsed.name}",
            )
        _check_cluster(dec, svc_cluster, parsed.cluster, cluster)
        if cluster_id is not None and svc_cluster_id != cluster_id:
            dec.fail("clusterID", f"unexpected cluster ID: got {svc_cluster_id}, expected {cluster_id}")
        return svc


def _parse_key(dec: _Decoder, key: str, kind: keys.KeyKind) -> keys.ParsedKey:
    try:
        parsed = keys.parse_key(key)
    except InvalidInput:
        dec.fail("", "the key is not a ClusterMesh key")
    if parsed.kind != kind:
        dec.fail("", f"the key is a {parsed.kind} key, not a {kind} key")
    return parsed


def _check_cluster(dec: _Decoder, value_cluster: str, key_cluster: str | None, expected: str | None) -> None:
    if expected is not None and value_cluster != expected:
        dec.fail("", f"unexpected cluster name: got {value_cluster}, expected {expected}")
    if key_cluster is not None and value_cluster != key_cluster:
        dec.fail("", f"unexpected cluster name: got {value_cluster}, expected {key_cluster} (from the key)")


# ---------------------------------------------------------------------------------------------
# IPIdentityPair: cilium/state/ip/v1/default/<ip>


@dataclass(frozen=True, slots=True)
class NamedPort:
    name: str
    port: int
    protocol: str

    def to_go(self) -> dict[str, Any]:
        return {"Name": self.name, "Port": self.port, "Protocol": self.protocol}


@dataclass(frozen=True, slots=True)
class IPIdentityPair:
    """An ipcache entry: which security identity an IP (or CIDR, with ``mask``) has and on which node
    (``host_ip``, the tunnel endpoint) it lives. Go fields: IP, Mask, HostIP, ID, Key, Metadata,
    K8sNamespace, K8sPodName, K8sPodUID, K8sServiceAccount, NamedPorts."""

    ip: str
    identity: int
    host_ip: str | None = None
    mask: int | None = None  # prefix length of a CIDR entry; None for a host entry
    encryption_key: int = 0
    metadata: str = ""
    k8s_namespace: str = ""
    k8s_pod_name: str = ""
    k8s_pod_uid: str = ""
    k8s_service_account: str = ""
    named_ports: tuple[NamedPort, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "named_ports", tuple(self.named_ports))

    @property
    def prefix_string(self) -> str:
        """Cilium's ``PrefixString``: the IP, or ``ip/len`` for a CIDR entry; also the key suffix."""
        return self.ip if self.mask is None else f"{self.ip}/{self.mask}"

    @property
    def key(self) -> str:
        return keys.ip_key(self.prefix_string)

    @property
    def peer_identity(self) -> int:
        """The identity to program for this entry when read from a remote: ``host`` becomes
        ``remote-node`` (``pkg/ipcache/kvstore.go``)."""
        return RESERVED_IDENTITY_REMOTE_NODE if self.identity == RESERVED_IDENTITY_HOST else self.identity

    def to_go(self) -> dict[str, Any]:
        mask = None
        if self.mask is not None:
            addr = _parse_ip(self.ip)
            version = addr.version if addr else 4
            mask = base64.b64encode(_mask_bytes(self.mask, version)).decode()
        out: dict[str, Any] = {
            "IP": self.ip,
            "Mask": mask,
            "HostIP": self.host_ip or "",
            "ID": self.identity,
            "Key": self.encryption_key,
            "Metadata": self.metadata,
        }
        for name, value in (
            ("K8sNamespace", self.k8s_namespace),
            ("K8sPodName", self.k8s_pod_name),
            ("K8sPodUID", self.k8s_pod_uid),
            ("K8sServiceAccount", self.k8s_service_account),
        ):
            if value:
                out[name] = value
        if self.named_ports:
            out["NamedPorts"] = [p.to_go() for p in self.named_ports]
        return out

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
        max_connected_clusters: int = DEFAULT_MAX_CONNECTED_CLUSTERS,
    ) -> IPIdentityPair:
        """Decode and validate; the key's suffix must equal the entry's prefix string. With
        ``cluster_id`` the identity must be reserved (< 256) or in that cluster's range."""
        dec = _Decoder("ipcache entry", key)
        f = dec.struct(dec.load(data), "", _IP_PAIR_FIELDS)
        ip = dec.ip(f.get("IP"), "IP")
        mask = dec.mask(f.get("Mask"), "Mask")
        prefix: int | None = None
        if mask is not None and ip is not None:
            prefix = _mask_prefix(mask, 6 if ":" in ip else 4)
            if prefix is None:
                dec.fail("Mask", "not a canonical mask of the address family")
        named_ports = tuple(
            NamedPort(
                dec.string(p.get("Name"), f"NamedPorts[{i}].Name"),
                dec.uint(p.get("Port"), f"NamedPorts[{i}].Port", 16),
                dec.string(p.get("Protocol"), f"NamedPorts[{i}].Protocol"),
            )
            for i, p in enumerate(
                dec.struct(v, f"NamedPorts[{i}]", ("Name", "Port", "Protocol"))
                for i, v in enumerate(dec.array(f.get("NamedPorts"), "NamedPorts"))
            )
        )
        pair = cls(
            ip=ip or "",
            identity=dec.uint(f.get("ID"), "ID", 32),
            host_ip=dec.ip(f.get("HostIP"), "HostIP"),
            mask=prefix,
            encryption_key=dec.uint(f.get("Key"), "Key", 8),
            metadata=dec.string(f.get("Metadata"), "Metadata"),
            k8s_namespace=dec.string(f.get("K8sNamespace"), "K8sNamespace"),
            k8s_pod_name=dec.string(f.get("K8sPodName"), "K8sPodName"),
            k8s_pod_uid=dec.string(f.get("K8sPodUID"), "K8sPodUID"),
            k8s_service_account=dec.string(f.get("K8sServiceAccount"), "K8sServiceAccount"),
            named_ports=named_ports,
        )
        parsed = _parse_key(dec, key, keys.KeyKind.IP)
        got = pair.prefix_string if ip is not None else "<nil>"
        if got != parsed.ip:
            dec.fail("IP", f"IP address does not match key: expected {parsed.ip}, got {got}")
        if cluster is not None and parsed.cluster is not None and parsed.cluster != cluster:
            dec.fail("", f"the key belongs to cluster {parsed.cluster}, expected {cluster}")
        if cluster_id is not None and pair.identity >= MINIMAL_NUMERIC_IDENTITY:
            lo, hi = identity_bounds(cluster_id, max_connected_clusters)
            if not lo <= pair.identity <= hi:
                dec.fail("ID", f"identity {pair.identity} is outside the range [{lo}, {hi}] of cluster ID {cluster_id}")
        return pair


# ---------------------------------------------------------------------------------------------
# Node: cilium/state/nodes/v1/<cluster>/<node>


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


# ---------------------------------------------------------------------------------------------
# Identity: cilium/state/identities/v1/id/<id> → "source:key=value;..."


@dataclass(frozen=True, slots=True, order=True)
class Label:
    """One security label; ordered by key, as Cilium sorts labels."""

    key: str
    value: str = ""
    source: str = LABEL_SOURCE_UNSPEC

    def __str__(self) -> str:
        return f"{self.source}:{self.key}={self.value}" if self.value else f"{self.source}:{self.key}"

    def kvstore_form(self) -> str:
        """``Label.FormatForKVStore``: ``source:key=value;`` (the ';' is always there)."""
        return f"{self.source}:{self.key}={self.value};"


def format_labels(labels: Iterable[Label]) -> str:
    """The kvstore form of a label set: each label's ``source:key=value;``, sorted by key."""
    return "".join(label.kvstore_form() for label in sorted(labels))


def parse_labels(text: str) -> tuple[Label, ...]:
    """``NewLabelArrayFromSortedList``: split on ';', each label ``source:key=value``."""
    out: list[Label] = []
    for item in text.split(";"):
        if not item:
            continue
        source, sep, rest = item.partition(":")
        if not sep:
            source, rest = LABEL_SOURCE_UNSPEC, item
        elif not source:
            source = LABEL_SOURCE_UNSPEC
        key, _, value = rest.partition("=")
        out.append(Label(key=key, value=value, source=source))
    return tuple(sorted(out))


@dataclass(frozen=True, slots=True)
class Identity:
    """A security identity as its cluster exports it: the number (key) and the label string (value)."""

    id: int
    labels: tuple[Label, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(sorted(self.labels)))

    @property
    def key(self) -> str:
        return keys.identity_key(self.id)

    @property
    def cluster(self) -> str | None:
        """The value of ``k8s:io.cilium.k8s.policy.cluster``, the label that ties it to its cluster."""
        return next(
            (lb.value for lb in self.labels if lb.source == LABEL_SOURCE_K8S and lb.key == POLICY_LABEL_CLUSTER),
            None,
        )

    def to_value(self) -> bytes:
        return format_labels(self.labels).encode()

    @classmethod
    def from_kv(
        cls,
        data: bytes | str,
        key: str,
        *,
        cluster: str | None = None,
        cluster_id: int | None = None,
        max_connected_clusters: int = DEFAULT_MAX_CONNECTED_CLUSTERS,
    ) -> Identity:
        """Decode and validate with the remote identity validators (``clusterIDValidator``: the id is
        in the remote's range; ``clusterNameValidator``: its cluster label names the remote)."""
        dec = _Decoder("identity", key)
        parsed = _parse_key(dec, key, keys.KeyKind.IDENTITY)
        assert parsed.identity is not None
        text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
        ident = cls(parsed.identity, parse_labels(text))
        if cluster_id is not None:
            lo, hi = identity_bounds(cluster_id, max_connected_clusters)
            if not lo <= ident.id <= hi:
                dec.fail("", f"ID {ident.id} is outside of the expected range [{lo}, {hi}]")
        expected = cluster if cluster is not None else parsed.cluster
        if expected is not None:
            got = ident.cluster
            if got is None:
                dec.fail("", f"could not find expected label {POLICY_LABEL_CLUSTER}")
            if got != expected:
                dec.fail("", f"unexpected cluster name: got {got}, expected {expected}")
        if cluster is not None and parsed.cluster is not None and parsed.cluster != cluster:
            dec.fail("", f"the key belongs to cluster {parsed.cluster}, expected {cluster}")
        return ident


# ---------------------------------------------------------------------------------------------
# CiliumClusterConfig: cilium/cluster-config/<cluster>


@dataclass(frozen=True, slots=True)
class ClusterCapabilities:
    synced_canaries: bool = False
    cached: bool = False
    max_connected_clusters: int = 0
    # None: the cluster does not support MCS-API service exports at all
    service_exports_enabled: bool | None = None
    endpoint_slices_export_mode: str = ""

    def to_go(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.synced_canaries:
            out["syncedCanaries"] = True
        if self.cached:
            out["cached"] = True
        if self.max_connected_clusters:
            out["maxConnectedClusters"] = self.max_connected_clusters
        if self.service_exports_enabled is not None:
            out["serviceExportsEnabled"] = self.service_exports_enabled
        if self.endpoint_slices_export_mode:
            out["endpointSlicesExportMode"] = self.endpoint_slices_export_mode
        return out


@dataclass(frozen=True, slots=True)
class CiliumClusterConfig:
    """What a clustermesh-apiserver says about its cluster; every agent reads it before anything else."""

    id: int = 0
    capabilities: ClusterCapabilities = field(default_factory=ClusterCapabilities)

    @classmethod
    def exported(
        cls, cluster_id: int, max_connected_clusters: int = DEFAULT_MAX_CONNECTED_CLUSTERS
    ) -> CiliumClusterConfig:
        """The config a clustermesh-apiserver writes for its own cluster (sync canaries supported,
        MCS-API service exports supported but off)."""
        return cls(
            cluster_id,
            ClusterCapabilities(
                synced_canaries=True, max_connected_clusters=max_connected_clusters, service_exports_enabled=False
            ),
        )

    def to_go(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.id:
            out["id"] = self.id
        out["capabilities"] = self.capabilities.to_go()
        return out

    def to_json(self) -> bytes:
        return go_json(self.to_go())

    @classmethod
    def from_json(cls, data: bytes | str, key: str) -> CiliumClusterConfig:
        dec = _Decoder("cluster config", key)
        _parse_key(dec, key, keys.KeyKind.CLUSTER_CONFIG)
        top = dec.struct(dec.load(data), "", ("id", "capabilities"))
        caps = dec.struct(top.get("capabilities"), "capabilities", _CAPABILITY_FIELDS)
        exports = caps.get("serviceExportsEnabled")
        return cls(
            dec.uint(top.get("id"), "id", 32),
            ClusterCapabilities(
                synced_canaries=dec.boolean(caps.get("syncedCanaries"), "capabilities.syncedCanaries"),
                cached=dec.boolean(caps.get("cached"), "capabilities.cached"),
                max_connected_clusters=dec.uint(
                    caps.get("maxConnectedClusters"), "capabilities.maxConnectedClusters", 32
                ),
                service_exports_enabled=None
                if exports is None
                else dec.boolean(exports, "capabilities.serviceExportsEnabled"),
                endpoint_slices_export_mode=dec.string(
                    caps.get("endpointSlicesExportMode"), "capabilities.endpointSlicesExportMode"
                ),
            ),
        )

    def remote_problem(self, local_max_connected_clusters: int = DEFAULT_MAX_CONNECTED_CLUSTERS) -> str | None:
        """Cilium's ``ValidateRemoteConfig`` (config required, as in current Cilium): why an agent
        refuses this remote, or None. Id clashes with other clusters are the caller's to check."""
        if self.id == 0:
            return "remote cluster is missing cluster configuration"
        problem = cluster_id_problem(self.id, local_max_connected_clusters)
        if problem:
            return problem
        remote_max = self.capabilities.max_connected_clusters
        if (
            local_max_connected_clusters != DEFAULT_MAX_CONNECTED_CLUSTERS
            and remote_max != local_max_connected_clusters
        ):
            return f"mismatched MaxConnectedClusters; local={local_max_connected_clusters}, remote={remote_max}"
        if self.capabilities.endpoint_slices_export_mode not in ENDPOINT_SLICES_EXPORT_MODES:
            return f"invalid endpoint slices export mode {self.capabilities.endpoint_slices_export_mode!r}"
        return None


# ---------------------------------------------------------------------------------------------
# sync canaries and heartbeat: an RFC 3339 timestamp


def format_timestamp(when: datetime) -> bytes:
    """Go's ``time.Format(time.RFC3339)``: seconds precision, 'Z' for UTC, else ±hh:mm."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    text = when.replace(microsecond=0).isoformat()
    return (text[:-6] + "Z" if text.endswith("+00:00") else text).encode()


def parse_timestamp(data: bytes | str) -> datetime:
    """An RFC 3339 timestamp as written in ``cilium/synced/...`` and ``cilium/.heartbeat``."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as e:
        raise InvalidInput(f"{text!r} is not an RFC 3339 timestamp.") from e
    if when.tzinfo is None:
        raise InvalidInput(f"{text!r} is not an RFC 3339 timestamp: it has no time zone.")
    return when
