"""Cilium network policy, the subset fleetnet enforces: parse, select, compile to map entries, trace.

The pieces, in the order data flows through them:
``parse`` (YAML documents → ``Policy``), ``selector`` (label matching and Cilium's implied scoping),
``compile`` (policies + endpoints + known identities → ``EndpointPolicy`` per endpoint, whose
``PolicyEntry`` items are the policy map), ``trace`` (why a packet would pass or not, also for a
policy not applied yet). All of it is pure; the agent owns the effects.
"""

from __future__ import annotations

from fleetnet.plan.policy.compile import IdentityResolver, compile_endpoint, compile_policies, policy_map
from fleetnet.plan.policy.model import (
    ANY_IDENTITY,
    KIND_CCNP,
    KIND_CNP,
    PROTO_ANY,
    PROTO_ICMP,
    PROTO_TCP,
    PROTO_UDP,
    Direction,
    Endpoint,
    EndpointPolicy,
    Entity,
    Lookup,
    PeerRule,
    Policy,
    PolicyEntry,
    PolicyRef,
    PortProtocol,
    Requirement,
    Rule,
    RuleRef,
    Selector,
    SelectorKey,
    lookup_keys,
)
from fleetnet.plan.policy.parse import parse_policies, parse_policy
from fleetnet.plan.policy.selector import matches, scope_to_cluster
from fleetnet.plan.policy.trace import Step, Verdict, trace, trace_compiled, with_candidates

__all__ = [
    "ANY_IDENTITY",
    "KIND_CCNP",
    "KIND_CNP",
    "PROTO_ANY",
    "PROTO_ICMP",
    "PROTO_TCP",
    "PROTO_UDP",
    "Direction",
    "Endpoint",
    "EndpointPolicy",
    "Entity",
    "IdentityResolver",
    "Lookup",
    "PeerRule",
    "Policy",
    "PolicyEntry",
    "PolicyRef",
    "PortProtocol",
    "Requirement",
    "Rule",
    "RuleRef",
    "Selector",
    "SelectorKey",
    "Step",
    "Verdict",
    "compile_endpoint",
    "compile_policies",
    "lookup_keys",
    "matches",
    "parse_policies",
    "parse_policy",
    "policy_map",
    "scope_to_cluster",
    "trace",
    "trace_compiled",
    "with_candidates",
]
