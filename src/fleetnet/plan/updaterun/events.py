"""What the scheduler asks for (actions) and what it is told (events).

The scheduler never does anything itself: ``step`` returns actions for the daemon to carry out,
and the daemon reports outcomes and user requests back as events through ``apply``. Both are plain
frozen values, so a run can be replayed or tested without a clock, a cluster or a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from fleetnet.errors import InvalidInput
from fleetnet.plan.updaterun.state import Timing

# --- actions (scheduler → daemon) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartMemberUpgrade:
    """Upgrade this member to the run's goal; answer with MemberUpgradeSucceeded or MemberUpgradeFailed."""

    member: str
    stage: str
    group: str


@dataclass(frozen=True, slots=True)
class CreateGate:
    """The run reached a gate: create the gate resource with this id; it waits for GateApproved."""

    gate_id: str
    stage: str
    group: str | None  # None: a stage gate
    timing: Timing
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class CheckMeshHealth:
    """The members of a stage with ``meshHealthCheck`` are done: check these networks; answer with MeshHealthResult."""

    stage: str
    networks: tuple[str, ...]


Action = StartMemberUpgrade | CreateGate | CheckMeshHealth

# --- events (daemon → scheduler) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberUpgradeSucceeded:
    member: str


@dataclass(frozen=True, slots=True)
class MemberUpgradeFailed:
    member: str
    message: str


@dataclass(frozen=True, slots=True)
class GateApproved:
    gate_id: str


@dataclass(frozen=True, slots=True)
class StartRequested:
    pass


@dataclass(frozen=True, slots=True)
class StopRequested:
    pass


class SkipTargetType(StrEnum):
    MEMBER = "Member"
    GROUP = "Group"
    STAGE = "Stage"
    AFTER_STAGE_WAIT = "AfterStageWait"  # named by its stage


class SkipTarget(NamedTuple):
    type: SkipTargetType
    name: str

    @classmethod
    def parse(cls, text: str) -> SkipTarget:
        """``Type:Name`` as ``updaterun skip --targets`` takes it, e.g. ``Group:canary``."""
        kind, sep, name = text.partition(":")
        if not sep or not name:
            raise InvalidInput(f"skip target {text!r} is not Type:Name; write it like Group:my-group.")
        return cls(skip_type(kind), name)


def skip_type(kind: str) -> SkipTargetType:
    try:
        return SkipTargetType(kind)
    except ValueError as e:
        choices = ", ".join(t.value for t in SkipTargetType)
        raise InvalidInput(f"skip target type {kind!r} is not one of {choices}.") from e


@dataclass(frozen=True, slots=True)
class SkipRequested:
    """Skip these (Type, name) targets; plain ``("Group", "canary")`` pairs are accepted too."""

    targets: tuple[SkipTarget | tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class MeshHealthResult:
    stage: str
    ok: bool
    message: str = ""


Event = (
    MemberUpgradeSucceeded
    | MemberUpgradeFailed
    | GateApproved
    | StartRequested
    | StopRequested
    | SkipRequested
    | MeshHealthResult
)
