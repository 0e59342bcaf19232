"""Compile parsed policies into per-endpoint policy-map entries.

This is the agent's policy engine minus the effects: given what a cluster knows (its name, its
policies, its local endpoints and every identity it has learnt, local and remote), it decides for each
endpoint which directions are enforced and which (identity, port, protocol) keys allow or deny.
Selectors are resolved against the known identities, so the result must be recomputed whenever
identities come or go (a remote cluster connects, a pod with new labels appears); the caller diffs
the result against the map.

Semantics follow Cilium's: a direction is enforced (default deny) as soon as one rule selecting the
endpoint has an allow or deny section for it; a deny entry beats any allow; ``all`` and L4-only
rules become identity 0 ("any"); a port with protocol ANY becomes a TCP and a UDP entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from fleetnet.plan.identity import RESERVED_IDENTITIES
from fleetnet.plan.labels import LabelSet
from fleetnet.plan.policy.model import (
    ANY_IDENTITY,
    PROTO_ANY,
    PROTO_TCP,
    PROTO_UDP,
    Direction,
    Endpoint,
    EndpointPolicy,
    PeerRule,
    Policy,
    PolicyEntry,
    PolicyRef,
    Rule,
    RuleRef,
    Selector,
)
from fleetnet.plan.policy.selector import entity_selectors, matches, scope_to_cluster

DIRECTIONS: tuple[Direction, ...] = ("ingress", "egress")


class IdentityResolver:
    """Resolves peer rules to the identities they select, caching per selector within one compile."""

    def __init__(self, identities: Mapping[int, LabelSet], local_cluster: str, default_local_cluster: bool) -> None:
        self.identities: dict[int, LabelSet] = {**RESERVED_IDENTITIES, **identities}
        self.local_cluster = local_cluster
        self.default_local_cluster = default_local_cluster
        self._cache: dict[Selector, frozenset[int]] = {}

    def select(self, selector: Selector) -> frozenset[int]:
        found = self._cache.get(selector)
        if found is None:
            found = frozenset(i for i, labels in self.identities.items() if matches(selector, labels))
            self._cache[selector] = found
        return found

    def peer_selectors(self, item: PeerRule) -> tuple[Selector, ...] | None:
        """The effective selectors of a peer rule; None means every peer (identity 0)."""
        if item.endpoints is None and item.entities is None:
            # An L4-only rule applies to every peer; an empty rule ({}) to none.
            return None if item.ports is not None else ()
        out = [scope_to_cluster(s, self.local_cluster, self.default_local_cluster) for s in item.endpoints or ()]
        for entity in item.entities or ():
            selectors = entity_selectors(entity, self.local_cluster)
            if selectors is None:
                return None
            out.extend(selectors)
        return tuple(out)

    def peers(self, item: PeerRule) -> frozenset[int]:
        selectors = self.peer_selectors(item)
        if selectors is None:
            return frozenset({ANY_IDENTITY})
        found: set[int] = set()
        for selector in selectors:
            found |= self.select(selector)
        return frozenset(found)


def port_keys(item: PeerRule) -> tuple[tuple[int, int], ...]:
    """The (dport, proto) pairs of a peer rule's ports, 0 meaning any."""
    if item.ports is None:
        return ((0, PROTO_ANY),)
    out: dict[tuple[int, int], None] = {}
    for pp in item.ports:
        if pp.protocol == PROTO_ANY and pp.port is not None:
            out[(pp.port, PROTO_TCP)] = None
            out[(pp.port, PROTO_UDP)] = None
        else:
            out[(pp.port or 0, pp.protocol)] = None
    return tuple(out)


def _refs(rules: Iterable[Rule]) -> tuple[PolicyRef, ...]:
    return tuple(dict.fromkeys(r.policy for r in rules))


def compile_endpoint(labels: LabelSet, rules: Sequence[Rule], resolver: IdentityResolver) -> EndpointPolicy:
    """The policy of an endpoint with these labels under these rules."""
    selecting = [r for r in rules if matches(r.endpoint_selector, labels)]
    provenance: dict[PolicyEntry, list[RuleRef]] = {}
    enforced: dict[Direction, tuple[PolicyRef, ...]] = {}
    for direction in DIRECTIONS:
        enforcing = [r for r in selecting if r.enforces(direction)]
        enforced[direction] = _refs(enforcing)
        for rule in enforcing:
            for item in rule.items(direction):
                ports = port_keys(item)
                for identity in sorted(resolver.peers(item)):
                    for dport, proto in ports:
                        entry = PolicyEntry(direction, identity, dport, proto, item.deny)
                        provenance.setdefault(entry, []).append(item.ref)
    # One value per map key: where a rule allows what another denies, the deny is all that matters.
    denied = {e.key for e in provenance if e.deny}
    kept = {e: tuple(refs) for e, refs in provenance.items() if e.deny or e.key not in denied}
    return EndpointPolicy(
        ingress_enforced=bool(enforced["ingress"]),
        egress_enforced=bool(enforced["egress"]),
        entries=frozenset(kept),
        ingress_enforced_by=enforced["ingress"],
        egress_enforced_by=enforced["egress"],
        rules=kept,
    )


def all_rules(policies: Iterable[Policy]) -> list[Rule]:
    return [rule for policy in policies for rule in policy.rules]


def compile_policies(
    local_cluster: str,
    policies: Sequence[Policy],
    endpoints: Sequence[Endpoint],
    identities: Mapping[int, LabelSet],
    *,
    default_local_cluster: bool = True,
) -> dict[int, EndpointPolicy]:
    """The compiled policy of every local endpoint, by endpoint id.

    ``identities`` holds every identity the cluster knows (local and remote); reserved identities are
    added. ``default_local_cluster`` is the network's ``policy-default-local-cluster`` switch.
    """
    resolver = IdentityResolver(identities, local_cluster, default_local_cluster)
    rules = all_rules(policies)
    return {ep.id: compile_endpoint(ep.labels, rules, resolver) for ep in endpoints}


MapKey = tuple[int, Direction, int, int, int]  # (endpoint id, direction, identity, dport, proto)


def policy_map(compiled: Mapping[int, EndpointPolicy]) -> dict[MapKey, bool]:
    """Flatten compiled policies into the datapath map: key → deny (True) or allow (False)."""
    return {(ep_id, *entry.key): entry.deny for ep_id, pol in compiled.items() for entry in pol.entries}
