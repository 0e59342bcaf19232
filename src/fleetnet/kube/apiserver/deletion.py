"""DELETE: graceful deletion of pods, finalizers, and the propagation policies of the garbage collector.

As in kube-apiserver's generic store: an object with finalizers (or a propagation policy that adds
one: ``orphan``, ``foregroundDeletion``) is only marked (``deletionTimestamp``) and deleted once its
finalizers are gone; a scheduled, running Pod gets a grace period and is deleted by its kubelet; a
Namespace goes ``Terminating`` until the namespace controller has emptied it. Everything else is
removed at once, and the garbage collector (a controller) removes dependents in the background.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fleetnet.kube import status as st
from fleetnet.kube.apiserver import strategy
from fleetnet.kube.apiserver.storage import Entry
from fleetnet.kube.resources import Resource

if TYPE_CHECKING:
    from fleetnet.kube.apiserver.call import Call
    from fleetnet.kube.apiserver.handlers import Handlers

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"


@dataclass(frozen=True, slots=True)
class DeleteOptions:
    grace: int | None
    propagation: str | None
    uid: str | None
    resource_version: str | None
    dry_run: bool


def options(call: Call) -> DeleteOptions:
    body: dict[str, Any] = {}
    if call.body:
        try:
            parsed = json.loads(call.body)
        except ValueError as e:
            raise st.bad_request(f"error decoding DeleteOptions: {e}") from e
        if isinstance(parsed, dict):
            body = parsed
    q = call.query
    grace: Any = q.get("gracePeriodSeconds", body.get("gracePeriodSeconds"))
    try:
        grace_i = None if grace in (None, "") else int(grace)
    except ValueError as e:
        raise st.bad_request(f"invalid gracePeriodSeconds: {grace}") from e
    prop = q.get("propagationPolicy") or body.get("propagationPolicy")
    if prop is None:
        orphan = q.get("orphanDependents", body.get("orphanDependents"))
        if orphan in (True, "true"):
            prop = "Orphan"
    if prop not in (None, "Orphan", "Foreground", "Background"):
        from fleetnet.kube.apiserver.validate import unsupported

        raise st.invalid(
            "DeleteOptions", "", "", [unsupported("propagationPolicy", prop, ["Background", "Foreground", "Orphan"])]
        )
    pre = body.get("preconditions") or {}
    dry = q.get("dryRun") == "All" or body.get("dryRun") == ["All"]
    return DeleteOptions(grace_i, prop, pre.get("uid"), pre.get("resourceVersion"), dry)


def _finalizers(obj: dict[str, Any]) -> list[str]:
    return list((obj.get("metadata") or {}).get("finalizers") or [])


def delete_one(h: Handlers, res: Resource, e: Entry, opts: DeleteOptions, call: Call) -> tuple[int, dict[str, Any]]:
    """Delete or mark one object; returns (HTTP status, the object as it is now)."""
    md = e.obj.get("metadata") or {}
    name = str(md.get("name"))
    if opts.uid and opts.uid != md.get("uid"):
        raise st.conflict(
            res.plural,
            res.group,
            name,
            f"Precondition failed: UID in precondition: {opts.uid}, UID in object meta: {md.get('uid')}",
        )
    if opts.resource_version and opts.resource_version != str(e.rv):
        raise st.conflict(
            res.plural,
            res.group,
            name,
            f"Precondition failed: ResourceVersion in precondition: {opts.resource_version}, "
            f"ResourceVersion in object meta: {e.rv}",
        )
    obj = copy.deepcopy(e.obj)
    nmd = obj["metadata"]
    finalizers = _finalizers(obj)
    if opts.propagation == "Orphan" and ORPHAN not in finalizers:
        finalizers.append(ORPHAN)
    elif opts.propagation == "Foreground" and FOREGROUND not in finalizers:
        finalizers.append(FOREGROUND)
    grace = _grace(res, obj, opts)
    pending = bool(finalizers) or grace > 0 or _namespace_pending(res, obj)
    if not pending:
        if opts.dry_run:
            return 200, obj
        gone = h.storage.delete(e.key)
        assert gone is not None
        return 200, gone.obj
    now = h.clock()
    changed = False
    if finalizers != _finalizers(e.obj):
        nmd["finalizers"] = finalizers
        changed = True
    if not nmd.get("deletionTimestamp"):
        nmd["deletionTimestamp"] = strategy.now_rfc3339(now + grace)
        nmd["deletionGracePeriodSeconds"] = grace
        changed = True
    elif grace < int(nmd.get("deletionGracePeriodSeconds") or 0):
        # a second delete may only shorten the grace period
        nmd["deletionTimestamp"] = strategy.now_rfc3339(now + grace)
        nmd["deletionGracePeriodSeconds"] = grace
        changed = True
    if res.kind == "Namespace" and (obj.get("status") or {}).get("phase") != "Terminating":
        obj.setdefault("status", {})["phase"] = "Terminating"
        changed = True
    if not changed or opts.dry_run:
        return 202 if res.kind != "Namespace" else 200, obj
    out = h.storage.put(e.key, obj)
    return (200 if res.kind == "Namespace" else 202), out.obj


def _grace(res: Resource, obj: dict[str, Any], opts: DeleteOptions) -> int:
    """Only scheduled pods that have not finished get a grace period (kube's pod strategy)."""
    if res.kind != "Pod":
        return 0
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
        return 0
    if opts.grace is not None:
        return max(0, opts.grace)
    return int(spec.get("terminationGracePeriodSeconds", 30) or 0)


def _namespace_pending(res: Resource, obj: dict[str, Any]) -> bool:
    return res.kind == "Namespace" and bool((obj.get("spec") or {}).get("finalizers"))


def deletable_now(res: Resource, obj: dict[str, Any]) -> bool:
    """A marked object whose finalizers are all gone is removed by the write that removed the last."""
    if _finalizers(obj):
        return False
    if res.kind == "Namespace":
        return not (obj.get("spec") or {}).get("finalizers")
    if res.kind == "Pod":
        # a pod's kubelet deletes it (grace 0) once its containers are stopped
        return int((obj.get("metadata") or {}).get("deletionGracePeriodSeconds") or 0) == 0
    return True
