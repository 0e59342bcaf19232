"""Compiling policies into policy-map entries, on the cross-cluster cases that matter."""

from __future__ import annotations

from typing import Any

import pytest

from fleetnet.plan.identity import allocate
from fleetnet.plan.labels import LabelSet, pod_security_labels
from fleetnet.plan.policy import (
    ANY_IDENTITY,
    Endpoint,
    EndpointPolicy,
    PolicyEntry,
    PolicyRef,
    RuleRef,
    compile_policies,
    parse_policy,
    policy_map,
)

CLUSTER_IDS = {"c1": 1, "c2": 2, "c3": 3}


class World:
    """A small mesh seen from c1: named label sets with identities, and the local endpoints."""

    def __init__(self) -> None:
        self.ids: dict[LabelSet, int] = {}
        self.names: dict[str, int] = {}
        self.endpoints: list[Endpoint] = []

    def pod(self, name: str, cluster: str, namespace: str = "demo", **labels: str) -> int:
        ls = pod_security_labels(labels, namespace, cluster)
        ident = self.ids.setdefault(ls, allocate(self.ids, ls, CLUSTER_IDS[cluster]))
        self.names[name] = ident
        if cluster == "c1":
            self.endpoints.append(Endpoint(len(self.endpoints) + 1, namespace, name, ls, ident))
        return ident

    @property
    def identities(self) -> dict[int, LabelSet]:
        return {i: ls for ls, i in self.ids.items()}

    def compile(self, *docs: dict[str, Any], default_local: bool = True) -> dict[str, EndpointPolicy]:
        policies = [parse_policy(d) for d in docs]
        out = compile_policies("c1", policies, self.endpoints, self.identities, default_local_cluster=default_local)
        return {ep.name: out[ep.id] for ep in self.endpoints}


def cnp(spec: dict[str, Any], name: str = "p", namespace: str = "demo") -> dict[str, Any]:
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def ccnp(spec: dict[str, Any], name: str = "cw") -> dict[str, Any]:
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumClusterwideNetworkPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


@pytest.fixture
def world() -> World:
    w = World()
    w.pod("echo", "c1", app="echo")
    w.pod("client-c1", "c1", app="client")
    w.pod("client-c2", "c2", app="client")
    w.pod("client-c3", "c3", app="client")
    w.pod("other-ns-c1", "c1", namespace="other", app="client")
    return w


def ingress_ids(pol: EndpointPolicy) -> set[int]:
    return {e.identity for e in pol.entries if e.direction == "ingress" and not e.deny}


def allowed_from(pol: EndpointPolicy, ident: int, dport: int = 80, proto: int = 6) -> bool:
    return pol.lookup("ingress", ident, dport, proto).allowed


def test_unselected_endpoints_are_not_enforced(world: World) -> None:
    out = world.compile(cnp({"endpointSelector": {"matchLabels": {"app": "nothing"}}, "ingress": [{}]}))
    assert out["echo"] == EndpointPolicy()
    assert allowed_from(out["echo"], world.names["client-c3"])


def test_default_local_cluster_limits_unlabelled_peers(world: World) -> None:
    doc = cnp(
        {
            "endpointSelector": {"matchLabels": {"app": "echo"}},
            "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "client"}}]}],
        }
    )
    on = world.compile(doc)["echo"]
    assert ingress_ids(on) == {world.names["client-c1"]}
    off = world.compile(doc, default_local=False)["echo"]
    assert ingress_ids(off) == {world.names["client-c1"], world.names["client-c2"], world.names["client-c3"]}


def test_only_from_cluster_c2(world: World) -> None:
    doc = cnp(
        {
            "endpointSelector": {"matchLabels": {"app": "echo"}},
            "ingress": [
                {
                    "fromEndpoints": [{"matchLabels": {"app": "client", "io.cilium.k8s.policy.cluster": "c2"}}],
                    "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}],
                }
            ],
        },
        name="allow-only-from-c2",
    )
    pol = world.compile(doc)["echo"]
    assert pol.ingress_enforced and not pol.egress_enforced
    entry = PolicyEntry("ingress", world.names["client-c2"], 8080, 6, False)
    assert pol.entries == {entry}
    ref = PolicyRef("CiliumNetworkPolicy", "demo", "allow-only-from-c2")
    assert pol.rules[entry] == (RuleRef(ref, None, "ingress", 0),)
    assert pol.ingress_enforced_by == (ref,)
    assert allowed_from(pol, world.names["client-c2"], 8080)
    assert not allowed_from(pol, world.names["client-c2"], 8081)
    assert not allowed_from(pol, world.names["client-c2"], 8080, 17)
    assert not allowed_from(pol, world.names["client-c3"], 8080)


def test_cluster_match_expressions(world: World) -> None:
    expr = {"key": "io.cilium.k8s.policy.cluster", "operator": "In", "values": ["c1", "c2"]}
    doc = cnp(
        {
            "endpointSelector": {},
            "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "client"}, "matchExpressions": [expr]}]}],
        }
    )
    assert ingress_ids(world.compile(doc)["echo"]) == {world.names["client-c1"], world.names["client-c2"]}
    exists = {"key": "io.cilium.k8s.policy.cluster", "operator": "Exists"}
    doc = cnp({"endpointSelector": {}, "ingress": [{"fromEndpoints": [{"matchExpressions": [exists]}]}]})
    assert ingress_ids(world.compile(doc)["echo"]) == {
        world.names[n] for n in ("echo", "client-c1", "client-c2", "client-c3")
    }


def test_empty_rule_enforces_and_allows_nothing(world: World) -> None:
    pol = world.compile(cnp({"endpointSelector": {}, "ingress": [{}]}))["echo"]
    assert pol.ingress_enforced and pol.entries == frozenset()
    assert not allowed_from(pol, world.names["client-c1"])
    assert pol.lookup("egress", 2, 443, 6).allowed  # egress untouched


def test_wildcard_peer_in_cnp_is_the_namespace_of_the_local_cluster(world: World) -> None:
    pol = world.compile(cnp({"endpointSelector": {}, "ingress": [{"fromEndpoints": [{}]}]}))["echo"]
    assert ingress_ids(pol) == {world.names["echo"], world.names["client-c1"]}


def test_wildcard_peer_in_ccnp_is_every_pod_but_no_reserved_identity(world: World) -> None:
    doc = ccnp({"endpointSelector": {}, "ingress": [{"fromEndpoints": [{}]}]})
    assert ingress_ids(world.compile(doc)["echo"]) == {world.names[n] for n in ("echo", "client-c1", "other-ns-c1")}
    off = world.compile(doc, default_local=False)["echo"]
    assert ingress_ids(off) == set(world.names.values())
    assert not allowed_from(off, 2) and not allowed_from(off, 1)


def test_l4_only_rule_allows_every_peer_on_its_ports(world: World) -> None:
    pol = world.compile(cnp({"endpointSelector": {}, "egress": [{"toPorts": [{"ports": [{"port": 53}]}]}]}))["echo"]
    assert pol.entries == {
        PolicyEntry("egress", ANY_IDENTITY, 53, 6, False),
        PolicyEntry("egress", ANY_IDENTITY, 53, 17, False),
    }
    assert pol.lookup("egress", 2, 53, 17).allowed and not pol.lookup("egress", 2, 54, 17).allowed
    assert not pol.lookup("egress", 2, 0, 1).allowed  # ICMP is not a port rule


def test_entities(world: World) -> None:
    def peers(*entities: str) -> set[int]:
        doc = cnp({"endpointSelector": {}, "ingress": [{"fromEntities": list(entities)}]})
        return ingress_ids(world.compile(doc)["echo"])

    pods_c1 = {world.names[n] for n in ("echo", "client-c1", "other-ns-c1")}
    remote = {world.names["client-c2"], world.names["client-c3"]}
    in_cluster_reserved = {1, 3, 4, 5, 6, 7, 8}
    assert peers("world") == {2}
    assert peers("host") == {1}
    assert peers("remote-node") == {6}
    assert peers("health", "init") == {4, 5}
    assert peers("all") == {ANY_IDENTITY}
    assert peers("all", "world") == {ANY_IDENTITY}
    assert peers("none") == set()
    assert peers("cluster") == pods_c1 | in_cluster_reserved
    assert peers("cluster-mesh") == pods_c1 | remote | in_cluster_reserved


def test_deny_beats_allow_and_owns_its_key(world: World) -> None:
    allow_all = cnp({"endpointSelector": {}, "ingress": [{"fromEntities": ["all"]}]}, name="allow-all")
    deny_c2 = cnp(
        {
            "endpointSelector": {"matchLabels": {"app": "echo"}},
            "ingressDeny": [{"fromEndpoints": [{"matchLabels": {"io.cilium.k8s.policy.cluster": "c2"}}]}],
        },
        name="deny-c2",
    )
    pol = world.compile(allow_all, deny_c2)["echo"]
    assert pol.ingress_enforced_by == (
        PolicyRef("CiliumNetworkPolicy", "demo", "allow-all"),
        PolicyRef("CiliumNetworkPolicy", "demo", "deny-c2"),
    )
    assert not allowed_from(pol, world.names["client-c2"])
    assert allowed_from(pol, world.names["client-c3"]) and allowed_from(pol, 2)
    # The same key allowed and denied: only the deny goes to the map.
    both = cnp(
        {
            "endpointSelector": {},
            "ingress": [{"fromEntities": ["world"]}],
            "ingressDeny": [{"fromEntities": ["world"]}],
        }
    )
    pol = world.compile(both)["echo"]
    assert pol.entries == {PolicyEntry("ingress", 2, 0, 0, True)}
    assert str(pol.rules[PolicyEntry("ingress", 2, 0, 0, True)][0]) == "CiliumNetworkPolicy demo/p ingressDeny rule 0"


def test_deny_only_policy_puts_the_direction_in_default_deny(world: World) -> None:
    pol = world.compile(cnp({"endpointSelector": {}, "egressDeny": [{"toEntities": ["world"]}]}))["echo"]
    assert pol.egress_enforced and not pol.ingress_enforced
    assert not pol.lookup("egress", world.names["client-c1"], 80, 6).allowed


def test_narrow_deny_under_broad_allow(world: World) -> None:
    doc = cnp(
        {
            "endpointSelector": {},
            "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "client"}}]}],
            "ingressDeny": [{"toPorts": [{"ports": [{"port": 22, "protocol": "TCP"}]}]}],
        }
    )
    pol = world.compile(doc)["echo"]
    client = world.names["client-c1"]
    assert allowed_from(pol, client, 80) and not allowed_from(pol, client, 22)
    assert allowed_from(pol, client, 22, 17)


def test_endpoint_selector_scopes_to_the_policy_namespace(world: World) -> None:
    out = world.compile(cnp({"endpointSelector": {}, "ingress": [{}]}, namespace="other"))
    assert not out["echo"].ingress_enforced and out["other-ns-c1"].ingress_enforced


def test_policy_map_flattens_entries(world: World) -> None:
    doc = cnp({"endpointSelector": {"matchLabels": {"app": "echo"}}, "ingress": [{"fromEntities": ["world"]}]})
    compiled = compile_policies("c1", [parse_policy(doc)], world.endpoints, world.identities)
    echo = next(ep.id for ep in world.endpoints if ep.name == "echo")
    assert policy_map(compiled) == {(echo, "ingress", 2, 0, 0): False}


def test_identities_learnt_later_need_a_recompile(world: World) -> None:
    doc = cnp(
        {
            "endpointSelector": {},
            "ingress": [{"fromEndpoints": [{"matchLabels": {"io.cilium.k8s.policy.cluster": "c3", "app": "late"}}]}],
        }
    )
    assert ingress_ids(world.compile(doc)["echo"]) == set()
    late = world.pod("late", "c3", app="late")
    assert ingress_ids(world.compile(doc)["echo"]) == {late}
