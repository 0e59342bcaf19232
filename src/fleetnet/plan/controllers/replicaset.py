"""One sync of a ReplicaSet, as ``pkg/controller/replicaset`` decides it.

How many pods to create from the template (named ``<replicaset>-<5 chars>`` by the API server's
``generateName``), which to delete when there are too many — kube's ``ActivePodsWithRanks`` order:
unscheduled before scheduled, Pending before Unknown before Running, not ready before ready,
lower ``pod-deletion-cost`` first, more pods of the same owner on the node first, ready for less
time first (in logarithmic buckets), more restarts first, newer first — and the status the
ReplicaSet reports. Pods being deleted or finished do not count.
"""

from __future__ import annotations

import copy
import functools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fleetnet.plan.controllers.meta import (
    Obj,
    annotations_of,
    created,
    format_time,
    generation,
    labels,
    name,
    namespace,
    new_controller_ref,
    node_name,
    phase,
    pod_active,
    pod_available,
    pod_ready,
    pod_ready_since,
    restarts,
    uid,
)

BURST_REPLICAS = 500  # kube's --replicaset burst: at most this many creations or deletions per sync
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
REPLICA_FAILURE = "ReplicaFailure"
_PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Running": 2}


@dataclass(frozen=True, slots=True)
class ReplicaSetPlan:
    create: int = 0  # pods to create from the template
    delete: tuple[Obj, ...] = ()  # pods to delete, in this order
    requeue_after: float | None = None  # a ready pod becomes available (minReadySeconds) then


def min_ready_seconds(rs: Mapping[str, Any]) -> int:
    return int((rs.get("spec") or {}).get("minReadySeconds") or 0)


def desired(rs: Mapping[str, Any]) -> int:
    r = (rs.get("spec") or {}).get("replicas")
    return 1 if r is None else int(r)


def plan_replicaset(rs: Obj, pods: Sequence[Obj], related: Sequence[Obj], now: float) -> ReplicaSetPlan:
    """``pods``: the active pods this ReplicaSet controls; ``related``: the pods of every
    ReplicaSet with the same owner (they decide which node is doubled up)."""
    diff = len(pods) - desired(rs)
    create = 0
    delete: tuple[Obj, ...] = ()
    if not (rs.get("metadata") or {}).get("deletionTimestamp"):
        if diff < 0:
            create = min(-diff, BURST_REPLICAS)
        elif diff > 0:
            delete = tuple(pods_to_delete(pods, related, min(diff, BURST_REPLICAS), now))
    return ReplicaSetPlan(create, delete, next_available(rs, pods, now))


def pod_from_template(rs: Mapping[str, Any]) -> Obj:
    """``GetPodFromTemplate``: the template's labels, annotations, finalizers and spec, named by the
    server from ``<replicaset>-``, controlled by the ReplicaSet."""
    tpl = (rs.get("spec") or {}).get("template") or {}
    tmd = tpl.get("metadata") or {}
    md: dict[str, Any] = {"generateName": f"{name(rs)}-", "namespace": namespace(rs)}
    if tmd.get("labels"):
        md["labels"] = dict(tmd["labels"])
    if tmd.get("annotations"):
        md["annotations"] = dict(tmd["annotations"])
    if tmd.get("finalizers"):
        md["finalizers"] = list(tmd["finalizers"])
    md["ownerReferences"] = [new_controller_ref(rs, "ReplicaSet", "apps/v1")]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": copy.deepcopy(tpl.get("spec") or {})}


# --- which pods go first -----------------------------------------------------------------------


def _cost(pod: Mapping[str, Any]) -> int:
    try:
        return int(annotations_of(pod).get(DELETION_COST, "0"))
    except ValueError:
        return 0


def _log_rank(t: float, now: float) -> int:
    d = (now - t) * 1e9  # nanoseconds, as Go's time.Duration
    return int(math.log2(d)) if d > 0 else -1


def _time_less(t1: float | None, t2: float | None, u1: str, u2: str, now: float) -> bool | None:
    """LogarithmicScaleDown: the more recent bucket first; None when the times are equal."""
    if t1 == t2:
        return None
    if not t1 or not t2:  # afterOrZero: a missing time first
        return not t1
    if not now:
        return t1 > t2
    diff = _log_rank(t1, now) - _log_rank(t2, now)
    if diff == 0:
        return u1 < u2
    return diff < 0


def _less(a: tuple[Obj, int], b: tuple[Obj, int], now: float) -> bool:
    (pi, ri), (pj, rj) = a, b
    ni, nj = node_name(pi), node_name(pj)
    if ni != nj and (not ni or not nj):
        return not ni
    oi, oj = _PHASE_ORDER.get(phase(pi), 0), _PHASE_ORDER.get(phase(pj), 0)
    if oi != oj:
        return oi < oj
    if pod_ready(pi) != pod_ready(pj):
        return not pod_ready(pi)
    if _cost(pi) != _cost(pj):
        return _cost(pi) < _cost(pj)
    if ri != rj:
        return ri > rj
    if pod_ready(pi) and pod_ready(pj):
        r = _time_less(pod_ready_since(pi), pod_ready_since(pj), uid(pi), uid(pj), now)
        if r is not None:
            return r
    if restarts(pi) != restarts(pj):
        return restarts(pi) > restarts(pj)
    r = _time_less(created(pi) or None, created(pj) or None, uid(pi), uid(pj), now)
    return bool(r)


def pods_to_delete(pods: Sequence[Obj], related: Sequence[Obj], n: int, now: float) -> list[Obj]:
    if n >= len(pods):
        return list(pods)
    on_node = Counter(node_name(p) for p in related if pod_active(p))
    ranked = [(p, on_node[node_name(p)]) for p in pods]

    def cmp(a: tuple[Obj, int], b: tuple[Obj, int]) -> int:
        return -1 if _less(a, b, now) else (1 if _less(b, a, now) else 0)

    ranked.sort(key=functools.cmp_to_key(cmp))
    return [p for p, _ in ranked[:n]]


# --- status ------------------------------------------------------------------------------------


def calculate_status(rs: Obj, pods: Sequence[Obj], now: float, failure: str | None = None) -> dict[str, Any]:
    """``calculateStatus`` of the active pods ``pods``, with ``failure`` (a create or delete error)
    as the ReplicaFailure condition; observedGeneration is the ReplicaSet's generation."""
    tpl_labels = ((rs.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}
    mrs = min_ready_seconds(rs)
    full = sum(1 for p in pods if all(labels(p).get(k) == v for k, v in tpl_labels.items()))
    ready = [p for p in pods if pod_ready(p)]
    available = sum(1 for p in ready if pod_available(p, mrs, now))
    conditions = [dict(c) for c in (rs.get("status") or {}).get("conditions") or []]
    current = next((c for c in conditions if c.get("type") == REPLICA_FAILURE), None)
    if failure is not None and current is None:
        diff = len(pods) - desired(rs)
        reason = "FailedCreate" if diff < 0 else ("FailedDelete" if diff > 0 else "")
        t = format_time(now)
        conditions.append(
            {"type": REPLICA_FAILURE, "status": "True", "lastTransitionTime": t, "reason": reason, "message": failure}
        )
    elif failure is None and current is not None:
        conditions = [c for c in conditions if c.get("type") != REPLICA_FAILURE]
    status: dict[str, Any] = {"replicas": len(pods)}
    for k, v in (("fullyLabeledReplicas", full), ("readyReplicas", len(ready)), ("availableReplicas", available)):
        if v:
            status[k] = v
    if generation(rs):
        status["observedGeneration"] = generation(rs)
    if conditions:
        status["conditions"] = conditions
    return status


def next_available(rs: Mapping[str, Any], pods: Sequence[Obj], now: float) -> float | None:
    """Seconds until the next ready pod has been ready for ``minReadySeconds`` (then the status changes)."""
    mrs = min_ready_seconds(rs)
    if mrs <= 0:
        return None
    waits = []
    for p in pods:
        since = pod_ready_since(p)
        if since is not None and not pod_available(p, mrs, now):
            waits.append(max(0.0, since + mrs - now) + 0.05)
    return min(waits) if waits else None


def active_pods(pods: Sequence[Obj]) -> list[Obj]:
    return [p for p in pods if pod_active(p)]
