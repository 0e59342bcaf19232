"""Properties of the update-run reducer under random strategies, fleets and sequences of events.

Each example builds a strategy and a fleet, then plays a random mix of user requests (start,
stop, skip, approve), member outcomes, mesh-check results and clock ticks, checking after every
transition the invariants the reference states: stage order, concurrency ceilings, failure
thresholds, no double upgrades, resumption at the first unprocessed member, terminal states.
Finally a cooperative driver must bring every run to rest.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetnet.errors import FleetnetError
from fleetnet.plan.updaterun import (
    Action,
    CreateGate,
    Event,
    GateApproved,
    MemberInfo,
    MemberUpgradeFailed,
    MemberUpgradeSucceeded,
    MeshHealthResult,
    RunState,
    SkipRequested,
    SkipTarget,
    SkipTargetType,
    StartMemberUpgrade,
    StartRequested,
    StopRequested,
    Strategy,
    UpdateState,
    apply,
    new_run,
    next_wakeup,
    parse_strategy,
    run_from_json,
    run_to_json,
    step,
)
from tests.plan.updaterun.sim import FULL

S = UpdateState
RESOLVED = {S.COMPLETED, S.SKIPPED}
ACTIVE = {S.RUNNING, S.PENDING}
STARTABLE = {S.NOT_STARTED, S.STOPPED, S.FAILED}


def _pct(p: int) -> str:
    return f"{p}%"


@st.composite
def fleets(draw: st.DrawFn) -> tuple[Strategy, list[MemberInfo]]:
    """A strategy of 1–3 stages × 1–3 groups × 1–4 members, plus members outside the run."""
    members: list[MemberInfo] = []
    counter = itertools.count()

    def add(group: str | None) -> None:
        members.append(
            MemberInfo(
                name=f"m{next(counter):02d}",
                group=group,
                kubernetes_version=draw(st.sampled_from(["1.32.3", "1.32.9", "1.33.2"])),  # 1.33.2 = target
                network=draw(st.sampled_from([None, "blue", "red"])),
            )
        )

    gates = st.lists(st.just({"type": "Approval"}), max_size=1)
    stages: list[dict[str, Any]] = []
    for s in range(draw(st.integers(1, 3))):
        stage_conc = draw(st.one_of(st.none(), st.integers(1, 4), st.integers(1, 100).map(_pct)))
        ceiling = stage_conc if isinstance(stage_conc, int) else 50
        groups = []
        for g in range(draw(st.integers(1, 3))):
            name = f"s{s}g{g}"
            size = draw(st.integers(1, 4))
            for _ in range(size):
                add(name)
            group: dict[str, Any] = {"name": name, "beforeGates": draw(gates), "afterGates": draw(gates)}
            conc = draw(st.one_of(st.none(), st.integers(1, min(size, ceiling)), st.integers(1, 100).map(_pct)))
            if conc is not None:
                group["maxConcurrency"] = str(conc)
            fails = draw(st.one_of(st.none(), st.integers(0, 2), st.integers(0, 100).map(_pct)))
            if fails is not None:
                group["maxAllowedFailures"] = str(fails)
            groups.append(group)
        stage: dict[str, Any] = {
            "name": f"s{s}",
            "groups": groups,
            "afterStageWaitInSeconds": draw(st.sampled_from([0, 0, 30, 600])),
            "meshHealthCheck": draw(st.booleans()),
            "beforeGates": draw(gates),
            "afterGates": draw(gates),
        }
        if stage_conc is not None:
            stage["maxConcurrency"] = str(stage_conc)
        fails = draw(st.one_of(st.none(), st.integers(0, 3), st.integers(0, 100).map(_pct)))
        if fails is not None:
            stage["maxAllowedFailures"] = str(fails)
        stages.append(stage)
    for _ in range(draw(st.integers(0, 2))):
        add(draw(st.sampled_from([None, "elsewhere"])))
    return parse_strategy({"stages": stages}), members


# --- invariants ---------------------------------------------------------------------------------------------


def _running(run: RunState) -> set[str]:
    return {m.name for _, _, m in run.members() if m.status.state is S.RUNNING}


def _checking(run: RunState) -> list[str]:
    return [s.name for s in run.stages if s.mesh_health_check and s.mesh_health_check.status.state is S.RUNNING]


def _over_threshold(run: RunState) -> bool:
    for stage in run.stages:
        mesh = stage.mesh_health_check
        if not stage.skip_requested and mesh is not None and mesh.status.state is S.FAILED:
            return True
        counted = 0
        for group in stage.groups:
            if group.skip_requested:
                continue
            counted += group.failure_count
            if group.failure_count > group.max_allowed_failures:
                return True
        if not stage.skip_requested and counted > stage.max_allowed_failures:
            return True
    return False


def _earlier_stages_resolved(run: RunState, stage_name: str) -> bool:
    for stage in run.stages:
        if stage.name == stage_name:
            return True
        if stage.status.state not in RESOLVED:
            return False
        wait = stage.after_stage_wait_status.status.state
        if wait not in RESOLVED or any(g.status.state not in RESOLVED for g in stage.after_gates):
            return False
        if any(m.status.state is S.RUNNING for m in stage.members):
            return False
    raise AssertionError(f"no stage {stage_name}")


def check_state(run: RunState) -> None:
    state = run.status.state
    running = _running(run)
    for stage in run.stages:
        in_stage = sum(m.status.state is S.RUNNING for m in stage.members)
        assert in_stage <= stage.max_concurrency, f"stage {stage.name}: {in_stage} > {stage.max_concurrency}"
        for group in stage.groups:
            in_group = sum(m.status.state is S.RUNNING for m in group.members)
            assert in_group <= group.max_concurrency, f"group {group.name}: {in_group} > {group.max_concurrency}"
            assert group.failure_count == sum(m.status.state is S.FAILED for m in group.members)
        if any(m.status.state is S.RUNNING for m in stage.members):
            assert _earlier_stages_resolved(run, stage.name)
    if _over_threshold(run):
        assert state in (S.STOPPING, S.FAILED), f"over a failure threshold but {state}"
    if state is S.FAILED:
        assert run.status.error
    if state in (S.STOPPED, S.FAILED, S.NOT_STARTED) or state in RESOLVED:
        assert not running and not _checking(run)
    if state is S.STOPPING:
        assert running or _checking(run)
    if state in RESOLVED:
        assert all(s.status.state in RESOLVED for s in run.stages)
        assert all(g.state in RESOLVED for g in run.gates())
    for ref in run.gates():
        assert ref.gate_id is not None or ref.state in (S.NOT_STARTED, S.SKIPPED)
        assert ref.gate_id is None or ref.state is not S.NOT_STARTED


@dataclass
class History:
    """What the invariants about sequences need to remember."""

    starts: dict[str, int] = field(default_factory=dict)
    last_failed: dict[str, bool] = field(default_factory=dict)  # its last attempt failed
    restarted_since: dict[str, bool] = field(default_factory=dict)  # a StartRequested came after that
    gate_ids: set[str] = field(default_factory=set)
    finished: dict[str, UpdateState] = field(default_factory=dict)  # members Completed or Skipped, for good

    def on_event(self, event: Event) -> None:
        if isinstance(event, StartRequested):
            for name, failed in self.last_failed.items():
                if failed:
                    self.restarted_since[name] = True
        elif isinstance(event, MemberUpgradeFailed):
            self.last_failed[event.member] = True
            self.restarted_since[event.member] = False

    def on_actions(self, before: RunState, after: RunState, actions: list[Action]) -> None:
        was_running = _running(before)
        for action in actions:
            if isinstance(action, StartMemberUpgrade):
                name = action.member
                assert name not in was_running
                assert after.status.state in ACTIVE
                assert not _over_threshold(after)
                if self.starts.get(name, 0):
                    assert self.last_failed.get(name) and self.restarted_since.get(name), f"{name} upgraded twice"
                self.starts[name] = self.starts.get(name, 0) + 1
                self.last_failed[name] = False
                assert _earlier_stages_resolved(after, action.stage)
                members = next(g for s in after.stages for g in s.groups if g.name == action.group).members
                order = [m.name for m in members]
                # members of a group start in order: nobody before it is still waiting
                assert all(m.status.state is not S.NOT_STARTED for m in members[: order.index(name)])
            elif isinstance(action, CreateGate):
                assert action.gate_id not in self.gate_ids
                self.gate_ids.add(action.gate_id)
                assert _earlier_stages_resolved(after, action.stage)

    def on_state(self, run: RunState) -> None:
        for _, _, m in run.members():
            if m.name in self.finished:
                assert m.status.state is self.finished[m.name], f"{m.name} left {self.finished[m.name]}"
            elif m.status.state in RESOLVED:
                self.finished[m.name] = m.status.state


class Driver:
    def __init__(self, run: RunState) -> None:
        self.run = run
        self.now = 0.0
        self.ids = itertools.count()
        self.history = History()

    def new_id(self) -> str:
        return f"gate-{next(self.ids)}"

    def step(self) -> None:
        before = self.run
        terminal = before.status.state in RESOLVED
        self.run, actions = step(before, self.now, new_id=self.new_id)
        if terminal:
            assert self.run == before and actions == []
        self.history.on_actions(before, self.run, actions)
        self.history.on_state(self.run)
        check_state(self.run)

    def event(self, event: Event, must_succeed: bool) -> None:
        before = self.run
        try:
            self.run = apply(before, event, self.now)
        except FleetnetError:
            assert not must_succeed, f"{event} was refused in {before.status.state}"
            return
        assert before.status.state not in RESOLVED, f"{event} changed a {before.status.state} run"
        self.history.on_event(event)
        self.history.on_state(self.run)
        check_state(self.run)
        if self.run.status.state is not before.status.state:  # storage round trip, at each change of state
            assert run_from_json(run_to_json(self.run)) == self.run
        self.step()

    def finish(self) -> None:
        """Cooperate until the run rests: start it, approve, pass checks, succeed members, wait."""
        for _ in range(1000):
            state = self.run.status.state
            if state in RESOLVED:
                return
            if state in STARTABLE:
                self.event(StartRequested(), must_succeed=True)
            elif running := sorted(_running(self.run)):
                self.event(MemberUpgradeSucceeded(running[0]), must_succeed=True)
            elif pending := [g.gate_id for g in self.run.gates() if g.state is S.PENDING and g.gate_id]:
                self.event(GateApproved(pending[0]), must_succeed=True)
            elif checking := _checking(self.run):
                self.event(MeshHealthResult(checking[0], True), must_succeed=True)
            else:
                # nothing outstanding: only an after-stage wait can be holding an active run
                wakeup = next_wakeup(self.run)
                assert wakeup is not None and wakeup > self.now, f"stuck: {self.run.status}"
                self.now = wakeup
                self.step()
        raise AssertionError(f"the run did not come to rest: {self.run.status}")


def _skip_targets(run: RunState) -> list[SkipTarget]:
    targets = [SkipTarget(SkipTargetType.MEMBER, m.name) for _, _, m in run.members()]
    for stage in run.stages:
        targets += [
            SkipTarget(SkipTargetType.STAGE, stage.name),
            SkipTarget(SkipTargetType.AFTER_STAGE_WAIT, stage.name),
        ]
        targets += [SkipTarget(SkipTargetType.GROUP, g.name) for g in stage.groups]
    return targets


@settings(max_examples=70, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets(), st.data())
def test_random_runs_keep_the_invariants(fleet: tuple[Strategy, list[MemberInfo]], data: st.DataObject) -> None:
    strat, members = fleet
    driver = Driver(new_run("run", FULL, members, strat))
    driver.step()
    for _ in range(data.draw(st.integers(0, 60), label="moves")):
        run = driver.run
        state = run.status.state
        running = sorted(_running(run))
        pending = [g.gate_id for g in run.gates() if g.state is S.PENDING and g.gate_id]
        moves: list[tuple[Any, ...]] = [("tick", 1.0), ("tick", 40.0), ("tick", 1000.0), ("skip",), ("stray",)]
        if state in STARTABLE:
            moves += [("event", StartRequested(), True)] * 3
        if state in ACTIVE:
            moves.append(("event", StopRequested(), True))
        moves += [("event", GateApproved(g), True) for g in pending] * 2
        for name in running:
            moves += [("event", MemberUpgradeSucceeded(name), True)] * 3
            moves.append(("event", MemberUpgradeFailed(name, "boom"), True))
        for checking in _checking(run):
            moves += [("event", MeshHealthResult(checking, True), True)] * 2
            moves.append(("event", MeshHealthResult(checking, False, "remote not ready"), True))
        move = data.draw(st.sampled_from(moves), label="move")
        if move[0] == "tick":
            driver.now += move[1]
            driver.step()
        elif move[0] == "skip":
            targets = data.draw(st.lists(st.sampled_from(_skip_targets(run)), min_size=1, max_size=2), label="skip")
            driver.event(SkipRequested(tuple(targets)), must_succeed=False)
        elif move[0] == "stray":
            # outcomes nobody asked for and approvals of gates that are not pending must be refused
            names = [m.name for _, _, m in run.members() if m.status.state is not S.RUNNING]
            gates = [g.gate_id for g in run.gates() if g.state is not S.PENDING and g.gate_id] + ["no-such-gate"]
            strays: list[Event] = [GateApproved(g) for g in gates]
            strays += [MemberUpgradeSucceeded(n) for n in names]
            stray = data.draw(st.sampled_from(strays), label="stray")
            try:
                apply(run, stray, driver.now)
            except FleetnetError:
                pass
            else:
                raise AssertionError(f"{stray} was accepted")
        else:
            driver.event(move[1], must_succeed=move[2])
    driver.finish()
    final = driver.run
    assert run_from_json(run_to_json(final)) == final
    assert final.status.state in RESOLVED
    for stage in final.stages:
        for group in stage.groups:
            for m in group.members:
                assert m.status.state in (S.COMPLETED, S.SKIPPED, S.FAILED)
            if not group.skip_requested:
                assert group.failure_count <= group.max_allowed_failures
        assert stage.after_stage_wait_status.status.state in RESOLVED


@settings(max_examples=25, deadline=None)
@given(fleets(), st.data())
def test_stopping_and_restarting_changes_nothing_but_timing(
    fleet: tuple[Strategy, list[MemberInfo]], data: st.DataObject
) -> None:
    """A run stopped and restarted any number of times upgrades exactly the members an uninterrupted one does."""
    strat, members = fleet
    plain = Driver(new_run("run", FULL, members, strat))
    plain.finish()
    stopped = Driver(new_run("run", FULL, members, strat))
    stopped.event(StartRequested(), must_succeed=True)
    for _ in range(data.draw(st.integers(0, 30), label="rounds")):
        if stopped.run.status.state in RESOLVED:
            break
        if stopped.run.status.state in ACTIVE and data.draw(st.booleans(), label="stop"):
            stopped.event(StopRequested(), must_succeed=True)
        if stopped.run.status.state in STARTABLE and data.draw(st.booleans(), label="start"):
            stopped.event(StartRequested(), must_succeed=True)
        running = sorted(_running(stopped.run))
        if running:
            stopped.event(MemberUpgradeSucceeded(running[0]), must_succeed=True)
        elif pending := [g.gate_id for g in stopped.run.gates() if g.state is S.PENDING and g.gate_id]:
            stopped.event(GateApproved(pending[0]), must_succeed=True)
        elif checking := _checking(stopped.run):
            stopped.event(MeshHealthResult(checking[0], True), must_succeed=True)
        else:
            stopped.now += 1000
            stopped.step()
    stopped.finish()

    def outcome(run: RunState) -> dict[str, tuple[UpdateState, int]]:
        return {m.name: (m.status.state, m.attempts) for _, _, m in run.members()}

    assert outcome(stopped.run) == outcome(plain.run)
    assert stopped.run.status.state is plain.run.status.state
    assert all(n == 1 for n in stopped.history.starts.values())
