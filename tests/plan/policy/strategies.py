"""Hypothesis strategies over a small world (3 clusters, 2 namespaces, 2 label keys) so that randomly
written selectors and rules often select something, and policy documents in the YAML shape users write."""

from __future__ import annotations

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


def pod_labels(cluster: str | None = None) -> st.SearchStrategy[LabelSet]:
    return st.builds(
        pod_security_labels,
        st.dictionaries(st.sampled_from(POD_KEYS), st.sampled_from(POD_VALUES), max_size=2),
        st.sampled_from(NAMESPACES),
        st.just(cluster) if cluster else st.sampled_from(CLUSTERS),
    )


def _prefixed(key: str) -> st.SearchStrategy[str]:
    return st.sampled_from((key, f"k8s:{key}", f"any:{key}"))


def _key_and_values(subject: bool) -> st.SearchStrategy[tuple[str, tuple[str, ...]]]:
    pod = st.sampled_from(POD_KEYS).flatmap(lambda k: st.tuples(_prefixed(k), st.just(POD_VALUES)))
    if subject:
        return pod
    return st.one_of(
        pod,
        pod,
        st.tuples(_prefixed(NS_KEY), st.just(NAMESPACES)),
        st.tuples(_prefixed(CLUSTER_KEY), st.just(CLUSTERS)),
        st.tuples(st.sampled_from(("reserved:host", "reserved:world")), st.just(("",))),
    )


@st.composite
def _expression(draw: st.DrawFn, subject: bool) -> dict[str, Any]:
    key, values = draw(_key_and_values(subject))
    op = draw(st.sampled_from(("In", "NotIn", "Exists", "DoesNotExist")))
    expr: dict[str, Any] = {"key": key, "operator": op}
    if op in ("In", "NotIn"):
        expr["values"] = draw(st.lists(st.sampled_from(values), min_size=1, max_size=2, unique=True))
    return expr


@st.composite
def selector_doc(draw: st.DrawFn, subject: bool = False) -> dict[str, Any]:
    """A label selector as written in YAML; subject selectors stay on pod keys (as a CNP requires)."""
    doc: dict[str, Any] = {}
    # Mostly small selectors, so that rules often select something.
    match_labels = {}
    for _ in range(draw(st.sampled_from((0, 0, 1, 1, 2)))):
        key, values = draw(_key_and_values(subject))
        match_labels[key] = draw(st.sampled_from(values))
    if match_labels:
        doc["matchLabels"] = match_labels
    exprs = [draw(_expression(subject)) for _ in range(draw(st.sampled_from((0, 0, 0, 1, 2))))]
    if exprs:
        doc["matchExpressions"] = exprs
    return doc


@st.composite
def _ports_doc(draw: st.DrawFn) -> list[dict[str, Any]]:
    ports = []
    for _ in range(draw(st.integers(1, 2))):
        port: dict[str, Any] = {}
        number = draw(st.sampled_from((None, 80, "80", 443, 53)))
        if number is not None:
            port["port"] = number
        protocol = draw(st.sampled_from((None, "TCP", "UDP", "ANY")))
        if protocol is not None:
            port["protocol"] = protocol
        ports.append(port)
    return [{"ports": ports}]


@st.composite
def peer_item(draw: st.DrawFn, direction: str) -> dict[str, Any]:
    endpoints, entities = (
        ("fromEndpoints", "fromEntities") if direction == "ingress" else ("toEndpoints", "toEntities")
    )
    item: dict[str, Any] = {}
    if draw(st.integers(0, 2)) > 0:
        item[endpoints] = draw(
            st.lists(selector_doc(), min_size=draw(st.sampled_from((0, 1, 1, 1))), max_size=2)
        )
    if draw(st.integers(0, 3)) == 0:
        item[entities] = draw(st.lists(st.sampled_from(ENTITIES), max_size=2))
    if draw(st.booleans()):
        item["toPorts"] = draw(_ports_doc())
    return item


@st.composite
def rule_doc(draw: st.DrawFn) -> dict[str, Any]:
    subject = draw(st.sampled_from(({}, {}, None)))
    rule: dict[str, Any] = {
        "endpointSelector": draw(selector_doc(subject=True)) if subject is None else subject
    }
    for section in ("ingress", "ingressDeny", "egress", "egressDeny"):
        chance = 1 if section.endswith("Deny") else 3
        if draw(st.integers(0, 4)) < chance:
            direction = "ingress" if section.startswith("ingress") else "egress"
            rule[section] = draw(
                st.lists(peer_item(direction), min_size=draw(st.sampled_from((0, 1, 1))), max_size=2)
            )
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
    count = draw(st.integers(1, 3))
    return [draw(policy_doc(f"p{i}")) for i in range(count)]
