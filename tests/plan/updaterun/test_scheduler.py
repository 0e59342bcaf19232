"""The update-run reducer, rule by rule (reference azure-fleet.md §3.1, §3.4–3.9)."""

from __future__ import annotations

import uuid

import pytest

from fleetnet.errors import Conflict, InvalidInput, NotFound
from fleetnet.plan.updaterun import (
    CheckMeshHealth,
    CreateGate,
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
    Timing,
    UpdateState,
    UpgradeSpec,
    apply,
    next_wakeup,
    outstanding,
    step,
)
from tests.plan.updaterun.sim import Sim, member, members_in, strategy

S = UpdateState


def skip(*targets: str) -> SkipRequested:
    return SkipRequested(tuple(SkipTarget.parse(t) for t in targets))


# --- starting, one by one -------------------------------------------------------------------------------


def test_a_new_run_does_nothing_until_started() -> None:
    sim = Sim(members_in({"g": 2}), start=False)
    assert sim.step() == []
    assert sim.state is S.NOT_STARTED
    assert all(m.status.state is S.NOT_STARTED for _, _, m in sim.run.members())


def test_without_a_strategy_members_update_one_by_one_in_name_order() -> None:
    sim = Sim([member("c3"), member("c1"), member("c2")])
    assert [s.name for s in sim.run.stages] == ["default"]
    assert [g.name for g in sim.run.stages[0].groups] == ["default"]
    assert sim.run.stages[0].max_concurrency == 1 and sim.run.stages[0].groups[0].max_concurrency == 1
    assert sim.running() == ["c1"]
    sim.succeed(["c1"])
    assert sim.running() == ["c2"]
    sim.succeed(["c2"])
    sim.succeed(["c3"])
    assert sim.state is S.COMPLETED
    assert sim.started() == ["c1", "c2", "c3"]
    assert sim.run.member("c1").kubernetes_version == "1.33.2"


def test_start_is_refused_unless_not_started_stopped_or_failed() -> None:
    sim = Sim(members_in({"g": 1}))
    with pytest.raises(Conflict, match="Running"):
        apply(sim.run, StartRequested(), 1)
    sim.finish_all()
    with pytest.raises(Conflict, match="Completed"):
        apply(sim.run, StartRequested(), 1)


def test_times_are_recorded_at_every_level() -> None:
    sim = Sim(members_in({"g": 1}), strategy({"name": "s", "groups": [{"name": "g"}]}), start=False)
    sim.now = 10
    sim.do_start()
    sim.now = 25
    sim.succeed(["g-0"])
    run = sim.run
    assert (run.status.start_time, run.status.completed_time) == (10, 25)
    stage, group = run.stages[0], run.stages[0].groups[0]
    assert (stage.status.start_time, stage.status.completed_time) == (10, 25)
    assert (group.status.start_time, group.status.completed_time) == (10, 25)
    m = group.members[0]
    assert (m.status.start_time, m.status.completed_time, m.attempts) == (10, 25, 1)


# --- order and concurrency ----------------------------------------------------------------------------


def test_stages_run_in_order_and_groups_in_parallel() -> None:
    strat = strategy(
        {"name": "one", "groups": [{"name": "a"}, {"name": "b"}]},
        {"name": "two", "groups": [{"name": "c"}]},
    )
    sim = Sim(members_in({"a": 2, "b": 1, "c": 1}), strat)
    assert sorted(sim.running()) == ["a-0", "b-0"]
    sim.succeed(["b-0"])
    assert sim.running() == ["a-0"]  # stage two waits for all of stage one's groups
    sim.succeed(["a-0"])
    assert sim.running() == ["a-1"]
    sim.succeed(["a-1"])
    assert sim.running() == ["c-0"]
    assert sim.run.stages[0].status.state is S.COMPLETED


def test_stage_concurrency_is_a_ceiling_across_groups() -> None:
    strat = strategy(
        {
            "name": "s",
            "maxConcurrency": "2",
            "groups": [{"name": "a", "maxConcurrency": "2"}, {"name": "b", "maxConcurrency": "2"}],
        }
    )
    sim = Sim(members_in({"a": 3, "b": 3}), strat)
    assert sorted(sim.running()) == ["a-0", "b-0"]  # round robin, 2 in all
    sim.succeed(["a-0"])
    assert sorted(sim.running()) == ["a-1", "b-0"]


def test_group_concurrency_limits_its_own_members() -> None:
    strat = strategy({"name": "s", "groups": [{"name": "a", "maxConcurrency": "2"}, {"name": "b"}]})
    sim = Sim(members_in({"a": 4, "b": 3}), strat)
    assert sorted(sim.running()) == ["a-0", "a-1", "b-0"]


def test_percentages_resolve_as_the_reference_example() -> None:
    # 20 clusters (8 + 12), stage 25% → 5, group A 50% → 4, group B 25% → 3 (reference §3.4)
    strat = strategy(
        {
            "name": "s",
            "maxConcurrency": "25%",
            "groups": [{"name": "a", "maxConcurrency": "50%"}, {"name": "b", "maxConcurrency": "25%"}],
        }
    )
    sim = Sim(members_in({"a": 8, "b": 12}), strat)
    stage = sim.run.stages[0]
    assert (stage.max_concurrency, stage.groups[0].max_concurrency, stage.groups[1].max_concurrency) == (5, 4, 3)
    running = sim.running()
    assert len(running) == 5
    assert sum(n.startswith("a-") for n in running) <= 4 and sum(n.startswith("b-") for n in running) <= 3


def test_a_member_already_at_the_target_is_skipped() -> None:
    ms = [member("c1", k8s="1.33.2"), member("c2"), member("c3", k8s="1.34.0")]
    sim = Sim(ms)
    assert sim.member_state("c1") is S.SKIPPED and "already at" in sim.run.member("c1").message
    assert sim.member_state("c3") is S.SKIPPED
    assert sim.running() == ["c2"]


def test_node_image_runs_never_skip_for_versions() -> None:
    sim = Sim([member("c1", k8s="1.33.2")], spec=UpgradeSpec.parse("NodeImageOnly"))
    assert sim.running() == ["c1"]
    sim.succeed(["c1"])
    assert sim.run.member("c1").kubernetes_version == "1.33.2"


def test_a_run_whose_members_are_all_at_target_ends_skipped() -> None:
    strat = strategy({"name": "s", "groups": [{"name": "g", "beforeGates": [{"type": "Approval"}]}]})
    sim = Sim(members_in({"g": 2}, k8s="1.33.2"), strat)
    assert sim.state is S.SKIPPED
    group = sim.run.stages[0].groups[0]
    assert group.status.state is S.SKIPPED and group.before_gates[0].status.state is S.SKIPPED
    assert group.before_gates[0].gate_id is None  # never reached, never created
    assert sim.actions == []


# --- gates and waits ---------------------------------------------------------------------------------------


def test_a_stage_before_gate_is_created_when_reached_and_blocks_until_approved() -> None:
    strat = strategy(
        {"name": "one", "groups": [{"name": "a"}]},
        {"name": "two", "groups": [{"name": "b"}], "beforeGates": [{"type": "Approval", "displayName": "go?"}]},
    )
    sim = Sim(members_in({"a": 1, "b": 1}), strat)
    gate = sim.run.stages[1].before_gates[0]
    assert gate.gate_id is None and gate.status.state is S.NOT_STARTED
    actions = sim.succeed(["a-0"])
    assert actions == [CreateGate("gate-0", "two", None, Timing.BEFORE, "go?")]
    assert sim.state is S.PENDING and sim.run.stages[1].status.state is S.PENDING
    assert sim.running() == []
    assert sim.do(GateApproved("gate-0")) == [StartMemberUpgrade("b-0", "two", "b")]
    assert sim.state is S.RUNNING


def test_a_group_gate_blocks_only_its_group() -> None:
    strat = strategy({"name": "s", "groups": [{"name": "a", "beforeGates": [{"type": "Approval"}]}, {"name": "b"}]})
    sim = Sim(members_in({"a": 1, "b": 1}), strat)
    assert sim.running() == ["b-0"]
    groups = sim.run.stages[0].groups
    assert groups[0].status.state is S.PENDING and groups[1].status.state is S.RUNNING
    assert sim.run.stages[0].status.state is S.RUNNING  # not every open group waits on a gate
    sim.succeed(["b-0"])
    assert sim.run.stages[0].status.state is S.PENDING and sim.state is S.PENDING
    sim.do(GateApproved(sim.pending_gates()[0]))
    assert sim.running() == ["a-0"]


def test_group_after_gates_hold_the_stage() -> None:
    strat = strategy(
        {"name": "one", "groups": [{"name": "a", "afterGates": [{"type": "Approval"}]}]},
        {"name": "two", "groups": [{"name": "b"}]},
    )
    sim = Sim(members_in({"a": 1, "b": 1}), strat)
    assert sim.pending_gates() == []  # created only when the group's members are done
    sim.succeed(["a-0"])
    assert sim.pending_gates() == ["gate-0"]
    assert sim.run.stages[0].groups[0].status.state is S.PENDING
    assert sim.running() == []
    sim.do(GateApproved("gate-0"))
    assert sim.running() == ["b-0"]


def _wait_and_gate() -> Sim:
    strat = strategy(
        {"name": "one", "groups": [{"name": "a"}], "afterStageWaitInSeconds": 60, "afterGates": [{"type": "Approval"}]},
        {"name": "two", "groups": [{"name": "b"}]},
    )
    sim = Sim(members_in({"a": 1, "b": 1}), strat)
    sim.now = 100
    sim.succeed(["a-0"])
    return sim


def test_after_stage_wait_and_after_gates_start_together_wait_finishing_first() -> None:
    sim = _wait_and_gate()
    stage = sim.run.stages[0]
    assert stage.after_stage_wait_status.status.state is S.RUNNING
    assert stage.after_stage_wait_status.status.start_time == 100
    assert stage.after_gates[0].status.state is S.PENDING and stage.after_gates[0].status.start_time == 100
    assert next_wakeup(sim.run) == 160
    assert sim.tick(59) == [] and sim.running() == []
    sim.tick(1)
    assert sim.run.stages[0].after_stage_wait_status.status.state is S.COMPLETED
    assert sim.running() == [] and sim.state is S.PENDING
    sim.do(GateApproved("gate-0"))
    assert sim.running() == ["b-0"]


def test_after_stage_wait_and_after_gates_start_together_gate_finishing_first() -> None:
    sim = _wait_and_gate()
    sim.do(GateApproved("gate-0"))
    assert sim.running() == [] and sim.state is S.RUNNING  # waiting out the wait is not Pending
    sim.tick(60)
    assert sim.running() == ["b-0"]


def test_only_pending_gates_can_be_approved() -> None:
    sim = _wait_and_gate()
    sim.do(GateApproved("gate-0"))
    with pytest.raises(Conflict, match="Completed"):
        apply(sim.run, GateApproved("gate-0"), sim.now)
    with pytest.raises(NotFound):
        apply(sim.run, GateApproved("no-such-gate"), sim.now)


def test_gates_never_expire() -> None:
    strat = strategy({"name": "s", "groups": [{"name": "a"}], "beforeGates": [{"type": "Approval"}]})
    sim = Sim(members_in({"a": 1}), strat)
    sim.tick(10**9)
    assert sim.pending_gates() == ["gate-0"] and sim.state is S.PENDING
    assert next_wakeup(sim.run) is None


# --- stop and restart --------------------------------------------------------------------------------------


def test_stop_lets_in_flight_members_finish_then_restart_resumes_at_the_next_member() -> None:
    sim = Sim(members_in({"g": 3}), strategy({"name": "s", "groups": [{"name": "g"}]}))
    assert sim.running() == ["g-0"]
    sim.do(StopRequested())
    assert sim.state is S.STOPPING
    assert sim.run.stages[0].status.state is S.STOPPING and sim.run.stages[0].groups[0].status.state is S.STOPPING
    assert sim.succeed(["g-0"]) == []  # nothing new starts while stopping
    assert sim.state is S.STOPPED and sim.run.status.completed_time is not None
    assert sim.run.stages[0].status.state is S.STOPPED
    assert sim.do_start() == [StartMemberUpgrade("g-1", "s", "g")]
    assert sim.state is S.RUNNING and sim.run.status.completed_time is None
    sim.finish_all()
    assert sim.started() == ["g-0", "g-1", "g-2"]


def test_stop_with_nothing_in_flight_stops_at_once() -> None:
    strat = strategy({"name": "s", "groups": [{"name": "a"}], "beforeGates": [{"type": "Approval"}]})
    sim = Sim(members_in({"a": 1}), strat)
    sim.do(StopRequested())
    assert sim.state is S.STOPPED
    sim.do(GateApproved("gate-0"))  # gates stay approvable while stopped
    assert sim.running() == []
    sim.do_start()
    assert sim.running() == ["a-0"]


def test_stop_is_refused_unless_running_or_pending() -> None:
    sim = Sim(members_in({"a": 1}), start=False)
    with pytest.raises(Conflict):
        apply(sim.run, StopRequested(), 0)
    sim.do_start()
    sim.do(StopRequested())
    with pytest.raises(Conflict):
        apply(sim.run, StopRequested(), 0)


def test_stopping_pauses_the_after_stage_wait_and_restart_keeps_its_start() -> None:
    sim = _wait_and_gate()
    sim.do(StopRequested())
    wait = sim.run.stages[0].after_stage_wait_status
    assert sim.state is S.STOPPED and wait.status.state is S.STOPPED
    sim.now = 500
    sim.do(GateApproved("gate-0"))
    sim.do_start()
    assert sim.run.stages[0].after_stage_wait_status.status.start_time == 100
    assert sim.running() == ["b-0"]  # 60 s after 100 is long past


# --- failures -----------------------------------------------------------------------------------------------


def test_fail_fast_stops_the_run_once_in_flight_members_finish() -> None:
    strat = strategy({"name": "s", "groups": [{"name": "a"}, {"name": "b"}]})
    sim = Sim(members_in({"a": 2, "b": 2}), strat)
    assert sorted(sim.running()) == ["a-0", "b-0"]
    assert sim.do(MemberUpgradeFailed("a-0", "node drain timed out")) == []
    assert sim.state is S.STOPPING
    assert "a-0" in (sim.run.status.error or "") and "node drain timed out" in (sim.run.status.error or "")
    stage = sim.run.stages[0]
    assert stage.status.state is S.FAILED and stage.groups[0].status.state is S.FAILED
    assert sim.succeed(["b-0"]) == []
    assert sim.state is S.FAILED
    assert sim.run.stages[0].groups[1].status.state is S.STOPPED  # interrupted, not failed itself
    assert sim.run.failure_count == 1 and sim.run.stages[0].failure_count == 1
    assert sim.started() == ["a-0", "b-0"]


def test_failures_within_the_group_threshold_are_tolerated() -> None:
    strat = strategy(
        {"name": "s", "maxAllowedFailures": "1", "groups": [{"name": "a", "maxAllowedFailures": "1"}]},
        {"name": "t", "groups": [{"name": "b"}]},
    )
    sim = Sim(members_in({"a": 3, "b": 1}), strat)
    sim.do(MemberUpgradeFailed("a-0", "boom"))
    assert sim.running() == ["a-1"] and sim.state is S.RUNNING
    sim.succeed(["a-1", "a-2"])
    assert sim.run.stages[0].status.state is S.COMPLETED  # Completed is not "healthy" (reference §3.5)
    assert sim.run.stages[0].groups[0].failure_count == 1
    assert sim.running() == ["b-0"]
    sim.finish_all()
    assert sim.state is S.COMPLETED and sim.run.failure_count == 1
    assert sim.member_state("a-0") is S.FAILED


def test_a_group_over_its_own_threshold_fails_whatever_the_stage_allows() -> None:
    strat = strategy({"name": "s", "maxAllowedFailures": "5", "groups": [{"name": "a"}, {"name": "b"}]})
    sim = Sim(members_in({"a": 2, "b": 2}), strat)
    sim.do(MemberUpgradeFailed("a-0", "boom"))
    assert sim.run.stages[0].groups[0].status.state is S.FAILED
    assert sim.state is S.STOPPING


def test_group_failures_roll_into_the_stage_count() -> None:
    strat = strategy(
        {
            "name": "s",
            "maxAllowedFailures": "1",
            "groups": [{"name": "a", "maxAllowedFailures": "1"}, {"name": "b", "maxAllowedFailures": "1"}],
        }
    )
    sim = Sim(members_in({"a": 2, "b": 2}), strat)
    sim.do(MemberUpgradeFailed("a-0", "boom"))
    assert sim.state is S.RUNNING
    sim.do(MemberUpgradeFailed("b-0", "boom"))
    stage = sim.run.stages[0]
    assert stage.failure_count == 2 and stage.status.state is S.FAILED
    assert all(g.status.state is not S.FAILED for g in stage.groups)
    assert sim.state is S.STOPPING and "stage s" in (sim.run.status.error or "")


def test_failure_percentages_round_up() -> None:
    strat = strategy({"name": "s", "maxAllowedFailures": "25%", "groups": [{"name": "a", "maxAllowedFailures": "25%"}]})
    sim = Sim(members_in({"a": 5}), strat, start=False)
    assert sim.run.stages[0].max_allowed_failures == 2 and sim.run.stages[0].groups[0].max_allowed_failures == 2


def test_restart_after_failure_retries_failed_members_only() -> None:
    strat = strategy({"name": "s", "groups": [{"name": "a", "maxConcurrency": "2"}]})
    sim = Sim(members_in({"a": 3}), strat)
    sim.do(MemberUpgradeFailed("a-0", "boom"))
    sim.succeed(["a-1"])
    assert sim.state is S.FAILED
    actions = sim.do_start()
    assert actions == [StartMemberUpgrade("a-0", "s", "a"), StartMemberUpgrade("a-2", "s", "a")]
    assert sim.run.member("a-0").attempts == 2 and sim.run.member("a-1").attempts == 1
    assert sim.run.status.error is None and sim.run.failure_count == 0
    sim.finish_all()
    assert sim.state is S.COMPLETED


def test_skipping_the_failed_member_lets_a_failed_run_go_on() -> None:
    sim = Sim(members_in({"a": 2}), strategy({"name": "s", "groups": [{"name": "a"}]}))
    sim.do(MemberUpgradeFailed("a-0", "boom"))
    assert sim.state is S.FAILED
    sim.do(skip("Member:a-0"))
    assert sim.member_state("a-0") is S.SKIPPED
    sim.do_start()
    assert sim.running() == ["a-1"]
    sim.finish_all()
    assert sim.state is S.COMPLETED and sim.run.member("a-0").attempts == 1


def test_outcomes_for_members_not_upgrading_are_conflicts() -> None:
    sim = Sim(members_in({"a": 2}), strategy({"name": "s", "groups": [{"name": "a"}]}))
    with pytest.raises(Conflict):
        apply(sim.run, MemberUpgradeSucceeded("a-1"), 0)
    with pytest.raises(NotFound):
        apply(sim.run, MemberUpgradeFailed("zz", "x"), 0)


# --- skip ------------------------------------------------------------------------------------------------------


def test_skip_a_member_before_it_starts() -> None:
    sim = Sim(members_in({"a": 3}), strategy({"name": "s", "groups": [{"name": "a"}]}))
    sim.do(skip("Member:a-1"))
    sim.succeed(["a-0"])
    assert sim.running() == ["a-2"]
    assert sim.member_state("a-1") is S.SKIPPED


def test_skip_refusals() -> None:
    sim = Sim(members_in({"a": 2}), strategy({"name": "s", "groups": [{"name": "a"}]}))
    with pytest.raises(Conflict, match="upgrading"):
        apply(sim.run, skip("Member:a-0"), 0)
    with pytest.raises(NotFound):
        apply(sim.run, skip("Group:nope"), 0)
    with pytest.raises(InvalidInput):
        SkipTarget.parse("Cluster:a-0")
    with pytest.raises(InvalidInput):
        SkipTarget.parse("a-0")
    with pytest.raises(InvalidInput):
        apply(sim.run, SkipRequested(()), 0)
    # a refused request changes nothing, even for its valid targets
    with pytest.raises(NotFound):
        apply(sim.run, skip("Member:a-1", "Stage:nope"), 0)
    sim.succeed(["a-0"])
    with pytest.raises(Conflict, match="already"):
        apply(sim.run, skip("Member:a-0"), 0)
    sim.succeed(["a-1"])
    with pytest.raises(Conflict, match="Completed"):
        apply(sim.run, skip("Member:a-1"), 0)


def test_skip_a_group_skips_its_members_and_gates_and_lets_in_flight_finish() -> None:
    strat = strategy(
        {"name": "s", "groups": [{"name": "a", "afterGates": [{"type": "Approval"}]}, {"name": "b"}]},
        {"name": "t", "groups": [{"name": "c"}]},
    )
    sim = Sim(members_in({"a": 3, "b": 1, "c": 1}), strat)
    sim.do(skip("Group:a"))
    group = sim.run.stages[0].groups[0]
    assert [m.status.state for m in group.members] == [S.RUNNING, S.SKIPPED, S.SKIPPED]
    assert group.after_gates[0].status.state is S.SKIPPED and group.status.state is S.RUNNING
    sim.succeed(["b-0"])
    assert sim.running() == ["a-0"]  # stage t waits for the in-flight member of the skipped group
    sim.succeed(["a-0"])
    assert sim.run.stages[0].groups[0].status.state is S.SKIPPED
    assert sim.running() == ["c-0"]


def test_skip_a_stage_skips_its_gates_and_wait() -> None:
    strat = strategy(
        {
            "name": "s",
            "groups": [{"name": "a", "beforeGates": [{"type": "Approval"}]}],
            "beforeGates": [{"type": "Approval"}],
            "afterGates": [{"type": "Approval"}],
            "afterStageWaitInSeconds": 3600,
        },
        {"name": "t", "groups": [{"name": "b"}]},
    )
    sim = Sim(members_in({"a": 1, "b": 1}), strat)
    assert sim.pending_gates() == ["gate-0"]
    sim.do(skip("Stage:s"))
    stage = sim.run.stages[0]
    assert stage.status.state is S.SKIPPED
    assert stage.after_stage_wait_status.status.state is S.SKIPPED
    assert [g.status.state for g in stage.before_gates + stage.after_gates + stage.groups[0].before_gates] == [
        S.SKIPPED
    ] * 3
    assert sim.running() == ["b-0"]
    with pytest.raises(Conflict):
        apply(sim.run, GateApproved("gate-0"), sim.now)


def test_skip_after_stage_wait_keeps_the_after_gates() -> None:
    sim = _wait_and_gate()
    sim.do(skip("AfterStageWait:one"))
    assert sim.run.stages[0].after_stage_wait_status.status.state is S.SKIPPED
    assert sim.running() == [] and sim.state is S.PENDING
    sim.do(GateApproved("gate-0"))
    assert sim.running() == ["b-0"]


def test_skipping_every_stage_ends_the_run_skipped() -> None:
    strat = strategy({"name": "s", "groups": [{"name": "a"}]}, {"name": "t", "groups": [{"name": "b"}]})
    sim = Sim(members_in({"a": 1, "b": 1}), strat, start=False)
    sim.do(skip("Stage:s", "Stage:t"))
    assert sim.state is S.NOT_STARTED
    sim.do_start()
    assert sim.state is S.SKIPPED and sim.actions == []
    with pytest.raises(Conflict):
        apply(sim.run, skip("Member:a-0"), 0)
    with pytest.raises(Conflict):
        apply(sim.run, StartRequested(), 0)


# --- mesh health ------------------------------------------------------------------------------------------


def _meshed() -> Sim:
    strat = strategy(
        {"name": "s", "groups": [{"name": "a"}], "meshHealthCheck": True, "afterStageWaitInSeconds": 10},
        {"name": "t", "groups": [{"name": "b"}]},
    )
    ms = [member("a-0", "a", network="blue"), member("a-1", "a", network="red"), member("b-0", "b")]
    return Sim(ms, strat)


def test_mesh_check_follows_the_stage_and_gates_the_next() -> None:
    sim = _meshed()
    sim.succeed(["a-0"])
    assert sim.succeed(["a-1"]) == [CheckMeshHealth("s", ("blue", "red"))]
    assert sim.run.stages[0].after_stage_wait_status.status.state is S.NOT_STARTED
    sim.tick(100)
    assert sim.running() == []
    sim.do(MeshHealthResult("s", True, "all connected"))
    assert sim.run.stages[0].after_stage_wait_status.status.state is S.RUNNING
    sim.tick(10)
    assert sim.running() == ["b-0"]


def test_a_failed_mesh_check_fails_the_stage_and_the_run_and_is_retried_on_restart() -> None:
    sim = _meshed()
    sim.succeed(["a-0", "a-1"])
    sim.do(MeshHealthResult("s", False, "red: 1 remote cluster not ready"))
    assert sim.state is S.FAILED
    assert sim.run.stages[0].status.state is S.FAILED
    assert "not ready" in (sim.run.status.error or "")
    assert sim.do_start() == [CheckMeshHealth("s", ("blue", "red"))]
    assert sim.started() == ["a-0", "a-1"]


def test_mesh_results_are_accepted_only_while_checking() -> None:
    sim = _meshed()
    with pytest.raises(Conflict):
        apply(sim.run, MeshHealthResult("s", True), 0)
    with pytest.raises(Conflict):
        apply(sim.run, MeshHealthResult("t", True), 0)
    with pytest.raises(NotFound):
        apply(sim.run, MeshHealthResult("zz", True), 0)


def test_a_stage_without_networked_members_passes_its_mesh_check() -> None:
    strat = strategy({"name": "s", "groups": [{"name": "a"}], "meshHealthCheck": True})
    sim = Sim(members_in({"a": 1}), strat)
    assert sim.succeed(["a-0"]) == []
    assert sim.state is S.COMPLETED
    mesh = sim.run.stages[0].mesh_health_check
    assert mesh is not None and mesh.status.state is S.COMPLETED


def test_stopping_waits_for_a_running_mesh_check() -> None:
    sim = _meshed()
    sim.succeed(["a-0", "a-1"])
    sim.do(StopRequested())
    assert sim.state is S.STOPPING
    sim.do(MeshHealthResult("s", True))
    assert sim.state is S.STOPPED


# --- helpers for the daemon -----------------------------------------------------------------------------


def test_outstanding_lists_what_the_run_waits_on() -> None:
    strat = strategy(
        {"name": "s", "groups": [{"name": "a"}, {"name": "b", "beforeGates": [{"type": "Approval"}]}]},
    )
    sim = Sim(members_in({"a": 1, "b": 1}), strat)
    assert outstanding(sim.run) == [
        StartMemberUpgrade("a-0", "s", "a"),
        CreateGate("gate-0", "s", "b", Timing.BEFORE, None),
    ]


def test_step_is_idempotent_at_a_given_time() -> None:
    sim = Sim(members_in({"a": 2, "b": 2}), strategy({"name": "s", "groups": [{"name": "a"}, {"name": "b"}]}))
    again, actions = step(sim.run, sim.now, new_id=sim.new_id)
    assert actions == [] and again == sim.run


def test_skip_target_types() -> None:
    assert SkipTarget.parse("AfterStageWait:s") == (SkipTargetType.AFTER_STAGE_WAIT, "s")
    sim = Sim(members_in({"a": 2}), strategy({"name": "s", "groups": [{"name": "a"}]}))
    sim.do(SkipRequested((("Member", "a-1"),)))  # plain pairs work as well
    assert sim.member_state("a-1") is S.SKIPPED
    with pytest.raises(InvalidInput, match="skip target type 'Node'"):
        apply(sim.run, SkipRequested((("Node", "a-1"),)), 0)


def test_gate_ids_are_uuids_by_default() -> None:
    strat = strategy({"name": "s", "groups": [{"name": "a"}], "beforeGates": [{"type": "Approval"}]})
    run = apply(Sim(members_in({"a": 1}), strat, start=False).run, StartRequested(), 0)
    run, actions = step(run, 0)
    (gate,) = actions
    assert isinstance(gate, CreateGate) and uuid.UUID(gate.gate_id).version == 4
    (ref,) = run.gates()
    assert (ref.run, ref.stage, ref.group, ref.timing, ref.gate_id, ref.state) == (
        "run",
        "s",
        None,
        Timing.BEFORE,
        gate.gate_id,
        S.PENDING,
    )
