"""Reading what every controller decision looks at in an object: metadata, owners, times, pod readiness.

Objects are the API's JSON dicts. Two helpers stand in for Go's typed world: ``semantic`` makes
``null``, ``{}`` and ``[]`` the same as an absent field (``apiequality.Semantic.DeepEqual`` treats
nil and empty alike), and times are RFC 3339 seconds as the API server writes them.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Mapping
from typing import Any

from fleetnet.kube.selectors import LabelSelector, from_label_selector_object

Obj = dict[str, Any]

ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def name(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("name") or "")


def namespace(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("namespace") or "")


def uid(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("uid") or "")


def labels(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(meta(obj).get("labels") or {})


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(meta(obj).get("annotations") or {})


def generation(obj: Mapping[str, Any]) -> int:
    return int(meta(obj).get("generation") or 0)


def deleting(obj: Mapping[str, Any]) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def finalizers(obj: Mapping[str, Any]) -> list[str]:
    return list(meta(obj).get("finalizers") or [])


def owner_refs(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [dict(r) for r in meta(obj).get("ownerReferences") or [] if isinstance(r, Mapping)]


def controller_ref(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The owner reference with ``controller: true`` (at most one is allowed)."""
    return next((r for r in owner_refs(obj) if r.get("controller")), None)


def new_controller_ref(owner: Mapping[str, Any], kind: str, api_version: str) -> dict[str, Any]:
    """``metav1.NewControllerRef``: what a controller puts on the objects it makes."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name(owner),
        "uid": uid(owner),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def parse_time(text: Any) -> float | None:
    if not text or not isinstance(text, str):
        return None
    try:
        base = text[:19]
        t = float(calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return None
    rest = text[19:]
    if rest.startswith("."):  # fractional seconds (MicroTime)
        digits = rest[1:].rstrip("Z").split("+")[0]
        if digits.isdigit():
            t += float("0." + digits)
    return t


def format_time(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def created(obj: Mapping[str, Any]) -> float:
    return parse_time(meta(obj).get("creationTimestamp")) or 0.0


def by_creation(obj: Mapping[str, Any]) -> tuple[float, str]:
    """Sort key of ``ReplicaSetsByCreationTimestamp`` and friends: oldest first, ties by name."""
    return (created(obj), name(obj))


def semantic(value: Any) -> Any:
    """``value`` with null, empty maps and empty lists left out, recursively."""
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            s = semantic(v)
            if s is not None:
                out[k] = s
        return out or None
    if isinstance(value, list):
        items = [semantic(v) for v in value]
        return items or None
    return value


def semantic_equal(a: Any, b: Any) -> bool:
    return bool(semantic(a) == semantic(b))


def selector(obj: Mapping[str, Any]) -> LabelSelector:
    return from_label_selector_object((obj.get("spec") or {}).get("selector"))


def selects_everything(obj: Mapping[str, Any]) -> bool:
    sel = (obj.get("spec") or {}).get("selector")
    return isinstance(sel, Mapping) and not sel.get("matchLabels") and not sel.get("matchExpressions")


# --- pods --------------------------------------------------------------------------------------


def phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def node_name(pod: Mapping[str, Any]) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


def condition(obj: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(c, Mapping) and c.get("type") == kind:
            return dict(c)
    return None


def pod_ready(pod: Mapping[str, Any]) -> bool:
    c = condition(pod, "Ready")
    return c is not None and c.get("status") == "True"


def pod_ready_since(pod: Mapping[str, Any]) -> float | None:
    c = condition(pod, "Ready")
    if c is None or c.get("status") != "True":
        return None
    return parse_time(c.get("lastTransitionTime"))


def pod_available(pod: Mapping[str, Any], min_ready_seconds: int, now: float) -> bool:
    """``podutil.IsPodAvailable``: ready, and for longer than ``minReadySeconds``."""
    if not pod_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = pod_ready_since(pod)
    return since is not None and since + min_ready_seconds < now


def pod_terminal(pod: Mapping[str, Any]) -> bool:
    return phase(pod) in ("Succeeded", "Failed")


def pod_active(pod: Mapping[str, Any]) -> bool:
    """``controller.IsPodActive``: not finished and not being deleted."""
    return not pod_terminal(pod) and not deleting(pod)


def restarts(pod: Mapping[str, Any]) -> int:
    return max(
        (int(c.get("restartCount") or 0) for c in (pod.get("status") or {}).get("containerStatuses") or []),
        default=0,
    )
