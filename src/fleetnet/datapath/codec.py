"""The datapath's map layouts as Python sees them: value types and pure struct codecs.

The C structs of ``bpf/lib/*.h`` are mirrored here as ``struct`` formats (``=`` = host byte order,
no padding: the BPF target shares the host's endianness); addresses and ports are stored in network
byte order as in the C code. Pure and unit-tested; :mod:`.maps` uses them to read and write maps.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass
from typing import Literal

from fleetnet.errors import InvalidInput

Proto = Literal["TCP", "UDP"]
Direction = Literal["ingress", "egress"]

PROTO_NUMBERS: dict[str, int] = {"TCP": 6, "UDP": 17}
PROTO_NAMES: dict[int, Proto] = {6: "TCP", 17: "UDP"}

# Reserved identities, as in Cilium.
IDENTITY_ANY = 0
IDENTITY_WORLD = 2

# Drop reasons of bpf/lib/common.h; metrics are indexed by -code, 0 = forwarded.
DROP_REASONS: dict[int, str] = {
    -132: "DROP_INVALID_SIP",
    -133: "DROP_POLICY",
    -134: "DROP_INVALID",
    -135: "DROP_CT_INVALID",
    -141: "DROP_WRITE_ERROR",
    -155: "DROP_CT_CREATE_FAILED",
    -158: "DROP_NO_SERVICE_BACKEND",
    -181: "DROP_POLICY_DENY",
}
REASON_NAMES: dict[int, str] = {0: "forwarded", **{-code: name for code, name in DROP_REASONS.items()}}

# Struct layouts, field for field with bpf/lib/*.h.
LB4_KEY = struct.Struct("=4s2sBx")  # lb4_key: address, dport(be), proto, pad
LB4_SERVICE = struct.Struct("=HHB3x")  # lb4_service: count, rev_nat_id, flags, pad
LB4_SLOT_KEY = struct.Struct("=4s2sBxI")  # lb4_slot_key: lb4_key + slot
BACKEND_ID = struct.Struct("=I")
LB4_BACKEND = struct.Struct("=4s2sH")  # lb4_backend: address, port(be), cluster_id
REV_NAT_ID = struct.Struct("=H")
LB4_REVERSE_NAT = struct.Struct("=4s2s2x")  # lb4_reverse_nat: address, port(be), pad
CT4_KEY = struct.Struct("=4s4s2s2sBBxx")  # ct4_key: saddr, daddr, sport, dport, proto, dir, pad
CT_ENTRY = struct.Struct("=QQIIHBBI")  # ct_entry
ENDPOINT_KEY = struct.Struct("=4s")
ENDPOINT_INFO = struct.Struct("=IIHBxI")  # endpoint_info: ifindex, identity, endpoint_id, flags, pad, netns_ino
IPCACHE_KEY = struct.Struct("=I4s")  # ipcache_key: prefixlen, ip
REMOTE_INFO = struct.Struct("=IHxx")  # remote_info: identity, cluster_id, pad
POLICY_KEY = struct.Struct("=IH2sBBxx")  # policy_key: identity, endpoint_id, dport(be), proto, dir, pad
POLICY_ENTRY = struct.Struct("=B3x")  # policy_entry: flags, pad
METRICS_VALUE = struct.Struct("=QQ")  # metrics_value: packets, bytes

EP_F_INGRESS_ENFORCED = 0x1
EP_F_EGRESS_ENFORCED = 0x2
POLICY_F_DENY = 0x1
POLICY_DIRS: dict[str, int] = {"ingress": 0, "egress": 1}
CT_DIRS = ("egress", "ingress", "service")
CT_F_CLOSING = 0x1
CT_F_SEEN_REPLY = 0x2

MAX_REV_NAT_ID = 0xFFFF
MAX_BACKEND_ID = 0xFFFFFFFF


# --------------------------------------------------------------------------- value types


def _check_ipv4(what: str, value: str) -> None:
    try:
        socket.inet_pton(socket.AF_INET, value)  # strict a.b.c.d, and fast
    except (OSError, TypeError) as e:
        raise InvalidInput(f"{what} {value!r} is not an IPv4 address; give it as a.b.c.d.") from e


def _check_port(what: str, port: int, *, zero_ok: bool = False) -> None:
    if not isinstance(port, int) or not (0 if zero_ok else 1) <= port <= 65535:
        lo = 0 if zero_ok else 1
        raise InvalidInput(f"{what} {port!r} is not a port number; use {lo}..65535.")


@dataclass(frozen=True, slots=True, order=True)
class Frontend:
    """A service address: what clients connect to."""

    vip: str
    port: int
    proto: Proto = "TCP"

    def __post_init__(self) -> None:
        _check_ipv4("service VIP", self.vip)
        _check_port("service port", self.port)
        if self.proto not in PROTO_NUMBERS:
            raise InvalidInput(f"service protocol {self.proto!r} is not supported; use TCP or UDP.")

    def __str__(self) -> str:
        return f"{self.vip}:{self.port}/{self.proto}"


@dataclass(frozen=True, slots=True, order=True)
class Backend:
    """One address a service's traffic goes to; cluster_id says which member cluster runs it."""

    ip: str
    port: int
    cluster_id: int = 0

    def __post_init__(self) -> None:
        _check_ipv4("backend address", self.ip)
        _check_port("backend port", self.port)
        if not 0 <= self.cluster_id <= 0xFFFF:
            raise InvalidInput(f"backend cluster id {self.cluster_id} is out of range; use 0..65535.")

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}@{self.cluster_id}"


@dataclass(frozen=True, slots=True, order=True)
class PolicyEntry:
    """One policy map entry of an endpoint; 0 in identity, dport or proto means any."""

    direction: Direction
    identity: int = IDENTITY_ANY
    dport: int = 0
    proto: int = 0
    deny: bool = False

    def __post_init__(self) -> None:
        if self.direction not in POLICY_DIRS:
            raise InvalidInput(f"policy direction {self.direction!r} is unknown; use ingress or egress.")
        if not 0 <= self.identity <= 0xFFFFFFFF:
            raise InvalidInput(f"policy identity {self.identity} is out of range; use 0..2^32-1.")
        _check_port("policy port", self.dport, zero_ok=True)
        if not 0 <= self.proto <= 255:
            raise InvalidInput(f"policy protocol number {self.proto} is out of range; use 0..255.")


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    """What the datapath knows of a local pod."""

    endpoint_id: int
    identity: int
    ip: str
    ingress_enforced: bool = False
    egress_enforced: bool = False

    def __post_init__(self) -> None:
        _check_ipv4("endpoint address", self.ip)
        if not 1 <= self.endpoint_id <= 0xFFFF:
            raise InvalidInput(f"endpoint id {self.endpoint_id} is out of range; use 1..65535.")
        if not 1 <= self.identity <= 0xFFFFFFFF:
            raise InvalidInput(f"endpoint identity {self.identity} is out of range; use 1..2^32-1.")


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    """An endpoints map entry: the pod, its host-side veth and that veth's node namespace."""

    info: EndpointInfo
    ifindex: int
    netns_inode: int


@dataclass(frozen=True, slots=True)
class IpcacheEntry:
    identity: int
    cluster_id: int = 0


@dataclass(frozen=True, slots=True)
class CtEntry:
    """A decoded conntrack entry (``cilium bpf ct list``)."""

    direction: Literal["egress", "ingress", "service"]
    src: str
    sport: int
    dst: str
    dport: int
    proto: int
    packets: int
    bytes: int
    expires_in: int  # seconds; <= 0 means expired (kept until reused or evicted)
    backend_id: int
    rev_nat_id: int
    closing: bool
    seen_reply: bool
    remote_identity: int


@dataclass(frozen=True, slots=True)
class SyncStats:
    added: int
    updated: int
    deleted: int


# --------------------------------------------------------------------------- codecs


def ip_bytes(ip: str) -> bytes:
    """a.b.c.d -> 4 bytes in network order."""
    try:
        return socket.inet_pton(socket.AF_INET, ip)
    except (OSError, TypeError) as e:
        raise InvalidInput(f"{ip!r} is not an IPv4 address; give it as a.b.c.d.") from e


def ip_str(raw: bytes) -> str:
    return socket.inet_ntoa(raw)


_BE16 = struct.Struct("!H")


def port_bytes(port: int) -> bytes:
    return _BE16.pack(port)


def port_int(raw: bytes) -> int:
    return int(_BE16.unpack(raw)[0])


def encode_lb4_key(f: Frontend) -> bytes:
    return LB4_KEY.pack(ip_bytes(f.vip), port_bytes(f.port), PROTO_NUMBERS[f.proto])


def decode_lb4_key(raw: bytes) -> Frontend:
    vip, port, proto = LB4_KEY.unpack(raw)
    return Frontend(ip_str(vip), port_int(port), PROTO_NAMES.get(proto, "TCP"))


def encode_lb4_service(count: int, rev_nat_id: int, flags: int = 0) -> bytes:
    return LB4_SERVICE.pack(count, rev_nat_id, flags)


def decode_lb4_service(raw: bytes) -> tuple[int, int, int]:
    """-> (count, rev_nat_id, flags)"""
    count, rev_nat_id, flags = LB4_SERVICE.unpack(raw)
    return count, rev_nat_id, flags


def encode_slot_key(svc_key: bytes, slot: int) -> bytes:
    return svc_key + BACKEND_ID.pack(slot)


def decode_slot_key(raw: bytes) -> tuple[bytes, int]:
    """-> (lb4_key bytes, slot)"""
    return raw[:8], BACKEND_ID.unpack(raw[8:])[0]


def encode_backend(b: Backend) -> bytes:
    return LB4_BACKEND.pack(ip_bytes(b.ip), port_bytes(b.port), b.cluster_id)


def decode_backend(raw: bytes) -> Backend:
    ip, port, cluster_id = LB4_BACKEND.unpack(raw)
    return Backend(ip_str(ip), port_int(port), cluster_id)


def encode_rev_nat(f: Frontend) -> bytes:
    return LB4_REVERSE_NAT.pack(ip_bytes(f.vip), port_bytes(f.port))


def decode_rev_nat(raw: bytes) -> tuple[str, int]:
    ip, port = LB4_REVERSE_NAT.unpack(raw)
    return ip_str(ip), port_int(port)


def parse_cidr(cidr: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(cidr if "/" in cidr else f"{cidr}/32")
    except (ipaddress.AddressValueError, ipaddress.NetmaskValueError, ValueError) as e:
        raise InvalidInput(f"{cidr!r} is not an IPv4 prefix without host bits; give it as a.b.c.d/n or a.b.c.d.") from e


def encode_ipcache_key(cidr: str) -> bytes:
    net = parse_cidr(cidr)
    return IPCACHE_KEY.pack(net.prefixlen, net.network_address.packed)


def decode_ipcache_key(raw: bytes) -> str:
    prefixlen, ip = IPCACHE_KEY.unpack(raw)
    return f"{ip_str(ip)}/{prefixlen}"


def encode_remote_info(e: IpcacheEntry) -> bytes:
    return REMOTE_INFO.pack(e.identity, e.cluster_id)


def decode_remote_info(raw: bytes) -> IpcacheEntry:
    identity, cluster_id = REMOTE_INFO.unpack(raw)
    return IpcacheEntry(identity, cluster_id)


def encode_policy_key(endpoint_id: int, e: PolicyEntry) -> bytes:
    return POLICY_KEY.pack(e.identity, endpoint_id, port_bytes(e.dport), e.proto, POLICY_DIRS[e.direction])


def encode_policy_value(e: PolicyEntry) -> bytes:
    return POLICY_ENTRY.pack(POLICY_F_DENY if e.deny else 0)


def decode_policy(key: bytes, value: bytes) -> tuple[int, PolicyEntry]:
    """-> (endpoint_id, entry)"""
    identity, endpoint_id, dport, proto, direction = POLICY_KEY.unpack(key)
    (flags,) = POLICY_ENTRY.unpack(value)
    dname: Direction = "egress" if direction == POLICY_DIRS["egress"] else "ingress"
    return endpoint_id, PolicyEntry(dname, identity, port_int(dport), proto, bool(flags & POLICY_F_DENY))


def encode_endpoint_key(ip: str) -> bytes:
    return ENDPOINT_KEY.pack(ip_bytes(ip))


def encode_endpoint_info(ifindex: int, info: EndpointInfo, netns_inode: int = 0) -> bytes:
    flags = (EP_F_INGRESS_ENFORCED if info.ingress_enforced else 0) | (
        EP_F_EGRESS_ENFORCED if info.egress_enforced else 0
    )
    return ENDPOINT_INFO.pack(ifindex, info.identity, info.endpoint_id, flags, netns_inode)


def decode_endpoint(key: bytes, value: bytes) -> EndpointRecord:
    (ip,) = ENDPOINT_KEY.unpack(key)
    ifindex, identity, endpoint_id, flags, netns_inode = ENDPOINT_INFO.unpack(value)
    info = EndpointInfo(
        endpoint_id,
        identity,
        ip_str(ip),
        ingress_enforced=bool(flags & EP_F_INGRESS_ENFORCED),
        egress_enforced=bool(flags & EP_F_EGRESS_ENFORCED),
    )
    return EndpointRecord(info, ifindex, netns_inode)


def decode_ct(key: bytes, value: bytes, now: float) -> CtEntry:
    saddr, daddr, sport, dport, proto, direction = CT4_KEY.unpack(key)
    packets, nbytes, lifetime, backend_id, rev_nat_id, flags, _tcp_flags, remote = CT_ENTRY.unpack(value)
    return CtEntry(
        direction=CT_DIRS[direction] if direction < len(CT_DIRS) else "egress",  # type: ignore[arg-type]
        src=ip_str(saddr),
        sport=port_int(sport),
        dst=ip_str(daddr),
        dport=port_int(dport),
        proto=proto,
        packets=packets,
        bytes=nbytes,
        expires_in=lifetime - int(now),
        backend_id=backend_id,
        rev_nat_id=rev_nat_id,
        closing=bool(flags & CT_F_CLOSING),
        seen_reply=bool(flags & CT_F_SEEN_REPLY),
        remote_identity=remote,
    )
