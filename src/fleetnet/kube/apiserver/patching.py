"""PATCH requests: the four patch types kube-apiserver accepts, turned into a new object.

JSON patch and JSON merge patch work on every resource; strategic merge patch only on built-in kinds
(custom resources answer 415, as kube does); server-side apply (``application/apply-patch+yaml``)
merges the applied configuration with field ownership (``fieldmanager.apply``) and may create.
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any

from fleetnet.kube import status as st
from fleetnet.kube.apiserver.bodies import _apply_mode, parse_any
from fleetnet.kube.apiserver.storage import Entry
from fleetnet.kube.resources import Resource
from fleetnet.kube.schema_types import Node

if TYPE_CHECKING:
    from fleetnet.kube.apiserver.call import Call
    from fleetnet.kube.apiserver.handlers import Handlers

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
ALL = (JSON_PATCH, MERGE_PATCH, STRATEGIC, APPLY)


def accepted_types(res: Resource | None) -> tuple[str, ...]:
    if res is not None and res.custom:
        return (JSON_PATCH, MERGE_PATCH, APPLY)
    return ALL


def patch_document(
    doc: dict[str, Any], body: bytes, ctype: str, schema: Node | None, custom: bool = False
) -> dict[str, Any]:
    """``doc`` with the patch in ``body`` applied (not server-side apply)."""
    from fleetnet.kube import patch as patchlib

    if ctype not in (JSON_PATCH, MERGE_PATCH, STRATEGIC) or (custom and ctype == STRATEGIC):
        raise st.unsupported_media_type(ctype, (JSON_PATCH, MERGE_PATCH, APPLY) if custom else ALL)
    try:
        p = json.loads(body)
    except ValueError as e:
        raise st.bad_request(f"error decoding patch: {e}") from e
    try:
        if ctype == JSON_PATCH:
            if not isinstance(p, list):
                raise st.bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
            out = patchlib.json_patch(copy.deepcopy(doc), p)
        elif ctype == MERGE_PATCH:
            out = patchlib.merge_patch(copy.deepcopy(doc), p)
        else:
            if not isinstance(p, dict):
                raise st.bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
            out = patchlib.strategic_merge_patch(copy.deepcopy(doc), p, schema)
    except patchlib.PatchError as e:
        raise st.ApiError(422, "Invalid", str(e)) from e
    if not isinstance(out, dict):
        raise st.bad_request("the patch does not result in an object")
    return out


def patched(h: Handlers, call: Call, res: Resource, old: Entry | None, ctype: str) -> tuple[dict[str, Any], bool]:
    """The object after this PATCH, and whether it is new (server-side apply creates)."""
    from fleetnet.kube import schema as schemas

    schema = schemas.root(res.api_version, res.kind)
    if ctype == APPLY:
        return _apply(h, call, res, old, schema)
    assert old is not None
    out = patch_document(old.obj, call.body, ctype, schema, custom=res.custom)
    _identity_kept(res, call, out, old)
    _check_fields(call, res, out)
    return out, False


def _identity_kept(res: Resource, call: Call, out: dict[str, Any], old: Entry) -> None:
    md = out.get("metadata")
    if not isinstance(md, dict):
        raise st.bad_request("metadata must be an object")
    if md.get("name") != old.obj["metadata"]["name"]:
        raise st.bad_request(
            f"the name of the object ({md.get('name')}) does not match the name on the URL ({call.info.name})"
        )
    out["kind"], out["apiVersion"] = res.kind, res.api_version


def _check_fields(call: Call, res: Resource, obj: dict[str, Any]) -> None:
    from fleetnet.kube import validation

    wrong = validation.type_errors(res.api_version, res.kind, obj)
    if wrong:
        raise st.bad_request(wrong[0])
    _apply_mode(call, [f'unknown field "{p}"' for p in validation.unknown_fields(res.api_version, res.kind, obj)])


def _apply(
    h: Handlers, call: Call, res: Resource, old: Entry | None, schema: Node | None
) -> tuple[dict[str, Any], bool]:
    from fleetnet.kube import fieldmanager

    manager = call.query.get("fieldManager")
    if not manager:
        raise st.bad_request("PATCH, application/apply-patch+yaml: fieldManager is required for apply requests")
    applied, dups = parse_any(call.body, APPLY)
    if not isinstance(applied, dict):
        raise st.bad_request("the body of an apply request must be an object")
    av, kind = applied.get("apiVersion"), applied.get("kind")
    if not av or not kind:
        raise st.bad_request(
            "Object 'Kind' is missing in apply request" if not kind else "Object 'apiVersion' is missing"
        )
    if kind != res.kind or av != res.api_version:
        raise st.bad_request(f"the kind and apiVersion of the applied object ({av}, {kind}) do not match the request")
    md = applied.get("metadata") or {}
    if md.get("name") and md["name"] != call.info.name:
        raise st.bad_request(
            f"the name of the object ({md['name']}) does not match the name on the URL ({call.info.name})"
        )
    if res.namespaced and md.get("namespace") and md["namespace"] != call.info.namespace:
        raise st.bad_request("the namespace of the provided object does not match the namespace sent on the request")
    _check_fields(call, res, applied)
    force = call.query.get("force", "").lower() == "true"
    live = None if old is None else old.obj
    try:
        out = fieldmanager.apply(live, applied, manager, force, schema, h._now())
    except fieldmanager.ConflictError as e:
        raise _conflict_status(res, call.info.name or "", e) from e
    out.setdefault("metadata", {})["name"] = call.info.name
    if res.namespaced:
        out["metadata"]["namespace"] = call.info.namespace
    out["kind"], out["apiVersion"] = res.kind, res.api_version
    del dups
    return out, old is None


def _conflict_status(res: Resource, name: str, e: Any) -> st.ApiError:
    conflicts = list(getattr(e, "conflicts", []) or [])
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f'conflict with "{c.manager}"'
            + (f" using {c.api_version}" if getattr(c, "api_version", "") else ""),
            "field": c.field,
        }
        for c in conflicts
    ]
    details: dict[str, Any] = {"name": name, "kind": res.plural, "causes": causes}
    if res.group:
        details["group"] = res.group
    return st.ApiError(409, "Conflict", str(e), details)
