"""Security labels: Cilium's key form, the identity-relevant filter, the labels a pod gets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetnet.errors import InvalidInput
from fleetnet.plan.labels import (
    LABEL_CLUSTER,
    LABEL_NAMESPACE,
    LABEL_SERVICE_ACCOUNT,
    SOURCE_RESERVED,
    Label,
    LabelSet,
    is_identity_relevant,
    pod_security_labels,
    reserved_labels,
)


def test_cilium_key_matches_the_reference_example() -> None:
    labels = LabelSet.from_mapping({"app": "baz", LABEL_CLUSTER: "cluster3", LABEL_NAMESPACE: "foo"})
    key = "k8s:app=baz;k8s:io.cilium.k8s.policy.cluster=cluster3;k8s:io.kubernetes.pod.namespace=foo;"
    assert labels.to_cilium_key() == key
    assert LabelSet.from_cilium_key(key) == labels


def test_reserved_labels_parse_with_or_without_equals() -> None:
    assert LabelSet.from_cilium_key("reserved:host;") == reserved_labels("host")
    assert LabelSet.from_cilium_key("reserved:host=;") == reserved_labels("host")
    assert reserved_labels("host").to_cilium_key() == "reserved:host=;"
    assert reserved_labels("world").is_reserved


def test_empty_key_is_the_empty_set() -> None:
    assert LabelSet.from_cilium_key("") == LabelSet()
    assert LabelSet().to_cilium_key() == ""


@pytest.mark.parametrize("bad", ["k8s:app=x", "app=x;", "k8s:=x;"])
def test_malformed_keys_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        LabelSet.from_cilium_key(bad)


def test_one_label_per_key() -> None:
    with pytest.raises(InvalidInput, match="share the key app"):
        LabelSet((Label("app", "a"), Label("app", "b")))


def test_label_set_is_sorted_and_hashable() -> None:
    a = LabelSet((Label("z", "1"), Label("a", "2")))
    b = LabelSet((Label("a", "2"), Label("z", "1")))
    assert a == b and hash(a) == hash(b)
    assert [label.key for label in a] == ["a", "z"]


def test_pod_security_labels() -> None:
    labels = pod_security_labels(
        {"app": "echo", "pod-template-hash": "5d8f", "app.kubernetes.io/name": "echo", "kubernetes.io/x": "y"},
        "demo",
        "c1",
        namespace_labels={"team": "blue"},
    )
    assert labels.to_cilium_key() == (
        "k8s:app=echo;k8s:app.kubernetes.io/name=echo;k8s:io.cilium.k8s.namespace.labels.team=blue;"
        "k8s:io.cilium.k8s.policy.cluster=c1;k8s:io.cilium.k8s.policy.serviceaccount=default;"
        "k8s:io.kubernetes.pod.namespace=demo;"
    )
    assert labels.cluster == "c1" and labels.namespace == "demo"


@pytest.mark.parametrize(
    ("key", "relevant"),
    [
        ("app", True),
        ("app.kubernetes.io/name", True),
        (LABEL_NAMESPACE, True),
        ("io.kubernetes.container.name", False),
        ("kubernetes.io/hostname", False),
        ("pod-template-hash", False),
        ("controller-revision-hash", False),
        ("statefulset.kubernetes.io/pod-name", False),
        ("topology.beta.kubernetes.io/zone", False),
        ("k8s.io/anything", False),
        ("annotation.x", False),
        ("team", True),
    ],
)
def test_identity_relevant_filter(key: str, relevant: bool) -> None:
    assert is_identity_relevant(key) is relevant


_KEYS = st.sampled_from(["app", "tier", "io.kubernetes.pod.namespace", "example.com/role", "host", "world"])
_VALUES = st.sampled_from(["", "a", "b-1", "x.y_z"])
_LABELS = st.builds(Label, _KEYS, _VALUES, st.sampled_from(["k8s", SOURCE_RESERVED, "container"]))
_LABEL_SETS = st.lists(_LABELS, max_size=6, unique_by=lambda label: label.key).map(LabelSet.of)


@settings(max_examples=200, deadline=None)
@given(_LABEL_SETS)
def test_cilium_key_round_trips(labels: LabelSet) -> None:
    text = labels.to_cilium_key()
    assert LabelSet.from_cilium_key(text) == labels
    items = text.split(";")[:-1]
    assert [item.split(":", 1)[1].split("=", 1)[0] for item in items] == sorted(label.key for label in labels)


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["app", "pod-template-hash", "tier"]), _VALUES, max_size=3),
    st.sampled_from(["ns1", "ns2"]),
    st.sampled_from(["c1", "c2"]),
)
def test_pod_labels_always_carry_namespace_cluster_and_service_account(
    pod: dict[str, str], namespace: str, cluster: str
) -> None:
    labels = pod_security_labels(pod, namespace, cluster)
    assert labels.value(LABEL_NAMESPACE, "k8s") == namespace
    assert labels.value(LABEL_CLUSTER, "k8s") == cluster
    assert labels.value(LABEL_SERVICE_ACCOUNT, "k8s") == "default"
    assert labels.get("pod-template-hash") is None
    assert all(label.source == "k8s" for label in labels)
