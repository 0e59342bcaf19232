"""topology.py's effects, proven with real TCP traffic between pods (root).

One underlay; cluster ca with two nodes and cluster cb with one, pods on every node. An echo
server in a pod answers with the address it saw the client connect from, so the tests show
both that a path works and that the source pod IP arrives unchanged (no NAT, no tunnel).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from fleetnet.local import netlink, procs, topology
from fleetnet.local.procs import ProcRecord
from fleetnet.local.topology import NodeSpec, PodSpec, UnderlaySpec
from tests.support.names import unique
from tests.support.wait import wait_for

pytestmark = pytest.mark.root

# Ports live inside pod namespaces this test made, so no other test or program can hold them.
PORT = 7007

ECHO_SERVER = """
import socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", int(sys.argv[1])))
srv.listen(16)
print("listening", flush=True)
while True:
    conn, peer = srv.accept()
    with conn:
        conn.sendall(peer[0].encode() + b" " + conn.recv(1024))
"""

ECHO_CLIENT = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[4])) as s:
        s.sendall(sys.argv[3].encode())
        print(s.recv(1024).decode())
except OSError as e:
    print(f"error: {e}")
    sys.exit(1)
"""


@dataclass
class World:
    prefix: str
    underlay: UnderlaySpec
    ca: list[NodeSpec]
    cb: list[NodeSpec]
    pods: dict[str, PodSpec]  # "ca-n0-a" → pod
    servers: list[ProcRecord]


def echo(client: PodSpec, server: PodSpec, timeout: float = 2.0) -> str:
    """The address the echo server in ``server`` saw ``client`` connect from, or the error.

    A refused or unreachable destination fails at once; only a lost reply waits for ``timeout``.
    """
    token = unique("t")
    argv = [sys.executable, "-c", ECHO_CLIENT, server.ip, str(PORT), token, str(timeout)]
    done = procs.run_in_netns(client.netns, argv, timeout=timeout + 10)
    out = done.stdout.strip()
    if done.returncode == 0:
        assert out.endswith(f" {token}")
        return out.removesuffix(f" {token}")
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    prefix = unique("fnt")
    logs = tmp_path_factory.mktemp("traffic")
    underlay = topology.underlay_spec(prefix, "ul0", "172.30.0.0/16")
    ca = topology.plan_nodes(prefix, "ca", underlay, "10.11.0.0/16", ["n0", "n1"])
    cb = topology.plan_nodes(prefix, "cb", underlay, "10.12.0.0/16", ["n0"], [n.ip for n in ca])
    world = World(prefix, underlay, ca, cb, {}, [])
    try:
        topology.ensure_underlay(underlay)
        for node in ca + cb:
            topology.add_node(node)
        topology.install_routes(topology.cluster_routes(ca))
        topology.install_routes(topology.cluster_routes(cb))
        for node in ca + cb:
            used: list[str] = []
            for suffix in ("a", "b"):
                ip = topology.allocate_pod_ip(node.pod_cidr, used)
                used.append(ip)
                pod = topology.pod_spec(prefix, node, "default", f"{node.name}-{suffix}", ip)
                topology.add_pod(pod)
                world.pods[f"{node.cluster}-{node.name}-{suffix}"] = pod
        for key in ("ca-n0-a", "cb-n0-a"):
            log = logs / f"{key}.log"
            rec = procs.spawn(
                [sys.executable, "-c", ECHO_SERVER, str(PORT)],
                netns=world.pods[key].netns,
                log_path=str(log),
                pid_path=str(logs / f"{key}.pid"),
            )
            world.servers.append(rec)
            wait_for(partial(listening, log), what=f"echo server {key}")
        yield world
    finally:
        teardown(world)
        assert netlink.list_netns(prefix) == []


def listening(log: Path) -> bool:
    return log.exists() and "listening" in log.read_text()


def teardown(world: World) -> None:
    try:
        for rec in world.servers:
            procs.terminate(rec, timeout=2.0)
        for pod in world.pods.values():
            topology.remove_pod(pod)
        for node in world.ca + world.cb:
            topology.remove_node(node)
        topology.remove_underlay(world.underlay)
    finally:
        topology.remove_all(world.prefix)  # the safety net if an ordered step failed


def test_pod_to_pod_on_the_same_node(world: World) -> None:
    client, server = world.pods["ca-n0-b"], world.pods["ca-n0-a"]
    assert client.ip == echo(client, server)


def test_pod_to_pod_across_nodes_of_a_cluster(world: World) -> None:
    server = world.pods["ca-n0-a"]
    for key in ("ca-n1-a", "ca-n1-b"):
        assert world.pods[key].ip == echo(world.pods[key], server)
    assert world.pods["ca-n0-a"].ip == echo(world.pods["ca-n0-a"], world.pods["ca-n0-a"])  # to itself


def test_across_clusters_only_while_routes_are_installed(world: World) -> None:
    ca_pod, cb_pod = world.pods["ca-n1-b"], world.pods["cb-n0-b"]
    ca_server, cb_server = world.pods["ca-n0-a"], world.pods["cb-n0-a"]
    assert echo(ca_pod, cb_server).startswith("error")
    assert echo(cb_pod, ca_server).startswith("error")

    one_way = topology.remote_routes(world.ca, world.cb)
    other_way = topology.remote_routes(world.cb, world.ca)
    try:
        topology.install_routes(one_way)
        # The SYN gets there but the replies have no way back yet (a namespace-local path answers
        # in well under a millisecond, so half a second is plenty).
        assert echo(ca_pod, cb_server, timeout=0.5).startswith("error")
        topology.install_routes(other_way)
        assert ca_pod.ip == echo(ca_pod, cb_server)  # the source pod IP arrives unchanged
        assert cb_pod.ip == echo(cb_pod, ca_server)
    finally:
        topology.withdraw_routes(one_way)
        topology.withdraw_routes(other_way)
    assert echo(ca_pod, cb_server).startswith("error")
    assert echo(cb_pod, ca_server).startswith("error")


def test_adding_the_same_pieces_again_is_harmless(world: World) -> None:
    topology.ensure_underlay(world.underlay)
    topology.add_node(world.ca[1])
    topology.add_pod(world.pods["ca-n1-a"])
    topology.install_routes(topology.cluster_routes(world.ca))
    assert world.pods["ca-n1-a"].ip == echo(world.pods["ca-n1-a"], world.pods["ca-n0-a"])


def test_a_node_with_three_pods_takes_well_under_a_second(world: World, tmp_path: Path) -> None:
    node = topology.plan_nodes(
        world.prefix, "cc", world.underlay, "10.13.0.0/16", ["n0"], [n.ip for n in world.ca + world.cb]
    )[0]
    pods = [topology.pod_spec(world.prefix, node, "default", f"p{i}", f"10.13.0.{i + 2}") for i in range(3)]
    try:
        started = time.perf_counter()
        topology.add_node(node)
        node_done = time.perf_counter()
        for pod in pods:
            topology.add_pod(pod)
        pods_done = time.perf_counter()
        print(f"node {1000 * (node_done - started):.1f} ms, 3 pods {1000 * (pods_done - node_done):.1f} ms")
        assert pods_done - started < 1.0
        assert {f"{p.ip}/32" for p in pods} <= {r.dst for r in netlink.list_routes(node.netns)}
    finally:
        for pod in pods:
            topology.remove_pod(pod)
        topology.remove_node(node)


def test_teardown_leaves_no_namespace_or_hosts_file(tmp_path: Path) -> None:
    prefix = unique("fnt")
    underlay = topology.underlay_spec(prefix, "ul0", "172.31.0.0/16")
    (node,) = topology.plan_nodes(prefix, "cd", underlay, "10.14.0.0/16", ["n0"])
    pod = topology.pod_spec(prefix, node, "default", "web", "10.14.0.2")
    rec = None
    try:
        topology.ensure_underlay(underlay)
        topology.add_node(node)
        topology.add_pod(pod)
        topology.write_hosts(pod.netns, {"10.96.0.1": ["kubernetes"]})
        rec = procs.spawn(
            [sys.executable, "-c", "import time; time.sleep(60)", prefix],
            netns=pod.netns,
            log_path=str(tmp_path / "log"),
            pid_path=str(tmp_path / "pid"),
        )
        assert len(netlink.list_netns(prefix)) == 3
    finally:
        if rec is not None:
            procs.terminate(rec)
        topology.remove_pod(pod)
        topology.remove_node(node)
        topology.remove_underlay(underlay)
    assert netlink.list_netns(prefix) == []
    assert topology.owned_netns(prefix) == []
    assert not Path(topology.hosts_path(pod.netns)).parent.exists()
