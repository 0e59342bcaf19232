"""Parsing CNP/CCNP documents: the supported subset, Cilium's implied namespace, and clear refusals."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from fleetnet.errors import InvalidInput
from fleetnet.plan.policy import (
    Entity,
    PolicyRef,
    PortProtocol,
    Requirement,
    RuleRef,
    Selector,
    SelectorKey,
    parse_policies,
    parse_policy,
)

NS = SelectorKey("k8s", "io.kubernetes.pod.namespace")

CNP = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: allow-only-from-c2
  namespace: demo
  labels: {team: blue}
spec:
  description: echo takes traffic from clients of c2 only
  endpointSelector:
    matchLabels: {app: echo}
  ingress:
  - fromEndpoints:
    - matchLabels: {k8s:app: client, io.cilium.k8s.policy.cluster: c2}
    - matchExpressions:
      - {key: any:tier, operator: NotIn, values: [db, cache]}
    toPorts:
    - ports: [{port: "8080", protocol: TCP}, {port: 53, protocol: UDP}, {protocol: ANY}]
  - {}
  ingressDeny:
  - fromEntities: [world]
  egress:
  - toEntities: [cluster, cluster-mesh]
  - toPorts: [{ports: [{port: 53}]}]
"""


def _doc(text: str = CNP) -> dict[str, Any]:
    doc = yaml.safe_load(text)
    assert isinstance(doc, dict)
    return doc


def _sel(*reqs: Requirement) -> Selector:
    return Selector(reqs)


def _in(source: str, key: str, *values: str) -> Requirement:
    return Requirement(SelectorKey(source, key), "In", tuple(values))


def test_parses_the_supported_subset() -> None:
    policy = parse_policy(_doc())
    ref = PolicyRef("CiliumNetworkPolicy", "demo", "allow-only-from-c2")
    assert policy.ref == ref and str(ref) == "CiliumNetworkPolicy demo/allow-only-from-c2"
    (rule,) = policy.rules
    assert rule.description.startswith("echo takes")
    assert rule.endpoint_selector == _sel(_in("any", "app", "echo"), _in("k8s", NS.key, "demo"))
    first, empty = rule.ingress
    assert first.ref == RuleRef(ref, None, "ingress", 0)
    assert first.endpoints == (
        # The CNP's namespace is implied for peers that name none.
        _sel(_in("k8s", "app", "client"), _in("any", "io.cilium.k8s.policy.cluster", "c2"), _in("k8s", NS.key, "demo")),
        _sel(Requirement(SelectorKey("any", "tier"), "NotIn", ("cache", "db")), _in("k8s", NS.key, "demo")),
    )
    assert first.entities is None
    assert first.ports == (PortProtocol(8080, 6), PortProtocol(53, 17), PortProtocol(None, 0))
    assert (empty.endpoints, empty.entities, empty.ports) == (None, None, None)
    assert rule.ingress_deny[0].entities == (Entity.WORLD,) and rule.ingress_deny[0].deny
    assert rule.egress[0].entities == (Entity.CLUSTER, Entity.CLUSTER_MESH)
    assert rule.egress[1].ports == (PortProtocol(53, 0),) and rule.egress[1].endpoints is None
    assert rule.enforces("ingress") and rule.enforces("egress")


def test_peer_naming_a_namespace_or_reserved_label_is_left_alone() -> None:
    doc = _doc()
    doc["spec"]["ingress"] = [
        {
            "fromEndpoints": [
                {"matchLabels": {"io.kubernetes.pod.namespace": "other"}},
                {"matchExpressions": [{"key": "k8s:io.kubernetes.pod.namespace", "operator": "Exists"}]},
                {"matchLabels": {"reserved:host": ""}},
                {"matchLabels": {"$world": ""}},
                {"matchLabels": {"io.cilium.k8s.namespace.labels.team": "blue"}},
            ]
        }
    ]
    (item,) = parse_policy(doc).rules[0].ingress
    assert item.endpoints == (
        _sel(_in("any", NS.key, "other")),
        _sel(Requirement(NS, "Exists")),
        _sel(_in("reserved", "host", "")),
        _sel(_in("reserved", "world", "")),
        _sel(_in("any", "io.cilium.k8s.namespace.labels.team", "blue")),
    )


def test_clusterwide_policy_implies_no_namespace_but_requires_one_on_peers() -> None:
    doc = _doc()
    doc["kind"] = "CiliumClusterwideNetworkPolicy"
    del doc["metadata"]["namespace"]
    doc["spec"]["ingress"] = [{"fromEndpoints": [{}, {"matchLabels": {"reserved:host": ""}}]}]
    policy = parse_policy(doc)
    assert str(policy.ref) == "CiliumClusterwideNetworkPolicy allow-only-from-c2"
    rule = policy.rules[0]
    assert rule.endpoint_selector == _sel(_in("any", "app", "echo"))
    assert rule.ingress[0].endpoints == (_sel(Requirement(NS, "Exists")), _sel(_in("reserved", "host", "")))


def test_rules_about_initializing_endpoints_keep_clusterwide_peers_unscoped() -> None:
    doc = _doc()
    doc["kind"] = "CiliumClusterwideNetworkPolicy"
    del doc["metadata"]["namespace"]
    doc["spec"] = {"endpointSelector": {"matchLabels": {"reserved:init": ""}}, "ingress": [{"fromEndpoints": [{}]}]}
    assert parse_policy(doc).rules[0].ingress[0].endpoints == (Selector(),)


def test_spec_and_specs_and_default_namespace() -> None:
    doc = _doc()
    del doc["metadata"]["namespace"]
    doc["specs"] = [{"endpointSelector": {}, "egress": [{}]}, {"endpointSelector": {}}]
    policy = parse_policy(doc, default_namespace="team-a")
    assert policy.ref.namespace == "team-a"
    assert [r.spec_index for r in policy.rules] == [None, 0, 1]
    assert str(policy.rules[1].egress[0].ref) == "CiliumNetworkPolicy team-a/allow-only-from-c2 specs[0] egress rule 0"
    assert not policy.rules[2].enforces("ingress") and not policy.rules[2].enforces("egress")


def test_parse_policies_reads_a_multi_document_stream() -> None:
    second = CNP.replace("allow-only-from-c2", "other")
    policies = parse_policies(yaml.safe_load_all(CNP + "---\n" + second + "---\n"))
    assert [p.ref.name for p in policies] == ["allow-only-from-c2", "other"]
    with pytest.raises(InvalidInput, match="appears twice"):
        parse_policies(yaml.safe_load_all(CNP + "---\n" + CNP))


def _refused(doc: dict[str, Any], *fragments: str) -> str:
    with pytest.raises(InvalidInput) as e:
        parse_policy(doc)
    message = str(e.value)
    for fragment in fragments:
        assert fragment in message, message
    assert message.endswith(".")
    return message


def _with(path: list[Any], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(_doc())
    target: Any = doc
    for step in path[:-1]:
        target = target[step]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


_DELETE = object()
_DOC = "CiliumNetworkPolicy demo/allow-only-from-c2: "


def test_bad_operator_names_document_and_field_path() -> None:
    doc = _with(
        ["spec", "ingress", 0, "fromEndpoints", 1, "matchExpressions", 0, "operator"],
        "Equals",
    )
    message = _refused(doc, _DOC + "spec.ingress[0].fromEndpoints[1].matchExpressions[0].operator is 'Equals'")
    assert "use In, NotIn, Exists or DoesNotExist" in message


@pytest.mark.parametrize(
    ("path", "value", "fragments"),
    [
        (["spec", "ingress", 0, "toPorts", 0, "ports", 0, "port"], "http", ["named ports are not supported"]),
        (["spec", "ingress", 0, "toPorts", 0, "ports", 0, "port"], 0, ["between 1 and 65535"]),
        (["spec", "ingress", 0, "toPorts", 0, "ports", 0, "port"], "70000", ["between 1 and 65535"]),
        (["spec", "ingress", 0, "toPorts", 0, "ports", 0, "port"], True, ["must be a port number"]),
        (["spec", "ingress", 0, "toPorts", 0, "ports", 0, "protocol"], "SCTP", ["'SCTP'", "TCP, UDP or ANY"]),
        (["spec", "ingress", 0, "toPorts", 0, "ports", 0, "protocol"], "tcp", ["'tcp'"]),
        (["spec", "ingress", 0, "toPorts", 0, "ports", 0, "endPort"], 9000, ["ports[0].endPort", "does not enforce"]),
        (["spec", "ingress", 0, "toPorts", 0, "rules"], {"http": []}, ["toPorts[0].rules", "does not enforce"]),
        (["spec", "ingress", 0, "toPorts", 0, "ports"], [], ["toPorts[0].ports must list at least one port"]),
        (["spec", "ingress", 0, "fromCIDR"], ["10.0.0.0/8"], ["spec.ingress[0].fromCIDR is a Cilium field"]),
        (["spec", "ingress", 0, "toEndpoints"], [{}], ["toEndpoints", "belongs in egress rules"]),
        (["spec", "egress", 0, "fromEntities"], ["world"], ["fromEntities", "belongs in ingress rules"]),
        (["spec", "ingress", 0, "fromEntitys"], ["world"], ["spec.ingress[0].fromEntitys is not a known field"]),
        (["spec", "egress", 0, "toEntities"], ["galaxy"], ["toEntities[0] is 'galaxy', not an entity"]),
        (["spec", "egress", 0, "toEntities"], ["world-ipv4"], ["'world-ipv4'", "does not support"]),
        (["spec", "nodeSelector"], {}, ["spec.nodeSelector is a Cilium field"]),
        (["spec", "endpointSelector"], _DELETE, ["spec has no endpointSelector"]),
        (
            ["spec", "endpointSelector", "matchLabels", "app"],
            3,
            ["matchLabels.app is 3, a number, where a string is expected; quote it"],
        ),
        (["spec", "endpointSelector", "matchLabels", "app"], "bad value!", ["not a valid Kubernetes label value"]),
        (["spec", "endpointSelector", "matchLabels", "container:app"], "x", ["label source 'container'"]),
        (["spec", "endpointSelector", "matchLabels", "-bad"], "x", ["not a valid Kubernetes label key"]),
        (
            ["spec", "endpointSelector", "matchLabels", "io.kubernetes.pod.namespace"],
            "other",
            ["only selects endpoints of its own namespace"],
        ),
        (
            ["spec", "endpointSelector", "matchExpressions"],
            [{"operator": "Exists"}],
            ["matchExpressions[0] has no key"],
        ),
        (
            ["spec", "endpointSelector", "matchExpressions"],
            [{"key": "app", "operator": "In"}],
            ["matchExpressions[0].values must list at least one value"],
        ),
        (
            ["spec", "endpointSelector", "matchExpressions"],
            [{"key": "app", "operator": "Exists", "values": ["x"]}],
            ["values must be empty for operator Exists"],
        ),
        (["spec", "endpointSelector", "matchLabelz"], {}, ["endpointSelector.matchLabelz is not a known field"]),
        (["spec", "ingress"], {"fromEntities": ["world"]}, ["spec.ingress must be a list"]),
        (["spec", "ingress", 1], None, ["spec.ingress[1] is empty"]),
        (["spec", "ingress", 0, "fromEndpoints", 0], None, ["fromEndpoints[0] is empty"]),
        (["spec", "enableDefaultDeny"], {"ingress": False}, ["spec.enableDefaultDeny is a Cilium field"]),
        (["spec"], _DELETE, ["spec is missing"]),
        (["metadata", "name"], "Bad_Name", ["metadata.name is 'Bad_Name'"]),
        (["metadata", "name"], _DELETE, ["CiliumNetworkPolicy: metadata.name is missing"]),
        (["metadata", "namespace"], _DELETE, ["metadata.namespace is missing"]),
        (["metadata", "finalizers"], [], []),
        (["metadata", "colour"], "red", ["metadata.colour is not a known field"]),
        (["apiVersion"], "cilium.io/v1", ["apiVersion is 'cilium.io/v1'; use cilium.io/v2"]),
        (["kind"], "NetworkPolicy", ["kind is 'NetworkPolicy'"]),
        (["surprise"], 1, ["surprise is not a known field"]),
    ],
)
def test_refusals_name_the_field(path: list[Any], value: Any, fragments: list[str]) -> None:
    doc = _with(path, value)
    if not fragments:
        parse_policy(doc)  # accepted
        return
    _refused(doc, *fragments)


def test_clusterwide_policy_with_a_namespace_is_refused() -> None:
    doc = _doc()
    doc["kind"] = "CiliumClusterwideNetworkPolicy"
    _refused(doc, "CiliumClusterwideNetworkPolicy allow-only-from-c2: metadata.namespace", "cluster-scoped")


def test_not_a_mapping() -> None:
    with pytest.raises(InvalidInput, match="must be a mapping"):
        parse_policy(["not", "a", "policy"])


def test_port_forms() -> None:
    doc = _with(["spec", "ingress", 0, "toPorts"], [{"ports": [{"port": 80}, {"port": "443", "protocol": "UDP"}]}])
    assert parse_policy(doc).rules[0].ingress[0].ports == (PortProtocol(80, 0), PortProtocol(443, 17))
    empty = _with(["spec", "ingress", 0, "toPorts"], [])
    assert parse_policy(empty).rules[0].ingress[0].ports is None
