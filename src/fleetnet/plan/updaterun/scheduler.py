"""The update-run reducer: ``apply`` records what happened, ``step`` decides what to do next.

Both are pure: the clock is an argument, gate ids come from an id factory, and the only output is a
new ``RunState`` plus, from ``step``, the actions for the daemon to carry out. The daemon's loop is

    state = apply(state, event, now)        # for each user request or outcome
    state, actions = step(state, now)       # after every apply, and again at next_wakeup(state)
    store state; carry out actions

Order of work (reference §3.1, §3.4, §3.9): stages one after another; within a stage, its
before-gates, then its groups in parallel (each behind its own before-gates, members in order, at
most the group's and the stage's concurrency at a time, then the group's after-gates), then the
mesh health check if the stage asks for one, then the after-stage wait and after-gates together.
Failures beyond a threshold, or a failed mesh check, stop the run: no new work starts, members
already upgrading finish (``Stopping``), then the run is ``Failed``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace

from fleetnet.errors import Conflict, InvalidInput, NotFound
from fleetnet.plan.updaterun._draft import (
    STAGE,
    Draft,
    freeze,
    gate_keys,
    group_done,
    group_members,
    group_skipped,
    settle,
    skipped_member,
    stage_done,
    stage_members,
    stage_skipped,
    thaw,
)
from fleetnet.plan.updaterun.events import (
    Action,
    CheckMeshHealth,
    CreateGate,
    Event,
    GateApproved,
    MemberUpgradeFailed,
    MemberUpgradeSucceeded,
    MeshHealthResult,
    SkipRequested,
    SkipTarget,
    SkipTargetType,
    StartMemberUpgrade,
    StartRequested,
    StopRequested,
    skip_type,
)
from fleetnet.plan.updaterun.state import (
    DONE,
    RUN_ACTIVE,
    MemberStatus,
    RunState,
    Timing,
    UpdateState,
    UpdateStatus,
)
from fleetnet.plan.updaterun.strategy import UpgradeType
from fleetnet.plan.versions import KubeVersion

S = UpdateState
IdFactory = Callable[[], str]

STARTABLE = frozenset({S.NOT_STARTED, S.STOPPED, S.FAILED})
SKIPPABLE = frozenset({S.NOT_STARTED, S.RUNNING, S.PENDING, S.STOPPED, S.FAILED})


def new_gate_id() -> str:
    """Azure names gates by GUID (reference §3.9)."""
    return str(uuid.uuid4())


def step(state: RunState, now: float, *, new_id: IdFactory = new_gate_id) -> tuple[RunState, list[Action]]:
    """Start whatever work the run may start at ``now``; return the new state and what to do."""
    d = thaw(state)
    actions: list[Action] = []
    settle(d, now)
    if d.status.state in RUN_ACTIVE:
        _advance(d, now, new_id, actions)
        settle(d, now)
    return freeze(d, now), actions


def apply(state: RunState, event: Event, now: float) -> RunState:
    """Record a user request or an outcome; Conflict when the run's state does not allow it."""
    d = thaw(state)
    match event:
        case StartRequested():
            _start(d, now)
        case StopRequested():
            if d.status.state not in RUN_ACTIVE:
                raise Conflict(
                    f"update run {state.name} is {d.status.state}; only a Running or Pending run can be stopped."
                )
            d.status = replace(d.status, state=S.STOPPING)
        case SkipRequested(targets=targets):
            _skip(d, targets, now)
        case GateApproved(gate_id=gate_id):
            _approve(d, gate_id, now)
        case MemberUpgradeSucceeded(member=name):
            m = _running_member(d, name)
            target = d.base.spec.kubernetes_version
            d.members[name] = replace(
                m,
                status=replace(m.status, state=S.COMPLETED, completed_time=now, error=None),
                message=f"upgraded to Kubernetes {target}." if target else "node images upgraded.",
                kubernetes_version=target or m.kubernetes_version,
            )
        case MemberUpgradeFailed(member=name, message=message):
            m = _running_member(d, name)
            d.members[name] = replace(
                m, status=replace(m.status, state=S.FAILED, completed_time=now, error=message), message=message
            )
        case MeshHealthResult(stage=stage_name, ok=ok, message=message):
            _mesh_result(d, stage_name, ok, message, now)
        case _:
            raise InvalidInput(f"{event!r} is not an update-run event.")
    settle(d, now)
    return freeze(d, now)


def next_wakeup(state: RunState) -> float | None:
    """When ``step`` should next be called even if no event arrives (an after-stage wait ends)."""
    if state.status.state not in RUN_ACTIVE:
        return None
    ends = [
        s.after_stage_wait_status.status.start_time + s.after_stage_wait_status.wait_duration_in_seconds
        for s in state.stages
        if s.after_stage_wait_status.status.state is S.RUNNING
        and s.after_stage_wait_status.status.start_time is not None
    ]
    return min(ends, default=None)


def outstanding(state: RunState) -> list[Action]:
    """The actions the run is still waiting on, for a daemon that restarted and lost track of them."""
    actions: list[Action] = []
    for stage, group, member in state.members():
        if member.status.state is S.RUNNING:
            actions.append(StartMemberUpgrade(member.name, stage.name, group.name))
    for ref in state.gates():
        if ref.state is S.PENDING and ref.gate_id is not None:
            actions.append(CreateGate(ref.gate_id, ref.stage, ref.group, ref.timing, ref.gate.display_name))
    for stage in state.stages:
        if stage.mesh_health_check is not None and stage.mesh_health_check.status.state is S.RUNNING:
            actions.append(CheckMeshHealth(stage.name, _networks(stage.members)))
    return actions


# --- moving forward ----------------------------------------------------------------------------------


def _advance(d: Draft, now: float, new_id: IdFactory, actions: list[Action]) -> None:
    for k in range(len(d.base.stages)):
        if stage_done(d, k):
            continue
        _skip_members_at_target(d, k, now)
        settle(d, now)
        if stage_done(d, k):
            continue
        if stage_skipped(d, k):
            return  # members that were upgrading when it was skipped must finish first
        if not _open_gates(d, k, STAGE, Timing.BEFORE, now, new_id, actions):
            return
        if not _run_groups(d, k, now, new_id, actions):
            return
        if not _mesh_check(d, k, now, actions):
            return
        waited = _wait(d, k, now)
        approved = _open_gates(d, k, STAGE, Timing.AFTER, now, new_id, actions)  # together with the wait
        if not (waited and approved):
            return
    all_skipped = all(stage_skipped(d, k) for k in range(len(d.base.stages)))
    d.status = replace(d.status, state=S.SKIPPED if all_skipped else S.COMPLETED, completed_time=now)


def _skip_members_at_target(d: Draft, k: int, now: float) -> None:
    """A member already on the goal's Kubernetes version has nothing to do (reference §3.6)."""
    spec = d.base.spec
    if spec.type is UpgradeType.NODE_IMAGE_ONLY or spec.kubernetes_version is None:
        return
    target = KubeVersion.parse(spec.kubernetes_version)
    for m in stage_members(d, k):
        if m.status.state is not S.NOT_STARTED or m.kubernetes_version is None:
            continue
        try:
            current = KubeVersion.parse(m.kubernetes_version)
        except InvalidInput:
            continue
        if current >= target:
            d.members[m.name] = skipped_member(m, now, f"already at Kubernetes {current}; nothing to upgrade.")


def _open_gates(d: Draft, k: int, j: int, timing: Timing, now: float, new_id: IdFactory, actions: list[Action]) -> bool:
    """Create the gates at this place that are not yet created; True when all of them are resolved."""
    resolved = True
    stage = d.base.stages[k]
    for key in gate_keys(d, k, j, timing):
        gate = d.gates[key]
        if gate.status.state is S.NOT_STARTED:
            gate_id = new_id()
            d.gates[key] = replace(gate, gate_id=gate_id, status=UpdateStatus(S.PENDING, start_time=now))
            group = None if j == STAGE else stage.groups[j].name
            actions.append(CreateGate(gate_id, stage.name, group, timing, gate.display_name))
            resolved = False
        elif gate.status.state is S.PENDING:
            resolved = False
    return resolved


def _run_groups(d: Draft, k: int, now: float, new_id: IdFactory, actions: list[Action]) -> bool:
    """Move each group of stage k along; True when every group is done."""
    stage = d.base.stages[k]
    ready = []
    for j in range(len(stage.groups)):
        if group_done(d, k, j) or group_skipped(d, k, j):
            continue
        if not _open_gates(d, k, j, Timing.BEFORE, now, new_id, actions):
            continue
        if all(m.status.state in DONE for m in group_members(d, k, j)):
            _open_gates(d, k, j, Timing.AFTER, now, new_id, actions)
            continue
        ready.append(j)
    _start_members(d, k, ready, now, actions)
    return all(group_done(d, k, j) for j in range(len(stage.groups)))


def _start_members(d: Draft, k: int, ready: list[int], now: float, actions: list[Action]) -> None:
    """Fill free slots round-robin across the ready groups, each group's members in order.

    The stage's maxConcurrency is a ceiling over all its groups; each group also has its own.
    """
    stage = d.base.stages[k]
    slots = stage.max_concurrency - sum(1 for m in stage_members(d, k) if m.status.state is S.RUNNING)
    queues: list[tuple[int, list[int], list[str]]] = []  # (group, [free slots], members not started)
    for j in ready:
        members = group_members(d, k, j)
        free = stage.groups[j].max_concurrency - sum(1 for m in members if m.status.state is S.RUNNING)
        queues.append((j, [free], [m.name for m in members if m.status.state is S.NOT_STARTED]))
    progressed = True
    while slots > 0 and progressed:
        progressed = False
        for j, room, waiting in queues:
            if slots == 0:
                break
            if room[0] > 0 and waiting:
                name = waiting.pop(0)
                m = d.members[name]
                d.members[name] = replace(
                    m, status=UpdateStatus(S.RUNNING, start_time=now), message="", attempts=m.attempts + 1
                )
                actions.append(StartMemberUpgrade(name, stage.name, stage.groups[j].name))
                room[0] -= 1
                slots -= 1
                progressed = True


def _mesh_check(d: Draft, k: int, now: float, actions: list[Action]) -> bool:
    """Ask for the stage's mesh check once its members are done; True when it has passed (or is not asked)."""
    mesh = d.mesh[k]
    if mesh is None or mesh.status.state in (S.COMPLETED, S.SKIPPED):
        return True
    if mesh.status.state is not S.NOT_STARTED:
        return False  # Running: waiting for MeshHealthResult
    networks = _networks(d.base.stages[k].members)
    if not networks:
        d.mesh[k] = replace(
            mesh,
            status=UpdateStatus(S.COMPLETED, start_time=now, completed_time=now),
            message="no member of this stage is in a cross-cluster network.",
        )
        return True
    d.mesh[k] = replace(mesh, status=UpdateStatus(S.RUNNING, start_time=now), message="")
    actions.append(CheckMeshHealth(d.base.stages[k].name, networks))
    return False


def _networks(members: Iterable[MemberStatus]) -> tuple[str, ...]:
    return tuple(sorted({m.network for m in members if m.network}))


def _wait(d: Draft, k: int, now: float) -> bool:
    """Start or finish the after-stage wait; True when it is over."""
    wait = d.waits[k]
    state = wait.status.state
    if state in (S.COMPLETED, S.SKIPPED):
        return True
    if state is S.NOT_STARTED:
        if wait.wait_duration_in_seconds == 0:
            d.waits[k] = replace(wait, status=UpdateStatus(S.COMPLETED, start_time=now, completed_time=now))
            return True
        d.waits[k] = replace(wait, status=UpdateStatus(S.RUNNING, start_time=now))
        return False
    start = wait.status.start_time if wait.status.start_time is not None else now
    if now >= start + wait.wait_duration_in_seconds:
        d.waits[k] = replace(wait, status=replace(wait.status, state=S.COMPLETED, completed_time=now))
        return True
    return False


# --- events ------------------------------------------------------------------------------------------------


def _start(d: Draft, now: float) -> None:
    run = d.base
    if d.status.state not in STARTABLE:
        raise Conflict(
            f"update run {run.name} is {d.status.state}; only a NotStarted, Stopped or Failed run can be started."
        )
    if d.status.state is not S.NOT_STARTED:
        # Resume at the first unprocessed member: finished stages stay finished; in the others,
        # members that failed are tried again, and so is a failed mesh check.
        for k, stage in enumerate(run.stages):
            if stage.status.state in (S.COMPLETED, S.SKIPPED) or d.stage_skip[k]:
                continue
            for j in range(len(stage.groups)):
                if d.group_skip[(k, j)]:
                    continue
                for m in group_members(d, k, j):
                    if m.status.state is S.FAILED:
                        d.members[m.name] = replace(
                            m, status=UpdateStatus(), message=f"retrying; the last attempt failed: {m.message}"
                        )
            mesh = d.mesh[k]
            if mesh is not None and mesh.status.state is S.FAILED:
                d.mesh[k] = replace(mesh, status=UpdateStatus())
        for k, wait in enumerate(d.waits):
            if wait.status.state is S.STOPPED:
                d.waits[k] = replace(wait, status=replace(wait.status, state=S.RUNNING))
    start = d.status.start_time if d.status.start_time is not None else now
    d.status = UpdateStatus(S.RUNNING, start_time=start)


def _approve(d: Draft, gate_id: str, now: float) -> None:
    for key, gate in d.gates.items():
        if gate.gate_id == gate_id:
            if gate.status.state is not S.PENDING:
                raise Conflict(f"gate {gate_id} is {gate.status.state}; only a Pending gate can be approved.")
            d.gates[key] = replace(gate, status=replace(gate.status, state=S.COMPLETED, completed_time=now))
            return
    raise NotFound(f"update run {d.base.name} has no gate {gate_id}; see `fleetnet gate list`.")


def _running_member(d: Draft, name: str) -> MemberStatus:
    m = d.members.get(name)
    if m is None:
        raise NotFound(f"update run {d.base.name} has no member {name!r}.")
    if m.status.state is not S.RUNNING:
        raise Conflict(f"member {name} is {m.status.state} in update run {d.base.name}, not upgrading.")
    return m


def _mesh_result(d: Draft, stage_name: str, ok: bool, message: str, now: float) -> None:
    k = _stage_index(d, stage_name)
    mesh = d.mesh[k]
    if mesh is None:
        raise Conflict(f"stage {stage_name} of update run {d.base.name} has no mesh health check.")
    if mesh.status.state is not S.RUNNING:
        raise Conflict(f"the mesh health check of stage {stage_name} is {mesh.status.state}, not running.")
    state = S.COMPLETED if ok else S.FAILED
    d.mesh[k] = replace(
        mesh,
        status=replace(mesh.status, state=state, completed_time=now, error=None if ok else message),
        message=message,
    )


def _stage_index(d: Draft, name: str) -> int:
    for k, stage in enumerate(d.base.stages):
        if stage.name == name:
            return k
    raise NotFound(f"update run {d.base.name} has no stage {name!r}; see `fleetnet updaterun show {d.base.name}`.")


def _group_index(d: Draft, name: str) -> tuple[int, int]:
    for k, stage in enumerate(d.base.stages):
        for j, group in enumerate(stage.groups):
            if group.name == name:
                return k, j
    raise NotFound(f"update run {d.base.name} has no group {name!r}; see `fleetnet updaterun show {d.base.name}`.")


def _skip(d: Draft, targets: tuple[SkipTarget, ...], now: float) -> None:
    """Check every target first, then skip them all: a request is applied whole or not at all."""
    run = d.base
    if d.status.state not in SKIPPABLE:
        raise Conflict(f"update run {run.name} is {d.status.state}; skipping is not possible now.")
    if not targets:
        raise InvalidInput("skip needs at least one target, such as Group:my-group.")
    plan: list[tuple[SkipTargetType, int, int, str]] = []
    for target in targets:
        kind, name = skip_type(str(target[0])), target[1]
        if kind is SkipTargetType.MEMBER:
            run.member(name)  # NotFound
            member = d.members[name]
            if member.status.state is S.RUNNING:
                raise Conflict(f"member {name} is upgrading now; it can be skipped only before it starts.")
            if member.status.state is S.COMPLETED:
                raise Conflict(f"member {name} has already been upgraded; there is nothing to skip.")
            plan.append((kind, -1, -1, name))
        elif kind is SkipTargetType.GROUP:
            k, j = _group_index(d, name)
            if run.stages[k].groups[j].status.state is S.COMPLETED:
                raise Conflict(f"group {name} has already completed; there is nothing to skip.")
            plan.append((kind, k, j, name))
        else:
            k = _stage_index(d, name)
            if kind is SkipTargetType.STAGE and run.stages[k].status.state is S.COMPLETED:
                raise Conflict(f"stage {name} has already completed; there is nothing to skip.")
            if kind is SkipTargetType.AFTER_STAGE_WAIT and d.waits[k].status.state is S.COMPLETED:
                raise Conflict(f"the after-stage wait of stage {name} is over; there is nothing to skip.")
            plan.append((kind, k, STAGE, name))
    for kind, k, j, name in plan:
        if kind is SkipTargetType.MEMBER:
            member = d.members[name]
            if member.status.state in (S.NOT_STARTED, S.FAILED):
                d.members[name] = skipped_member(member, now, "skipped by request.")
        elif kind is SkipTargetType.GROUP:
            d.group_skip[(k, j)] = True
        elif kind is SkipTargetType.STAGE:
            d.stage_skip[k] = True
            for jj in range(len(run.stages[k].groups)):
                d.group_skip[(k, jj)] = True
        else:
            wait = d.waits[k]
            if wait.status.state is not S.SKIPPED:
                d.waits[k] = replace(wait, status=replace(wait.status, state=S.SKIPPED, completed_time=now))
