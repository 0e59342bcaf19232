"""The arithmetic of a Deployment's rollout, as ``pkg/controller/deployment/util`` does it.

``maxSurge`` and ``maxUnavailable`` (ints or percentages of ``spec.replicas``: surge rounds up,
unavailable rounds down, both zero means one unavailable), the revision and replica annotations a
Deployment keeps on its ReplicaSets, the pod-template-hash, the Deployment's conditions and the
status it reports. Pure; ReplicaSets are JSON dicts, never mutated here unless said so.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fleetnet.plan.controllers.meta import Obj, annotations_of, format_time, name, parse_time, semantic

LABEL_POD_TEMPLATE_HASH = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
MAX_REV_HISTORY_CHARS = 2000
NO_DEADLINE = 2**31 - 1  # math.MaxInt32: "no progress deadline"

# condition types and reasons (deployment/util/deployment_util.go)
AVAILABLE, PROGRESSING, REPLICA_FAILURE = "Available", "Progressing", "ReplicaFailure"
MIN_AVAILABLE, MIN_UNAVAILABLE = "MinimumReplicasAvailable", "MinimumReplicasUnavailable"
RS_UPDATED, NEW_RS_CREATED, FOUND_NEW_RS = "ReplicaSetUpdated", "NewReplicaSetCreated", "FoundNewReplicaSet"
NEW_RS_AVAILABLE, TIMED_OUT = "NewReplicaSetAvailable", "ProgressDeadlineExceeded"
PAUSED, RESUMED, FAILED_RS_CREATE = "DeploymentPaused", "DeploymentResumed", "ReplicaSetCreateError"

_SKIP_COPY = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO})
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand


# --- int-or-percent ----------------------------------------------------------------------------


def scaled_value(value: int | str, total: int, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``; a string that is not ``N%`` is a ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"invalid value for IntOrString: {value!r}")
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%"):
        raise ValueError(f"invalid value for IntOrString: invalid type: string is not a percentage ({text!r})")
    try:
        percent = int(text[:-1])
    except ValueError as e:
        raise ValueError(f"invalid value for IntOrString: invalid value {text!r}") from e
    exact = percent * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def replicas(obj: Mapping[str, Any]) -> int:
    r = (obj.get("spec") or {}).get("replicas")
    return 1 if r is None else int(r)


def is_rolling(d: Mapping[str, Any]) -> bool:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type", "RollingUpdate") != "Recreate"


def _rolling_params(d: Mapping[str, Any]) -> tuple[int | str, int | str]:
    ru = ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    surge = ru.get("maxSurge")
    unavailable = ru.get("maxUnavailable")
    return ("25%" if surge is None else surge), ("25%" if unavailable is None else unavailable)


def resolve_fenceposts(max_surge: int | str, max_unavailable: int | str, desired: int) -> tuple[int, int]:
    """(surge, unavailable); when both round to zero, one pod may be unavailable."""
    surge = scaled_value(max_surge, desired, True)
    unavailable = scaled_value(max_unavailable, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(d: Mapping[str, Any]) -> int:
    if not is_rolling(d):
        return 0
    return resolve_fenceposts(*_rolling_params(d), replicas(d))[0]


def max_unavailable(d: Mapping[str, Any]) -> int:
    if not is_rolling(d) or replicas(d) == 0:
        return 0
    return min(resolve_fenceposts(*_rolling_params(d), replicas(d))[1], replicas(d))


# --- sums over ReplicaSets ---------------------------------------------------------------------


def _status_int(rs: Mapping[str, Any], field: str) -> int:
    return int((rs.get("status") or {}).get(field) or 0)


def spec_total(rss: Iterable[Mapping[str, Any]]) -> int:
    """``GetReplicaCountForReplicaSets``."""
    return sum(replicas(rs) for rs in rss)


def actual_total(rss: Iterable[Mapping[str, Any]]) -> int:
    return sum(_status_int(rs, "replicas") for rs in rss)


def ready_total(rss: Iterable[Mapping[str, Any]]) -> int:
    return sum(_status_int(rs, "readyReplicas") for rs in rss)


def available_total(rss: Iterable[Mapping[str, Any]]) -> int:
    return sum(_status_int(rs, "availableReplicas") for rs in rss)


def active(rss: Iterable[Obj]) -> list[Obj]:
    """``FilterActiveReplicaSets``: those with pods wanted."""
    return [rs for rs in rss if replicas(rs) > 0]


def new_rs_replicas(d: Mapping[str, Any], all_rss: Sequence[Mapping[str, Any]], new_rs: Mapping[str, Any]) -> int:
    """``NewRSNewReplicas``: how far the new ReplicaSet may be scaled up now."""
    if not is_rolling(d):
        return replicas(d)
    max_total = replicas(d) + max_surge(d)
    current = spec_total(all_rss)
    if current >= max_total:
        return replicas(new_rs)
    return replicas(new_rs) + min(max_total - current, replicas(d) - replicas(new_rs))


# --- revisions and annotations -----------------------------------------------------------------


def revision(obj: Mapping[str, Any]) -> int:
    try:
        return int(annotations_of(obj).get(REVISION, "0") or 0)
    except ValueError:
        return 0


def max_revision(rss: Iterable[Mapping[str, Any]]) -> int:
    return max((revision(rs) for rs in rss), default=0)


def replicas_annotations_need_update(rs: Mapping[str, Any], desired: int, maximum: int) -> bool:
    a = annotations_of(rs)
    return a.get(DESIRED_REPLICAS) != str(desired) or a.get(MAX_REPLICAS) != str(maximum)


def set_replicas_annotations(rs: Obj, desired: int, maximum: int) -> bool:
    """In place; whether anything changed."""
    md = rs.setdefault("metadata", {})
    a = md.setdefault("annotations", {})
    changed = a.get(DESIRED_REPLICAS) != str(desired) or a.get(MAX_REPLICAS) != str(maximum)
    a[DESIRED_REPLICAS] = str(desired)
    a[MAX_REPLICAS] = str(maximum)
    return changed


def set_new_rs_annotations(d: Mapping[str, Any], rs: Obj, new_revision: int, exists: bool) -> bool:
    """``SetNewReplicaSetAnnotations``, in place: the Deployment's annotations (less the skipped
    ones), the revision (and the history of revisions a rolled-back ReplicaSet had)."""
    md = rs.setdefault("metadata", {})
    a = md.get("annotations")
    if a is None:
        a = md["annotations"] = {}
    changed = False
    for k, v in annotations_of(d).items():
        if k in _SKIP_COPY or a.get(k) == v:
            continue
        a[k] = v
        changed = True
    old = a.get(REVISION, "")
    try:
        old_int = int(old) if old else 0
    except ValueError:
        return False
    if old_int < new_revision:
        a[REVISION] = str(new_revision)
        changed = True
        if old:
            history = a.get(REVISION_HISTORY, "")
            parts = history.split(",") if history else []
            if not parts:
                a[REVISION_HISTORY] = old
            else:
                total, start = len(history) + len(old) + 1, 0
                while total > MAX_REV_HISTORY_CHARS and start < len(parts):
                    total -= len(parts[start]) + 1
                    start += 1
                if total <= MAX_REV_HISTORY_CHARS:
                    a[REVISION_HISTORY] = ",".join([*parts[start:], old])
    if not exists and set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d)):
        changed = True
    return changed


def desired_annotation(rs: Mapping[str, Any]) -> int | None:
    try:
        return int(annotations_of(rs)[DESIRED_REPLICAS])
    except (KeyError, ValueError):
        return None


def max_annotation(rs: Mapping[str, Any]) -> int | None:
    try:
        return int(annotations_of(rs)[MAX_REPLICAS])
    except (KeyError, ValueError):
        return None


# --- templates ---------------------------------------------------------------------------------


def template_hash(template: Mapping[str, Any], collision_count: int | None = None) -> str:
    """``controller.ComputeHash``: FNV-32a of the template (here its canonical JSON, as Go's
    object dump cannot be reproduced), then the collision count, then the decimal digits of the
    hash in the safe alphabet."""
    data = json.dumps(semantic(dict(template)), sort_keys=True, separators=(",", ":")).encode()
    if collision_count is not None:
        data += (collision_count & 0xFFFFFFFF).to_bytes(4, "little")
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(SAFE_ALPHABET[b % len(SAFE_ALPHABET)] for b in str(h).encode())


def _without_hash(template: Mapping[str, Any] | None) -> Any:
    t = json.loads(json.dumps(template or {}))
    (t.get("metadata") or {}).get("labels", {}).pop(LABEL_POD_TEMPLATE_HASH, None)
    return semantic(t)


def equal_ignore_hash(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    return bool(_without_hash(a) == _without_hash(b))


def template_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return (obj.get("spec") or {}).get("template") or {}


def find_new(d: Mapping[str, Any], rss: Sequence[Obj]) -> Obj | None:
    """``FindNewReplicaSet``: the oldest ReplicaSet whose template is the Deployment's."""
    from fleetnet.plan.controllers.meta import by_creation

    for rs in sorted(rss, key=by_creation):
        if equal_ignore_hash(template_of(rs), template_of(d)):
            return rs
    return None


# --- conditions and status ---------------------------------------------------------------------


def get_condition(status: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)


def new_condition(kind: str, status: str, reason: str, message: str, now: float) -> dict[str, Any]:
    t = format_time(now)
    return {
        "type": kind,
        "status": status,
        "lastUpdateTime": t,
        "lastTransitionTime": t,
        "reason": reason,
        "message": message,
    }


def set_condition(status: dict[str, Any], cond: dict[str, Any]) -> None:
    """``SetDeploymentCondition``: same status and reason is no change; a status that stays keeps
    its transition time; the condition moves to the end."""
    current = get_condition(status, cond["type"])
    if current is not None and current.get("status") == cond["status"] and current.get("reason") == cond["reason"]:
        return
    if current is not None and current.get("status") == cond["status"]:
        cond = {**cond, "lastTransitionTime": current.get("lastTransitionTime")}
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != cond["type"]] + [cond]


def remove_condition(status: dict[str, Any], kind: str) -> None:
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != kind]


_COUNTERS = ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas")


def packed(status: Mapping[str, Any]) -> dict[str, Any]:
    """The status as kube serialises it: zero counters and empty conditions left out."""
    out: dict[str, Any] = {}
    for k in (*_COUNTERS, "unavailableReplicas"):
        v = int(status.get(k) or 0)
        if v:
            out[k] = v
    if status.get("conditions"):
        out["conditions"] = [dict(c) for c in status["conditions"]]
    if status.get("collisionCount") is not None:
        out["collisionCount"] = int(status["collisionCount"])
    return out


def has_progress_deadline(d: Mapping[str, Any]) -> bool:
    p = (d.get("spec") or {}).get("progressDeadlineSeconds")
    return p is not None and int(p) != NO_DEADLINE


def deadline(d: Mapping[str, Any]) -> int:
    return int((d.get("spec") or {}).get("progressDeadlineSeconds") or 0)


def complete(d: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """``DeploymentComplete``."""
    r = replicas(d)
    return (
        int(status.get("updatedReplicas") or 0) == r
        and int(status.get("replicas") or 0) == r
        and int(status.get("availableReplicas") or 0) == r
        and int(status.get("observedGeneration") or 0) >= int((d.get("metadata") or {}).get("generation") or 0)
    )


def progressing(d: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """``DeploymentProgressing``: more updated, ready or available pods, or fewer old ones."""
    old = d.get("status") or {}

    def g(s: Mapping[str, Any], k: str) -> int:
        return int(s.get(k) or 0)

    return (
        g(new, "updatedReplicas") > g(old, "updatedReplicas")
        or g(new, "replicas") - g(new, "updatedReplicas") < g(old, "replicas") - g(old, "updatedReplicas")
        or g(new, "readyReplicas") > g(old, "readyReplicas")
        or g(new, "availableReplicas") > g(old, "availableReplicas")
    )


def timed_out(d: Mapping[str, Any], status: Mapping[str, Any], now: float) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(status, PROGRESSING)
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = parse_time(cond.get("lastUpdateTime"))
    return since is not None and since + deadline(d) < now


def calculate_status(
    all_rss: Sequence[Mapping[str, Any]], new_rs: Mapping[str, Any] | None, d: Mapping[str, Any], now: float
) -> dict[str, Any]:
    """``calculateStatus``: counters from the ReplicaSets, conditions carried over, Available set."""
    old = d.get("status") or {}
    available = available_total(all_rss)
    status: dict[str, Any] = {
        "observedGeneration": int((d.get("metadata") or {}).get("generation") or 0),
        "replicas": actual_total(all_rss),
        "updatedReplicas": actual_total([new_rs] if new_rs is not None else []),
        "readyReplicas": ready_total(all_rss),
        "availableReplicas": available,
        "unavailableReplicas": max(0, spec_total(all_rss) - available),
        "conditions": [dict(c) for c in old.get("conditions") or []],
    }
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if available >= replicas(d) - max_unavailable(d):
        cond = new_condition(AVAILABLE, "True", MIN_AVAILABLE, "Deployment has minimum availability.", now)
    else:
        cond = new_condition(AVAILABLE, "False", MIN_UNAVAILABLE, "Deployment does not have minimum availability.", now)
    set_condition(status, cond)
    return status


def rs_label(rs: Mapping[str, Any]) -> str:
    return f'ReplicaSet "{name(rs)}"'
