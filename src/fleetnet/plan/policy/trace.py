"""Explain whether a packet would pass, and which rule or default decided it (``cilium policy trace``).

A packet from a source to a destination passes the source's egress policy (when the source is a
local endpoint) and the destination's ingress policy (when the destination is local); a deny in
either wins. Tracing from policies compiles exactly what the agent would program and looks it up the
way the datapath does, so the answer is the datapath's answer; a candidate policy that is not applied
yet can be added to see what it would change (what-if).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fleetnet.errors import InvalidInput, NotFound
from fleetnet.plan.identity import RESERVED_IDENTITIES
from fleetnet.plan.labels import LabelSet
from fleetnet.plan.policy.compile import IdentityResolver, all_rules, compile_endpoint
from fleetnet.plan.policy.model import (
    Direction,
    Endpoint,
    EndpointPolicy,
    Lookup,
    Policy,
    PolicyRef,
    RuleRef,
)

# Label sets that no known identity has get a number above every real one (24 bits), for tracing only.
_SYNTHETIC_BASE = 1 << 24


@dataclass(frozen=True, slots=True)
class Step:
    """The decision of one direction: egress of the source or ingress of the destination."""

    direction: Direction
    subject: str  # the local endpoint whose policy applies, e.g. c1/demo/echo-7f9
    lookup: Lookup
    rules: tuple[RuleRef, ...]  # the rules behind the entry that decided, if one did
    enforced_by: tuple[PolicyRef, ...]

    @property
    def allowed(self) -> bool:
        return self.lookup.allowed

    def explain(self) -> str:
        if not self.lookup.enforced:
            return f"no policy enforces {self.direction} on {self.subject}"
        if self.lookup.entry is None:
            by = ", ".join(str(p) for p in self.enforced_by)
            return f"the default deny ({self.direction} enforced on {self.subject} by {by})"
        more = f" (and {len(self.rules) - 1} more)" if len(self.rules) > 1 else ""
        return f"{self.rules[0]}{more}"


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    decided_by: str
    egress: Step | None = None
    ingress: Step | None = None


def _step(direction: Direction, subject: str, policy: EndpointPolicy, peer: int, dport: int, proto: int) -> Step:
    found = policy.lookup(direction, peer, dport, proto)
    rules = policy.rules.get(found.entry, ()) if found.entry is not None else ()
    return Step(direction, subject, found, rules, policy.enforced_by(direction))


def trace_compiled(
    src_identity: int,
    dst_identity: int,
    dport: int,
    proto: int,
    *,
    src_policy: EndpointPolicy | None = None,
    dst_policy: EndpointPolicy | None = None,
    src_name: str = "the source",
    dst_name: str = "the destination",
) -> Verdict:
    """The verdict from compiled policies: the source's (egress) if it is local, the destination's
    (ingress) if it is local."""
    egress = None if src_policy is None else _step("egress", src_name, src_policy, dst_identity, dport, proto)
    ingress = None if dst_policy is None else _step("ingress", dst_name, dst_policy, src_identity, dport, proto)
    steps = [s for s in (egress, ingress) if s is not None]
    if not steps:
        raise InvalidInput("a trace needs the policy of the source or of the destination; give a local endpoint.")
    for step in steps:
        if not step.allowed:
            return Verdict(False, f"denied by {step.explain()}", egress, ingress)
    enforced = [s for s in steps if s.lookup.enforced]
    if enforced:
        reason = "allowed by " + " and ".join(s.explain() for s in enforced)
    else:
        reason = "allowed: " + " and ".join(s.explain() for s in steps)
    return Verdict(True, reason, egress, ingress)


def with_candidates(policies: Sequence[Policy], candidates: Sequence[Policy]) -> list[Policy]:
    """The policies as they would be after applying the candidates (same kind, namespace and name
    replaces)."""
    replaced = {c.ref for c in candidates}
    return [p for p in policies if p.ref not in replaced] + list(candidates)


@dataclass(frozen=True, slots=True)
class _Party:
    identity: int
    labels: LabelSet
    endpoint: Endpoint | None
    name: str


def _resolve(
    who: Endpoint | LabelSet | int,
    known: dict[int, LabelSet],
    endpoints: Sequence[Endpoint],
    local_cluster: str,
) -> _Party:
    if isinstance(who, Endpoint):
        known.setdefault(who.identity, who.labels)
        return _Party(who.identity, who.labels, who, f"{local_cluster}/{who.namespace}/{who.name}")
    if isinstance(who, int):
        if who not in known:
            raise NotFound(f"identity {who} is not known in cluster {local_cluster}; give its labels instead.")
        identity, labels = who, known[who]
    else:
        labels = who
        identity = next((i for i, ls in known.items() if ls == labels), 0)
        if not identity:
            identity = max([_SYNTHETIC_BASE, *known]) + 1
            known[identity] = labels
    local = next((ep for ep in endpoints if ep.identity == identity or ep.labels == labels), None)
    if local is not None:
        return _Party(identity, labels, local, f"{local_cluster}/{local.namespace}/{local.name}")
    return _Party(identity, labels, None, f"identity {identity} ({labels})")


def trace(
    src: Endpoint | LabelSet | int,
    dst: Endpoint | LabelSet | int,
    dport: int,
    proto: int,
    *,
    local_cluster: str,
    policies: Sequence[Policy],
    identities: Mapping[int, LabelSet],
    endpoints: Sequence[Endpoint] = (),
    candidates: Sequence[Policy] = (),
    default_local_cluster: bool = True,
) -> Verdict:
    """Would a packet from ``src`` to ``dst`` on ``dport``/``proto`` pass, and why?

    ``src`` and ``dst`` are local endpoints, identities or label sets (a label set no identity has yet
    is traced as if it had one). ``endpoints`` are the cluster's local endpoints, used to find whether
    an identity or label set is local. ``candidates`` are policies to evaluate as if applied.
    """
    known: dict[int, LabelSet] = {**RESERVED_IDENTITIES, **identities}
    source = _resolve(src, known, endpoints, local_cluster)
    destination = _resolve(dst, known, endpoints, local_cluster)
    resolver = IdentityResolver(known, local_cluster, default_local_cluster)
    rules = all_rules(with_candidates(policies, candidates))

    def policy_of(party: _Party) -> EndpointPolicy | None:
        return None if party.endpoint is None else compile_endpoint(party.labels, rules, resolver)

    return trace_compiled(
        source.identity,
        destination.identity,
        dport,
        proto,
        src_policy=policy_of(source),
        dst_policy=policy_of(destination),
        src_name=source.name,
        dst_name=destination.name,
    )
