"""The values: what Cilium would refuse is refused up front, with a sentence saying what to change."""

from __future__ import annotations

from typing import Any

import pytest

from fleetnet.errors import InvalidInput
from fleetnet.model.chart import ChartVersion, MemberCerts, Peer
from tests.model.chart import pem, values


def test_versions_parse_and_refuse() -> None:
    assert str(ChartVersion.parse("v1.19.2")) == "1.19.2"
    assert ChartVersion.parse("1.19.0-rc.1").tag == "v1.19.0-rc.1"
    assert ChartVersion.parse("1.10.0") > ChartVersion.parse("1.9.9")
    with pytest.raises(InvalidInput, match=r"major\.minor\.patch"):
        ChartVersion.parse("1.19")
    with pytest.raises(InvalidInput, match=r"Cilium 1\.15\.6 is not supported: fleetnet renders .* 1\.16 to 1\.19"):
        ChartVersion.supported("1.15.6")
    with pytest.raises(InvalidInput, match="not supported"):
        values("1.20.0")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cluster_name": "default"}, "'default' is Cilium's name for a cluster outside any mesh"),
        ({"cluster_name": "C1"}, "not a valid Cilium cluster name"),
        ({"cluster_id": 0}, "cannot have cluster id 0: ClusterID 0 is reserved"),
        ({"cluster_id": 256}, "ClusterID > 255 is not supported"),
        ({"max_connected_clusters": 300}, r"supported values are \[255, 511\]"),
        ({"service_type": "ExternalName"}, "is not one of NodePort, LoadBalancer, ClusterIP"),
        ({"service_type": "LoadBalancer", "node_port": 32379}, "only meaningful with service type NodePort"),
        ({"replicas": 0}, "at least one replica"),
        ({"cache_ttl_seconds": -1.0}, "zero .* or positive"),
        ({"peers": (Peer("c1", 2, ("https://10.0.0.2:2379",)),)}, "cannot be its own peer"),
        ({"peers": (Peer("c2", 1, ("https://10.0.0.2:2379",)),)}, "already used by c1"),
        (
            {"peers": (Peer("c2", 2, ("https://10.0.0.2:2379",)), Peer("c2", 3, ("https://10.0.0.3:2379",)))},
            "given twice",
        ),
        ({"peers": (Peer("c2", 300, ("https://10.0.0.2:2379",)),)}, "peer c2 cannot have cluster id 300"),
        ({"peer_addressing": "hostname", "kvstoremesh": False}, "hostAliases on the cilium DaemonSet"),
        (
            {"peer_addressing": "hostname", "peers": (Peer("c2", 2, ("https://c2.example.com:2379",)),)},
            "needs IP endpoints",
        ),
        (
            {
                "peer_addressing": "hostname",
                "peers": (Peer("c2", 2, ("https://10.0.0.2:2379", "https://10.0.0.3:2380")),),
            },
            "one port",
        ),
    ],
)
def test_refusals(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        values(**overrides)


def test_kvstoremesh_needs_the_local_certificate_from_1_17() -> None:
    certs = MemberCerts(server=pem("server"), admin=pem("admin"), remote=pem("remote"))
    with pytest.raises(InvalidInput, match="issue that certificate"):
        values("1.17.6", certs=certs)
    values("1.16.9", certs=certs)  # 1.16 agents read the cache with the remote certificate
    values("1.19.2", certs=certs, kvstoremesh=False)


@pytest.mark.parametrize(
    "url",
    ["http://10.0.0.2:2379", "https://10.0.0.2", "10.0.0.2:2379", "https://10.0.0.2:2379/x", "https://[fd00::1:2379"],
)
def test_peer_endpoints_must_be_https_urls_with_a_port(url: str) -> None:
    with pytest.raises(InvalidInput, match="peer c2 endpoint"):
        Peer("c2", 2, (url,))


def test_peer_needs_an_endpoint() -> None:
    with pytest.raises(InvalidInput, match="has no clustermesh-apiserver endpoint"):
        Peer("c2", 2, ())


def test_peers_are_kept_sorted_by_name() -> None:
    v = values(peers=(Peer("zz", 9, ("https://10.0.0.9:2379",)), Peer("aa", 8, ("https://10.0.0.8:2379",))))
    assert [p.name for p in v.peers] == ["aa", "zz"]


def test_values_are_hashable_and_comparable() -> None:
    assert values() == values()
    assert hash(values(peers=())) == hash(values(peers=()))
