"""The status conditions of a Terminating namespace, as kube's namespace controller sets them.

Five conditions, each False with an "ok" reason until something is wrong: discovery and group
version parsing (always fine here: the kinds are the registry's), content that failed to delete,
content remaining (``pods. has 2 resource instances``), and finalizers holding content
(``kubernetes.io/pvc-protection in 1 resource instances``). A condition's transition time moves
only when its status does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fleetnet.plan.controllers.meta import format_time

DISCOVERY = "NamespaceDeletionDiscoveryFailure"
PARSING = "NamespaceDeletionGroupVersionParsingFailure"
CONTENT_FAILURE = "NamespaceDeletionContentFailure"
CONTENT_REMAINING = "NamespaceContentRemaining"
FINALIZERS_REMAINING = "NamespaceFinalizersRemaining"
TYPES = (DISCOVERY, PARSING, CONTENT_FAILURE, CONTENT_REMAINING, FINALIZERS_REMAINING)
KUBERNETES_FINALIZER = "kubernetes"

_OK = {
    DISCOVERY: ("ResourcesDiscovered", "All resources successfully discovered"),
    PARSING: ("ParsedGroupVersions", "All legacy kube types successfully parsed"),
    CONTENT_FAILURE: ("ContentDeleted", "All content successfully deleted, may be waiting on finalization"),
    CONTENT_REMAINING: ("ContentRemoved", "All content successfully removed"),
    FINALIZERS_REMAINING: ("ContentHasNoFinalizers", "All content-preserving finalizers finished"),
}


def _cond(kind: str, status: str, reason: str, message: str, now: float) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "lastTransitionTime": format_time(now),
        "reason": reason,
        "message": message,
    }


def deletion_conditions(
    current: Sequence[Mapping[str, Any]],
    remaining: Mapping[str, int],
    finalizers: Mapping[str, int],
    failures: Sequence[str],
    now: float,
) -> list[dict[str, Any]]:
    """The namespace's conditions after one pass. ``remaining``: ``<resource>.<group>`` → objects
    still there; ``finalizers``: finalizer → objects it holds; ``failures``: deletion errors."""
    fresh: dict[str, dict[str, Any]] = {}
    if failures:
        msg = f"Failed to delete all resource types, {len(failures)} remaining: {', '.join(failures)}"
        fresh[CONTENT_FAILURE] = _cond(CONTENT_FAILURE, "True", "ContentDeletionFailed", msg, now)
    left = sorted(f"{r} has {n} resource instances" for r, n in remaining.items() if n)
    if left:
        msg = f"Some resources are remaining: {', '.join(left)}"
        fresh[CONTENT_REMAINING] = _cond(CONTENT_REMAINING, "True", "SomeResourcesRemain", msg, now)
    held = sorted(f"{f} in {n} resource instances" for f, n in finalizers.items() if n)
    if held:
        msg = f"Some content in the namespace has finalizers remaining: {', '.join(held)}"
        fresh[FINALIZERS_REMAINING] = _cond(FINALIZERS_REMAINING, "True", "SomeFinalizersRemain", msg, now)
    out = [dict(c) for c in current]
    for kind in TYPES:
        new = fresh.get(kind) or _cond(kind, "False", *_OK[kind], now)
        old = next((c for c in out if c.get("type") == kind), None)
        if old is None:
            out.append(new)
        elif (old.get("status"), old.get("reason"), old.get("message")) != (
            new["status"],
            new["reason"],
            new["message"],
        ):
            if old.get("status") != new["status"]:
                old["lastTransitionTime"] = new["lastTransitionTime"]
            old.update(status=new["status"], reason=new["reason"], message=new["message"])
    return out
