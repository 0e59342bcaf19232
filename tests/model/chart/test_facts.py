"""A live cluster's Cilium facts, read from its objects, and the sentences of failed prerequisites."""

from __future__ import annotations

from typing import Any

import pytest

from fleetnet.model.chart import (
    ChartVersion,
    cluster_id_ipam_problem,
    max_connected_problem,
    read_cilium_facts,
    read_cilium_version,
    read_identity,
    read_ipam,
    read_kube_proxy,
    read_pod_cidrs,
    read_routing,
)


def _config(**data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cilium-config"}, "data": data}


def _daemonset(image: str, name: str = "cilium-agent") -> dict[str, Any]:
    containers = [{"name": "sidecar", "image": "busybox:1"}, {"name": name, "image": image}]
    return {
        "kind": "DaemonSet",
        "metadata": {"name": "cilium"},
        "spec": {"template": {"spec": {"containers": containers}}},
    }


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("quay.io/cilium/cilium:v1.19.1@sha256:0123abcd", "1.19.1"),
        ("quay.io/cilium/cilium:v1.16.6", "1.16.6"),
        ("registry.local:5000/mirror/cilium:v1.18.3", "1.18.3"),
        ("rancher/mirrored-cilium-cilium:v1.17.6", "1.17.6"),
    ],
)
def test_version_from_the_agent_image(image: str, version: str) -> None:
    fact = read_cilium_version("c1", _daemonset(image))
    assert fact.version == ChartVersion.parse(version)
    assert fact.image == image
    assert fact.problem is None


def test_version_problems() -> None:
    assert read_cilium_version("c1", None).problem == "c1 does not run Cilium: it has no cilium DaemonSet."
    old = read_cilium_version("c1", _daemonset("quay.io/cilium/cilium:v1.15.6"))
    assert old.problem == (
        "c1 runs Cilium 1.15.6 (cilium DaemonSet image quay.io/cilium/cilium:v1.15.6); "
        "fleetnet manages ClusterMesh for Cilium 1.16 to 1.19."
    )
    latest = read_cilium_version("c1", _daemonset("quay.io/cilium/cilium:latest"))
    assert latest.version is None
    assert latest.problem is not None
    assert "whose tag does not name a Cilium version" in latest.problem
    untagged = read_cilium_version("c1", _daemonset("registry.local:5000/cilium"))
    assert untagged.problem is not None


def test_routing_native_and_tunnel() -> None:
    native = read_routing("c1", _config(**{"routing-mode": "native"}))
    assert (native.mode, native.tunnel_protocol, native.problem) == ("native", None, None)
    tunnel = read_routing("c1", _config(**{"routing-mode": "tunnel", "tunnel-protocol": "geneve"}))
    assert (tunnel.mode, tunnel.tunnel_protocol) == ("tunnel", "geneve")
    assert read_routing("c1", _config(**{"routing-mode": "tunnel"})).problem == (
        "c1 uses tunnel routing (cilium-config routing-mode: tunnel); cross-cluster networking needs native routing."
    )


def test_routing_older_tunnel_key_and_default() -> None:
    assert read_routing("c1", _config(tunnel="disabled")).mode == "native"
    vxlan = read_routing("c1", _config(tunnel="vxlan"))
    assert (vxlan.mode, vxlan.tunnel_protocol) == ("tunnel", "vxlan")
    assert vxlan.problem == (
        "c1 uses tunnel routing (cilium-config tunnel: vxlan); cross-cluster networking needs native routing."
    )
    default = read_routing("c1", _config())
    assert default.mode == "tunnel"
    assert default.problem is not None
    assert "sets no routing-mode, so Cilium's default tunnel applies" in default.problem
    odd = read_routing("c1", _config(**{"routing-mode": "magic"}))
    assert odd.problem == (
        "c1 has a routing mode Cilium does not know (cilium-config routing-mode: magic); set routing-mode: native."
    )


def test_ipam_and_the_eni_cluster_id_rule() -> None:
    assert read_ipam(_config()).mode == "cluster-pool"
    eni = read_ipam(_config(ipam="eni"))
    assert cluster_id_ipam_problem("c1", eni, 5) is None
    assert cluster_id_ipam_problem("c1", eni, 130) == (
        "c1 cannot take cluster id 130 (cilium-config ipam: eni): Cilium refuses ids 128-255 and 384-511 on that "
        "datapath; give it an id below 128."
    )
    chained = read_ipam(_config(**{"cni-chaining-mode": "aws-cni"}))
    assert cluster_id_ipam_problem("c1", chained, 400) is not None
    assert cluster_id_ipam_problem("c1", read_ipam(_config(ipam="kubernetes")), 200) is None


@pytest.mark.parametrize(
    ("data", "kpr", "socket_lb"),
    [
        ({"kube-proxy-replacement": "true"}, True, True),
        ({"kube-proxy-replacement": "strict"}, True, True),
        ({"kube-proxy-replacement": "false", "bpf-lb-sock": "true"}, False, True),
        ({"kube-proxy-replacement": "partial"}, False, False),
        ({}, False, False),
    ],
)
def test_kube_proxy_replacement(data: dict[str, str], kpr: bool, socket_lb: bool) -> None:
    fact = read_kube_proxy("c1", _config(**data))
    assert (fact.kube_proxy_replacement, fact.socket_lb) == (kpr, socket_lb)
    assert (fact.note is None) == socket_lb


def test_identity() -> None:
    fresh = read_identity("c1", _config())
    assert (fresh.name, fresh.cluster_id, fresh.max_connected_clusters, fresh.problem) == ("default", 0, 255, None)
    set_ = read_identity("c1", _config(**{"cluster-name": "c1", "cluster-id": "4", "max-connected-clusters": "511"}))
    assert (set_.name, set_.cluster_id, set_.max_connected_clusters) == ("c1", 4, 511)
    assert max_connected_problem("c1", set_, 255) == (
        "c1 runs max-connected-clusters 511 (cilium-config max-connected-clusters: 511) but the network uses 255; "
        "it cannot change on a running cluster."
    )
    assert max_connected_problem("c1", set_, 511) is None
    bad = read_identity("c1", _config(**{"cluster-id": "x"}))
    assert bad.problem == "c1 has a cluster id that is not a number (cilium-config cluster-id: x)."


def test_pod_cidrs_from_cilium_nodes_or_nodes() -> None:
    nodes: list[dict[str, Any]] = [
        {"spec": {"podCIDRs": ["10.1.1.0/24", "fd00:1:1::/64"]}},
        {"spec": {"podCIDR": "10.1.0.0/24"}},
    ]
    cilium_nodes: list[dict[str, Any]] = [
        {"spec": {"ipam": {"podCIDRs": ["10.20.1.0/24"]}}},
        {"spec": {"ipam": {"podCIDRs": ["10.20.0.0/24"]}}},
    ]
    pool = read_pod_cidrs("c1", read_ipam(_config()), nodes, cilium_nodes)
    assert (pool.cidrs, pool.source) == (("10.20.0.0/24", "10.20.1.0/24"), "CiliumNode")
    kube = read_pod_cidrs("c1", read_ipam(_config(ipam="kubernetes")), nodes, cilium_nodes)
    assert (kube.cidrs, kube.source) == (("10.1.0.0/24", "10.1.1.0/24", "fd00:1:1::/64"), "Node")
    fallback = read_pod_cidrs("c1", read_ipam(_config()), nodes, [])
    assert fallback.source == "Node"
    none = read_pod_cidrs("c1", read_ipam(_config()), [], [])
    assert none.problem == (
        "c1 has no pod CIDRs: no CiliumNode spec.ipam.podCIDRs and no Node spec.podCIDRs "
        "(cilium-config sets no ipam (cluster-pool))."
    )


def test_all_facts_together() -> None:
    facts = read_cilium_facts(
        "c1",
        daemonset=_daemonset("quay.io/cilium/cilium:v1.19.1"),
        config_map=_config(**{"routing-mode": "tunnel", "cluster-name": "c1", "cluster-id": "1"}),
        cilium_nodes=[{"spec": {"ipam": {"podCIDRs": ["10.20.0.0/24"]}}}],
    )
    assert facts.version.version == ChartVersion.parse("1.19.1")
    assert facts.identity.cluster_id == 1
    assert facts.problems == (
        "c1 uses tunnel routing (cilium-config routing-mode: tunnel); cross-cluster networking needs native routing.",
    )
    clean = read_cilium_facts(
        "c1",
        daemonset=_daemonset("quay.io/cilium/cilium:v1.19.1"),
        config_map=_config(**{"routing-mode": "native"}),
        nodes=[{"spec": {"podCIDRs": ["10.1.0.0/24"]}}],
    )
    assert clean.problems == ()
