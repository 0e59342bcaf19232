"""Runs stored as Azure-shaped JSON (reference azure-fleet.md §3.7) come back unchanged."""

from __future__ import annotations

import json

import pytest

from fleetnet.errors import InvalidInput
from fleetnet.plan.updaterun import (
    MemberUpgradeFailed,
    RunState,
    StopRequested,
    UpgradeSpec,
    run_from_json,
    run_to_json,
)
from tests.plan.updaterun.sim import Sim, members_in, strategy


def _busy_run() -> Sim:
    strat = strategy(
        {
            "name": "one",
            "groups": [
                {"name": "a", "beforeGates": [{"type": "Approval", "displayName": "ok"}]},
                {"name": "b", "maxAllowedFailures": "1"},
            ],
            "afterStageWaitInSeconds": 30,
            "meshHealthCheck": True,
            "maxAllowedFailures": "50%",
        },
        {"name": "two", "groups": [{"name": "c", "afterGates": [{"type": "Approval"}]}]},
    )
    sim = Sim(members_in({"a": 1, "b": 2, "c": 1}, network="blue"), strat)
    return sim


def test_round_trip_through_json_text_at_every_point() -> None:
    sim = _busy_run()
    seen = [sim.run]
    sim.do(MemberUpgradeFailed("b-0", "boom"))
    seen.append(sim.run)
    sim.do(StopRequested())
    seen.append(sim.run)
    assert [r.status.state.value for r in seen] == ["Running", "Running", "Stopping"]
    for run in seen:
        text = json.dumps(run_to_json(run))
        assert run_from_json(json.loads(text)) == run
        assert RunState.from_json(run.to_json()) == run


def test_the_document_uses_azures_field_names() -> None:
    sim = _busy_run()
    doc = run_to_json(sim.run)
    assert doc["managedClusterUpdate"] == {
        "upgrade": {"type": "Full", "kubernetesVersion": "1.33.2"},
        "nodeImageSelection": {"type": "Latest"},
    }
    status = doc["status"]
    assert status["status"]["state"] == "Running" and status["failureCount"] == 0
    stage = status["stages"][0]
    assert set(stage) >= {
        "name",
        "status",
        "failureCount",
        "maxConcurrency",
        "maxAllowedFailures",
        "beforeGates",
        "afterGates",
        "afterStageWaitStatus",
        "groups",
    }
    assert stage["afterStageWaitStatus"] == {
        "status": {"state": "NotStarted", "startTime": None, "completedTime": None, "error": None},
        "waitDurationInSeconds": 30,
    }
    gate = stage["groups"][0]["beforeGates"][0]
    assert gate["displayName"] == "ok" and gate["gateId"] == "gate-0" and gate["status"]["state"] == "Pending"
    assert stage["groups"][1]["members"][0] == {
        "name": "b-0",
        "status": {"state": "Running", "startTime": 0.0, "completedTime": None, "error": None},
        "message": "",
        "kubernetesVersion": "1.32.3",
        "network": "blue",
        "attempts": 1,
    }


def test_a_one_by_one_run_stores_no_strategy() -> None:
    sim = Sim(members_in({"g": 1}), start=False)
    doc = run_to_json(sim.run)
    assert doc["strategy"] is None
    assert run_from_json(doc).strategy is None


def test_malformed_documents_are_refused() -> None:
    doc = run_to_json(Sim(members_in({"g": 1})).run)
    del doc["status"]["stages"][0]["groups"]
    with pytest.raises(InvalidInput, match="malformed"):
        run_from_json(doc)
    doc = run_to_json(Sim(members_in({"g": 1})).run)
    doc["status"]["status"]["state"] = "Exploded"
    with pytest.raises(InvalidInput, match="malformed"):
        run_from_json(doc)
    doc = run_to_json(Sim(members_in({"g": 1})).run)
    doc["managedClusterUpdate"] = {"upgrade": {"type": "NodeImageOnly", "kubernetesVersion": "1.33.2"}}
    with pytest.raises(InvalidInput):
        run_from_json(doc)


def test_spec_survives_for_node_image_runs() -> None:
    sim = Sim(members_in({"g": 1}), spec=UpgradeSpec.parse("NodeImageOnly", None, "Consistent"), start=False)
    assert run_from_json(run_to_json(sim.run)).spec == sim.run.spec
