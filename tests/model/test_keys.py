"""The ClusterMesh keyspace: builders give Cilium's exact keys, parsers read them back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetnet.errors import InvalidInput
from fleetnet.model import keys
from fleetnet.model.keys import KeyKind, ParsedKey, parse_key


def test_join_key_follows_cilium() -> None:
    assert keys.join_key("cilium", "state", "nodes", "v1") == "cilium/state/nodes/v1"
    assert keys.join_key("cilium/", "/state//", "x/") == "cilium/state/x"
    assert keys.join_key("a", "", "b") == "a/b"
    assert keys.join_key() == ""


def test_state_to_cache_prefix() -> None:
    # the three cases of cilium's TestStateToCachePrefix
    assert keys.state_to_cache_prefix("cilium/state/foo/bar") == "cilium/cache/foo/bar"
    assert keys.state_to_cache_prefix("cilium/foo/bar") == "cilium/foo/bar"
    assert keys.state_to_cache_prefix("cilium/foo/bar/cilium/state/qux") == "cilium/foo/bar/cilium/state/qux"


def test_builders_match_the_reference_keys() -> None:
    assert keys.cluster_config_key("cluster3") == "cilium/cluster-config/cluster3"
    assert keys.node_key("cluster3", "test-node-1") == "cilium/state/nodes/v1/cluster3/test-node-1"
    assert keys.service_key("cluster3", "ns-alpha", "echo-service") == (
        "cilium/state/services/v1/cluster3/ns-alpha/echo-service"
    )
    assert keys.ip_key("10.244.2.74") == "cilium/state/ip/v1/default/10.244.2.74"
    assert keys.ip_key("10.0.0.0/24") == "cilium/state/ip/v1/default/10.0.0.0/24"
    assert keys.identity_key(199472) == "cilium/state/identities/v1/id/199472"
    assert keys.synced_key("cluster3", keys.IP_IDENTITIES_PREFIX) == "cilium/synced/cluster3/cilium/state/ip/v1"
    assert keys.HEARTBEAT_PATH == "cilium/.heartbeat"
    assert keys.service_export_key("c", "ns", "s") == "cilium/state/serviceexports/v1/c/ns/s"


def test_kvstoremesh_cache_keys() -> None:
    assert keys.node_key("c2", "n1", cached=True) == "cilium/cache/nodes/v1/c2/n1"
    assert keys.service_key("c2", "ns", "s", cached=True) == "cilium/cache/services/v1/c2/ns/s"
    assert keys.ip_key("10.0.0.1", cached_cluster="c2") == "cilium/cache/ip/v1/c2/10.0.0.1"
    assert keys.identity_key(7, cached_cluster="c2") == "cilium/cache/identities/v1/c2/id/7"
    assert keys.synced_keys("c2", cached=True) == (
        "cilium/synced/c2/cilium/cache/nodes/v1",
        "cilium/synced/c2/cilium/cache/services/v1",
        "cilium/synced/c2/cilium/cache/ip/v1",
        "cilium/synced/c2/cilium/cache/identities/v1",
    )


def test_watch_prefixes_end_in_a_slash() -> None:
    # so that c1's watch never sees c10's keys
    assert keys.nodes_watch_prefix("c1") == "cilium/state/nodes/v1/c1/"
    assert keys.services_watch_prefix("c1", cached=True) == "cilium/cache/services/v1/c1/"
    assert keys.ip_watch_prefix() == "cilium/state/ip/v1/default/"
    assert keys.ip_watch_prefix(cached_cluster="c1") == "cilium/cache/ip/v1/c1/"
    assert keys.identities_watch_prefix() == "cilium/state/identities/v1/id/"
    assert keys.identities_watch_prefix(cached_cluster="c1") == "cilium/cache/identities/v1/c1/id/"


@pytest.mark.parametrize(
    ("key", "parsed"),
    [
        ("cilium/cluster-config/c1", ParsedKey(KeyKind.CLUSTER_CONFIG, cluster="c1")),
        ("cilium/state/nodes/v1/c1/n1", ParsedKey(KeyKind.NODE, cluster="c1", name="n1")),
        ("cilium/cache/nodes/v1/c1/n1", ParsedKey(KeyKind.NODE, cluster="c1", name="n1", cached=True)),
        (
            "cilium/state/services/v1/c1/ns/s",
            ParsedKey(KeyKind.SERVICE, cluster="c1", namespace="ns", name="s"),
        ),
        ("cilium/state/ip/v1/default/10.0.0.1", ParsedKey(KeyKind.IP, ip="10.0.0.1")),
        ("cilium/state/ip/v1/default/fd00::1/128", ParsedKey(KeyKind.IP, ip="fd00::1/128")),
        ("cilium/cache/ip/v1/c1/10.0.0.1", ParsedKey(KeyKind.IP, cluster="c1", ip="10.0.0.1", cached=True)),
        ("cilium/state/identities/v1/id/199472", ParsedKey(KeyKind.IDENTITY, identity=199472)),
        ("cilium/cache/identities/v1/c1/id/5", ParsedKey(KeyKind.IDENTITY, cluster="c1", identity=5, cached=True)),
        (
            "cilium/synced/c1/cilium/state/nodes/v1",
            ParsedKey(KeyKind.SYNCED, cluster="c1", prefix="cilium/state/nodes/v1"),
        ),
        ("cilium/.heartbeat", ParsedKey(KeyKind.HEARTBEAT)),
    ],
)
def test_parse_key(key: str, parsed: ParsedKey) -> None:
    assert parse_key(key) == parsed


@pytest.mark.parametrize(
    "key",
    [
        "",
        "cilium",
        "cilium/state/nodes/v1/c1",
        "cilium/state/nodes/v2/c1/n1",
        "cilium/state/nodes/v1/c1/n1/extra",
        "cilium/state/ip/v1/other/10.0.0.1",
        "cilium/state/identities/v1/id/abc",
        "cilium/state/identities/v1/id/007",
        "cilium/state/identities/v1/value/k8s:a=b;/10.0.0.1",
        "cilium/state/services/v1/c1//s",
        "other/state/nodes/v1/c1/n1",
    ],
)
def test_parse_key_refuses_other_keys(key: str) -> None:
    with pytest.raises(InvalidInput):
        parse_key(key)


def test_builders_refuse_parts_that_would_change_the_key() -> None:
    for bad in ("", "a/b"):
        with pytest.raises(InvalidInput):
            keys.node_key("c1", bad)
        with pytest.raises(InvalidInput):
            keys.service_key(bad, "ns", "s")


_name = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)


@given(_name, _name, _name, st.booleans())
def test_service_and_node_keys_round_trip(cluster: str, ns: str, name: str, cached: bool) -> None:
    assert parse_key(keys.service_key(cluster, ns, name, cached=cached)) == ParsedKey(
        KeyKind.SERVICE, cluster=cluster, namespace=ns, name=name, cached=cached
    )
    assert parse_key(keys.node_key(cluster, name, cached=cached)) == ParsedKey(
        KeyKind.NODE, cluster=cluster, name=name, cached=cached
    )


@given(st.ip_addresses(v=4), st.integers(0, 2**32 - 1))
def test_ip_and_identity_keys_round_trip(ip: object, identity: int) -> None:
    assert parse_key(keys.ip_key(str(ip))).ip == str(ip)
    assert parse_key(keys.identity_key(identity)).identity == identity
