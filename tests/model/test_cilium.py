"""Cilium's kvstore values: the reference's examples round-trip, and Cilium's refusals are ours."""

from __future__ import annotations

import ipaddress
import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetnet.errors import InvalidInput
from fleetnet.model.cilium import (
    BackendZone,
    CiliumClusterConfig,
    ClusterCapabilities,
    ClusterService,
    Identity,
    IPIdentityPair,
    L4Addr,
    Label,
    NamedPort,
    Node,
    NodeAddress,
    cluster_id_problem,
    format_labels,
    format_timestamp,
    go_json,
    identity_bounds,
    parse_labels,
    parse_timestamp,
)

SERVICE_KEY = "cilium/state/services/v1/cluster3/ns-alpha/echo-service"
SERVICE_JSON = """{
  "cluster": "cluster3", "namespace": "ns-alpha", "name": "echo-service",
  "frontends": { "10.96.0.10": { "http": { "Protocol": "TCP", "Port": 80 } } },
  "backends":  { "10.244.1.10": { "http": { "Protocol": "TCP", "Port": 8080 } } },
  "labels": {}, "selector": { "app": "echo" },
  "includeExternal": true, "shared": true, "clusterID": 3
}"""

IP_KEY = "cilium/state/ip/v1/default/10.244.2.74"
IP_JSON = """{ "IP": "10.244.2.74", "Mask": null, "HostIP": "172.18.0.2", "ID": 199475, "Key": 5,
  "Metadata": "", "K8sNamespace": "bar", "K8sPodName": "cep-002", "K8sServiceAccount": "default" }"""

NODE_KEY = "cilium/state/nodes/v1/cluster3/test-node-1"
NODE_JSON = """{ "Name": "test-node-1", "Cluster": "cluster3",
  "IPAddresses": [ {"Type": "InternalIP", "IP": "172.18.0.2"}, {"Type": "InternalIP", "IP": "fc00:c111::2"},
                   {"Type": "CiliumInternalIP", "IP": "10.244.0.10"},
                   {"Type": "CiliumInternalIP", "IP": "fd00:10:244::e2d6"} ],
  "IPv4AllocCIDR": {"IP": "10.244.0.0", "Mask": "////AA=="}, "IPv4SecondaryAllocCIDRs": null,
  "IPv6AllocCIDR": {"IP": "fd00:10:244::", "Mask": "//////////8AAAAAAAAAAA=="}, "IPv6SecondaryAllocCIDRs": null,
  "IPv4HealthIP": "10.244.0.134", "IPv6HealthIP": "fd00:10:244::d812", "IPv4IngressIP": "", "IPv6IngressIP": "",
  "ClusterID": 3, "Source": "custom-resource", "EncryptionKey": 0,
  "Labels": {"kubernetes.io/hostname": "test-node-1"},
  "Annotations": {"network.cilium.io/wg-pub-key": "VRksOB6ZNds4oXWIGfSVpvc0gBhcOWFmzvTDcyvULlI="},
  "NodeIdentity": 0, "WireguardPubKey": "VRksOB6ZNds4oXWIGfSVpvc0gBhcOWFmzvTDcyvULlI=",
  "BootID": "570d3fd1-93db-4862-ba99-6a3c2c10c38f" }"""

IDENTITY_KEY = "cilium/state/identities/v1/id/199472"
IDENTITY_VALUE = b"k8s:app=baz;k8s:io.cilium.k8s.policy.cluster=cluster3;k8s:io.kubernetes.pod.namespace=foo;"

CONFIG_KEY = "cilium/cluster-config/cluster3"
CONFIG_JSON = (
    '{ "id": 3, "capabilities": { "syncedCanaries": true, "maxConnectedClusters": 255, '
    '"serviceExportsEnabled": false } }'
)


def _compact(text: str) -> bytes:
    return json.dumps(json.loads(text), separators=(",", ":")).encode()


# -------------------------------------------------------------------------- the reference examples


def test_cluster_service_reference_example() -> None:
    svc = ClusterService.from_json(SERVICE_JSON.encode(), SERVICE_KEY, cluster="cluster3", cluster_id=3)
    assert svc == ClusterService(
        cluster="cluster3",
        namespace="ns-alpha",
        name="echo-service",
        frontends={"10.96.0.10": {"http": L4Addr("TCP", 80)}},
        backends={"10.244.1.10": {"http": L4Addr("TCP", 8080)}},
        selector={"app": "echo"},
        include_external=True,
        shared=True,
        cluster_id=3,
    )
    assert svc.to_json() == _compact(SERVICE_JSON)  # same bytes as Go: struct order, no spaces
    assert svc.key == SERVICE_KEY


def test_ip_identity_pair_reference_example() -> None:
    pair = IPIdentityPair.from_json(IP_JSON.encode(), IP_KEY, cluster_id=3)
    assert pair == IPIdentityPair(
        ip="10.244.2.74",
        identity=199475,
        host_ip="172.18.0.2",
        encryption_key=5,
        k8s_namespace="bar",
        k8s_pod_name="cep-002",
        k8s_service_account="default",
    )
    assert pair.to_json() == _compact(IP_JSON)
    assert pair.key == IP_KEY


def test_node_reference_example() -> None:
    node = Node.from_json(NODE_JSON.encode(), NODE_KEY, cluster="cluster3", cluster_id=3)
    assert node.ipv4_alloc_cidr == "10.244.0.0/24" and node.ipv6_alloc_cidr == "fd00:10:244::/64"
    assert node.node_ip() == "172.18.0.2" and node.node_ip(ipv6=True) == "fc00:c111::2"
    assert node.address("CiliumInternalIP") == "10.244.0.10"
    assert node.ipv4_ingress_ip is None and node.cluster_id == 3
    assert node.to_json() == _compact(NODE_JSON)
    assert node.key == NODE_KEY


def test_node_without_annotations_writes_null_like_go() -> None:
    node = Node("test-node-2", "cluster3", cluster_id=3, labels={"kubernetes.io/hostname": "test-node-2"})
    out = json.loads(node.to_json())
    assert out["Annotations"] is None and out["IPv4SecondaryAllocCIDRs"] is None and out["IPv4HealthIP"] == ""


def test_identity_reference_example() -> None:
    ident = Identity.from_kv(IDENTITY_VALUE, IDENTITY_KEY, cluster="cluster3", cluster_id=3)
    assert ident.id == 199472 and ident.cluster == "cluster3"
    assert ident.labels[0] == Label("app", "baz", "k8s")
    assert ident.to_value() == IDENTITY_VALUE


def test_cluster_config_reference_example() -> None:
    cfg = CiliumClusterConfig.from_json(CONFIG_JSON, CONFIG_KEY)
    assert cfg == CiliumClusterConfig(
        3, ClusterCapabilities(synced_canaries=True, max_connected_clusters=255, service_exports_enabled=False)
    )
    assert cfg.to_json() == _compact(CONFIG_JSON)
    assert CiliumClusterConfig.exported(3) == cfg
    assert cfg.remote_problem() is None


def test_kvstoremesh_config_copy_has_cached() -> None:
    text = '{"id":3,"capabilities":{"syncedCanaries":true,"cached":true,"maxConnectedClusters":255}}'
    cfg = CiliumClusterConfig.from_json(text, CONFIG_KEY)
    assert cfg.capabilities.cached and cfg.capabilities.service_exports_enabled is None
    assert cfg.to_json() == text.encode()


# -------------------------------------------------------------------------- Go's encoding/json


def test_go_json_escapes_like_go() -> None:
    assert go_json({"a": "<b>&c", "u": "é\u2028"}) == b'{"a":"\\u003cb\\u003e\\u0026c","u":"\xc3\xa9\\u2028"}'


def test_decoding_follows_go_unmarshal() -> None:
    # field names match case-insensitively, unknown fields are ignored, null keeps the zero value
    text = (
        '{"CLUSTER": "cluster3", "Namespace": "ns-alpha", "name": "echo-service", "clusterid": 3,'
        ' "frontends": null, "selector": null, "zones": null, "future": {"x": 1}}'
    )
    svc = ClusterService.from_json(text, SERVICE_KEY)
    assert svc.cluster == "cluster3" and svc.cluster_id == 3 and svc.frontends == {} and svc.selector == {}
    # the last of duplicate fields wins
    assert ClusterService.from_json(text[:-1] + ', "clusterID": 4}', SERVICE_KEY).cluster_id == 4


def test_newer_ip_entries_without_mask_and_with_pod_uid() -> None:
    text = (
        '{"IP":"10.244.2.74","HostIP":"172.18.0.2","ID":199475,"Key":5,"Metadata":"","K8sNamespace":"bar",'
        '"K8sPodName":"cep-002","K8sPodUID":"cep-pod-uid","K8sServiceAccount":"default",'
        '"NamedPorts":[{"Name":"http","Port":8080,"Protocol":"TCP"},{"Name":"dns","Port":53,"Protocol":"UDP"}]}'
    )
    pair = IPIdentityPair.from_json(text, IP_KEY)
    assert pair.k8s_pod_uid == "cep-pod-uid" and pair.mask is None
    assert pair.named_ports == (NamedPort("http", 8080, "TCP"), NamedPort("dns", 53, "UDP"))
    assert IPIdentityPair.from_json(pair.to_json(), IP_KEY) == pair


def test_cidr_ipcache_entry() -> None:
    pair = IPIdentityPair(ip="10.0.0.0", identity=16777217, mask=24)
    assert pair.key == "cilium/state/ip/v1/default/10.0.0.0/24"
    assert json.loads(pair.to_json())["Mask"] == "////AA=="
    assert IPIdentityPair.from_json(pair.to_json(), pair.key) == pair


def test_remote_host_identity_becomes_remote_node() -> None:
    assert IPIdentityPair(ip="172.18.0.3", identity=1).peer_identity == 6
    assert IPIdentityPair(ip="10.244.0.1", identity=199472).peer_identity == 199472


# -------------------------------------------------------------------------- Cilium's refusals


def _svc(**fields: object) -> str:
    base: dict[str, object] = {"cluster": "cluster3", "namespace": "ns-alpha", "name": "echo-service", "clusterID": 3}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not None})


@pytest.mark.parametrize(
    ("text", "kwargs", "reason"),
    [
        ("{not json", {}, "it is not JSON"),
        ("[]", {}, "expected an object, found an array"),
        (_svc(cluster=None), {}, "cluster is unset"),
        (_svc(namespace=""), {}, "namespace is unset"),
        (_svc(name=None), {}, "name is unset"),
        (_svc(clusterID=0), {}, "ClusterID 0 is reserved"),
        (_svc(clusterID=256), {}, "ClusterID > 255 is not supported"),
        (_svc(clusterID=-1), {}, "expected an integer from 0 to 4294967295"),
        (_svc(clusterID=3.0), {}, "expected an integer"),
        (_svc(clusterID="3"), {}, "expected an integer"),
        (_svc(shared="true"), {}, "shared: expected true or false"),
        (_svc(frontends={"10.96.0.300": {}}), {}, "invalid IP address '10.96.0.300'"),
        (_svc(backends={"fe80::1%eth0": {}}), {}, "unsupported IPv6 zone in address"),
        (_svc(backends={"10.0.0.1": {"http": {"Protocol": "TCP", "Port": 70000}}}), {}, "Port: expected an integer"),
        (_svc(name="other"), {}, "namespaced name does not match key: got ns-alpha/other, expected ns-alpha/echo"),
        (_svc(), {"cluster": "cluster4"}, "unexpected cluster name: got cluster3, expected cluster4"),
        (_svc(cluster="cluster4"), {}, "unexpected cluster name: got cluster4, expected cluster3 (from the key)"),
        (_svc(), {"cluster_id": 4}, "unexpected cluster ID: got 3, expected 4"),
    ],
)
def test_cluster_service_refusals(text: str, kwargs: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidInput) as err:
        ClusterService.from_json(text, SERVICE_KEY, **kwargs)  # type: ignore[arg-type]
    assert reason in str(err.value)
    assert str(err.value).startswith(f"the ClusterService at {SERVICE_KEY} is invalid")


def test_cluster_id_check_is_skipped_for_the_local_id_like_cilium() -> None:
    assert ClusterService.from_json(_svc(clusterID=0), SERVICE_KEY, local_cluster_id=0).cluster_id == 0
    assert ClusterService.from_json(_svc(clusterID=300), SERVICE_KEY, max_connected_clusters=511).cluster_id == 300


def test_service_key_of_another_kind_is_refused() -> None:
    with pytest.raises(InvalidInput, match="the key is a node key, not a service key"):
        ClusterService.from_json(_svc(), NODE_KEY)


def test_node_refusals() -> None:
    good = json.loads(NODE_JSON)
    for change, kwargs, reason in [
        ({"Name": "other"}, {}, "name does not match key: got other, expected test-node-1"),
        ({"Cluster": ""}, {}, "cluster is unset"),
        ({"Cluster": "cluster4"}, {}, "expected cluster3 (from the key)"),
        ({}, {"cluster": "c9"}, "unexpected cluster name: got cluster3, expected c9"),
        ({"ClusterID": 0}, {}, "ClusterID 0 is reserved"),
        ({}, {"cluster_id": 7}, "unexpected cluster ID: got 3, expected 7"),
        ({"IPv4HealthIP": "10.244.0.999"}, {}, "IPv4HealthIP: invalid IP address"),
        ({"IPv4AllocCIDR": {"IP": "10.244.0.0", "Mask": "/wD/AA=="}}, {}, "not a canonical mask"),
        ({"IPv4AllocCIDR": {"IP": "10.244.0.0", "Mask": "!!"}}, {}, "is not base64"),
        ({"EncryptionKey": 256}, {}, "EncryptionKey: expected an integer from 0 to 255"),
        ({"Labels": ["a"]}, {}, "Labels: expected an object, found an array"),
    ]:
        with pytest.raises(InvalidInput) as err:
            Node.from_json(json.dumps({**good, **change}), NODE_KEY, **kwargs)  # type: ignore[arg-type]
        assert reason in str(err.value), (change, str(err.value))


def test_ip_identity_pair_refusals() -> None:
    with pytest.raises(
        InvalidInput, match=re.escape("IP address does not match key: expected 10.244.2.75, got 10.244.2.74")
    ):
        IPIdentityPair.from_json(IP_JSON, "cilium/state/ip/v1/default/10.244.2.75")
    with pytest.raises(InvalidInput, match=re.escape("expected 10.244.2.74, got <nil>")):
        IPIdentityPair.from_json('{"IP": "", "ID": 5}', IP_KEY)
    with pytest.raises(InvalidInput, match=r"identity 199475 is outside the range \[262144, 327679\]"):
        IPIdentityPair.from_json(IP_JSON, IP_KEY, cluster_id=4)
    # reserved identities belong to no cluster
    assert IPIdentityPair.from_json('{"IP": "10.244.2.74", "ID": 6}', IP_KEY, cluster_id=4).identity == 6
    with pytest.raises(InvalidInput, match="belongs to cluster c1, expected c2"):
        IPIdentityPair.from_json(IP_JSON, "cilium/cache/ip/v1/c1/10.244.2.74", cluster="c2")


def test_identity_refusals() -> None:
    with pytest.raises(InvalidInput, match=r"ID 199472 is outside of the expected range \[262144, 327679\]"):
        Identity.from_kv(IDENTITY_VALUE, IDENTITY_KEY, cluster_id=4)
    with pytest.raises(InvalidInput, match="unexpected cluster name: got cluster3, expected cluster4"):
        Identity.from_kv(IDENTITY_VALUE, IDENTITY_KEY, cluster="cluster4")
    with pytest.raises(InvalidInput, match=re.escape("could not find expected label io.cilium.k8s.policy.cluster")):
        Identity.from_kv(b"k8s:app=baz;", IDENTITY_KEY, cluster="cluster3")
    # the cluster label must come from the k8s source
    with pytest.raises(InvalidInput, match="could not find expected label"):
        Identity.from_kv(b"unspec:io.cilium.k8s.policy.cluster=cluster3;", IDENTITY_KEY, cluster="cluster3")


@pytest.mark.parametrize(
    ("cfg", "local_max", "problem"),
    [
        (CiliumClusterConfig(), 255, "remote cluster is missing cluster configuration"),
        (CiliumClusterConfig(256), 255, "ClusterID > 255 is not supported"),
        (CiliumClusterConfig(300, ClusterCapabilities(max_connected_clusters=511)), 511, None),
        (
            CiliumClusterConfig(3, ClusterCapabilities(max_connected_clusters=255)),
            511,
            "mismatched MaxConnectedClusters",
        ),
        (CiliumClusterConfig(3, ClusterCapabilities(endpoint_slices_export_mode="bogus")), 255, "invalid endpoint"),
    ],
)
def test_remote_config_validation(cfg: CiliumClusterConfig, local_max: int, problem: str | None) -> None:
    got = cfg.remote_problem(local_max)
    assert got == problem if problem is None else problem in (got or "")


def test_cluster_ids_and_identity_ranges() -> None:
    assert cluster_id_problem(0) == "ClusterID 0 is reserved"
    assert cluster_id_problem(255) is None and cluster_id_problem(256) is not None
    assert cluster_id_problem(511, 511) is None
    assert identity_bounds(0) == (256, 65535)
    assert identity_bounds(3) == (196608, 262143)  # reference §2.2
    assert identity_bounds(3, 511) == (98304, 131071)
    with pytest.raises(InvalidInput, match="supported values are"):
        identity_bounds(3, 300)


def test_labels_kvstore_form() -> None:
    labels = [Label("b", "2", "k8s"), Label("a", "", "k8s"), Label("host", "", "reserved")]
    assert format_labels(labels) == "k8s:a=;k8s:b=2;reserved:host=;"
    assert parse_labels(format_labels(labels)) == tuple(sorted(labels))
    assert parse_labels("app=x") == (Label("app", "x", "unspec"),)
    assert str(Label("a", "", "k8s")) == "k8s:a"


def test_timestamps() -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, 999, tzinfo=UTC)
    assert format_timestamp(when) == b"2024-01-02T03:04:05Z"
    assert format_timestamp(when.astimezone(timezone(timedelta(hours=2)))) == b"2024-01-02T05:04:05+02:00"
    assert parse_timestamp(b"2024-01-02T03:04:05Z") == when.replace(microsecond=0)
    assert parse_timestamp("2024-01-02T03:04:05.123+02:00").utcoffset() == timedelta(hours=2)
    for bad in (b"yesterday", b"2024-01-02T03:04:05"):
        with pytest.raises(InvalidInput):
            parse_timestamp(bad)


# -------------------------------------------------------------------------- round trips (Hypothesis)

_name = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=10)
_text = st.text(max_size=12)
_ip4 = st.ip_addresses(v=4).map(str)
_ip = st.one_of(_ip4, st.ip_addresses(v=6).map(lambda a: str(a) if a.ipv4_mapped is None else str(a.ipv4_mapped)))
_ports = st.dictionaries(_text, st.builds(L4Addr, st.sampled_from(["TCP", "UDP", "SCTP"]), st.integers(0, 65535)))


@st.composite
def _cluster_services(draw: st.DrawFn) -> ClusterService:
    backends = draw(st.dictionaries(_ip, _ports, max_size=4))
    return ClusterService(
        cluster=draw(_name),
        namespace=draw(_name),
        name=draw(_name),
        frontends=draw(st.dictionaries(_ip4, _ports, max_size=2)),
        backends=backends,
        hostnames=draw(st.dictionaries(st.sampled_from(sorted(backends) or ["10.0.0.1"]), _name, max_size=2)),
        zones=draw(
            st.dictionaries(_ip, st.builds(BackendZone, _name, st.lists(_name, max_size=2).map(tuple)), max_size=2)
        ),
        labels=draw(st.dictionaries(_text, _text, max_size=3)),
        selector=draw(st.dictionaries(_text, _text, max_size=3)),
        include_external=draw(st.booleans()),
        shared=draw(st.booleans()),
        cluster_id=draw(st.integers(1, 255)),
    )


@settings(max_examples=40)
@given(_cluster_services())
def test_cluster_service_round_trip(svc: ClusterService) -> None:
    assert ClusterService.from_json(svc.to_json(), svc.key, cluster=svc.cluster, cluster_id=svc.cluster_id) == svc


def _cidr(version: int) -> st.SearchStrategy[str]:
    ips = st.ip_addresses(v=version)
    width = 32 if version == 4 else 128
    return st.builds(
        lambda ip, p: str(ipaddress.ip_network(f"{ip}/{p}", strict=False)), ips, st.integers(0, width)
    ).filter(lambda c: version == 4 or ipaddress.ip_network(c).network_address.ipv4_mapped is None)


@st.composite
def _nodes(draw: st.DrawFn) -> Node:
    return Node(
        name=draw(_name),
        cluster=draw(_name),
        ip_addresses=tuple(
            draw(st.lists(st.builds(NodeAddress, st.sampled_from(["InternalIP", "CiliumInternalIP"]), _ip), max_size=3))
        ),
        ipv4_alloc_cidr=draw(st.none() | _cidr(4)),
        ipv4_secondary_alloc_cidrs=tuple(draw(st.lists(_cidr(4), max_size=2))),
        ipv6_alloc_cidr=draw(st.none() | _cidr(6)),
        ipv4_health_ip=draw(st.none() | _ip4),
        ipv6_ingress_ip=draw(st.none() | _ip),
        cluster_id=draw(st.integers(1, 255)),
        source=draw(st.sampled_from(["custom-resource", "kvstore"])),
        encryption_key=draw(st.integers(0, 255)),
        labels=draw(st.dictionaries(_text, _text, max_size=3)),
        annotations=draw(st.dictionaries(_text, _text, max_size=2)),
        node_identity=draw(st.integers(0, 2**32 - 1)),
        wireguard_pub_key=draw(_text),
        boot_id=draw(_text),
    )


@settings(max_examples=40)
@given(_nodes())
def test_node_round_trip(node: Node) -> None:
    assert Node.from_json(node.to_json(), node.key, cluster=node.cluster, cluster_id=node.cluster_id) == node


@given(
    st.builds(
        IPIdentityPair,
        ip=_ip,
        identity=st.integers(0, 2**32 - 1),
        host_ip=st.none() | _ip4,
        encryption_key=st.integers(0, 255),
        metadata=_text,
        k8s_namespace=_text,
        k8s_pod_name=_text,
        named_ports=st.lists(st.builds(NamedPort, _text, st.integers(0, 65535), _text), max_size=2).map(tuple),
    )
)
def test_ip_identity_pair_round_trip(pair: IPIdentityPair) -> None:
    assert IPIdentityPair.from_json(pair.to_json(), pair.key) == pair
