"""The update-run controller against a fake driver: store, pool, loop, restarts and checks, no clusters.

The fake sits at the driver seam (``ClusterDriver.upgrade``, ``agent_get``, ``remote_status``); the
store, the fleet bookkeeping, the catalog and the controller are the real ones.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleetnet.errors import Conflict, InvalidInput, NotFound, SystemFailure
from fleetnet.hub.catalog import HubCatalog
from fleetnet.hub.driver import RemoteStatus
from fleetnet.hub.fleet import Fleet
from fleetnet.hub.updates import UpdateController
from fleetnet.model.member import Member, MeshProperties
from fleetnet.plan.updaterun import UpgradeSpec
from fleetnet.store.sqlite import Store
from tests.support.wait import wait_for

OLD = "1.33.6"  # Cilium 1.18.3
TARGET = "1.34.1"  # Cilium 1.18.5


class FakeDriver:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.cilium: dict[str, str] = {}
        self.hold: dict[str, threading.Event] = {}  # the first upgrade of this member waits for the event
        self.barrier: threading.Barrier | None = None
        self.fail: set[str] = set()
        self.remotes: dict[str, list[RemoteStatus]] = {}
        self._lock = threading.Lock()

    def create_cluster(self, member: Member) -> None:
        return None

    def delete_cluster(self, member: Member) -> None:
        return None

    def upgrade(self, member: Member, kubernetes_version: str, cilium_version: str) -> None:
        with self._lock:
            self.calls.append((member.name, kubernetes_version, cilium_version))
            hold = self.hold.pop(member.name, None)
        if hold is not None:
            assert hold.wait(10), f"the test never released the upgrade of {member.name}"
        if self.barrier is not None:
            self.barrier.wait(5)  # BrokenBarrierError unless another upgrade runs at the same time
        if member.name in self.fail:
            raise SystemFailure(f"the control plane of {member.name} did not come back.")
        self.cilium[member.name] = cilium_version

    def agent_get(self, member: Member, path: str) -> Any:
        assert path == "/v1/status"
        return {"version": {"cilium": self.cilium.get(member.name, member.cilium_version)}}

    def remote_status(self, member: Member) -> list[RemoteStatus] | None:
        return self.remotes.get(member.name, [])

    def upgraded(self) -> list[str]:
        return [name for name, _, _ in self.calls]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class FakeHub:
    def __init__(self, home: Path) -> None:
        self.store = Store(home / "fleet.db")
        self.catalog = HubCatalog()
        self.driver = FakeDriver()
        self.fleet = Fleet(self.store, self.driver, self.catalog)

    prefix = "fntest"

    def pods(self, member: Member) -> list[dict[str, object]]:
        return []

    def member(self, name: str, group: str | None = None, k8s: str = OLD, network: str | None = None) -> None:
        m = self.fleet.create_local_member(name, group=group, kubernetes_version=k8s)
        if network is not None:
            assert m.local is not None
            mesh = MeshProperties(network, m.local.index, name, "Connected", last_updated_at=0.0)
            self.fleet.save_member(m.with_mesh(mesh))


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[FakeHub]:
    h = FakeHub(tmp_path)
    try:
        yield h
    finally:
        h.store.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ctl(hub: FakeHub, clock: Clock) -> Iterator[UpdateController]:
    c = UpdateController(hub, clock=clock, poll=0.02, agent_timeout=2.0, mesh_timeout=0.5)  # type: ignore[arg-type]
    c.start()
    try:
        yield c
    finally:
        c.stop()


FULL = UpgradeSpec.parse("Full", TARGET)


def state(ctl: UpdateController, run: str) -> str:
    return str(ctl.get_run(run)["status"]["status"]["state"])


def member_state(ctl: UpdateController, run: str, name: str) -> dict[str, Any]:
    doc = ctl.get_run(run)
    return next(m for st in doc["status"]["stages"] for g in st["groups"] for m in g["members"] if m["name"] == name)


def wait_state(ctl: UpdateController, run: str, want: str, timeout: float = 10.0) -> None:
    wait_for(lambda: state(ctl, run) == want, timeout=timeout, what=f"run {run} {want} (is {state(ctl, run)})")


def pending_gates(ctl: UpdateController) -> list[str]:
    return [g["name"] for g in ctl.list_gates(state="Pending")]


TWO_STAGES = {
    "stages": [
        {
            "name": "canary",
            "groups": [{"name": "canary"}],
            "afterStageWaitInSeconds": 60,
            "afterGates": [{"type": "Approval", "displayName": "canary looks good"}],
        },
        {"name": "prod", "groups": [{"name": "prod", "maxConcurrency": "2"}]},
    ]
}


def three_members(hub: FakeHub, network: str | None = None) -> None:
    hub.member("c1", "canary", network=network)
    hub.member("c2", "prod", network=network)
    hub.member("c3", "prod", network=network)


# ---------------------------------------------------------------- strategies and runs


def test_strategies_are_stored_checked_and_deleted(ctl: UpdateController) -> None:
    doc = ctl.put_strategy("safe", TWO_STAGES)
    assert doc["strategy"]["stages"][0]["afterGates"] == [{"type": "Approval", "displayName": "canary looks good"}]
    assert [s["name"] for s in ctl.list_strategies()] == ["safe"]
    assert ctl.get_strategy("safe") == doc
    with pytest.raises(InvalidInput, match="appears in stages"):
        ctl.put_strategy(
            "bad", {"stages": [{"name": "a", "groups": [{"name": "g"}]}, {"name": "b", "groups": [{"name": "g"}]}]}
        )
    with pytest.raises(InvalidInput, match="strategy name"):
        ctl.put_strategy("Not_A_Name", TWO_STAGES)
    ctl.delete_strategy("safe")
    with pytest.raises(NotFound, match="updatestrategy list"):
        ctl.get_strategy("safe")


def test_a_run_keeps_its_copy_of_the_strategy(hub: FakeHub, ctl: UpdateController) -> None:
    three_members(hub)
    ctl.put_strategy("safe", TWO_STAGES)
    run = ctl.put_run("up", FULL, update_strategy_name="safe")
    ctl.put_strategy("safe", {"stages": [{"name": "all", "groups": [{"name": "canary"}, {"name": "prod"}]}]})
    assert ctl.get_run("up") == run
    assert [s["name"] for s in run["status"]["stages"]] == ["canary", "prod"]
    assert run["updateStrategyName"] == "safe"
    with pytest.raises(InvalidInput, match="not both"):
        ctl.put_run("x", FULL, update_strategy_name="safe", stages=TWO_STAGES)
    with pytest.raises(NotFound):
        ctl.put_run("x", FULL, update_strategy_name="nope")


def test_a_run_without_a_strategy_upgrades_members_one_by_one_and_records_versions(
    hub: FakeHub, ctl: UpdateController
) -> None:
    for n in ("c3", "c1", "c2"):
        hub.member(n)
    ctl.put_run("up", FULL)
    ctl.start_run("up")
    wait_state(ctl, "up", "Completed")
    assert hub.driver.calls == [(n, TARGET, "1.18.5") for n in ("c1", "c2", "c3")]
    for n in ("c1", "c2", "c3"):
        m = hub.fleet.get_member(n)
        assert (m.kubernetes_version, m.cilium_version) == (TARGET, "1.18.5")
        assert member_state(ctl, "up", n)["message"] == f"upgraded to Kubernetes {TARGET}."
    with pytest.raises(Conflict, match="only a NotStarted, Stopped or Failed run"):
        ctl.start_run("up")


def test_members_of_a_group_upgrade_at_the_same_time(hub: FakeHub, ctl: UpdateController) -> None:
    hub.member("c1", "prod")
    hub.member("c2", "prod")
    hub.driver.barrier = threading.Barrier(2)  # passes only when both upgrades are inside the driver at once
    ctl.put_run("up", FULL, stages={"stages": [{"name": "s", "groups": [{"name": "prod", "maxConcurrency": "2"}]}]})
    ctl.start_run("up")
    wait_state(ctl, "up", "Completed")
    assert sorted(hub.driver.upgraded()) == ["c1", "c2"]


def test_members_outside_the_strategy_stay_out(hub: FakeHub, ctl: UpdateController) -> None:
    three_members(hub)
    hub.member("c4", None)
    ctl.put_run("up", FULL, stages={"stages": [{"name": "s", "groups": [{"name": "canary"}]}]})
    ctl.start_run("up")
    wait_state(ctl, "up", "Completed")
    assert hub.driver.upgraded() == ["c1"]
    assert hub.fleet.get_member("c4").kubernetes_version == OLD


# ---------------------------------------------------------------- pre-validation


@pytest.mark.parametrize(
    ("target", "c1", "expected"),
    [
        ("1.35.0", OLD, "member c1 in stage default: upgrading Kubernetes 1.33.6 to 1.35.0 skips minor 1.34"),
        ("1.32.9", OLD, "member c1 in stage default: Kubernetes 1.32.9 is older than the current 1.33.6"),
        ("1.34.2", OLD, "member c1 in stage default: Kubernetes 1.34.2 is not in the version catalog"),
    ],
)
def test_a_start_is_refused_before_any_member_is_touched(
    hub: FakeHub, ctl: UpdateController, target: str, c1: str, expected: str
) -> None:
    hub.member("c1", k8s=c1)
    ctl.put_run("up", UpgradeSpec.parse("Full", target))
    with pytest.raises(InvalidInput) as e:
        ctl.start_run("up")
    assert str(e.value).startswith(f"update run up cannot start: {expected}")
    assert state(ctl, "up") == "NotStarted"
    assert hub.driver.calls == []


def test_the_cross_cluster_cilium_rule_refuses_a_start(hub: FakeHub, ctl: UpdateController) -> None:
    hub.member("edge", "edge", k8s="1.34.1", network="blue")  # Cilium 1.18.5 → 1.19.0
    hub.member("core", "core", k8s="1.33.2", network="blue")  # Cilium 1.17.6, not in the run
    ctl.put_run(
        "up", UpgradeSpec.parse("Full", "1.35.0"), stages={"stages": [{"name": "s", "groups": [{"name": "edge"}]}]}
    )
    with pytest.raises(InvalidInput) as e:
        ctl.start_run("up")
    assert str(e.value).startswith(
        "update run up cannot start: network blue, stage s: member core could run Cilium 1.17.6 while member edge "
        "runs Cilium 1.19.0, 2 minor versions apart"
    )
    assert hub.driver.calls == []


def test_a_restart_is_checked_against_the_versions_members_run_now(hub: FakeHub, ctl: UpdateController) -> None:
    hub.member("c1")
    hub.member("c2")
    hub.driver.fail = {"c1"}
    ctl.put_run("up", FULL)
    ctl.start_run("up")
    wait_state(ctl, "up", "Failed")
    # meanwhile c1 was moved back by hand to a version from which the target skips a minor
    c1 = hub.fleet.get_member("c1")
    hub.fleet.save_member(Member.from_dict({**c1.to_dict(), "kubernetesVersion": "1.32.9", "ciliumVersion": "1.17.3"}))
    with pytest.raises(InvalidInput, match=r"member c1 in stage default: upgrading Kubernetes 1\.32\.9 to 1\.34\.1"):
        ctl.start_run("up")
    assert state(ctl, "up") == "Failed"


# ---------------------------------------------------------------- failure, stop, restart


def test_a_failed_member_fails_the_run_and_a_restart_retries_it(hub: FakeHub, ctl: UpdateController) -> None:
    hub.member("c1")
    hub.member("c2")
    hub.driver.fail = {"c1"}
    ctl.put_run("up", FULL)
    ctl.start_run("up")
    wait_state(ctl, "up", "Failed")
    run = ctl.get_run("up")
    assert (
        "member c1 failed (upgrading c1 to Kubernetes 1.34.1 failed: the control plane of c1"
        in (run["status"]["status"]["error"]["message"])
    )
    assert member_state(ctl, "up", "c2")["status"]["state"] == "NotStarted"
    assert hub.fleet.get_member("c1").kubernetes_version == OLD
    hub.driver.fail = set()
    ctl.start_run("up")
    wait_state(ctl, "up", "Completed")
    assert member_state(ctl, "up", "c1")["attempts"] == 2
    assert hub.driver.upgraded() == ["c1", "c1", "c2"]


def test_an_agent_that_does_not_come_back_fails_the_member(hub: FakeHub, clock: Clock) -> None:
    hub.member("c1")
    hub.driver.agent_get = lambda member, path: {"version": {"cilium": "1.18.3"}}  # type: ignore[method-assign]
    ctl = UpdateController(hub, clock=clock, poll=0.02, agent_timeout=0.2)  # type: ignore[arg-type]
    ctl.start()
    try:
        ctl.put_run("up", FULL)
        ctl.start_run("up")
        wait_state(ctl, "up", "Failed")
        message = member_state(ctl, "up", "c1")["message"]
        assert "its agent did not report Cilium 1.18.5 within 0 s (it reported Cilium 1.18.3)" in message
        assert hub.fleet.get_member("c1").kubernetes_version == TARGET  # the cluster itself was upgraded
    finally:
        ctl.stop()


def test_stop_lets_the_upgrade_under_way_finish_and_start_resumes_after_it(hub: FakeHub, ctl: UpdateController) -> None:
    for n in ("c1", "c2", "c3"):
        hub.member(n)
    release = hub.driver.hold["c1"] = threading.Event()
    ctl.put_run("up", FULL)
    ctl.start_run("up")
    wait_for(lambda: hub.driver.upgraded() == ["c1"], what="c1 upgrading")
    assert ctl.stop_run("up")["status"]["status"]["state"] == "Stopping"
    release.set()
    wait_state(ctl, "up", "Stopped")
    assert member_state(ctl, "up", "c1")["status"]["state"] == "Completed"
    assert member_state(ctl, "up", "c2")["status"]["state"] == "NotStarted"
    with pytest.raises(Conflict, match="only a Running or Pending run can be stopped"):
        ctl.stop_run("up")
    ctl.start_run("up")
    wait_state(ctl, "up", "Completed")
    assert hub.driver.upgraded() == ["c1", "c2", "c3"]
    assert member_state(ctl, "up", "c1")["attempts"] == 1


def test_a_new_daemon_carries_on_with_what_the_old_one_left(hub: FakeHub, clock: Clock) -> None:
    for n in ("c1", "c2"):
        hub.member(n)
    stuck = hub.driver.hold["c1"] = threading.Event()  # the first daemon dies with c1 half upgraded
    first = UpdateController(hub, clock=clock, poll=0.02)  # type: ignore[arg-type]
    first.start()
    second = UpdateController(hub, clock=clock, poll=0.02)  # type: ignore[arg-type]
    try:
        first.put_run("up", FULL)
        first.start_run("up")
        wait_for(lambda: hub.driver.upgraded() == ["c1"], what="c1 upgrading")
        first.stop()
        second.start()  # reads the run from the store: c1 is Running, so its upgrade is started again
        wait_state(second, "up", "Completed")
        assert hub.driver.upgraded() == ["c1", "c1", "c2"]
    finally:
        stuck.set()  # the old daemon's late outcome is one the run no longer expects: ignored
        second.stop()
    assert state(second, "up") == "Completed"


def test_a_run_cannot_be_deleted_while_it_moves(hub: FakeHub, ctl: UpdateController) -> None:
    hub.member("c1")
    release = hub.driver.hold["c1"] = threading.Event()
    ctl.put_run("up", FULL)
    ctl.start_run("up")
    with pytest.raises(Conflict, match="updaterun stop up"):
        ctl.delete_run("up")
    with pytest.raises(Conflict, match="can no longer be changed"):
        ctl.put_run("up", FULL)
    release.set()
    wait_state(ctl, "up", "Completed")
    ctl.delete_run("up")
    assert ctl.list_runs() == []


# ---------------------------------------------------------------- gates, waits, skips


def test_gates_and_the_after_stage_wait_hold_the_next_stage(hub: FakeHub, ctl: UpdateController, clock: Clock) -> None:
    three_members(hub)
    ctl.put_strategy("safe", TWO_STAGES)
    ctl.put_run("up", FULL, update_strategy_name="safe")
    ctl.start_run("up")
    wait_for(lambda: pending_gates(ctl), what="the canary gate")
    (gate_id,) = pending_gates(ctl)
    gate = ctl.get_gate(gate_id)
    assert gate["properties"]["target"]["updateRunProperties"] == {
        "name": "up",
        "stage": "canary",
        "group": None,
        "timing": "After",
    }
    assert gate["properties"]["displayName"] == "canary looks good"
    assert state(ctl, "up") == "Pending"
    assert hub.driver.upgraded() == ["c1"]
    with pytest.raises(InvalidInput, match="gate state"):
        ctl.list_gates(state="Waiting")
    ctl.approve_gate(gate_id)
    assert ctl.get_gate(gate_id)["properties"]["state"] == "Completed"
    with pytest.raises(Conflict, match="only a Pending gate"):
        ctl.approve_gate(gate_id)
    ctl.tick()
    assert hub.driver.upgraded() == ["c1"]  # the 60 s wait is still running
    clock.now += 60
    ctl.tick()
    wait_state(ctl, "up", "Completed")
    assert sorted(hub.driver.upgraded()) == ["c1", "c2", "c3"]
    with pytest.raises(NotFound, match="gate list"):
        ctl.approve_gate("00000000-0000-0000-0000-000000000000")


def test_skipping_a_member_and_the_after_stage_wait(hub: FakeHub, ctl: UpdateController) -> None:
    three_members(hub)
    ctl.put_run("up", FULL, stages=TWO_STAGES)
    ctl.start_run("up")
    wait_for(lambda: pending_gates(ctl), what="the canary gate")
    ctl.skip("up", ["Member:c3", "AfterStageWait:canary"])
    with pytest.raises(InvalidInput, match="not one of"):
        ctl.skip("up", ["Cluster:c2"])
    ctl.approve_gate(pending_gates(ctl)[0])
    wait_state(ctl, "up", "Completed")  # no clock advance needed: the wait was skipped
    assert sorted(hub.driver.upgraded()) == ["c1", "c2"]
    assert member_state(ctl, "up", "c3")["status"]["state"] == "Skipped"
    assert hub.fleet.get_member("c3").kubernetes_version == OLD


# ---------------------------------------------------------------- the mesh health check


MESH_STAGE = {"stages": [{"name": "all", "groups": [{"name": "prod", "maxConcurrency": "2"}], "meshHealthCheck": True}]}


def ready(*names: str) -> list[RemoteStatus]:
    return [RemoteStatus(name=n, ready=True, connected=True, error=None) for n in names]


def test_the_mesh_check_passes_when_every_agent_sees_every_remote(hub: FakeHub, ctl: UpdateController) -> None:
    hub.member("c1", "prod", network="blue")
    hub.member("c2", "prod", network="blue")
    hub.driver.remotes = {"c1": ready("c2"), "c2": ready("c1")}
    ctl.put_run("up", FULL, stages=MESH_STAGE)
    ctl.start_run("up")
    wait_state(ctl, "up", "Completed")
    mesh = ctl.get_run("up")["status"]["stages"][0]["meshHealthCheckStatus"]
    assert mesh["status"]["state"] == "Completed"
    assert mesh["message"].startswith("network(s) blue: every member Connected")


def test_a_mesh_that_does_not_recover_fails_the_stage_and_the_run(hub: FakeHub, ctl: UpdateController) -> None:
    hub.member("c1", "prod", network="blue")
    hub.member("c2", "prod", network="blue")
    hub.driver.remotes = {"c1": ready("c2"), "c2": [RemoteStatus("c1", ready=False, connected=True, error="x")]}
    ctl.put_run("up", FULL, stages=MESH_STAGE)
    ctl.start_run("up")
    wait_state(ctl, "up", "Failed")
    run = ctl.get_run("up")
    assert run["status"]["status"]["error"]["message"] == (
        "the mesh health check after stage all failed: the agent of c2 does not see c1 ready (network blue) "
        "(still so after 0 s)."
    )
    # a restart checks the mesh again (the members stay upgraded)
    hub.driver.remotes["c2"] = ready("c1")
    ctl.start_run("up")
    wait_state(ctl, "up", "Completed")
    assert sorted(hub.driver.upgraded()) == ["c1", "c2"]
