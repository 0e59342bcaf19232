"""The datapath with real traffic: service load balancing, reverse NAT, conntrack, policy, and
reloads, between pod namespaces of one emulated node (tests/datapath/topology.py)."""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Sequence

import pytest
from pyroute2 import IPRoute

from fleetnet.datapath import bpf
from fleetnet.datapath.loader import ClusterDatapath
from fleetnet.datapath.maps import Backend, Frontend, PolicyEntry
from tests.datapath.topology import Topology, ask, tcp_ask_fn, udp_ask_fn

pytestmark = pytest.mark.root

VIP = "10.96.0.10"
TCP = 6


def servers(answers: Sequence[str | None]) -> Counter[str | None]:
    return Counter(a.split()[0] if a else None for a in answers)


def delta(before: dict[str, int], after: dict[str, int], reason: str) -> int:
    return after.get(reason, 0) - before.get(reason, 0)


def two_backends(net: Topology, proto: str = "TCP", port: int = 80) -> Frontend:
    f = Frontend(VIP, port, proto)  # type: ignore[arg-type]
    net.datapath.services.upsert_service(f, [Backend(net.srv1.ip, 8080), Backend(net.srv2.ip, 9090)])
    return f


# ------------------------------------------------------------------ load balancing


def test_clusterip_spreads_tcp_connections_over_backends_with_their_own_ports(net: Topology) -> None:
    two_backends(net)
    answers = net.client.many(tcp_ask_fn, 200, VIP, 80)
    counts = servers(answers)
    assert set(counts) == {"srv1", "srv2"}
    assert min(counts.values()) >= 40, counts
    # The backends saw the client's own address: DNAT only, no SNAT.
    assert {a.split()[1] for a in answers} == {net.client.ip}


def test_clusterip_spreads_udp_flows_over_backends(net: Topology) -> None:
    two_backends(net, "UDP", 53)
    counts = servers(net.client.many(udp_ask_fn, 200, VIP, 53))
    assert None not in counts, counts
    assert min(counts["srv1"], counts["srv2"]) >= 40, counts


def test_replies_carry_the_vip_as_source(net: Topology) -> None:
    two_backends(net)
    two_backends(net, "UDP", 53)
    sock = net.client.connect(VIP, 80)
    with sock:
        assert sock.getpeername() == (VIP, 80)
        assert ask(sock).split()[0] in ("srv1", "srv2")

    def connected_udp() -> str:
        # A connected UDP socket drops datagrams from any other source than the VIP.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(3)
            s.connect((VIP, 53))
            s.send(b"?")
            return s.recv(256).decode()

    assert net.client.run(connected_udp).split()[0] in ("srv1", "srv2")


def test_every_packet_of_a_connection_goes_to_the_same_backend(net: Topology) -> None:
    two_backends(net)
    with net.client.connect(VIP, 80) as sock:
        assert len({ask(sock) for _ in range(30)}) == 1
    entries = net.datapath.conntrack.entries()
    service = [e for e in entries if e.direction == "service" and e.dst == VIP]
    egress = [e for e in entries if e.direction == "egress" and e.src == net.client.ip and e.dport in (8080, 9090)]
    assert len(service) == 1 and service[0].backend_id in net.datapath.services.backend_ids()
    assert len(egress) == 1 and egress[0].rev_nat_id == net.datapath.services.rev_nat_ids()[Frontend(VIP, 80)]


def test_a_deleted_backend_gets_no_more_connections(net: Topology) -> None:
    f = two_backends(net)
    assert set(servers(net.client.many(tcp_ask_fn, 40, VIP, 80))) == {"srv1", "srv2"}
    net.datapath.services.upsert_service(f, [Backend(net.srv1.ip, 8080)])
    assert servers(net.client.many(tcp_ask_fn, 50, VIP, 80)) == {"srv1": 50}
    assert net.datapath.services.list_services() == {f: [Backend(net.srv1.ip, 8080)]}
    assert Backend(net.srv2.ip, 9090) not in net.datapath.services.backend_ids().values()


def test_a_deleted_service_refuses_connections_at_once(net: Topology) -> None:
    f = two_backends(net)
    assert net.client.tcp_ask(VIP, 80)
    assert net.datapath.services.delete_service(f)
    assert net.datapath.services.list_services() == {}
    started = time.monotonic()
    assert net.client.tcp_try(VIP, 80, timeout=5) is None
    # The node has no route to the VIP and answers with ICMP unreachable: no timeout to wait for.
    assert time.monotonic() - started < 2.5


def test_a_service_without_backends_drops_and_counts(net: Topology) -> None:
    net.datapath.services.upsert_service(Frontend(VIP, 80), [])
    before = net.datapath.metrics.read()
    assert net.client.tcp_try(VIP, 80, timeout=0.3) is None
    assert delta(before, net.datapath.metrics.read(), "DROP_NO_SERVICE_BACKEND") >= 1


# ------------------------------------------------------------------ restarts and upgrades


def test_reload_keeps_maps_and_established_connections(net: Topology) -> None:
    f = two_backends(net)
    before = net.datapath.services.list_services()
    with net.client.connect(VIP, 80) as sock:
        first = ask(sock)
        # An agent restart: a new object, load() finds the pins and reuses them.
        restarted = ClusterDatapath(net.bpffs, net.cluster)
        try:
            assert restarted.load() is False
            assert restarted.services.list_services() == before
            assert restarted.services.rev_nat_ids() == net.datapath.services.rev_nat_ids()
            assert ask(sock) == first
            for pod in net.pods.values():
                restarted.attach(net.node, pod.host_if, pod.info())
            assert ask(sock) == first
            # An agent upgrade: new programs against the same maps, every link swapped in place.
            pin = restarted.links_dir / net.node / net.client.host_if / "ingress"
            old_prog = _link_prog(pin)
            restarted.upgrade()
            assert _link_prog(pin) != old_prog
            assert ask(sock) == first
            assert restarted.services.get(f) == before[f]
        finally:
            restarted.close()
    counts = servers(net.client.many(tcp_ask_fn, 40, VIP, 80))
    assert set(counts) == {"srv1", "srv2"}


def _link_prog(pin: object) -> int:
    fd = bpf.obj_get(pin)  # type: ignore[arg-type]
    try:
        return bpf.link_info(fd).prog_id
    finally:
        bpf.close_fd(fd)


def test_tc_attach_mode_and_detach(net: Topology) -> None:
    dp, srv2 = net.datapath, net.srv2
    dp.detach(net.node, srv2.host_if)
    assert dp.endpoints.get(srv2.ip) is None
    assert (net.node, srv2.host_if) not in dp.attachments()
    tc = ClusterDatapath(net.bpffs, net.cluster, attach_mode="tc")
    try:
        tc.attach(net.node, srv2.host_if, srv2.info(ingress=True))
        assert net.client.tcp_try(srv2.ip, 80) is None  # enforced with no allow entry: the tc filter runs
        tc.policy.replace_endpoint(srv2.endpoint_id, [PolicyEntry("ingress", net.client.identity)])
        assert net.client.tcp_ask(srv2.ip, 80).split()[0] == "srv2"
        tc.attach(net.node, srv2.host_if, srv2.info(ingress=True))  # idempotent
        tc.detach(net.node, srv2.host_if)
        with IPRoute(netns=net.node, flags=0) as ipr:
            idx = ipr.link_lookup(ifname=srv2.host_if)[0]
            assert not [f for f in ipr.get_filters(index=idx, parent=0xFFFFFFF2) if f.get_attr("TCA_KIND") == "bpf"]
    finally:
        tc.close()


# ------------------------------------------------------------------ policy


def test_ingress_policy_admits_identity_a_and_drops_identity_b(net: Topology) -> None:
    dp, srv1 = net.datapath, net.srv1
    dp.attach(net.node, srv1.host_if, srv1.info(ingress=True))
    dp.policy.replace_endpoint(srv1.endpoint_id, [PolicyEntry("ingress", net.client.identity, 80, TCP)])
    before = dp.metrics.read()
    assert net.client.tcp_ask(srv1.ip, 80).split()[0] == "srv1"  # identity A
    assert net.srv2.tcp_try(srv1.ip, 80) is None  # identity B
    assert net.client.tcp_try(srv1.ip, 8080) is None  # A, but another port
    assert delta(before, dp.metrics.read(), "DROP_POLICY") >= 2


def test_deny_beats_a_more_specific_allow(net: Topology) -> None:
    dp, srv1 = net.datapath, net.srv1
    dp.attach(net.node, srv1.host_if, srv1.info(ingress=True))
    allow = PolicyEntry("ingress", net.client.identity, 80, TCP)
    deny = PolicyEntry("ingress", net.client.identity, deny=True)  # L3-only deny
    dp.policy.replace_endpoint(srv1.endpoint_id, [allow, deny])
    assert dp.policy.entries(srv1.endpoint_id) == sorted([allow, deny])
    before = dp.metrics.read()
    assert net.client.tcp_try(srv1.ip, 80) is None
    assert delta(before, dp.metrics.read(), "DROP_POLICY_DENY") >= 1
    dp.policy.replace_endpoint(srv1.endpoint_id, [allow])
    assert net.client.tcp_ask(srv1.ip, 80).split()[0] == "srv1"


def test_replies_to_an_allowed_flow_pass_ingress_enforcement(net: Topology) -> None:
    dp, client = net.datapath, net.client
    dp.attach(net.node, client.host_if, client.info(ingress=True))  # enforced, no entry at all
    assert client.tcp_ask(net.srv1.ip, 80).split()[0] == "srv1"  # replies pass through conntrack
    assert client.udp_ask(net.srv1.ip, 8080) is not None
    assert net.srv2.tcp_try(client.ip, 80) is None  # a new inbound flow does not


def test_egress_policy_sees_the_backend_not_the_vip(net: Topology) -> None:
    dp, client = net.datapath, net.client
    dp.attach(net.node, client.host_if, client.info(egress=True))
    dp.policy.replace_endpoint(client.endpoint_id, [PolicyEntry("egress", net.srv1.identity, 8080, TCP)])
    f = Frontend(VIP, 80)
    dp.services.upsert_service(f, [Backend(net.srv1.ip, 8080)])
    assert client.tcp_ask(VIP, 80).split()[0] == "srv1"
    dp.services.upsert_service(f, [Backend(net.srv2.ip, 9090)])
    before = dp.metrics.read()
    assert client.tcp_try(VIP, 80) is None
    assert delta(before, dp.metrics.read(), "DROP_POLICY") >= 1
    # An L4-only entry (any identity, port 9090) lets the other backend in.
    dp.policy.replace_endpoint(
        client.endpoint_id,
        [PolicyEntry("egress", net.srv1.identity, 8080, TCP), PolicyEntry("egress", 0, 9090, TCP)],
    )
    assert client.tcp_ask(VIP, 80).split()[0] == "srv2"


def test_an_address_missing_from_the_ipcache_is_world(net: Topology) -> None:
    dp, srv1 = net.datapath, net.srv1
    dp.attach(net.node, srv1.host_if, srv1.info(ingress=True))
    dp.policy.replace_endpoint(srv1.endpoint_id, [PolicyEntry("ingress", 2)])  # reserved:world
    assert net.srv2.tcp_try(srv1.ip, 80) is None
    dp.ipcache.delete(net.srv2.ip)
    assert net.srv2.tcp_ask(srv1.ip, 80).split()[0] == "srv1"


def test_a_spoofed_source_address_is_dropped(net: Topology) -> None:
    client = net.client
    with IPRoute(netns=client.netns, flags=0) as ipr:
        ipr.addr("add", index=ipr.link_lookup(ifname="eth0")[0], address="10.201.1.99", prefixlen=32)

    def from_spoofed() -> str | None:
        with socket.socket() as s:
            s.settimeout(0.3)
            s.bind(("10.201.1.99", 0))
            try:
                s.connect((net.srv1.ip, 80))
            except OSError:
                return None
            return "connected"

    before = net.datapath.metrics.read()
    try:
        assert client.run(from_spoofed) is None
    finally:
        with IPRoute(netns=client.netns, flags=0) as ipr:
            ipr.addr("del", index=ipr.link_lookup(ifname="eth0")[0], address="10.201.1.99", prefixlen=32)
    assert delta(before, net.datapath.metrics.read(), "DROP_INVALID_SIP") >= 1
