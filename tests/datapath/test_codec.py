"""Unit tests of the map codecs (no root): round trips, byte order, and the layouts checked
against the BTF of the compiled object, so a C struct and its Python mirror cannot drift apart."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetnet.datapath import codec
from fleetnet.datapath.codec import (
    Backend,
    EndpointInfo,
    Frontend,
    IpcacheEntry,
    PolicyEntry,
)
from fleetnet.datapath.loader import OBJECT
from fleetnet.errors import InvalidInput

ipv4 = st.integers(0, 2**32 - 1).map(lambda n: ".".join(str((n >> s) & 255) for s in (24, 16, 8, 0)))
ports = st.integers(1, 65535)
frontends = st.builds(Frontend, ipv4, ports, st.sampled_from(["TCP", "UDP"]))
backends = st.builds(Backend, ipv4, ports, st.integers(0, 65535))
policy_entries = st.builds(
    PolicyEntry,
    st.sampled_from(["ingress", "egress"]),
    st.integers(0, 2**32 - 1),
    st.integers(0, 65535),
    st.integers(0, 255),
    st.booleans(),
)


@given(frontends)
def test_lb4_key_round_trips(f: Frontend) -> None:
    assert codec.decode_lb4_key(codec.encode_lb4_key(f)) == f


@given(backends)
def test_backend_round_trips(b: Backend) -> None:
    assert codec.decode_backend(codec.encode_backend(b)) == b


@given(st.integers(0, 65535), st.integers(0, 65535), st.integers(0, 255))
def test_service_value_round_trips(count: int, rev_nat_id: int, flags: int) -> None:
    assert codec.decode_lb4_service(codec.encode_lb4_service(count, rev_nat_id, flags)) == (count, rev_nat_id, flags)


@given(frontends, st.integers(0, 2**32 - 1))
def test_slot_key_is_the_service_key_plus_slot(f: Frontend, slot: int) -> None:
    key = codec.encode_lb4_key(f)
    assert codec.decode_slot_key(codec.encode_slot_key(key, slot)) == (key, slot)


@given(frontends)
def test_rev_nat_round_trips(f: Frontend) -> None:
    assert codec.decode_rev_nat(codec.encode_rev_nat(f)) == (f.vip, f.port)


@given(st.integers(1, 65535), policy_entries)
def test_policy_round_trips(endpoint_id: int, e: PolicyEntry) -> None:
    assert codec.decode_policy(codec.encode_policy_key(endpoint_id, e), codec.encode_policy_value(e)) == (
        endpoint_id,
        e,
    )


@given(st.integers(1, 65535), st.integers(1, 2**32 - 1), ipv4, st.booleans(), st.booleans(), st.integers(1, 2**31))
def test_endpoint_round_trips(eid: int, identity: int, ip: str, ing: bool, eg: bool, ifindex: int) -> None:
    info = EndpointInfo(eid, identity, ip, ing, eg)
    rec = codec.decode_endpoint(codec.encode_endpoint_key(ip), codec.encode_endpoint_info(ifindex, info, 4026531840))
    assert (rec.info, rec.ifindex, rec.netns_inode) == (info, ifindex, 4026531840)


@given(ipv4, st.integers(0, 32), st.integers(1, 2**32 - 1), st.integers(0, 65535))
def test_ipcache_round_trips(ip: str, plen: int, identity: int, cluster_id: int) -> None:
    import ipaddress

    cidr = str(ipaddress.IPv4Network(f"{ip}/{plen}", strict=False))
    assert codec.decode_ipcache_key(codec.encode_ipcache_key(cidr)) == cidr
    e = IpcacheEntry(identity, cluster_id)
    assert codec.decode_remote_info(codec.encode_remote_info(e)) == e


def test_addresses_and_ports_are_in_network_byte_order() -> None:
    assert codec.encode_lb4_key(Frontend("10.96.0.1", 80, "UDP")) == bytes([10, 96, 0, 1, 0, 80, 17, 0])
    assert codec.encode_backend(Backend("10.0.0.2", 8080, 3)) == bytes([10, 0, 0, 2, 0x1F, 0x90]) + struct.pack("=H", 3)
    assert codec.encode_ipcache_key("10.1.0.0/16") == struct.pack("=I", 16) + bytes([10, 1, 0, 0])
    assert codec.encode_ipcache_key("10.1.2.3") == struct.pack("=I", 32) + bytes([10, 1, 2, 3])


def test_invalid_values_are_refused_with_a_sentence() -> None:
    with pytest.raises(InvalidInput, match="not an IPv4 address"):
        Frontend("10.96.0.300", 80)
    with pytest.raises(InvalidInput, match="not a port number"):
        Backend("10.0.0.1", 0)
    with pytest.raises(InvalidInput, match="TCP or UDP"):
        Frontend("10.96.0.1", 80, "SCTP")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="host bits"):
        codec.encode_ipcache_key("10.1.2.3/16")
    with pytest.raises(InvalidInput, match="direction"):
        PolicyEntry("sideways")  # type: ignore[arg-type]


def test_ct_entry_decodes() -> None:
    key = codec.CT4_KEY.pack(bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), b"\x30\x39", b"\x00\x50", 6, 2)
    value = codec.CT_ENTRY.pack(3, 180, 1000, 7, 9, codec.CT_F_SEEN_REPLY, 0x12, 1001)
    e = codec.decode_ct(key, value, now=990.5)
    assert (e.direction, e.src, e.sport, e.dst, e.dport, e.proto) == ("service", "10.0.0.1", 12345, "10.0.0.2", 80, 6)
    assert (e.packets, e.bytes, e.expires_in, e.backend_id, e.rev_nat_id) == (3, 180, 10, 7, 9)
    assert (e.seen_reply, e.closing, e.remote_identity) == (True, False, 1001)


# ------------------------------------------------------------------ layouts against the object's BTF

LAYOUTS = {
    "lb4_key": codec.LB4_KEY,
    "lb4_service": codec.LB4_SERVICE,
    "lb4_slot_key": codec.LB4_SLOT_KEY,
    "lb4_backend": codec.LB4_BACKEND,
    "lb4_reverse_nat": codec.LB4_REVERSE_NAT,
    "ct4_key": codec.CT4_KEY,
    "ct_entry": codec.CT_ENTRY,
    "endpoint_info": codec.ENDPOINT_INFO,
    "ipcache_key": codec.IPCACHE_KEY,
    "remote_info": codec.REMOTE_INFO,
    "policy_key": codec.POLICY_KEY,
    "policy_entry": codec.POLICY_ENTRY,
    "metrics_value": codec.METRICS_VALUE,
}


def _field_offsets(fmt: str) -> list[int]:
    """Byte offsets of the non-padding fields of a '='-prefixed struct format."""
    offsets, off = [], 0
    for count, code in re.findall(r"(\d*)([xcbB?hHiIlLqQs])", fmt.lstrip("=")):
        n = int(count or 1)
        if code == "x":
            off += n
        elif code == "s":
            offsets.append(off)
            off += n
        else:
            for _ in range(n):
                offsets.append(off)
                off += struct.calcsize("=" + code)
    return offsets


def _btf_structs() -> dict[str, tuple[int, list[int]]]:
    """struct name -> (size, byte offsets of members not named pad*) from the object's BTF."""
    if not OBJECT.exists() or shutil.which("bpftool") is None:
        pytest.skip("needs the built object (make build) and bpftool")
    dump = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(OBJECT), "format", "raw"], capture_output=True, text=True, check=True
    ).stdout
    out: dict[str, tuple[int, list[int]]] = {}
    current: str | None = None
    for line in dump.splitlines():
        m = re.match(r"\[\d+\] STRUCT '(\w+)' size=(\d+)", line)
        if m:
            current = m.group(1)
            out[current] = (int(m.group(2)), [])
            continue
        m = re.match(r"\s+'(\w+)' type_id=\d+ bits_offset=(\d+)", line)
        if m and current is not None:
            if not m.group(1).startswith("pad"):
                out[current][1].append(int(m.group(2)) // 8)
        elif not line.startswith("\t"):
            current = None
    return out


def test_python_layouts_match_the_c_structs() -> None:
    btf = _btf_structs()
    for name, layout in LAYOUTS.items():
        size, offsets = btf[name]
        assert (layout.size, _field_offsets(layout.format)) == (size, offsets), name
