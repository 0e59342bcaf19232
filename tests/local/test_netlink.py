"""netlink.py against the real kernel, inside namespaces the test makes (root), plus its input checks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from fleetnet.errors import InvalidInput
from fleetnet.local import netlink
from fleetnet.local.netlink import LinkNotFound, NamespaceNotFound, NetlinkFailure, Route
from tests.support.names import unique

NetnsFactory = Callable[[], str]


@pytest.fixture
def make_netns() -> Iterator[NetnsFactory]:
    made: list[str] = []

    def make() -> str:
        name = unique("fnt")
        made.append(name)
        netlink.create_netns(name)
        netlink.set_link_up(name, "lo")
        return name

    try:
        yield make
    finally:
        for name in made:
            netlink.delete_netns(name)
        assert not set(made) & set(netlink.list_netns())


# --- no root needed: inputs are checked before anything is touched ---------------------------------


@pytest.mark.parametrize("key", ["kernel.pid_max", "net", "net..x", "net.ipv4/../../x.y", "vm.swappiness"])
def test_only_per_namespace_sysctls_can_be_set(key: str) -> None:
    with pytest.raises(InvalidInput):
        netlink.set_sysctl("whatever", key, 1)


@pytest.mark.parametrize("name", ["", "a/b", "x" * 16, "has space"])
def test_bad_link_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        netlink.create_veth("a", name, "b", "eth0")


@pytest.mark.parametrize("name", ["", "a/b", "..", "."])
def test_bad_namespace_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        netlink.create_netns(name)


def test_routes_need_a_gateway_or_a_device() -> None:
    with pytest.raises(InvalidInput):
        netlink.add_route("whatever", "10.0.0.0/24")
    with pytest.raises(InvalidInput):
        netlink.add_route("whatever", "10.0.0.1/24", dev="eth0")  # host bits set


# --- root ------------------------------------------------------------------------------------------


@pytest.mark.root
def test_namespaces_are_created_listed_and_deleted_idempotently() -> None:
    name = unique("fnt")
    try:
        assert not netlink.netns_exists(name)
        netlink.create_netns(name)
        netlink.create_netns(name)
        assert netlink.netns_exists(name)
        assert [name] == netlink.list_netns(name)
        assert netlink.list_links(name) == ["lo"]
    finally:
        netlink.delete_netns(name)
        netlink.delete_netns(name)
    assert not netlink.netns_exists(name)
    assert netlink.list_netns(name) == []


@pytest.mark.root
def test_a_missing_namespace_is_named_in_the_error() -> None:
    name = unique("fnt")
    with pytest.raises(NamespaceNotFound, match=name):
        netlink.set_link_up(name, "lo")
    netlink.delete_link(name, "eth0")  # removal of something absent is fine
    netlink.delete_route(name, "10.0.0.0/24")


@pytest.mark.root
def test_veth_bridge_and_addresses(make_netns: NetnsFactory) -> None:
    hub, leaf = make_netns(), make_netns()
    netlink.create_bridge(hub, "br0", "172.30.0.1/16")
    netlink.create_bridge(hub, "br0", "172.30.0.1/16")
    netlink.create_veth(hub, "port0", leaf, "eth0", mtu=1400)
    netlink.create_veth(hub, "port0", leaf, "eth0", mtu=1400)
    netlink.attach_to_bridge(hub, "port0", "br0")
    netlink.add_address(leaf, "eth0", "172.30.0.2/16")
    netlink.add_address(leaf, "eth0", "172.30.0.2/16")
    netlink.set_link_up(leaf, "eth0")
    assert netlink.list_links(hub) == ["br0", "lo", "port0"]
    assert netlink.list_links(leaf) == ["eth0", "lo"]
    assert netlink.list_addresses(hub, "br0") == ["172.30.0.1/16"]
    assert netlink.list_addresses(leaf, "eth0") == ["172.30.0.2/16"]
    assert netlink.link_ifindex(leaf, "eth0") > 1
    with pytest.raises(LinkNotFound, match=leaf):
        netlink.link_ifindex(leaf, "nope")
    with pytest.raises(NetlinkFailure, match="not paired"):
        netlink.create_veth(hub, "port0", leaf, "other")
    with pytest.raises(NetlinkFailure, match="not a bridge"):
        netlink.create_bridge(hub, "port0")
    netlink.delete_link(hub, "port0")
    netlink.delete_link(hub, "port0")
    assert netlink.list_links(leaf) == ["lo"]  # the peer went with it


@pytest.mark.root
def test_routes_are_added_replaced_listed_and_deleted(make_netns: NetnsFactory) -> None:
    a, b = make_netns(), make_netns()
    netlink.create_veth(a, "eth0", b, "eth0")
    netlink.add_address(a, "eth0", "172.30.0.2/16")
    netlink.set_link_up(a, "eth0")
    netlink.add_route(a, "10.2.0.0/24", via="172.30.0.3")
    netlink.add_route(a, "10.2.0.0/24", via="172.30.0.3")  # the same again: fine
    with pytest.raises(NetlinkFailure, match="different route"):
        netlink.add_route(a, "10.2.0.0/24", via="172.30.0.4")
    netlink.replace_route(a, "10.2.0.0/24", via="172.30.0.4", dev="eth0")
    netlink.add_route(a, "10.9.9.9/32", dev="eth0", scope="link", src="172.30.0.2")
    netlink.add_route(a, "default", via="172.30.0.3")
    assert {
        Route("0.0.0.0/0", "172.30.0.3", "eth0"),
        Route("10.2.0.0/24", "172.30.0.4", "eth0"),
        Route("10.9.9.9/32", None, "eth0"),
        Route("172.30.0.0/16", None, "eth0"),
    } == set(netlink.list_routes(a))
    netlink.delete_route(a, "10.2.0.0/24")
    netlink.delete_route(a, "10.2.0.0/24")
    netlink.delete_route(a, "default")
    assert {"10.9.9.9/32", "172.30.0.0/16"} == {r.dst for r in netlink.list_routes(a)}


@pytest.mark.root
def test_sysctls_change_only_inside_the_namespace(make_netns: NetnsFactory) -> None:
    a, b = make_netns(), make_netns()
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        root_before = f.read().strip()
    netlink.set_sysctl(a, "net.ipv4.ip_forward", 1)
    netlink.set_sysctl(a, "net.ipv4.conf.all.rp_filter", 0)
    assert netlink.get_sysctl(a, "net.ipv4.ip_forward") == "1"
    assert netlink.get_sysctl(b, "net.ipv4.ip_forward") == "0"
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        assert root_before == f.read().strip()


@pytest.mark.root
async def test_works_from_inside_a_running_event_loop(make_netns: NetnsFactory) -> None:
    a = make_netns()
    assert netlink.list_links(a) == ["lo"]
    assert await asyncio.to_thread(netlink.list_links, a) == ["lo"]
