"""The status a kubelet reports for a pod, from what it knows of the pod's containers. Pure.

The shapes are the kubelet's (``status.conditions`` PodReadyToStartContainers, Initialized,
ContainersReady, Ready, PodScheduled; ``containerStatuses`` with running / waiting / terminated
states, restart counts and container ids), so that ``kubectl get pods`` READY, STATUS and RESTARTS
and ``kubectl wait --for=condition=Ready`` read them as on a real cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ContainerState:
    name: str
    image: str
    state: str  # running | waiting | terminated
    ready: bool = False
    restarts: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    exit_code: int | None = None
    reason: str | None = (
        None  # waiting: ContainerCreating, CrashLoopBackOff, ErrImagePull; terminated: Completed, Error
    )
    message: str | None = None
    container_id: str | None = None
    last_terminated: Mapping[str, Any] | None = None


def _condition(
    kind: str, ok: bool, now: str, old: Mapping[str, Any] | None, reason: str | None = None
) -> dict[str, Any]:
    status = "True" if ok else "False"
    prev = next((c for c in (old or {}).get("conditions") or [] if c.get("type") == kind), None)
    since = prev.get("lastTransitionTime") if prev and prev.get("status") == status else now
    out: dict[str, Any] = {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": since}
    if reason and not ok:
        out["reason"] = reason
    return out


def _state(c: ContainerState) -> dict[str, Any]:
    if c.state == "running":
        return {"running": {"startedAt": c.started_at}}
    if c.state == "terminated":
        t: dict[str, Any] = {
            "exitCode": c.exit_code if c.exit_code is not None else 0,
            "reason": c.reason or "Completed",
        }
        t.update(startedAt=c.started_at, finishedAt=c.finished_at)
        if c.container_id:
            t["containerID"] = c.container_id
        return {"terminated": t}
    w: dict[str, Any] = {"reason": c.reason or "ContainerCreating"}
    if c.message:
        w["message"] = c.message
    return {"waiting": w}


def pod_status(
    *,
    old: Mapping[str, Any] | None,
    containers: Sequence[ContainerState],
    host_ip: str,
    pod_ip: str | None,
    started: str,
    now: str,
    restart_policy: str,
    generation: int | None,
) -> dict[str, Any]:
    all_ready = bool(containers) and all(c.ready for c in containers)
    running = [c for c in containers if c.state == "running"]
    done = [c for c in containers if c.state == "terminated"]
    if containers and len(done) == len(containers) and restart_policy != "Always":
        phase = "Succeeded" if all((c.exit_code or 0) == 0 for c in done) else "Failed"
    elif running or (done and restart_policy == "Always"):
        phase = "Running"
    else:
        phase = "Pending"
    reason = None if all_ready else "ContainersNotReady"
    statuses = []
    for c in containers:
        s: dict[str, Any] = {
            "name": c.name,
            "image": c.image,
            "imageID": "",
            "ready": c.ready,
            "restartCount": c.restarts,
            "started": c.state == "running",
            "state": _state(c),
        }
        if c.container_id:
            s["containerID"] = c.container_id
        s["lastState"] = dict(c.last_terminated) if c.last_terminated else {}
        statuses.append(s)
    sandbox = pod_ip is not None
    out: dict[str, Any] = {
        "phase": phase,
        "conditions": [
            _condition("PodReadyToStartContainers", sandbox, now, old),
            _condition("Initialized", True, now, old),
            _condition("Ready", all_ready and phase == "Running", now, old, reason),
            _condition("ContainersReady", all_ready, now, old, reason),
            _condition("PodScheduled", True, now, old),
        ],
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": started,
        "containerStatuses": statuses,
        "qosClass": "BestEffort",
    }
    if pod_ip:
        out["podIP"] = pod_ip
        out["podIPs"] = [{"ip": pod_ip}]
    if generation is not None:
        out["observedGeneration"] = generation
    return out


def container_id(pid: int, start_time: int) -> str:
    """``fleetnet://<pid>-<start time>``: the process that is the container (start time tells reuse apart)."""
    return f"fleetnet://{pid}-{start_time}"


def parse_container_id(cid: str) -> tuple[int, int] | None:
    if not cid.startswith("fleetnet://"):
        return None
    try:
        pid, start = cid[len("fleetnet://") :].split("-", 1)
        return int(pid), int(start)
    except ValueError:
        return None
