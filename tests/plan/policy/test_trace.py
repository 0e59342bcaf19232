"""Policy trace: the verdict and the sentence saying which rule or default decided it, also what-if."""

from __future__ import annotations

from typing import Any

import pytest

from fleetnet.errors import InvalidInput, NotFound
from fleetnet.plan.labels import pod_security_labels
from fleetnet.plan.policy import Policy, compile_policies, parse_policy, trace, trace_compiled, with_candidates

from .test_compile import World, ccnp, cnp

ONLY_FROM_C2 = cnp(
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


@pytest.fixture
def world() -> World:
    w = World()
    w.pod("echo-xx", "c1", app="echo")
    w.pod("client-c1", "c1", app="client")
    w.pod("client-c2", "c2", app="client")
    return w


def _trace(world: World, src: Any, dst: Any, dport: int = 8080, proto: int = 6, **kw: Any) -> Any:
    policies: list[Policy] = kw.pop("policies", [parse_policy(ONLY_FROM_C2)])
    return trace(
        src,
        dst,
        dport,
        proto,
        local_cluster="c1",
        policies=policies,
        identities=world.identities,
        endpoints=world.endpoints,
        **kw,
    )


def _ep(world: World, name: str) -> Any:
    return next(ep for ep in world.endpoints if ep.name == name)


def test_default_deny_names_the_enforcing_policy(world: World) -> None:
    v = _trace(world, _ep(world, "client-c1"), _ep(world, "echo-xx"))
    assert not v.allowed
    assert v.decided_by == (
        "denied by the default deny (ingress enforced on c1/demo/echo-xx by "
        "CiliumNetworkPolicy demo/allow-only-from-c2)"
    )
    assert v.egress is not None and not v.egress.lookup.enforced


def test_allowed_names_the_rule(world: World) -> None:
    v = _trace(world, world.names["client-c2"], _ep(world, "echo-xx"))
    assert v.allowed
    assert v.decided_by == "allowed by CiliumNetworkPolicy demo/allow-only-from-c2 ingress rule 0"
    assert v.egress is None  # the source is remote: only the destination's ingress applies


def test_source_given_by_labels(world: World) -> None:
    remote = pod_security_labels({"app": "client"}, "demo", "c2")
    assert _trace(world, remote, _ep(world, "echo-xx")).allowed
    unknown = pod_security_labels({"app": "client"}, "demo", "c9")  # no identity known yet
    assert not _trace(world, unknown, _ep(world, "echo-xx")).allowed


def test_deny_rule_is_named(world: World) -> None:
    deny = cnp({"endpointSelector": {}, "ingressDeny": [{"fromEntities": ["cluster-mesh"]}]}, name="x")
    v = _trace(
        world,
        world.names["client-c2"],
        _ep(world, "echo-xx"),
        policies=[parse_policy(ONLY_FROM_C2), parse_policy(deny)],
    )
    assert not v.allowed
    assert v.decided_by == "denied by CiliumNetworkPolicy demo/x ingressDeny rule 0"


def test_egress_of_a_local_source_applies_and_deny_wins(world: World) -> None:
    egress = cnp(
        {
            "endpointSelector": {"matchLabels": {"app": "client"}},
            "egressDeny": [{"toPorts": [{"ports": [{"port": 8080}]}]}],
        },
        name="no-8080",
    )
    allow_c1 = cnp(
        {
            "endpointSelector": {"matchLabels": {"app": "echo"}},
            "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "client"}}]}],
        },
        name="from-c1",
    )
    policies = [parse_policy(egress), parse_policy(allow_c1)]
    v = _trace(world, _ep(world, "client-c1"), _ep(world, "echo-xx"), policies=policies)
    assert not v.allowed and v.decided_by == "denied by CiliumNetworkPolicy demo/no-8080 egressDeny rule 0"
    assert v.ingress is not None and v.ingress.allowed
    # A deny-only policy still puts egress into default deny.
    v = _trace(world, _ep(world, "client-c1"), _ep(world, "echo-xx"), dport=80, policies=policies)
    assert not v.allowed
    assert v.decided_by == (
        "denied by the default deny (egress enforced on c1/demo/client-c1 by CiliumNetworkPolicy demo/no-8080)"
    )
    open_egress = cnp({"endpointSelector": {}, "egress": [{"toEntities": ["all"]}]}, name="open")
    policies.append(parse_policy(open_egress))
    v = _trace(world, _ep(world, "client-c1"), _ep(world, "echo-xx"), dport=80, policies=policies)
    assert v.allowed
    assert v.decided_by == (
        "allowed by CiliumNetworkPolicy demo/open egress rule 0 and CiliumNetworkPolicy demo/from-c1 ingress rule 0"
    )
    assert not _trace(world, _ep(world, "client-c1"), _ep(world, "echo-xx"), policies=policies).allowed
    v = _trace(world, _ep(world, "client-c1"), world.names["client-c2"], dport=80, policies=policies)
    assert v.allowed and v.ingress is None  # to a remote destination only the egress applies


def test_egress_default_deny_message(world: World) -> None:
    lock = cnp(
        {"endpointSelector": {"matchLabels": {"app": "client"}}, "egress": [{"toEntities": ["world"]}]}, name="lock"
    )
    v = _trace(world, _ep(world, "client-c1"), _ep(world, "echo-xx"), policies=[parse_policy(lock)])
    assert (
        v.decided_by
        == "denied by the default deny (egress enforced on c1/demo/client-c1 by CiliumNetworkPolicy demo/lock)"
    )


def test_nothing_enforced(world: World) -> None:
    v = _trace(world, _ep(world, "client-c1"), _ep(world, "echo-xx"), policies=[])
    assert v.allowed
    assert (
        v.decided_by
        == "allowed: no policy enforces egress on c1/demo/client-c1 and no policy enforces ingress on c1/demo/echo-xx"
    )


def test_what_if_a_candidate_policy(world: World) -> None:
    src, dst = _ep(world, "client-c1"), _ep(world, "echo-xx")
    assert not _trace(world, src, dst).allowed
    widened = cnp(
        {
            "endpointSelector": {"matchLabels": {"app": "echo"}},
            "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "client"}}]}],
        },
        name="allow-only-from-c2",
    )
    v = _trace(world, src, dst, candidates=[parse_policy(widened)])
    assert v.allowed and v.decided_by == "allowed by CiliumNetworkPolicy demo/allow-only-from-c2 ingress rule 0"
    # The candidate replaced the applied policy of the same name: c2 is no longer allowed.
    assert not _trace(world, world.names["client-c2"], dst, candidates=[parse_policy(widened)]).allowed
    # A candidate with a new name adds to what is applied.
    lock = ccnp({"endpointSelector": {}, "ingressDeny": [{"fromEntities": ["all"]}]})
    v = _trace(world, world.names["client-c2"], dst, candidates=[parse_policy(lock)])
    assert not v.allowed and v.decided_by == "denied by CiliumClusterwideNetworkPolicy cw ingressDeny rule 0"


def test_with_candidates() -> None:
    a, b = parse_policy(ONLY_FROM_C2), parse_policy(cnp({"endpointSelector": {}}, name="b"))
    assert with_candidates([a], [b]) == [a, b]
    assert with_candidates([a, b], [a]) == [b, a]


def test_trace_compiled_matches_trace(world: World) -> None:
    policies = [parse_policy(ONLY_FROM_C2)]
    compiled = compile_policies("c1", policies, world.endpoints, world.identities)
    echo = _ep(world, "echo-xx")
    v = trace_compiled(
        world.names["client-c2"], echo.identity, 8080, 6, dst_policy=compiled[echo.id], dst_name="c1/demo/echo-xx"
    )
    assert v == _trace(world, world.names["client-c2"], echo)


def test_errors(world: World) -> None:
    with pytest.raises(NotFound, match="identity 999999 is not known"):
        _trace(world, 999999, _ep(world, "echo-xx"))
    with pytest.raises(InvalidInput, match="local endpoint"):
        _trace(world, world.names["client-c2"], 2)
