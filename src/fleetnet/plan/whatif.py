"""What an apply of a cross-cluster network would change: Azure's what-if rows.

``plan_apply`` is the single source of truth for membership changes: ``--what-if`` prints its rows,
``apply`` executes them. Rows: ``Add`` (will join), ``Remove`` (will leave), ``-`` (no change) and
``Error`` (cannot join: already in another network, or the network is full).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from fleetnet.model.member import Member
from fleetnet.model.profile import MAX_MEMBERS_PER_NETWORK
from fleetnet.plan.selector import Selector, matches

Action = Literal["Add", "Remove", "-", "Error"]


@dataclass(frozen=True, slots=True)
class PlanRow:
    action: Action
    name: str
    mesh_state: str | None
    error: str | None = None


def plan_apply(profile: str, selector: Selector, members: Sequence[Member]) -> list[PlanRow]:
    """Rows for every member the apply concerns, sorted by name; members it does not touch are absent."""
    staying = [m for m in members if m.mesh is not None and m.mesh.profile == profile and matches(selector, m.labels)]
    room = MAX_MEMBERS_PER_NETWORK - len(staying)
    rows: list[PlanRow] = []
    for m in sorted(members, key=lambda m: m.name):
        selected = matches(selector, m.labels)
        state = None if m.mesh is None else m.mesh.state
        if m.mesh is not None and m.mesh.profile == profile:
            rows.append(PlanRow("-" if selected else "Remove", m.name, state))
        elif not selected:
            continue
        elif m.mesh is not None:
            rows.append(
                PlanRow(
                    "Error",
                    m.name,
                    state,
                    f"member {m.name} is already in cross-cluster network {m.mesh.profile!r}: "
                    f"a member can be in only one network; remove it from {m.mesh.profile!r} first.",
                )
            )
        elif room <= 0:
            rows.append(
                PlanRow(
                    "Error",
                    m.name,
                    None,
                    f"cross-cluster network {profile!r} already has {MAX_MEMBERS_PER_NETWORK} members, "
                    "the most a network can hold.",
                )
            )
        else:
            room -= 1
            rows.append(PlanRow("Add", m.name, None))
    return rows
