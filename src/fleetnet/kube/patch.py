"""The three patch documents kube-apiserver applies: JSON patch (RFC 6902), JSON merge patch
(RFC 7386) and Kubernetes' strategic merge patch, which merges lists by a key the schema names
(``containers`` by ``name``) instead of replacing them — what ``kubectl apply`` and ``kubectl patch``
send by default.
"""

from __future__ import annotations

import copy
from typing import Any

from fleetnet.kube.schema_types import Node


class PatchError(Exception):
    pass


# ------------------------------------------------------------------ RFC 6902


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f'invalid JSON pointer "{path}": it must start with /')
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], tok: str, path: str, adding: bool) -> int:
    if tok == "-" and adding:
        return len(container)
    if not tok.isdigit() or (len(tok) > 1 and tok.startswith("0")):
        raise PatchError(f'invalid index "{tok}" in path "{path}"')
    i = int(tok)
    if i > len(container) or (i == len(container) and not adding):
        raise PatchError(f'index out of range in path "{path}"')
    return i


def _parent(doc: Any, toks: list[str], path: str) -> Any:
    cur = doc
    for t in toks[:-1]:
        if isinstance(cur, dict) and t in cur:
            cur = cur[t]
        elif isinstance(cur, list):
            cur = cur[_index(cur, t, path, False)]
        else:
            raise PatchError(f'doc is missing path: "{path}": missing value')
    return cur


def _get(doc: Any, path: str) -> Any:
    toks = _pointer(path)
    if not toks:
        return doc
    parent = _parent(doc, toks, path)
    last = toks[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, path, False)]
    raise PatchError(f'doc is missing path: "{path}": missing value')


def _add(doc: Any, path: str, value: Any) -> Any:
    toks = _pointer(path)
    if not toks:
        return value
    parent = _parent(doc, toks, path)
    if isinstance(parent, dict):
        parent[toks[-1]] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, toks[-1], path, True), value)
    else:
        raise PatchError(f'doc is missing path: "{path}": missing value')
    return doc


def _remove(doc: Any, path: str) -> Any:
    toks = _pointer(path)
    if not toks:
        raise PatchError("unable to remove the whole document")
    parent = _parent(doc, toks, path)
    if isinstance(parent, dict) and toks[-1] in parent:
        del parent[toks[-1]]
    elif isinstance(parent, list):
        del parent[_index(parent, toks[-1], path, False)]
    else:
        raise PatchError(f"unable to remove nonexistent key: {toks[-1]}: missing value")
    return doc


def json_patch(doc: Any, ops: list[Any]) -> Any:
    for op in ops:
        if not isinstance(op, dict) or "op" not in op:
            raise PatchError("json patch operation must be an object with an op")
        kind, path = op["op"], op.get("path")
        if not isinstance(path, str):
            raise PatchError(f"json patch {kind} operation does not have a path")
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"json patch {kind} operation does not have a value")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            doc = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)
            value = copy.deepcopy(op["value"])
            doc = _add(_remove(doc, path), path, value) if _pointer(path) else value
        elif kind in ("move", "copy"):
            src = op.get("from")
            if not isinstance(src, str):
                raise PatchError(f"json patch {kind} operation does not have a from")
            value = copy.deepcopy(_get(doc, src))
            if kind == "move":
                if path.startswith(src + "/"):
                    raise PatchError(f'unable to move "{src}" into its own child "{path}"')
                doc = _remove(doc, src)
            doc = _add(doc, path, value)
        elif kind == "test":
            if not _json_equal(_get(doc, path), op["value"]):
                raise PatchError(f"testing value {path} failed: test operation failed")
        else:
            raise PatchError(f"unexpected kind of operation: {kind}")
    return doc


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: unlike Python's ``==``, true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


# ------------------------------------------------------------------ RFC 7386


def merge_patch(doc: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(doc) if isinstance(doc, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# ------------------------------------------------------------------ strategic merge patch

_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVES = "$deleteFromPrimitiveList/"


def strategic_merge_patch(doc: Any, patch: Any, schema: Node | None) -> Any:
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be an object")
    out = _smp_map(doc if isinstance(doc, dict) else {}, patch, schema)
    # kube answers "$patch: delete" at the top with an empty object, not with nothing
    return {} if out is None else out


def _smp_map(doc: dict[str, Any], patch: dict[str, Any], node: Node | None) -> Any:
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    if directive == "replace":
        return {k: v for k, v in _strip(patch).items()}
    if directive is not None:
        raise PatchError(f"unknown patch type: {directive} in map: {patch}")
    out = _retained(dict(doc), patch.get("$retainKeys"))
    for k, v in patch.items():
        if k.startswith("$"):
            if k.startswith(_DELETE_PRIMITIVES):
                field = k[len(_DELETE_PRIMITIVES) :]
                if isinstance(out.get(field), list):
                    out[field] = [x for x in out[field] if x not in v]
            continue
        child = node.child(k) if node is not None else None
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and (child is None or child.type in ("object", "map", "any")):
            if child is not None and (child.map_type == "atomic" or child.patch_strategy == "replace"):
                out[k] = _strip(v)
            else:
                cur = out.get(k)
                merged = _smp_map(cur if isinstance(cur, dict) else {}, v, child)
                if merged is None:
                    out.pop(k, None)
                else:
                    out[k] = merged
        elif isinstance(v, list) and child is not None and child.type == "list":
            out[k] = _smp_list(out.get(k), v, child, patch.get(_ORDER + k))
        else:
            out[k] = _strip(v)
    for k, order in patch.items():
        # an order for a list the patch leaves alone still reorders it
        if k.startswith(_ORDER) and k[len(_ORDER) :] not in patch:
            field = k[len(_ORDER) :]
            child = node.child(field) if node is not None else None
            if isinstance(out.get(field), list) and child is not None:
                out[field] = _ordered(out[field], order, child)
    return out


def _retained(doc: dict[str, Any], retain: Any) -> dict[str, Any]:
    """``$retainKeys`` drops the original's keys it does not list, before the patch merges in
    (as apimachinery does), so a key the patch itself sets stays."""
    if retain is None:
        return doc
    if not isinstance(retain, list):
        raise PatchError(f"invalid $retainKeys directive: {retain!r}: it must be a list")
    return {k: v for k, v in doc.items() if k in retain}


def _strip(v: Any) -> Any:
    """A patch value with its directives removed, as stored when nothing is merged into it."""
    if isinstance(v, dict):
        return {k: _strip(x) for k, x in v.items() if not k.startswith("$") and x is not None}
    if isinstance(v, list):
        return [_strip(x) for x in v if not (isinstance(x, dict) and x.get("$patch") == "delete")]
    return v


def _merges(node: Node) -> bool:
    return "merge" in (node.patch_strategy or "")


def _smp_list(cur: Any, patch: list[Any], node: Node, order: Any) -> list[Any]:
    items = list(cur) if isinstance(cur, list) else []
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [_strip(x) for x in patch if not (isinstance(x, dict) and "$patch" in x)]
    if not _merges(node):
        return [_strip(x) for x in patch]
    key = node.patch_merge_key
    if key is None:  # a set of scalars
        for x in patch:
            if x not in items:
                items.append(x)
        return _ordered(items, order, node) if isinstance(order, list) else items
    for x in patch:
        if not isinstance(x, dict):
            raise PatchError(f"the list of {key}-keyed items holds a value that is not an object: {x!r}")
        if key not in x:
            raise PatchError(f"map: {x} does not contain declared merge key: {key}")
        if x.get("$patch") == "delete":
            # every item with that key goes, as apimachinery's deleteMatchingEntries does
            items = [y for y in items if not (isinstance(y, dict) and y.get(key) == x[key])]
            continue
        at = next((i for i, y in enumerate(items) if isinstance(y, dict) and y.get(key) == x[key]), None)
        if at is None:
            items.append(_strip(x))
        else:
            items[at] = _smp_map(items[at], x, node.elem)
    return _ordered(items, order, node) if isinstance(order, list) else items


def _ordered(items: list[Any], order: list[Any], node: Node) -> list[Any]:
    key = node.patch_merge_key

    def ident(x: Any) -> Any:
        return x.get(key) if key is not None and isinstance(x, dict) else x

    rank = {repr(o.get(key) if key is not None and isinstance(o, dict) else o): i for i, o in enumerate(order)}
    listed = [x for x in items if repr(ident(x)) in rank]
    rest = [x for x in items if repr(ident(x)) not in rank]
    return sorted(listed, key=lambda x: rank[repr(ident(x))]) + rest
