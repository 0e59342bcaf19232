"""The working copy the reducer edits, and the roll-up that turns it back into a ``RunState``.

The reducer changes only leaves — members, gates, after-stage waits, mesh checks, skip marks and
the run's own state — held in flat dicts keyed by position. Group and stage states are never set
by hand: ``freeze`` derives them from the leaves with the roll-up rules of reference §3.6, and
stamps start and completed times when a state changes. ``settle`` applies the consequences that
follow from leaves without any new work (skips cascading to gates, failure thresholds, a stopping
run coming to rest), so ``apply`` and ``step`` share them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from fleetnet.plan.updaterun.state import (
    DONE,
    RUN_ACTIVE,
    AfterStageWaitStatus,
    GateStatus,
    GroupStatus,
    MemberStatus,
    MeshHealthStatus,
    RunState,
    StageStatus,
    Timing,
    UpdateState,
    UpdateStatus,
)

S = UpdateState
STAGE = -1  # the group index of a stage's own gates
GateKey = tuple[int, int, Timing, int]  # (stage, group or STAGE, timing, position)
_RESOLVED = frozenset({S.COMPLETED, S.SKIPPED})
# Evidence that a group or stage has been reached (a skip alone does not start anything).
_WORKED = frozenset({S.RUNNING, S.COMPLETED, S.FAILED, S.STOPPED})
_REACHED = frozenset({S.PENDING, S.COMPLETED})


@dataclass(slots=True)
class Draft:
    base: RunState  # the structure and the previous derived states (for their times)
    status: UpdateStatus
    members: dict[str, MemberStatus]
    gates: dict[GateKey, GateStatus]
    waits: list[AfterStageWaitStatus]
    mesh: list[MeshHealthStatus | None]
    stage_skip: list[bool]
    group_skip: dict[tuple[int, int], bool]
    # The fixed structure, indexed once: member names by (stage, group or STAGE), gate keys by place.
    names: dict[tuple[int, int], tuple[str, ...]]
    keys: dict[tuple[int, int, Timing], tuple[GateKey, ...]]


def thaw(state: RunState) -> Draft:
    gates: dict[GateKey, GateStatus] = {}
    names: dict[tuple[int, int], tuple[str, ...]] = {}
    for k, stage in enumerate(state.stages):
        _put_gates(gates, k, STAGE, stage.before_gates, stage.after_gates)
        names[(k, STAGE)] = tuple(m.name for m in stage.members)
        for j, group in enumerate(stage.groups):
            _put_gates(gates, k, j, group.before_gates, group.after_gates)
            names[(k, j)] = tuple(m.name for m in group.members)
    keys: dict[tuple[int, int, Timing], list[GateKey]] = {}
    for key in gates:
        keys.setdefault(key[:3], []).append(key)
    return Draft(
        base=state,
        status=state.status,
        members={m.name: m for _, _, m in state.members()},
        gates=gates,
        waits=[s.after_stage_wait_status for s in state.stages],
        mesh=[s.mesh_health_check for s in state.stages],
        stage_skip=[s.skip_requested for s in state.stages],
        group_skip={(k, j): g.skip_requested for k, s in enumerate(state.stages) for j, g in enumerate(s.groups)},
        names=names,
        keys={place: tuple(v) for place, v in keys.items()},
    )


def _put_gates(
    gates: dict[GateKey, GateStatus], k: int, j: int, before: tuple[GateStatus, ...], after: tuple[GateStatus, ...]
) -> None:
    for i, g in enumerate(before):
        gates[(k, j, Timing.BEFORE, i)] = g
    for i, g in enumerate(after):
        gates[(k, j, Timing.AFTER, i)] = g


# --- reading the draft ------------------------------------------------------------------------------


def group_members(d: Draft, k: int, j: int) -> list[MemberStatus]:
    return [d.members[n] for n in d.names[(k, j)]]


def stage_members(d: Draft, k: int) -> list[MemberStatus]:
    return [d.members[n] for n in d.names[(k, STAGE)]]


def gate_keys(d: Draft, k: int, j: int, timing: Timing) -> tuple[GateKey, ...]:
    return d.keys.get((k, j, timing), ())


def _gates_of(d: Draft, k: int, j: int) -> list[GateStatus]:
    return [d.gates[key] for t in Timing for key in gate_keys(d, k, j, t)]


def _state(x: MemberStatus | GateStatus) -> UpdateState:
    return x.status.state


def group_running(d: Draft, k: int, j: int) -> bool:
    return any(_state(m) is S.RUNNING for m in group_members(d, k, j))


def group_skipped(d: Draft, k: int, j: int) -> bool:
    return d.group_skip[(k, j)] or all(_state(m) is S.SKIPPED for m in group_members(d, k, j))


def group_done(d: Draft, k: int, j: int) -> bool:
    if group_running(d, k, j):
        return False
    if group_skipped(d, k, j):
        return True
    return all(_state(m) in DONE for m in group_members(d, k, j)) and all(
        _state(g) in _RESOLVED for g in _gates_of(d, k, j)
    )


def stage_running(d: Draft, k: int) -> bool:
    mesh = d.mesh[k]
    return any(_state(m) is S.RUNNING for m in stage_members(d, k)) or (
        mesh is not None and mesh.status.state is S.RUNNING
    )


def stage_skipped(d: Draft, k: int) -> bool:
    return d.stage_skip[k] or all(group_skipped(d, k, j) for j in range(len(d.base.stages[k].groups)))


def mesh_resolved(d: Draft, k: int) -> bool:
    mesh = d.mesh[k]
    return mesh is None or mesh.status.state in _RESOLVED


def stage_done(d: Draft, k: int) -> bool:
    if stage_running(d, k):
        return False
    if stage_skipped(d, k):
        return True
    return (
        all(group_done(d, k, j) for j in range(len(d.base.stages[k].groups)))
        and mesh_resolved(d, k)
        and d.waits[k].status.state in _RESOLVED
        and all(_state(g) in _RESOLVED for g in _gates_of(d, k, STAGE))
    )


def in_flight(d: Draft) -> bool:
    return any(stage_running(d, k) for k in range(len(d.base.stages)))


def _failures(d: Draft, k: int, j: int) -> int:
    return sum(1 for m in group_members(d, k, j) if _state(m) is S.FAILED)


def group_over(d: Draft, k: int, j: int) -> bool:
    """The group has more failures than it tolerates (a skipped group no longer counts)."""
    return not d.group_skip[(k, j)] and _failures(d, k, j) > d.base.stages[k].groups[j].max_allowed_failures


def _stage_counted_failures(d: Draft, k: int) -> int:
    return sum(_failures(d, k, j) for j in range(len(d.base.stages[k].groups)) if not d.group_skip[(k, j)])


def stage_over(d: Draft, k: int) -> bool:
    return not d.stage_skip[k] and _stage_counted_failures(d, k) > d.base.stages[k].max_allowed_failures


def mesh_failed(d: Draft, k: int) -> bool:
    mesh = d.mesh[k]
    return not d.stage_skip[k] and mesh is not None and mesh.status.state is S.FAILED


def first_failure(d: Draft) -> str | None:
    """One sentence for the run's error when some segment has failed beyond what it tolerates."""
    for k, stage in enumerate(d.base.stages):
        if mesh_failed(d, k):
            mesh = d.mesh[k]
            detail = f": {mesh.message}" if mesh is not None and mesh.message else ""
            return f"the mesh health check after stage {stage.name} failed{detail}."
        for j, group in enumerate(stage.groups):
            if group_over(d, k, j):
                return _failure_sentence(d, k, j, f"group {group.name}", _failures(d, k, j), group.max_allowed_failures)
        if stage_over(d, k):
            return _failure_sentence(
                d, k, None, f"stage {stage.name}", _stage_counted_failures(d, k), stage.max_allowed_failures
            )
    return None


def _failure_sentence(d: Draft, k: int, j: int | None, scope: str, count: int, allowed: int) -> str:
    members = stage_members(d, k) if j is None else group_members(d, k, j)
    failed = next(m for m in members if _state(m) is S.FAILED)
    why = f" ({failed.message})" if failed.message else ""
    return (
        f"member {failed.name} failed{why}, and {scope} has {count} failed member(s), "
        f"more than its maxAllowedFailures of {allowed}."
    )


# --- consequences --------------------------------------------------------------------------------------


def settle(d: Draft, now: float) -> None:
    """Skips reach gates and waits; failures past a threshold stop the run; a stopping run comes to rest."""
    _cascade_skips(d, now)
    if d.status.state in RUN_ACTIVE or d.status.state is S.STOPPING:
        if d.status.error is None:
            error = first_failure(d)
            if error is not None:
                d.status = replace(d.status, state=S.STOPPING, error=error)
        if d.status.state is S.STOPPING and not in_flight(d):
            final = S.FAILED if d.status.error is not None else S.STOPPED
            d.status = replace(d.status, state=final, completed_time=now)
            for k, wait in enumerate(d.waits):
                if wait.status.state is S.RUNNING:
                    d.waits[k] = replace(wait, status=replace(wait.status, state=S.STOPPED))


def _cascade_skips(d: Draft, now: float) -> None:
    for k, stage in enumerate(d.base.stages):
        for j in range(len(stage.groups)):
            if d.group_skip[(k, j)]:
                for m in group_members(d, k, j):
                    if _state(m) is S.NOT_STARTED:
                        d.members[m.name] = skipped_member(m, now, "skipped: its group was skipped")
            if group_skipped(d, k, j):
                _skip_gates(d, k, j, now)
        if stage_skipped(d, k):
            _skip_gates(d, k, STAGE, now)
            wait = d.waits[k]
            if wait.status.state not in _RESOLVED:
                d.waits[k] = replace(wait, status=_ended(wait.status, S.SKIPPED, now))
            mesh = d.mesh[k]
            if mesh is not None and mesh.status.state is S.NOT_STARTED:
                d.mesh[k] = replace(mesh, status=_ended(mesh.status, S.SKIPPED, now))


def _skip_gates(d: Draft, k: int, j: int, now: float) -> None:
    for t in Timing:
        for key in gate_keys(d, k, j, t):
            gate = d.gates[key]
            if gate.status.state in (S.NOT_STARTED, S.PENDING):
                d.gates[key] = replace(gate, status=_ended(gate.status, S.SKIPPED, now))


def skipped_member(m: MemberStatus, now: float, message: str) -> MemberStatus:
    return replace(m, status=_ended(m.status, S.SKIPPED, now), message=message)


def _ended(status: UpdateStatus, state: UpdateState, now: float) -> UpdateStatus:
    return UpdateStatus(state=state, start_time=status.start_time, completed_time=now, error=status.error)


# --- roll-up ----------------------------------------------------------------------------------------------


def freeze(d: Draft, now: float) -> RunState:
    stages = []
    for k, old_stage in enumerate(d.base.stages):
        groups = []
        for j, old_group in enumerate(old_stage.groups):
            state, error = _group_state(d, k, j, old_group)
            groups.append(
                replace(
                    old_group,
                    members=tuple(group_members(d, k, j)),
                    status=_moved(old_group.status, state, now, error),
                    failure_count=_failures(d, k, j),
                    before_gates=tuple(d.gates[key] for key in gate_keys(d, k, j, Timing.BEFORE)),
                    after_gates=tuple(d.gates[key] for key in gate_keys(d, k, j, Timing.AFTER)),
                    skip_requested=d.group_skip[(k, j)],
                )
            )
        state, error = _stage_state(d, k, old_stage, [g.status.state for g in groups])
        stages.append(
            replace(
                old_stage,
                groups=tuple(groups),
                status=_moved(old_stage.status, state, now, error),
                failure_count=sum(g.failure_count for g in groups),
                before_gates=tuple(d.gates[key] for key in gate_keys(d, k, STAGE, Timing.BEFORE)),
                after_gates=tuple(d.gates[key] for key in gate_keys(d, k, STAGE, Timing.AFTER)),
                after_stage_wait_status=d.waits[k],
                mesh_health_check=d.mesh[k],
                skip_requested=d.stage_skip[k],
            )
        )
    status = d.status
    if status.state in RUN_ACTIVE:
        current = next((s for s in stages if s.status.state not in _RESOLVED), None)
        want = S.PENDING if current is not None and current.status.state is S.PENDING else S.RUNNING
        status = replace(status, state=want)
    return replace(
        d.base,
        stages=tuple(stages),
        status=status,
        failure_count=sum(s.failure_count for s in stages),
    )


def _moved(old: UpdateStatus, state: UpdateState, now: float, error: str | None) -> UpdateStatus:
    if old.state is state and old.error == error:
        return old
    start = old.start_time
    if start is None and state not in (S.NOT_STARTED, S.SKIPPED):
        start = now
    ended = state in DONE or state is S.STOPPED
    completed = old.completed_time if old.state is state else (now if ended else None)
    return UpdateStatus(state=state, start_time=start, completed_time=completed, error=error)


def _group_state(d: Draft, k: int, j: int, old: GroupStatus) -> tuple[UpdateState, str | None]:
    members = group_members(d, k, j)
    gates = _gates_of(d, k, j)
    running = group_running(d, k, j)
    if group_over(d, k, j):
        return S.FAILED, (
            f"{_failures(d, k, j)} member(s) failed, more than its maxAllowedFailures of {old.max_allowed_failures}."
        )
    if not running and group_skipped(d, k, j):
        return S.SKIPPED, None
    if not running and all(_state(m) in DONE for m in members) and all(_state(g) in _RESOLVED for g in gates):
        return S.COMPLETED, None
    started = (
        old.status.start_time is not None
        or any(_state(m) in _WORKED for m in members)
        or any(_state(g) in _REACHED for g in gates)
    )
    return _active_state(d, started, running, any(_state(g) is S.PENDING for g in gates)), None


def _stage_state(d: Draft, k: int, old: StageStatus, group_states: list[UpdateState]) -> tuple[UpdateState, str | None]:
    if mesh_failed(d, k):
        mesh = d.mesh[k]
        message = mesh.message if mesh is not None else ""
        return S.FAILED, f"the mesh health check failed: {message}" if message else "the mesh health check failed."
    if stage_over(d, k):
        return S.FAILED, (
            f"{_stage_counted_failures(d, k)} member(s) failed, more than its maxAllowedFailures of "
            f"{old.max_allowed_failures}."
        )
    if S.FAILED in group_states:
        return S.FAILED, "a group of this stage failed."
    running = stage_running(d, k)
    gates = _gates_of(d, k, STAGE)
    wait = d.waits[k].status.state
    if not running and stage_skipped(d, k):
        return S.SKIPPED, None
    if (
        not running
        and all(s in _RESOLVED for s in group_states)
        and mesh_resolved(d, k)
        and wait in _RESOLVED
        and all(_state(g) in _RESOLVED for g in gates)
    ):
        return S.COMPLETED, None
    mesh = d.mesh[k]
    started = (
        old.status.start_time is not None
        or any(_state(g) in _REACHED for g in gates)
        or any(s not in (S.NOT_STARTED, S.SKIPPED) for s in group_states)
        or wait in _WORKED
        or (mesh is not None and mesh.status.state in _WORKED)
    )
    open_groups = [s for s in group_states if s not in _RESOLVED]
    waiting = any(_state(g) is S.PENDING for g in gates) or (
        bool(open_groups) and all(s in (S.PENDING, S.NOT_STARTED) for s in open_groups) and S.PENDING in open_groups
    )
    return _active_state(d, started, running, waiting), None


def _active_state(d: Draft, started: bool, running: bool, waiting: bool) -> UpdateState:
    """The state of a stage or group that has work left, from the run's state and its own."""
    run = d.status.state
    if not started or run is S.NOT_STARTED:
        return S.NOT_STARTED
    if run is S.STOPPING:
        return S.STOPPING if running else S.STOPPED
    if run in (S.STOPPED, S.FAILED):
        return S.STOPPED
    return S.PENDING if waiting else S.RUNNING
