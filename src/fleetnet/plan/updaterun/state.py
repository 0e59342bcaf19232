"""The whole state of one update run, as frozen values in Azure's status shape (reference §3.6–3.7).

A ``RunState`` is everything the scheduler needs and everything ``updaterun show`` prints: the goal,
the strategy snapshot, and the status tree run → stages → groups → members, with gates and the
after-stage wait at their places. The daemon stores it as it is (``codec``) and feeds it to the
pure reducer in ``scheduler``; nothing here changes over time on its own.

Stage and group states are derived from their members, gates and waits (``_draft.freeze``); what
is stored is also what is shown, so a stored run and a recomputed one never disagree.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fleetnet.errors import NotFound
from fleetnet.model.names import check_resource_name
from fleetnet.plan.updaterun.placement import assign
from fleetnet.plan.updaterun.strategy import (
    DEFAULT_GROUP_CONCURRENCY,
    DEFAULT_STAGE_CONCURRENCY,
    STAGE_CONCURRENCY_MAX,
    MemberInfo,
    Strategy,
    UpgradeSpec,
)


class UpdateState(StrEnum):
    """Azure ``UpdateState``, shared by run, stage, group, member and gate."""

    NOT_STARTED = "NotStarted"
    RUNNING = "Running"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    SKIPPED = "Skipped"
    FAILED = "Failed"
    PENDING = "Pending"
    COMPLETED = "Completed"


class Timing(StrEnum):
    BEFORE = "Before"
    AFTER = "After"


# States after which a piece of the run does no more work in this attempt.
DONE = frozenset({UpdateState.COMPLETED, UpdateState.SKIPPED, UpdateState.FAILED})
# States of a run that can never change again.
RUN_TERMINAL = frozenset({UpdateState.COMPLETED, UpdateState.SKIPPED})
# States of a run that is moving (the scheduler starts work only in these).
RUN_ACTIVE = frozenset({UpdateState.RUNNING, UpdateState.PENDING})


@dataclass(frozen=True, slots=True)
class UpdateStatus:
    """Azure ``UpdateStatus``; times are seconds since the epoch, as the caller's clock gives them."""

    state: UpdateState = UpdateState.NOT_STARTED
    start_time: float | None = None
    completed_time: float | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class GateStatus:
    """A gate at its place in the run; ``gate_id`` stays None until the run reaches it."""

    display_name: str | None
    gate_id: str | None = None
    status: UpdateStatus = UpdateStatus()


@dataclass(frozen=True, slots=True)
class MemberStatus:
    name: str
    status: UpdateStatus = UpdateStatus()
    message: str = ""
    kubernetes_version: str | None = None  # what it runs now; becomes the target on success
    network: str | None = None
    attempts: int = 0  # upgrades started for it in this run (> 1 only after a failure and a restart)


@dataclass(frozen=True, slots=True)
class GroupStatus:
    name: str
    members: tuple[MemberStatus, ...]
    max_concurrency: int  # resolved (reference §3.4)
    max_allowed_failures: int  # resolved (reference §3.5)
    status: UpdateStatus = UpdateStatus()
    failure_count: int = 0
    before_gates: tuple[GateStatus, ...] = ()
    after_gates: tuple[GateStatus, ...] = ()
    skip_requested: bool = False


@dataclass(frozen=True, slots=True)
class AfterStageWaitStatus:
    wait_duration_in_seconds: int
    status: UpdateStatus = UpdateStatus()


@dataclass(frozen=True, slots=True)
class MeshHealthStatus:
    """fleetnet's own: the cross-cluster network check that follows a stage with ``meshHealthCheck``."""

    status: UpdateStatus = UpdateStatus()
    message: str = ""


@dataclass(frozen=True, slots=True)
class StageStatus:
    name: str
    groups: tuple[GroupStatus, ...]
    max_concurrency: int
    max_allowed_failures: int
    after_stage_wait_status: AfterStageWaitStatus
    status: UpdateStatus = UpdateStatus()
    failure_count: int = 0
    before_gates: tuple[GateStatus, ...] = ()
    after_gates: tuple[GateStatus, ...] = ()
    mesh_health_check: MeshHealthStatus | None = None  # None: the stage has no mesh check
    skip_requested: bool = False

    @property
    def members(self) -> tuple[MemberStatus, ...]:
        return tuple(m for g in self.groups for m in g.members)


@dataclass(frozen=True, slots=True)
class RunState:
    name: str
    spec: UpgradeSpec
    strategy: Strategy | None  # the snapshot; None for a one-by-one run
    stages: tuple[StageStatus, ...]
    status: UpdateStatus = UpdateStatus()
    failure_count: int = 0
    update_strategy_name: str | None = None  # the strategy it was copied from, for the record

    def to_json(self) -> dict[str, Any]:
        """Azure's UpdateRun shape (see ``codec``), for storage and for ``updaterun show``."""
        from fleetnet.plan.updaterun.codec import run_to_json  # codec builds on this module

        return run_to_json(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunState:
        from fleetnet.plan.updaterun.codec import run_from_json

        return run_from_json(data)

    def members(self) -> Iterator[tuple[StageStatus, GroupStatus, MemberStatus]]:
        for stage in self.stages:
            for group in stage.groups:
                for member in group.members:
                    yield stage, group, member

    def member(self, name: str) -> MemberStatus:
        for _, _, m in self.members():
            if m.name == name:
                return m
        raise NotFound(f"update run {self.name} has no member {name!r}; see `fleetnet updaterun show {self.name}`.")

    def stage(self, name: str) -> StageStatus:
        for s in self.stages:
            if s.name == name:
                return s
        raise NotFound(f"update run {self.name} has no stage {name!r}; see `fleetnet updaterun show {self.name}`.")

    def gates(self) -> Iterator[GateRef]:
        """Every gate of the run with its place, in run order."""
        for stage in self.stages:
            for gate in stage.before_gates:
                yield GateRef(self.name, stage.name, None, Timing.BEFORE, gate)
            for group in stage.groups:
                for gate in group.before_gates:
                    yield GateRef(self.name, stage.name, group.name, Timing.BEFORE, gate)
                for gate in group.after_gates:
                    yield GateRef(self.name, stage.name, group.name, Timing.AFTER, gate)
            for gate in stage.after_gates:
                yield GateRef(self.name, stage.name, None, Timing.AFTER, gate)


@dataclass(frozen=True, slots=True)
class GateRef:
    """A gate with the place that Azure's gate resource records as its ``target``."""

    run: str
    stage: str
    group: str | None
    timing: Timing
    gate: GateStatus

    @property
    def gate_id(self) -> str | None:
        return self.gate.gate_id

    @property
    def state(self) -> UpdateState:
        return self.gate.status.state


def new_run(
    name: str,
    spec: UpgradeSpec,
    members: Sequence[MemberInfo],
    strategy: Strategy | None = None,
    update_strategy_name: str | None = None,
) -> RunState:
    """A NotStarted run over ``members`` (the whole fleet; those in no listed group stay out).

    The strategy is kept as given (the caller passes a copy of the stored one: later edits to the
    strategy do not reach the run). Concurrency and failure limits are resolved here, against the
    members the run has (reference §3.4–3.5).
    """
    check_resource_name("update run", name, 50)
    stages = []
    for planned in assign(strategy, members):
        spec_s = planned.spec
        size = len(planned.members)
        stage_conc = spec_s.max_concurrency
        groups = tuple(
            GroupStatus(
                name=g.spec.name,
                members=tuple(
                    MemberStatus(name=m.name, kubernetes_version=m.kubernetes_version, network=m.network)
                    for m in g.members
                ),
                max_concurrency=(
                    DEFAULT_GROUP_CONCURRENCY
                    if g.spec.max_concurrency is None
                    else g.spec.max_concurrency.floor_of(len(g.members))
                ),
                max_allowed_failures=(
                    0 if g.spec.max_allowed_failures is None else g.spec.max_allowed_failures.ceil_of(len(g.members))
                ),
                before_gates=tuple(GateStatus(x.display_name) for x in g.spec.before_gates),
                after_gates=tuple(GateStatus(x.display_name) for x in g.spec.after_gates),
            )
            for g in planned.groups
        )
        stages.append(
            StageStatus(
                name=spec_s.name,
                groups=groups,
                max_concurrency=min(
                    STAGE_CONCURRENCY_MAX,
                    DEFAULT_STAGE_CONCURRENCY if stage_conc is None else stage_conc.floor_of(size),
                ),
                max_allowed_failures=(
                    0 if spec_s.max_allowed_failures is None else spec_s.max_allowed_failures.ceil_of(size)
                ),
                after_stage_wait_status=AfterStageWaitStatus(spec_s.after_stage_wait_in_seconds),
                before_gates=tuple(GateStatus(x.display_name) for x in spec_s.before_gates),
                after_gates=tuple(GateStatus(x.display_name) for x in spec_s.after_gates),
                mesh_health_check=MeshHealthStatus() if spec_s.mesh_health_check else None,
            )
        )
    return RunState(
        name=name,
        spec=spec,
        strategy=strategy,
        stages=tuple(stages),
        update_strategy_name=update_strategy_name,
    )
