"""What an apply of a cross-cluster network would change: Azure's what-if rows, and apply's decision.

``plan_network`` is the single decision of an apply: ``--what-if`` prints its rows, ``apply``
records its states and ids and then carries them out. Because both run the very same function on
the same inputs (the stored members, the version catalog, what the hub observed), every member
apply refuses before touching a cluster shows up in the what-if as an ``Error`` row carrying the
sentence apply records.

Rows: ``Add`` (will join), ``Remove`` (will leave), ``-`` (stays; a member that had failed is tried
again) and ``Error`` (cannot join). An ``Error`` row is one of two kinds:

- refused: the member is left untouched (it is in another network, or the network has no free
  Cilium cluster id);
- failed: the member is recorded in the network as ``Failed`` with the row's sentence (a
  prerequisite is not met: ``plan/prereq.py``; or the hub observed a problem with it).

Members are considered in a fixed order: those staying in the network first (they are the peers a
newcomer is checked against), then the ones that failed before and are tried again, then the
newcomers, each by name; a member accepted earlier is a peer of the ones after it, so two
newcomers with overlapping pod CIDRs cannot both join: the second one by name is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from fleetnet.model.member import Member
from fleetnet.model.profile import MAX_MEMBERS_PER_NETWORK
from fleetnet.plan.ids import allocate_ids
from fleetnet.plan.prereq import check_prerequisites
from fleetnet.plan.selector import Selector, matches

Action = Literal["Add", "Remove", "-", "Error"]


@dataclass(frozen=True, slots=True)
class PlanRow:
    action: Action
    name: str
    mesh_state: str | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class NetworkPlan:
    """The whole decision of one apply; ``rows`` is what the what-if shows."""

    rows: tuple[PlanRow, ...]
    # members that will be configured into the network (newcomers and members tried again) → cilium id
    joining: Mapping[str, int] = field(default_factory=dict)
    # members recorded in the network as Failed with this sentence, and not configured
    failed: Mapping[str, str] = field(default_factory=dict)
    # Error rows whose member is left as it is (another network, no free id)
    refused: Mapping[str, str] = field(default_factory=dict)
    leaving: tuple[str, ...] = ()


def other_network_sentence(name: str, other: str) -> str:
    return (
        f"member {name} is already in cross-cluster network {other!r}: "
        f"a member can be in only one network; remove it from {other!r} first."
    )


def network_full_sentence(profile: str, max_members: int) -> str:
    return f"cross-cluster network {profile!r} already has {max_members} members, the most a network can hold."


def plan_network(
    profile: str,
    selector: Selector,
    members: Sequence[Member],
    known_version: Callable[[str], bool],
    *,
    max_members: int = MAX_MEMBERS_PER_NETWORK,
    observed: Mapping[str, str] | None = None,
) -> NetworkPlan:
    """Decide an apply of ``profile``.

    ``observed`` holds what the hub found out about members before deciding, as the sentence that
    keeps each out (for example a member the driver cannot reach); such a member fails like one
    that misses a prerequisite.
    """
    observed = observed or {}
    ordered = sorted(members, key=lambda m: m.name)
    in_network = [m for m in ordered if m.mesh is not None and m.mesh.profile == profile]
    staying = [m for m in in_network if matches(selector, m.labels)]
    leaving = [m for m in in_network if not matches(selector, m.labels)]
    retried = [m for m in staying if m.mesh is not None and m.mesh.state == "Failed"]
    retried_names = {m.name for m in retried}
    staying_names = {m.name for m in staying}
    peers = [m for m in staying if m.name not in retried_names]
    newcomers = [m for m in ordered if (m.mesh is None or m.mesh.profile != profile) and matches(selector, m.labels)]
    # a Cilium cluster id is what a place in the network costs: members tried again keep theirs
    held = {m.name: m.mesh.cilium_id for m in staying if m.mesh is not None and m.mesh.cilium_id != 0}
    free = max_members - len(set(held.values()))
    needs_id: list[str] = []
    failed: dict[str, str] = {}
    refused: dict[str, str] = {}
    accepted: list[str] = []
    for m in retried + newcomers:
        if m.mesh is not None and m.mesh.profile != profile:
            refused[m.name] = other_network_sentence(m.name, m.mesh.profile)
            continue
        has_id = m.name in held
        if not has_id and free <= 0:
            if m.name in retried_names:
                failed[m.name] = network_full_sentence(profile, max_members)
            else:
                refused[m.name] = network_full_sentence(profile, max_members)
            continue
        reason = check_prerequisites(m, peers, known_version) or observed.get(m.name)
        if reason is not None:
            failed[m.name] = reason
            continue
        peers.append(m)
        accepted.append(m.name)
        if not has_id:
            free -= 1
            needs_id.append(m.name)
    new_ids = allocate_ids(held, needs_id, maximum=max_members)
    joining = {n: new_ids.get(n) or held[n] for n in accepted}
    rows: list[PlanRow] = []
    leaving_names = {m.name for m in leaving}
    for m in ordered:
        state = None if m.mesh is None else m.mesh.state
        if m.name in failed or m.name in refused:
            rows.append(PlanRow("Error", m.name, state, failed.get(m.name) or refused[m.name]))
        elif m.name in leaving_names:
            rows.append(PlanRow("Remove", m.name, state))
        elif m.name in staying_names:
            rows.append(PlanRow("-", m.name, state))
        elif m.name in joining:
            rows.append(PlanRow("Add", m.name, None))
    return NetworkPlan(
        rows=tuple(rows),
        joining=joining,
        failed=failed,
        refused=refused,
        leaving=tuple(m.name for m in leaving),
    )


def plan_apply(
    profile: str,
    selector: Selector,
    members: Sequence[Member],
    known_version: Callable[[str], bool],
    *,
    max_members: int = MAX_MEMBERS_PER_NETWORK,
    observed: Mapping[str, str] | None = None,
) -> list[PlanRow]:
    """The what-if: rows for every member the apply concerns, sorted by name; others are absent."""
    return list(
        plan_network(profile, selector, members, known_version, max_members=max_members, observed=observed).rows
    )
