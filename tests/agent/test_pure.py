"""The agent's pure helpers: routes from Cilium nodes, names in pods, endpoint ids."""

from __future__ import annotations

import base64
import ipaddress
import json

from hypothesis import given
from hypothesis import strategies as st

from fleetnet.agent.datapath import endpoint_id
from fleetnet.agent.routes import NodeRoute, desired_routes, node_route_from_json
from fleetnet.agent.services import hosts_entries
from fleetnet.apiserver.exporter import cluster_config_value, node_value
from fleetnet.hub.mesh import profile_state
from fleetnet.model.cluster import ClusterConfig, NodeConfig
from fleetnet.model.kube_read import read
from fleetnet.model.member import Member, MeshProperties


def cfg(nodes: list[NodeConfig], cluster_id: int = 3) -> ClusterConfig:
    return ClusterConfig(
        name="c3",
        fleet_prefix="fnx",
        pod_cidr="10.3.0.0/16",
        service_cidr="172.16.3.0/24",
        kubernetes_version="1.33.6",
        cilium_version="1.18.3",
        nodes=tuple(nodes),
        bpffs="/x",
        cluster_id=cluster_id,
    )


def test_node_value_round_trips_to_a_route() -> None:
    n = NodeConfig("c3-node1", "ns", "100.64.0.7", "10.3.1.0/24")
    value = node_value(cfg([n]), n.name, n.ip, n.pod_cidr)
    d = json.loads(value)
    assert d["Cluster"] == "c3" and d["ClusterID"] == 3
    assert base64.b64decode(d["IPv4AllocCIDR"]["Mask"]) == bytes([255, 255, 255, 0])
    assert node_route_from_json(value) == NodeRoute("c3-node1", "100.64.0.7", "10.3.1.0/24")


def test_cluster_config_value_is_ciliums_shape() -> None:
    assert json.loads(cluster_config_value(7)) == {
        "id": 7,
        "capabilities": {"syncedCanaries": True, "maxConnectedClusters": 255},
    }


def test_desired_routes_cover_every_other_node() -> None:
    local = [NodeConfig("a", "nsa", "100.64.0.2", "10.1.0.0/24"), NodeConfig("b", "nsb", "100.64.0.3", "10.1.1.0/24")]
    remote = [NodeRoute("r", "100.64.0.9", "10.2.0.0/24")]
    routes = desired_routes(local, remote)
    assert routes == {
        "nsa": {"10.1.1.0/24": "100.64.0.3", "10.2.0.0/24": "100.64.0.9"},
        "nsb": {"10.1.0.0/24": "100.64.0.2", "10.2.0.0/24": "100.64.0.9"},
    }


def test_hosts_entries_name_forms() -> None:
    svc = read(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "echo", "namespace": "demo", "uid": "u"},
            "spec": {"clusterIP": "172.16.3.9", "selector": {"app": "e"}, "ports": [{"port": 80, "protocol": "TCP"}]},
        }
    )
    assert hosts_entries([svc], "demo") == {
        "172.16.3.9": ["echo.demo.svc.cluster.local", "echo.demo.svc", "echo.demo", "echo"]
    }
    assert "echo" not in hosts_entries([svc], "other")["172.16.3.9"]


@given(st.integers(1, 2**16 - 2))
def test_endpoint_ids_unique_inside_a_16(n: int) -> None:
    base = int(ipaddress.IPv4Address("10.7.0.0"))
    a, b = str(ipaddress.IPv4Address(base + n)), str(ipaddress.IPv4Address(base + n + 1))
    assert endpoint_id(a) != endpoint_id(b) and 1 <= endpoint_id(a) <= 0xFFFF


def member(state: str) -> Member:
    return Member("m", "1.33.6", "1.18.3", mesh=MeshProperties("p", 1, "m", state, 0.0))  # type: ignore[arg-type]


def test_profile_state_roll_up() -> None:
    assert profile_state([]) == "NotConnected"
    assert profile_state([member("Connected"), member("Connected")]) == "Connected"
    assert profile_state([member("Failed")]) == "Failed"
    assert profile_state([member("Connected"), member("Connecting")]) == "Applying"
    assert profile_state([member("Connected"), member("Failed")]) == "Degraded"
