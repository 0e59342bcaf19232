"""A run to and from JSON, in Azure's ``UpdateRun`` shape (reference §3.2, §3.7).

The same document serves storage and ``updaterun show -o json``: Azure's fields keep their names
(``status.status.state``, ``stages[].afterStageWaitStatus``, ``groups[].members[]``), and the few
things fleetnet adds for itself sit beside them under their own names (``meshHealthCheckStatus``,
``skipRequested``, a member's ``kubernetesVersion``, ``network`` and ``attempts``). Times are seconds
since the epoch, as the scheduler's clock gives them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fleetnet.errors import InvalidInput
from fleetnet.plan.updaterun.state import (
    AfterStageWaitStatus,
    GateStatus,
    GroupStatus,
    MemberStatus,
    MeshHealthStatus,
    RunState,
    StageStatus,
    UpdateState,
    UpdateStatus,
)
from fleetnet.plan.updaterun.strategy import UpgradeSpec, parse_strategy, strategy_to_json


def run_to_json(run: RunState) -> dict[str, Any]:
    return {
        "name": run.name,
        "updateStrategyName": run.update_strategy_name,
        "managedClusterUpdate": run.spec.to_json(),
        "strategy": None if run.strategy is None else strategy_to_json(run.strategy),
        "status": {
            "status": _status_to_json(run.status),
            "failureCount": run.failure_count,
            "stages": [_stage_to_json(s) for s in run.stages],
        },
    }


def _status_to_json(s: UpdateStatus) -> dict[str, Any]:
    return {
        "state": str(s.state),
        "startTime": s.start_time,
        "completedTime": s.completed_time,
        "error": None if s.error is None else {"message": s.error},
    }


def _gate_to_json(g: GateStatus) -> dict[str, Any]:
    return {"displayName": g.display_name, "gateId": g.gate_id, "status": _status_to_json(g.status)}


def _stage_to_json(s: StageStatus) -> dict[str, Any]:
    return {
        "name": s.name,
        "status": _status_to_json(s.status),
        "failureCount": s.failure_count,
        "maxConcurrency": s.max_concurrency,
        "maxAllowedFailures": s.max_allowed_failures,
        "beforeGates": [_gate_to_json(g) for g in s.before_gates],
        "afterGates": [_gate_to_json(g) for g in s.after_gates],
        "afterStageWaitStatus": {
            "status": _status_to_json(s.after_stage_wait_status.status),
            "waitDurationInSeconds": s.after_stage_wait_status.wait_duration_in_seconds,
        },
        "meshHealthCheckStatus": None
        if s.mesh_health_check is None
        else {"status": _status_to_json(s.mesh_health_check.status), "message": s.mesh_health_check.message},
        "skipRequested": s.skip_requested,
        "groups": [_group_to_json(g) for g in s.groups],
    }


def _group_to_json(g: GroupStatus) -> dict[str, Any]:
    return {
        "name": g.name,
        "status": _status_to_json(g.status),
        "failureCount": g.failure_count,
        "maxConcurrency": g.max_concurrency,
        "maxAllowedFailures": g.max_allowed_failures,
        "beforeGates": [_gate_to_json(x) for x in g.before_gates],
        "afterGates": [_gate_to_json(x) for x in g.after_gates],
        "skipRequested": g.skip_requested,
        "members": [
            {
                "name": m.name,
                "status": _status_to_json(m.status),
                "message": m.message,
                "kubernetesVersion": m.kubernetes_version,
                "network": m.network,
                "attempts": m.attempts,
            }
            for m in g.members
        ],
    }


def run_from_json(data: Mapping[str, Any]) -> RunState:
    """The inverse of ``run_to_json``; InvalidInput when the document is not a stored run."""
    try:
        status = data["status"]
        strategy = data.get("strategy")
        return RunState(
            name=str(data["name"]),
            spec=UpgradeSpec.from_json(data["managedClusterUpdate"]),
            strategy=None if strategy is None else parse_strategy(strategy),
            update_strategy_name=data.get("updateStrategyName"),
            status=_status_from_json(status["status"]),
            failure_count=int(status["failureCount"]),
            stages=tuple(_stage_from_json(s) for s in status["stages"]),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise InvalidInput(f"the stored update run is malformed ({e!r}); delete it and create it again.") from e


def _status_from_json(s: Mapping[str, Any]) -> UpdateStatus:
    error = s.get("error")
    return UpdateStatus(
        state=UpdateState(s["state"]),
        start_time=_time(s.get("startTime")),
        completed_time=_time(s.get("completedTime")),
        error=None if error is None else str(error["message"]),
    )


def _time(t: object) -> float | None:
    if t is None:
        return None
    if isinstance(t, int | float) and not isinstance(t, bool):
        return float(t)
    raise ValueError(f"time {t!r} is not a number of seconds")


def _gates_from_json(gates: list[Mapping[str, Any]]) -> tuple[GateStatus, ...]:
    return tuple(
        GateStatus(display_name=g.get("displayName"), gate_id=g.get("gateId"), status=_status_from_json(g["status"]))
        for g in gates
    )


def _stage_from_json(s: Mapping[str, Any]) -> StageStatus:
    wait = s["afterStageWaitStatus"]
    mesh = s.get("meshHealthCheckStatus")
    return StageStatus(
        name=str(s["name"]),
        status=_status_from_json(s["status"]),
        failure_count=int(s["failureCount"]),
        max_concurrency=int(s["maxConcurrency"]),
        max_allowed_failures=int(s["maxAllowedFailures"]),
        before_gates=_gates_from_json(s.get("beforeGates", [])),
        after_gates=_gates_from_json(s.get("afterGates", [])),
        after_stage_wait_status=AfterStageWaitStatus(
            wait_duration_in_seconds=int(wait["waitDurationInSeconds"]), status=_status_from_json(wait["status"])
        ),
        mesh_health_check=None
        if mesh is None
        else MeshHealthStatus(status=_status_from_json(mesh["status"]), message=str(mesh.get("message", ""))),
        skip_requested=bool(s.get("skipRequested", False)),
        groups=tuple(_group_from_json(g) for g in s["groups"]),
    )


def _group_from_json(g: Mapping[str, Any]) -> GroupStatus:
    return GroupStatus(
        name=str(g["name"]),
        status=_status_from_json(g["status"]),
        failure_count=int(g["failureCount"]),
        max_concurrency=int(g["maxConcurrency"]),
        max_allowed_failures=int(g["maxAllowedFailures"]),
        before_gates=_gates_from_json(g.get("beforeGates", [])),
        after_gates=_gates_from_json(g.get("afterGates", [])),
        skip_requested=bool(g.get("skipRequested", False)),
        members=tuple(
            MemberStatus(
                name=str(m["name"]),
                status=_status_from_json(m["status"]),
                message=str(m.get("message", "")),
                kubernetes_version=m.get("kubernetesVersion"),
                network=m.get("network"),
                attempts=int(m.get("attempts", 0)),
            )
            for m in g["members"]
        ),
    )
