"""IPIdentityPair, an ipcache entry: the security identity of an IP or CIDR and the node it lives on.

Key: ``cilium/state/ip/v1/default/<ip>``. Source: ``pkg/identity/identity.go`` (IPIdentityPair),
``pkg/ipcache/kvstore.go`` (how a remote entry is read).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from fleetnet.model import keys
from fleetnet.model.cilium_ids import (
    DEFAULT_MAX_CONNECTED_CLUSTERS,
    MINIMAL_NUMERIC_IDENTITY,
    _parse_key,
    identity_bounds,
)
from fleetnet.model.gojson import _Decoder, _mask_bytes, _mask_prefix, _parse_ip, go_json

RESERVED_IDENTITY_HOST = 1
RESERVED_IDENTITY_REMOTE_NODE = 6

# Go field names (json tags where Cilium has them), in struct order
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
