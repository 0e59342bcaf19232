"""Selector matching (Kubernetes matchLabels ∧ matchExpressions over sourced labels) and the scoping
Cilium adds: namespace for CNPs, namespace-exists for CCNPs, local cluster by default."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fleetnet.plan.labels import LABEL_CLUSTER, Label, LabelSet, pod_security_labels, reserved_labels
from fleetnet.plan.policy.model import Entity, Requirement, Selector, SelectorKey
from fleetnet.plan.policy.parse import parse_policy
from fleetnet.plan.policy.selector import (
    CLUSTER_KEY,
    NAMESPACE_KEY,
    entity_selectors,
    matches,
    peer_in_namespace,
    requirement_matches,
    scope_to_cluster,
)

_KEYS = ("app", "tier", "host")
_VALUES = ("a", "b", "")
_SOURCES = ("k8s", "reserved")

_LABEL_SETS = st.lists(
    st.builds(Label, st.sampled_from(_KEYS), st.sampled_from(_VALUES), st.sampled_from(_SOURCES)),
    max_size=3,
    unique_by=lambda label: label.key,
).map(LabelSet.of)
_SELECTOR_KEYS = st.builds(SelectorKey, st.sampled_from(("k8s", "reserved", "any")), st.sampled_from(_KEYS))
_REQUIREMENTS = st.one_of(
    st.builds(
        Requirement,
        _SELECTOR_KEYS,
        st.sampled_from(("In", "NotIn")),
        st.lists(st.sampled_from(_VALUES), min_size=1, max_size=2, unique=True).map(lambda v: tuple(sorted(v))),
    ),
    st.builds(Requirement, _SELECTOR_KEYS, st.sampled_from(("Exists", "DoesNotExist"))),
)
_SELECTORS = st.lists(_REQUIREMENTS, max_size=3).map(lambda reqs: Selector(tuple(reqs)))
FAST = settings(max_examples=100, deadline=None)


@FAST
@given(_SELECTORS, _SELECTORS, _LABEL_SETS)
def test_a_selector_is_the_conjunction_of_its_requirements(a: Selector, b: Selector, labels: LabelSet) -> None:
    both = a.extended(*b.requirements)
    assert matches(both, labels) == (matches(a, labels) and matches(b, labels))
    assert matches(a, labels) == all(requirement_matches(r, labels) for r in a.requirements)


@FAST
@given(_LABEL_SETS)
def test_the_empty_selector_matches_everything(labels: LabelSet) -> None:
    assert matches(Selector(), labels)


@FAST
@given(_SELECTOR_KEYS, st.lists(st.sampled_from(_VALUES), min_size=1, unique=True), _LABEL_SETS)
def test_operators_pair_up_as_complements(key: SelectorKey, values: list[str], labels: LabelSet) -> None:
    vals = tuple(sorted(values))
    exists = requirement_matches(Requirement(key, "Exists"), labels)
    assert requirement_matches(Requirement(key, "DoesNotExist"), labels) == (not exists)
    is_in = requirement_matches(Requirement(key, "In", vals), labels)
    assert requirement_matches(Requirement(key, "NotIn", vals), labels) == (not is_in)
    assert not is_in or exists  # In implies the key exists; NotIn holds when it does not


@FAST
@given(_SELECTOR_KEYS, _LABEL_SETS)
def test_sources(key: SelectorKey, labels: LabelSet) -> None:
    label = next((lb for lb in labels if lb.key == key.key), None)
    found = requirement_matches(Requirement(key, "Exists"), labels)
    if key.source == "any":
        assert found == (label is not None)
    else:
        assert found == (label is not None and label.source == key.source)


@FAST
@given(st.dictionaries(st.sampled_from(("app", "tier")), st.sampled_from(("a", "b")), max_size=2), _LABEL_SETS)
def test_match_labels_mean_every_label_present_with_that_value(wanted: dict[str, str], labels: LabelSet) -> None:
    doc = {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumClusterwideNetworkPolicy",
        "metadata": {"name": "p"},
        "spec": {"endpointSelector": {"matchLabels": wanted}},
    }
    selector = parse_policy(doc).rules[0].endpoint_selector
    assert matches(selector, labels) == all(labels.value(k) == v for k, v in wanted.items())


def test_default_local_cluster_scoping() -> None:
    local = pod_security_labels({"app": "x"}, "ns", "c1")
    remote = pod_security_labels({"app": "x"}, "ns", "c2")
    plain = Selector((Requirement(SelectorKey("any", "app"), "In", ("x",)),))
    scoped = scope_to_cluster(plain, "c1", True)
    assert matches(scoped, local) and not matches(scoped, remote)
    assert scope_to_cluster(plain, "c1", False) == plain
    # A selector that already talks about clusters (any form) is not touched.
    for key in (CLUSTER_KEY, SelectorKey("any", LABEL_CLUSTER)):
        exists = plain.extended(Requirement(key, "Exists"))
        assert scope_to_cluster(exists, "c1", True) == exists
    reserved = Selector((Requirement(SelectorKey("reserved", "host"), "Exists"),))
    assert scope_to_cluster(reserved, "c1", True) == reserved


def test_namespace_scoping() -> None:
    plain = Selector()
    assert peer_in_namespace(plain, "demo") == Selector((Requirement(NAMESPACE_KEY, "In", ("demo",)),))
    assert peer_in_namespace(plain, None) == Selector((Requirement(NAMESPACE_KEY, "Exists"),))
    assert peer_in_namespace(plain, None, subject_is_init=True) == plain
    reserved = Selector((Requirement(SelectorKey("reserved", "world"), "Exists"),))
    assert peer_in_namespace(reserved, "demo") == reserved
    assert not matches(peer_in_namespace(plain, None), reserved_labels("world"))


def test_entities() -> None:
    assert entity_selectors(Entity.ALL, "c1") is None
    assert entity_selectors(Entity.NONE, "c1") == ()
    world = entity_selectors(Entity.WORLD, "c1")
    assert world is not None and [matches(s, reserved_labels("world")) for s in world] == [True]
    cluster = entity_selectors(Entity.CLUSTER, "c1")
    mesh = entity_selectors(Entity.CLUSTER_MESH, "c1")
    assert cluster is not None and mesh is not None
    local = pod_security_labels({}, "ns", "c1")
    remote = pod_security_labels({}, "ns", "c2")
    for name, in_cluster in (("host", True), ("remote-node", True), ("health", True), ("world", False)):
        assert any(matches(s, reserved_labels(name)) for s in cluster) is in_cluster
        assert any(matches(s, reserved_labels(name)) for s in mesh) is in_cluster
    assert any(matches(s, local) for s in cluster) and not any(matches(s, remote) for s in cluster)
    assert any(matches(s, local) for s in mesh) and any(matches(s, remote) for s in mesh)
