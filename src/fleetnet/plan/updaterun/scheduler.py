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

from fleetnet.errors import Conflict, InvalidInput
from fleetnet.plan.updaterun import _handlers as on
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
    StartMemberUpgrade,
    StartRequested,
    StopRequested,
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
            on.start(d, now)
        case StopRequested():
            if d.status.state not in RUN_ACTIVE:
                raise Conflict(
                    f"update run {state.name} is {d.status.state}; only a Running or Pending run can be stopped."
                )
            d.status = replace(d.status, state=S.STOPPING)
        case SkipRequested(targets=targets):
            on.skip(d, targets, now)
        case GateApproved(gate_id=gate_id):
            on.approve(d, gate_id, now)
        case MemberUpgradeSucceeded(member=name):
            m = on.running_member(d, name)
            target = d.base.spec.kubernetes_version
            d.members[name] = replace(
                m,
                status=replace(m.status, state=S.COMPLETED, completed_time=now, error=None),
                message=f"upgraded to Kubernetes {target}." if target else "node images upgraded.",
                kubernetes_version=target or m.kubernetes_version,
            )
        case MemberUpgradeFailed(member=name, message=message):
            m = on.running_member(d, name)
            d.members[name] = replace(
                m, status=replace(m.status, state=S.FAILED, completed_time=now, error=message), message=message
            )
        case MeshHealthResult(stage=stage_name, ok=ok, message=message):
            on.mesh_result(d, stage_name, ok, message, now)
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
            message = f"already at Kubernetes {current}, the target or newer; nothing to do."
            d.members[m.name] = skipped_member(m, now, message)


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
    began = wait.status.start_time if wait.status.start_time is not None else now
    if now >= began + wait.wait_duration_in_seconds:
        d.waits[k] = replace(wait, status=replace(wait.status, state=S.COMPLETED, completed_time=now))
        return True
    return False
