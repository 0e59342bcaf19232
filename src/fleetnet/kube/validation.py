"""Field checks of a decoded object against its kind's schema, worded as kube-apiserver words them.

Kube decodes a body into Go structs: a value of the wrong JSON type fails the decode
(``json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32``)
whatever ``fieldValidation`` says, while unknown and duplicate fields are only refused under
``Strict``. These functions find both; ``apiserver/bodies.py`` decides what to do with them.
"""

from __future__ import annotations

import json
from typing import Any

from fleetnet.kube import schema
from fleetnet.kube.schema_types import Node


class _Obj(dict[str, Any]):
    """A decoded JSON object that remembers the keys it saw twice."""

    dups: list[str]


def _pairs(pairs: list[tuple[str, Any]]) -> _Obj:
    o = _Obj()
    o.dups = []
    for k, v in pairs:
        if k in o:
            o.dups.append(k)
        o[k] = v
    return o


def decode_json_strict(body: bytes) -> tuple[Any, list[str]]:
    """The document and the dotted paths of its duplicate fields (``metadata.name``)."""
    doc = json.loads(body, object_pairs_hook=_pairs)
    dups: list[str] = []
    return _plain(doc, "", dups), dups


def _plain(v: Any, path: str, dups: list[str]) -> Any:
    if isinstance(v, _Obj):
        dups.extend(_join(path, k) for k in v.dups)
        return {k: _plain(x, _join(path, k), dups) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x, f"{path}[{i}]", dups) for i, x in enumerate(v)]
    return v


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def unknown_fields(api_version: str, kind: str, obj: dict[str, Any]) -> list[str]:
    """The paths of fields the kind does not have: ``spec.template.spec.containers[0].bogus``."""
    node = schema.root(api_version, kind)
    out: list[str] = []
    if node is not None:
        _unknown(obj, node, "", out)
    return out


def _unknown(v: Any, node: Node, path: str, out: list[str]) -> None:
    if node.preserve_unknown or node.type == "any":
        return
    if node.type == "object" and isinstance(v, dict):
        for k, x in v.items():
            child = node.fields.get(k)
            if child is None:
                out.append(_join(path, k))
            else:
                _unknown(x, child, _join(path, k), out)
    elif node.type == "map" and isinstance(v, dict) and node.elem is not None:
        for k, x in v.items():
            _unknown(x, node.elem, _join(path, k), out)
    elif node.type == "list" and isinstance(v, list) and node.elem is not None:
        for i, x in enumerate(v):
            _unknown(x, node.elem, f"{path}[{i}]", out)


def type_errors(api_version: str, kind: str, obj: dict[str, Any]) -> list[str]:
    """Decode errors for values of the wrong JSON type, as Go's encoding/json reports them."""
    node = schema.root(api_version, kind)
    out: list[str] = []
    if node is not None:
        _types(obj, node, "", _go(node), out)
    return out


def _go(node: Node) -> str:
    return (node.ref or "").rsplit(".", 1)[-1] or "Object"


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _go_type(node: Node) -> str:
    if node.type == "integer":
        return node.format or "int32"
    if node.type == "number":
        return "float64"
    if node.type == "boolean":
        return "bool"
    if node.type == "string":
        return "[]uint8" if node.format == "byte" else "string"
    if node.type == "int-or-string":
        return "resource.Quantity" if node.format == "quantity" else "intstr.IntOrString"
    if node.type == "list":
        return "[]" + (_go_type(node.elem) if node.elem is not None else "interface {}")
    if node.type == "map":
        return "map[string]" + (_go_type(node.elem) if node.elem is not None else "interface {}")
    if node.type == "object":
        return f"v1.{_go(node)}"
    return "interface {}"


def _fits(v: Any, node: Node) -> bool:
    t = node.type
    if v is None or t == "any" or node.preserve_unknown:
        return True
    if t == "object" or t == "map":
        return isinstance(v, dict)
    if t == "list":
        return isinstance(v, list)
    if t == "string":
        return isinstance(v, str)
    if t == "boolean":
        return isinstance(v, bool)
    if t == "integer":
        return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())
    if t == "number":
        return isinstance(v, int | float) and not isinstance(v, bool)
    if t == "int-or-string":
        return isinstance(v, str | int | float) and not isinstance(v, bool)
    return True


def _types(v: Any, node: Node, path: str, struct: str, out: list[str]) -> None:
    if not _fits(v, node):
        what = _json_type(v)
        if what == "number":
            what = f"number {v}"
        where = f"Go struct field {struct}.{path}" if path else "Go value"
        out.append(f"json: cannot unmarshal {what} into {where} of type {_go_type(node)}")
        return
    if v is None or node.preserve_unknown:
        return
    if node.type == "object" and isinstance(v, dict):
        inner = _go(node)
        for k, x in v.items():
            child = node.fields.get(k)
            if child is not None:
                _types(x, child, _join(path, k), inner, out)
    elif node.type == "map" and isinstance(v, dict) and node.elem is not None:
        for k, x in v.items():
            _types(x, node.elem, _join(path, k), struct, out)
    elif node.type == "list" and isinstance(v, list) and node.elem is not None:
        for x in v:
            # Go names the path without indexes: spec.containers.ports
            _types(x, node.elem, path, struct, out)
