"""How each user request and outcome changes a run's draft: the bodies of ``scheduler.apply``.

Each handler checks that the run's state allows the event (Conflict otherwise, NotFound for a
name the run does not have) before it changes anything, so a refused event leaves no trace.
"""

from __future__ import annotations

from dataclasses import replace

from fleetnet.errors import Conflict, InvalidInput, NotFound
from fleetnet.plan.updaterun._draft import STAGE, Draft, group_members, skipped_member
from fleetnet.plan.updaterun.events import SkipTarget, SkipTargetType, skip_type
from fleetnet.plan.updaterun.state import MemberStatus, UpdateState, UpdateStatus

S = UpdateState
STARTABLE = frozenset({S.NOT_STARTED, S.STOPPED, S.FAILED})
SKIPPABLE = frozenset({S.NOT_STARTED, S.RUNNING, S.PENDING, S.STOPPED, S.FAILED})


def start(d: Draft, now: float) -> None:
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
    began = d.status.start_time if d.status.start_time is not None else now
    d.status = UpdateStatus(S.RUNNING, start_time=began)


def approve(d: Draft, gate_id: str, now: float) -> None:
    for key, gate in d.gates.items():
        if gate.gate_id == gate_id:
            if gate.status.state is not S.PENDING:
                raise Conflict(f"gate {gate_id} is {gate.status.state}; only a Pending gate can be approved.")
            d.gates[key] = replace(gate, status=replace(gate.status, state=S.COMPLETED, completed_time=now))
            return
    raise NotFound(f"update run {d.base.name} has no gate {gate_id}; see `fleetnet gate list`.")


def running_member(d: Draft, name: str) -> MemberStatus:
    m = d.members.get(name)
    if m is None:
        raise NotFound(f"update run {d.base.name} has no member {name!r}.")
    if m.status.state is not S.RUNNING:
        raise Conflict(f"member {name} is {m.status.state} in update run {d.base.name}, not upgrading.")
    return m


def mesh_result(d: Draft, stage_name: str, ok: bool, message: str, now: float) -> None:
    k = stage_index(d, stage_name)
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


def stage_index(d: Draft, name: str) -> int:
    for k, stage in enumerate(d.base.stages):
        if stage.name == name:
            return k
    raise NotFound(f"update run {d.base.name} has no stage {name!r}; see `fleetnet updaterun show {d.base.name}`.")


def group_index(d: Draft, name: str) -> tuple[int, int]:
    for k, stage in enumerate(d.base.stages):
        for j, group in enumerate(stage.groups):
            if group.name == name:
                return k, j
    raise NotFound(f"update run {d.base.name} has no group {name!r}; see `fleetnet updaterun show {d.base.name}`.")


def skip(d: Draft, targets: tuple[SkipTarget | tuple[str, str], ...], now: float) -> None:
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
            k, j = group_index(d, name)
            if run.stages[k].groups[j].status.state is S.COMPLETED:
                raise Conflict(f"group {name} has already completed; there is nothing to skip.")
            plan.append((kind, k, j, name))
        else:
            k = stage_index(d, name)
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
