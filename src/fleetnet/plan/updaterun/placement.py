"""Placing fleet members into a strategy's stages and groups.

Azure puts a member in the group its ``group`` field names (reference §3.3); a run without a
strategy takes every member one by one (§3.1). Both the run builder and pre-validation need the
same placement, so it is computed here once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fleetnet.errors import InvalidInput
from fleetnet.plan.updaterun.strategy import ONE_BY_ONE, Amount, GroupSpec, MemberInfo, StageSpec, Strategy


@dataclass(frozen=True, slots=True)
class PlannedGroup:
    spec: GroupSpec
    members: tuple[MemberInfo, ...]


@dataclass(frozen=True, slots=True)
class PlannedStage:
    spec: StageSpec
    groups: tuple[PlannedGroup, ...]

    @property
    def members(self) -> tuple[MemberInfo, ...]:
        return tuple(m for g in self.groups for m in g.members)


def one_by_one() -> Strategy:
    """What a run without a strategy does: every member, one at a time (reference §3.1)."""
    group = GroupSpec(name=ONE_BY_ONE, max_concurrency=Amount(1))
    return Strategy(stages=(StageSpec(name=ONE_BY_ONE, groups=(group,), max_concurrency=Amount(1)),))


def assign(strategy: Strategy | None, members: Sequence[MemberInfo]) -> tuple[PlannedStage, ...]:
    """Put members into the strategy's groups (by ``MemberInfo.group``), each group ordered by name.

    Without a strategy every member goes into one stage with one group. Members whose group no stage
    lists are not part of the run. Refuses duplicate members, groups no member is in, and a group
    ``maxConcurrency`` count above the group's size (reference §3.4).
    """
    names = [m.name for m in members]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidInput(f"member {dupes[0]!r} is listed twice; list each member once.")
    ordered = sorted(members, key=lambda m: m.name)
    if strategy is None:
        if not ordered:
            raise InvalidInput("the fleet has no members to update; add members first.")
        (stage,) = one_by_one().stages
        return (PlannedStage(stage, (PlannedGroup(stage.groups[0], tuple(ordered)),)),)
    planned = []
    for stage in strategy.stages:
        groups = []
        for group in stage.groups:
            in_group = tuple(m for m in ordered if m.group == group.name)
            if not in_group:
                raise InvalidInput(
                    f"group {group.name!r} of stage {stage.name!r} has no members; "
                    f"set some member's group to {group.name!r} or remove the group."
                )
            gc = group.max_concurrency
            if gc is not None and not gc.percent and gc.value > len(in_group):
                raise InvalidInput(
                    f"group {group.name!r} of stage {stage.name!r} has maxConcurrency {gc.value} but only "
                    f"{len(in_group)} member(s); lower maxConcurrency to at most {len(in_group)}."
                )
            groups.append(PlannedGroup(group, in_group))
        planned.append(PlannedStage(stage, tuple(groups)))
    return tuple(planned)
