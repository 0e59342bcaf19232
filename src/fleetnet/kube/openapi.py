"""The OpenAPI documents kube-apiserver publishes, generated from ``schema.py``'s definitions.

kubectl reads them for three things: ``kubectl explain`` (the field tree and descriptions),
client-side ``kubectl apply`` (the strategic-merge-patch tags of lists), and the check that the
server understands ``fieldValidation`` before it sends it (kubectl looks for that query parameter
on the PATCH operation of the kind's path; without it kubectl refuses with "--validate=false").
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

from fleetnet.kube import schema
from fleetnet.kube.resources import RESOURCES, Resource

_PATCH_PARAMS = [
    {
        "name": "dryRun",
        "in": "query",
        "description": "When present, indicates that modifications should not be persisted.",
    },
    {
        "name": "fieldManager",
        "in": "query",
        "description": "fieldManager is a name associated with the actor making changes.",
    },
    {
        "name": "fieldValidation",
        "in": "query",
        "description": "fieldValidation instructs the server on how to handle objects in the request containing "
        "unknown or duplicate fields. Valid values are: Ignore, Warn, Strict.",
    },
    {"name": "force", "in": "query", "description": 'Force is going to "force" Apply requests.'},
]


def _gvk(r: Resource) -> dict[str, str]:
    return {"group": r.group, "version": r.version, "kind": r.kind}


def _prop(p: dict[str, Any], ref_prefix: str, v3: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "description" in p:
        out["description"] = p["description"]
    for ours, theirs in (
        ("patchStrategy", "x-kubernetes-patch-strategy"),
        ("patchMergeKey", "x-kubernetes-patch-merge-key"),
        ("listType", "x-kubernetes-list-type"),
        ("listMapKeys", "x-kubernetes-list-map-keys"),
    ):
        if ours in p:
            out[theirs] = p[ours]
    if "ref" in p:
        ref = {"$ref": ref_prefix + p["ref"]}
        if v3:  # v3 keeps a $ref alone and puts siblings beside an allOf, as kube does
            out["allOf"] = [ref]
            return out
        out.update(ref)
        return out
    t = p.get("type", "any")
    if t == "list":
        out["type"] = "array"
        out["items"] = _prop(p["items"], ref_prefix, v3)
    elif t == "map":
        out["type"] = "object"
        out["additionalProperties"] = _prop(p["additional"], ref_prefix, v3)
    elif t == "int-or-string":
        out["type"] = "string"
        out["format"] = p.get("format", "int-or-string")
        if v3:
            out["x-kubernetes-int-or-string"] = True
    elif t == "any":
        out["type"] = "object"
        out["x-kubernetes-preserve-unknown-fields"] = True
    else:
        out["type"] = t
        if "format" in p:
            out["format"] = p["format"]
    return out


def _definitions(v3: bool) -> dict[str, Any]:
    prefix = "#/components/schemas/" if v3 else "#/definitions/"
    doc = schema.document()
    kinds = {name: key for key, name in doc["roots"].items()}
    out: dict[str, Any] = {}
    for name, d in doc["definitions"].items():
        o: dict[str, Any] = {
            "type": "object",
            "description": d.get("description", ""),
            "properties": {k: _prop(p, prefix, v3) for k, p in d.get("properties", {}).items()},
        }
        if d.get("required"):
            o["required"] = d["required"]
        if d.get("patchStrategy"):
            o["x-kubernetes-patch-strategy"] = d["patchStrategy"]
        if name in kinds:
            av, kind = kinds[name].rsplit("/", 1)
            group, _, version = av.rpartition("/")
            o["x-kubernetes-group-version-kind"] = [{"group": group, "kind": kind, "version": version}]
        out[name] = o
    for r in RESOURCES:
        if r.custom:
            out[f"io.cilium.v2.{r.kind}"] = _cilium(r, prefix)
    return out


def _cilium(r: Resource, prefix: str) -> dict[str, Any]:
    props: dict[str, Any] = {
        "apiVersion": {"type": "string", "description": "APIVersion defines the versioned schema of this object."},
        "kind": {"type": "string", "description": "Kind is a string value representing the REST resource."},
        "metadata": {"$ref": prefix + "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
    }
    for f in schema.CILIUM_TOP[r.kind]:
        props[f] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "type": "object",
        "description": f"{r.kind} is a Cilium custom resource.",
        "properties": props,
        "x-kubernetes-group-version-kind": [_gvk(r)],
    }


def _def_name(r: Resource) -> str:
    if r.custom:
        return f"io.cilium.v2.{r.kind}"
    return str(schema.document()["roots"][f"{r.api_version}/{r.kind}"])


def _paths(resources: list[Resource], prefix: str, v3: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r in resources:
        ref = {"$ref": prefix + _def_name(r)}
        body = {"content": {"application/json": {"schema": ref}}} if v3 else None
        for path in _item_paths(r):
            op: dict[str, Any] = {
                "operationId": f"patch{r.kind}",
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": _gvk(r),
                "parameters": _PATCH_PARAMS,
                "responses": {"200": {"description": "OK", **({"content": body["content"]} if body else {})}},
            }
            get = {
                "operationId": f"read{r.kind}",
                "x-kubernetes-action": "get",
                "x-kubernetes-group-version-kind": _gvk(r),
                "responses": {"200": {"description": "OK", **({"content": body["content"]} if body else {})}},
            }
            # kubectl's verifier reads the parameters of the path item; kube lists them on the operation
            out[path] = {"get": get, "patch": op, "parameters": _PATCH_PARAMS}
    return out


def _item_paths(r: Resource) -> list[str]:
    base = f"/apis/{r.group}/{r.version}" if r.group else "/api/v1"
    if r.namespaced:
        return [f"{base}/namespaces/{{namespace}}/{r.plural}/{{name}}"]
    return [f"{base}/{r.plural}/{{name}}"]


def _info() -> dict[str, str]:
    return {"title": "Kubernetes", "version": "unversioned"}


@functools.cache
def openapi_v2_bytes() -> bytes:
    doc = {
        "swagger": "2.0",
        "info": _info(),
        "paths": _paths(list(RESOURCES), "#/definitions/", False),
        "definitions": _definitions(False),
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _pb(num: int, value: bytes) -> bytes:
    """One length-delimited protobuf field (numbers and lengths here are all below 128)."""
    return bytes([num << 3 | 2, len(value)]) + value


def openapi_v2_protobuf() -> bytes:
    """The v2 document as kubectl asks for it (gnostic's ``openapi.v2.Document``, in protobuf).

    kubectl reads v2 only when the v3 documents lack a kind (a kind this server does not have, such
    as a CRD's that is not installed). It is sent without paths or definitions: kubectl then has no
    client-side schema for that kind and lets the request go on to the REST mapping, which says
    ``no matches for kind``, as a real cluster without the CRD does. Everything kubectl validates
    against comes from v3.
    """
    info = _pb(1, b"Kubernetes") + _pb(2, b"unversioned")  # Info: 1 title, 2 version
    return _pb(1, b"2.0") + _pb(2, info)  # Document: 1 swagger, 2 info


def _gv_key(r: Resource) -> str:
    return f"apis/{r.group}/{r.version}" if r.group else "api/v1"


@functools.cache
def _v3_docs() -> dict[str, bytes]:
    by_gv: dict[str, list[Resource]] = {}
    for r in RESOURCES:
        by_gv.setdefault(_gv_key(r), []).append(r)
    schemas = _definitions(True)
    docs = {}
    for gv, rs in by_gv.items():
        doc = {
            "openapi": "3.0.0",
            "info": _info(),
            "paths": _paths(rs, "#/components/schemas/", True),
            # every definition, so references between groups (ObjectMeta, PodTemplateSpec) resolve
            "components": {"schemas": schemas},
        }
        docs[gv] = json.dumps(doc, separators=(",", ":")).encode()
    return docs


def openapi_v3_index_bytes() -> bytes:
    paths = {
        gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash={hashlib.sha512(body).hexdigest()[:64].upper()}"}
        for gv, body in sorted(_v3_docs().items())
    }
    return json.dumps({"paths": paths}, separators=(",", ":")).encode()


def openapi_v3_bytes(path: str) -> bytes | None:
    """The document of one group-version (``api/v1``, ``apis/apps/v1``), or None if unknown."""
    return _v3_docs().get(path.strip("/"))
