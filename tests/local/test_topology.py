"""The pure half of topology.py: names, CIDRs, addresses, routes and hosts text (no root needed)."""

from __future__ import annotations

import ipaddress
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetnet.errors import Conflict, InvalidInput
from fleetnet.local import topology as t

K8S_NAME = st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,30}[a-z0-9])?", fullmatch=True)
PREFIX = "fnt"
UL = t.underlay_spec(PREFIX, "ul0", "172.30.0.0/16")


def node(cluster: str, name: str, ip: str, pod_cidr: str, underlay: t.UnderlaySpec = UL) -> t.NodeSpec:
    return t.node_spec(PREFIX, cluster, name, underlay, ip, pod_cidr)


# --- names -----------------------------------------------------------------------------------------


def test_namespace_names_carry_the_prefix_and_a_kind() -> None:
    assert t.underlay_netns(PREFIX, "ul0") == "fnt_u_ul0"
    assert t.node_netns(PREFIX, "c1", "node-0") == "fnt_n_c1_node-0"
    assert t.pod_netns(PREFIX, "c1", "default", "web-0") == "fnt_p_c1_default_web-0"


@pytest.mark.parametrize("bad", ["", "a_b", "A", "a/b", "-a", "a-", "a b"])
def test_names_that_could_collide_or_escape_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        t.pod_netns(PREFIX, "c1", "default", bad)


@pytest.mark.parametrize("bad", ["", "a_b", "a/b", "x" * 33])
def test_bad_prefixes_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        t.node_netns(bad, "c1", "n0")


@given(a=st.tuples(K8S_NAME, K8S_NAME, K8S_NAME), b=st.tuples(K8S_NAME, K8S_NAME, K8S_NAME))
def test_different_pods_get_different_namespaces(a: tuple[str, str, str], b: tuple[str, str, str]) -> None:
    assert (t.pod_netns(PREFIX, *a) == t.pod_netns(PREFIX, *b)) == (a == b)


@given(cluster=K8S_NAME, namespace=K8S_NAME, pod=st.from_regex(r"[a-z0-9]{1,253}", fullmatch=True))
def test_namespace_names_stay_short_enough_for_a_file_name(cluster: str, namespace: str, pod: str) -> None:
    name = t.pod_netns(PREFIX, cluster, namespace, pod)
    assert len(name) <= 200
    assert name.startswith(PREFIX + t.SEP)
    assert "/" not in name


@given(a=st.tuples(K8S_NAME, K8S_NAME), b=st.tuples(K8S_NAME, K8S_NAME))
def test_link_names_fit_the_kernel_limit_and_differ(a: tuple[str, str], b: tuple[str, str]) -> None:
    for name in (t.uplink_name(*a), t.pod_host_ifname(*a)):
        assert len(name) <= 15
        assert re.fullmatch(r"[a-z0-9]+", name)
    assert (t.uplink_name(*a) == t.uplink_name(*b)) == (a == b)
    assert (t.pod_host_ifname(*a) == t.pod_host_ifname(*b)) == (a == b)


def test_link_names_are_stable() -> None:
    assert t.pod_host_ifname("default", "web-0") == t.pod_host_ifname("default", "web-0")
    assert t.pod_host_ifname("default", "web-0").startswith("lxc")
    assert t.uplink_name("c1", "n0").startswith("ul")


# --- CIDRs and addresses ---------------------------------------------------------------------------


def test_a_slash_16_splits_into_node_slash_24s() -> None:
    assert t.node_pod_cidrs("10.1.0.0/16", 3) == ["10.1.0.0/24", "10.1.1.0/24", "10.1.2.0/24"]


@given(second=st.integers(0, 255), count=st.integers(0, 256))
def test_node_cidrs_are_disjoint_and_inside_the_cluster_cidr(second: int, count: int) -> None:
    cluster = ipaddress.IPv4Network(f"10.{second}.0.0/16")
    cidrs = [ipaddress.IPv4Network(c) for c in t.node_pod_cidrs(str(cluster), count)]
    assert count == len(cidrs)
    assert all(c.prefixlen == 24 and c.subnet_of(cluster) for c in cidrs)
    assert len(set(cidrs)) == count


@pytest.mark.parametrize(("cidr", "count"), [("10.1.0.0/16", 257), ("10.1.0.0/25", 1), ("10.1.0.1/16", 1), ("x", 1)])
def test_impossible_splits_are_refused(cidr: str, count: int) -> None:
    with pytest.raises(InvalidInput):
        t.node_pod_cidrs(cidr, count)


def test_pods_start_at_dot_2_after_the_gateway() -> None:
    assert t.pod_gateway("10.1.0.0/24") == "10.1.0.1"
    assert t.allocate_pod_ip("10.1.0.0/24", []) == "10.1.0.2"
    assert t.allocate_pod_ip("10.1.0.0/24", ["10.1.0.2"]) == "10.1.0.3"
    assert t.allocate_pod_ip("10.1.0.0/24", ["10.1.0.3"]) == "10.1.0.2"


@st.composite
def cidr_and_count(draw: st.DrawFn) -> tuple[ipaddress.IPv4Network, int]:
    prefix = draw(st.integers(24, 30))
    net = ipaddress.IPv4Network(f"10.{draw(st.integers(0, 255))}.{draw(st.integers(0, 255))}.0/{prefix}")
    return net, draw(st.integers(1, net.num_addresses - 3))


@given(cidr_count=cidr_and_count(), removed=st.sets(st.integers(0, 252), max_size=20))
def test_pod_ips_are_unique_and_usable(cidr_count: tuple[ipaddress.IPv4Network, int], removed: set[int]) -> None:
    cidr, count = cidr_count
    used: list[str] = []
    for _ in range(count):
        used.append(t.allocate_pod_ip(str(cidr), used))
    assert len(set(used)) == count
    for ip in map(ipaddress.IPv4Address, used):
        assert ip in cidr
        assert ip not in (cidr.network_address, cidr.network_address + 1, cidr.broadcast_address)
    # A freed address is the next one handed out: the lowest free.
    remaining = [ip for i, ip in enumerate(used) if i not in removed]
    freed = [ipaddress.IPv4Address(ip) for i, ip in enumerate(used) if i in removed]
    if freed:
        assert str(min(freed)) == t.allocate_pod_ip(str(cidr), remaining)


def test_a_full_node_cidr_is_a_conflict() -> None:
    used = [f"10.1.0.{i}" for i in range(2, 255)]
    with pytest.raises(Conflict):
        t.allocate_pod_ip("10.1.0.0/24", used)


def test_plan_nodes_gives_each_node_a_cidr_and_a_free_underlay_address() -> None:
    nodes = t.plan_nodes(PREFIX, "c1", UL, "10.1.0.0/16", ["n0", "n1"], used_underlay_ips=["172.30.0.2"])
    assert [(n.ip, n.pod_cidr) for n in nodes] == [
        ("172.30.0.3", "10.1.0.0/24"),
        ("172.30.0.4", "10.1.1.0/24"),
    ]
    assert nodes[0].ip_cidr == "172.30.0.3/16"
    assert UL.bridge_address == "172.30.0.1/16"
    assert nodes[0].netns == "fnt_n_c1_n0"


def test_specs_refuse_addresses_outside_their_cidr() -> None:
    with pytest.raises(InvalidInput):
        node("c1", "n0", "172.31.0.2", "10.1.0.0/24")
    with pytest.raises(InvalidInput):
        node("c1", "n0", "172.30.0.1", "10.1.0.0/24")  # the bridge's
    n0 = node("c1", "n0", "172.30.0.2", "10.1.0.0/24")
    for bad in ("10.1.1.2", "10.1.0.1", "10.1.0.0", "10.1.0.255"):
        with pytest.raises(InvalidInput):
            t.pod_spec(PREFIX, n0, "default", "web", bad)


def test_pod_spec_links_to_its_node() -> None:
    n0 = node("c1", "n0", "172.30.0.2", "10.1.0.0/24")
    pod = t.pod_spec(PREFIX, n0, "default", "web-0", "10.1.0.2")
    assert (pod.gateway, pod.netns) == ("10.1.0.1", "fnt_p_c1_default_web-0")
    assert t.pod_host_ifname("default", "web-0") == pod.host_ifname


# --- routes ----------------------------------------------------------------------------------------


def test_each_node_routes_to_the_other_nodes_pod_cidrs() -> None:
    nodes = t.plan_nodes(PREFIX, "c1", UL, "10.1.0.0/16", ["n0", "n1", "n2"])
    assert t.cluster_routes(nodes) == {
        "fnt_n_c1_n0": [("10.1.1.0/24", "172.30.0.3"), ("10.1.2.0/24", "172.30.0.4")],
        "fnt_n_c1_n1": [("10.1.0.0/24", "172.30.0.2"), ("10.1.2.0/24", "172.30.0.4")],
        "fnt_n_c1_n2": [("10.1.0.0/24", "172.30.0.2"), ("10.1.1.0/24", "172.30.0.3")],
    }


@given(counts=st.tuples(st.integers(1, 6), st.integers(1, 6)))
def test_remote_routes_cover_every_remote_node_once(counts: tuple[int, int]) -> None:
    local = t.plan_nodes(PREFIX, "c1", UL, "10.1.0.0/16", [f"n{i}" for i in range(counts[0])])
    remote = t.plan_nodes(PREFIX, "c2", UL, "10.2.0.0/16", [f"n{i}" for i in range(counts[1])], [n.ip for n in local])
    routes = t.remote_routes(local, remote)
    assert set(routes) == {n.netns for n in local}
    for pairs in routes.values():
        assert sorted(pairs) == sorted((r.pod_cidr, r.ip) for r in remote)


def test_routes_need_one_flat_network_and_disjoint_cidrs() -> None:
    other = t.underlay_spec(PREFIX, "ul1", "172.31.0.0/16")
    a = node("c1", "n0", "172.30.0.2", "10.1.0.0/24")
    b = node("c2", "n0", "172.31.0.2", "10.2.0.0/24", other)
    with pytest.raises(InvalidInput, match="flat network"):
        t.remote_routes([a], [b])
    c = node("c3", "n0", "172.30.0.3", "10.1.0.0/24")
    with pytest.raises(InvalidInput, match="overlaps"):
        t.remote_routes([a], [c])


# --- hosts -----------------------------------------------------------------------------------------


def test_hosts_text_lists_localhost_then_sorted_addresses() -> None:
    text = t.hosts_file_text({"10.96.0.20": ["b"], "10.96.0.3": ["a.default.svc.cluster.local", "a.default", "a"]})
    lines = text.splitlines()
    assert "127.0.0.1\tlocalhost" in lines
    assert lines[-2:] == ["10.96.0.3\ta.default.svc.cluster.local a.default a", "10.96.0.20\tb"]


@pytest.mark.parametrize("entries", [{"not-an-ip": ["a"]}, {"10.0.0.1": ["bad name"]}, {"10.0.0.1": ["a#b"]}])
def test_hosts_text_refuses_what_would_corrupt_the_file(entries: dict[str, list[str]]) -> None:
    with pytest.raises(InvalidInput):
        t.hosts_file_text(entries)
