"""Hypothesis strategies over a small world (3 clusters, 2 namespaces, 2 label keys) so that randomly
written selectors and rules often select something, and policy documents in the YAML shape users write.

Choices are precomputed and drawn with ``sampled_from`` so that generating a policy stays cheap."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from fleetnet.plan.labels import LabelSet, pod_security_labels

LOCAL = "c1"
CLUSTERS = ("c1", "c2", "c3")
CLUSTER_IDS = {"c1": 1, "c2": 2, "c3": 3}
NAMESPACES = ("ns1", "ns2")
POD_KEYS = ("app", "tier")
POD_VALUES = ("a", "b")
ENTITIES = ("all", "world", "cluster", "cluster-mesh", "host", "remote-node", "health", "none")
# (dport, proto) of the packets tried: TCP and UDP on ports the rules use, and ICMP (no port).
PACKETS = ((80, 6), (80, 17), (443, 6), (53, 17), (0, 1))

NS_KEY = "io.kubernetes.pod.namespace"
CLUSTER_KEY = "io.cilium.k8s.policy.cluster"


def _prefixed(key: str) -> tuple[str, ...]:
    return (key, f"k8s:{key}", f"any:{key}")


_POD_KEY_VALUES = [(k, POD_VALUES) for key in POD_KEYS for k in _prefixed(key)]
_PEER_KEY_VALUES = (
    _POD_KEY_VALUES * 2
    + [(k, NAMESPACES) for k in _prefixed(NS_KEY)]
    + [(k, CLUSTERS) for k in _prefixed(CLUSTER_KEY)]
    + [("reserved:host", ("",)), ("reserved:world", ("",))]
)


def _requirements(pairs: Sequence[tuple[str, tuple[str, ...]]]) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """All single matchLabels items and matchExpressions over these keys."""
    labels = [(k, v) for k, values in pairs for v in values]
    exprs: list[dict[str, Any]] = []
    for k, values in pairs:
        for op in ("In", "NotIn"):
            exprs += [{"key": k, "operator": op, "values": [v]} for v in values]
            exprs.append({"key": k, "operator": op, "values": list(values[:2])})
        exprs += [{"key": k, "operator": "Exists"}, {"key": k, "operator": "DoesNotExist"}]
    return labels, exprs


_SUBJECT_LABELS, _SUBJECT_EXPRS = _requirements(_POD_KEY_VALUES)
_PEER_LABELS, _PEER_EXPRS = _requirements(_PEER_KEY_VALUES)
_SIZES_LABELS = st.sampled_from((0, 0, 1, 1, 2))
_SIZES_EXPRS = st.sampled_from((0, 0, 0, 1, 2))


def pod_labels(cluster: str | None = None) -> st.SearchStrategy[LabelSet]:
    return st.builds(
        pod_security_labels,
        st.dictionaries(st.sampled_from(POD_KEYS), st.sampled_from(POD_VALUES), max_size=2),
        st.sampled_from(NAMESPACES),
        st.just(cluster) if cluster else st.sampled_from(CLUSTERS),
    )


@st.composite
def selector_doc(draw: st.DrawFn, subject: bool = False) -> dict[str, Any]:
    """A label selector as written in YAML; mostly small, so that rules often select something.
    Subject selectors stay on pod keys (a CNP's endpointSelector cannot name another namespace)."""
    label_items, exprs = (_SUBJECT_LABELS, _SUBJECT_EXPRS) if subject else (_PEER_LABELS, _PEER_EXPRS)
    doc: dict[str, Any] = {}
    match_labels = dict(draw(st.lists(st.sampled_from(label_items), max_size=draw(_SIZES_LABELS))))
    if match_labels:
        doc["matchLabels"] = match_labels
    expressions = draw(st.lists(st.sampled_from(exprs), max_size=draw(_SIZES_EXPRS)))
    if expressions:
        doc["matchExpressions"] = expressions
    return doc


_PORT = st.sampled_from(
    [{}]
    + [
        {k: v for k, v in (("port", number), ("protocol", proto)) if v is not None}
        for number in (None, 80, "80", 443, 53)
        for proto in (None, "TCP", "UDP", "ANY")
        if number is not None or proto is not None
    ]
)
_TO_PORTS = st.lists(_PORT, min_size=1, max_size=2).map(lambda ports: [{"ports": ports}])
_ENTITY_LISTS = st.lists(st.sampled_from(ENTITIES), max_size=2)
_SUBJECT = st.one_of(st.just({}), selector_doc(subject=True))


# Which of (endpoints, entities, toPorts) a peer item has: L3 only, L3+L4, L4 only (every peer), {} ...
_SHAPES = st.sampled_from(
    [(1, 0, 0), (1, 0, 0), (1, 0, 1), (1, 0, 1), (1, 1, 0), (0, 1, 0), (0, 1, 1), (0, 0, 1), (0, 0, 0), (1, 1, 1)]
)


@st.composite
def peer_item(draw: st.DrawFn, direction: str) -> dict[str, Any]:
    endpoints, entities = ("fromEndpoints", "fromEntities") if direction == "ingress" else ("toEndpoints", "toEntities")
    has_endpoints, has_entities, has_ports = draw(_SHAPES)
    item: dict[str, Any] = {}
    if has_endpoints:
        item[endpoints] = draw(st.lists(selector_doc(), min_size=draw(st.sampled_from((0, 1, 1, 1))), max_size=2))
    if has_entities:
        item[entities] = draw(_ENTITY_LISTS)
    if has_ports:
        item["toPorts"] = draw(_TO_PORTS)
    return item


@st.composite
def rule_doc(draw: st.DrawFn) -> dict[str, Any]:
    rule: dict[str, Any] = {"endpointSelector": draw(_SUBJECT)}
    for section in ("ingress", "ingressDeny", "egress", "egressDeny"):
        if draw(st.integers(0, 4)) < (1 if section.endswith("Deny") else 3):
            direction = "ingress" if section.startswith("ingress") else "egress"
            rule[section] = draw(st.lists(peer_item(direction), min_size=draw(st.sampled_from((0, 1, 1))), max_size=2))
    return rule


@st.composite
def policy_doc(draw: st.DrawFn, name: str) -> dict[str, Any]:
    clusterwide = draw(st.integers(0, 3)) == 0
    meta: dict[str, Any] = {"name": name}
    if not clusterwide:
        meta["namespace"] = draw(st.sampled_from(NAMESPACES))
    doc: dict[str, Any] = {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumClusterwideNetworkPolicy" if clusterwide else "CiliumNetworkPolicy",
        "metadata": meta,
    }
    if draw(st.integers(0, 4)) == 0:
        doc["specs"] = draw(st.lists(rule_doc(), min_size=1, max_size=2))
    else:
        doc["spec"] = draw(rule_doc())
    return doc


@st.composite
def policy_docs(draw: st.DrawFn) -> list[dict[str, Any]]:
    return [draw(policy_doc(f"p{i}")) for i in range(draw(st.integers(1, 3)))]
