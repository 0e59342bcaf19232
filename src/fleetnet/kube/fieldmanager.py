"""Field ownership: ``metadata.managedFields`` and server-side apply, as kube-apiserver keeps them.

A field set is a set of paths; a path is a tuple of FieldsV1 elements: ``f:name`` (a field or map
key), ``k:{"name":"c"}`` (the item of a keyed list), ``v:80`` (the item of a set). An Update
manager owns what it changed; an Apply manager owns exactly what its last applied configuration
named, so fields it stops naming are removed unless someone else also owns them. Applying a value
another manager owns and set differently is a conflict unless forced.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from fleetnet.kube.schema_types import Node

Path = tuple[str, ...]
FieldSet = set[Path]

# metadata the server sets; nobody owns it
_SERVER_META = {
    "managedFields",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
}
# what identifies the object is not a field anyone owns
_IDENTITY = {("f:apiVersion",), ("f:kind",), ("f:metadata", "f:name"), ("f:metadata", "f:namespace")}


def default_manager(user_agent: str) -> str:
    """kube's default: the user agent up to its first "/" (``kubectl``), else "unknown"."""
    head = (user_agent or "").split("/", 1)[0].strip()
    return head or "unknown"


@dataclass(frozen=True, slots=True)
class Conflict:
    manager: str
    field: str
    # empty for an Apply manager: kube names the version only of Update managers
    api_version: str
    subresource: str | None = None

    def who(self) -> str:
        """kube's printManager: ``"m"``, ``"m" with subresource "status"``, `` using apps/v1``."""
        out = json.dumps(self.manager)
        if self.subresource:
            out += f" with subresource {json.dumps(self.subresource)}"
        return out + (f" using {self.api_version}" if self.api_version else "")


class ConflictError(Exception):
    def __init__(self, conflicts: list[Conflict]) -> None:
        self.conflicts = conflicts
        super().__init__(conflict_message(conflicts))


def conflict_message(conflicts: list[Conflict]) -> str:
    """The text of kube's getConflictMessage (managedfields/internal/conflict.go)."""
    if len(conflicts) == 1:
        c = conflicts[0]
        return f"Apply failed with 1 conflict: conflict with {c.who()}: {c.field}"
    by: dict[str, list[str]] = {}
    for c in sorted(conflicts, key=lambda c: (c.manager, c.who())):
        by.setdefault(c.who(), []).append(c.field)
    lines = []
    for who, fields in by.items():
        lines.append(f"conflicts with {who}:")
        lines += [f"- {f}" for f in fields]
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


# ------------------------------------------------------------------ paths of an object


def _key(item: dict[str, Any], keys: tuple[str, ...]) -> str:
    return "k:" + json.dumps({k: item[k] for k in sorted(keys) if k in item}, separators=(",", ":"), sort_keys=True)


def _value(v: Any) -> str:
    return "v:" + json.dumps(v, separators=(",", ":"), sort_keys=True)


def fields_of(obj: dict[str, Any], schema: Node | None, own_maps: bool = False) -> FieldSet:
    """Every path the object sets (the field set an applier of it would own).

    ``own_maps`` also counts each granular map itself, as an update that creates one owns it
    (``f:labels: {".": {}, ...}``); an applier owns only the map's entries, as in structured-merge-diff.
    """
    out: FieldSet = set()
    _walk_struct(obj, schema, (), out, own_maps)
    meta = ("f:metadata",)
    out = {p for p in out if not (p[:1] == meta and len(p) > 1 and p[1][2:] in _SERVER_META)}
    return {p for p in out if p not in _IDENTITY and p != meta}


def _walk_struct(obj: dict[str, Any], node: Node | None, prefix: Path, out: FieldSet, own_maps: bool) -> None:
    for k, v in obj.items():
        child = node.child(k) if node is not None else None
        _walk(v, child, (*prefix, f"f:{k}"), out, own_maps)


def _granular(node: Node | None) -> bool:
    """Whether an object value under ``node`` is owned field by field (else as one leaf)."""
    if node is None or node.type == "any":
        return True  # no schema: JSON semantics, objects merge key by key
    if node.map_type == "atomic":
        return False
    return node.type in ("object", "map")


def _walk(v: Any, node: Node | None, p: Path, out: FieldSet, own_maps: bool) -> None:
    if v is None:
        out.add(p)
        return
    t = node.type if node is not None else None
    if isinstance(v, dict) and _granular(node):
        if not v or (t == "map" and own_maps):
            out.add(p)
        if t == "map" and node is not None:
            for k, x in v.items():
                out.add((*p, f"f:{k}"))  # a map's entry is owned itself, whatever it holds
                _walk(x, node.elem, (*p, f"f:{k}"), out, own_maps)
        else:
            _walk_struct(v, node, p, out, own_maps)
        return
    if isinstance(v, list) and node is not None and node.type == "list" and node.list_type in ("map", "set"):
        out.add(p)
        for item in v:
            if node.list_type == "map" and isinstance(item, dict):
                ip = (*p, _key(item, node.map_keys))
                out.add(ip)
                _walk_struct(item, node.elem, ip, out, own_maps)
            else:
                out.add((*p, _value(item)))
        return
    out.add(p)


def _children(s: FieldSet) -> set[Path]:
    return {p[:i] for p in s for i in range(1, len(p))}


def _at(obj: Any, p: Path) -> tuple[bool, Any]:
    cur = obj
    for el in p:
        kind, rest = el[:2], el[2:]
        if kind == "f:" and isinstance(cur, dict) and rest in cur:
            cur = cur[rest]
        elif kind == "k:" and isinstance(cur, list):
            want = json.loads(rest)
            cur = next(
                (x for x in cur if isinstance(x, dict) and all(x.get(k) == v for k, v in want.items())), _MISSING
            )
            if cur is _MISSING:
                return False, None
        elif kind == "v:" and isinstance(cur, list):
            v = json.loads(rest)
            if v not in cur:
                return False, None
            cur = v
        else:
            return False, None
    return True, cur


_MISSING = object()


# ------------------------------------------------------------------ FieldsV1


def encode(s: FieldSet) -> dict[str, Any]:
    root: dict[str, Any] = {}
    parents = _children(s)
    for p in sorted(s):
        cur = root
        for el in p:
            cur = cur.setdefault(el, {})
        if p in parents:
            cur["."] = {}
    return root


def decode(d: dict[str, Any], prefix: Path = ()) -> FieldSet:
    out: FieldSet = set()
    for k, v in d.items():
        if k == ".":
            out.add(prefix)
            continue
        p = (*prefix, k)
        if isinstance(v, dict) and v:
            out |= decode(v, p)
        else:
            out.add(p)
    return out


def path_string(p: Path) -> str:
    """kube's text for a path in a conflict: ``.spec.containers[name="c"].image``."""
    out = ""
    for el in p:
        kind, rest = el[:2], el[2:]
        if kind == "f:":
            out += "." + rest
        elif kind == "k:":
            keys = json.loads(rest)
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in keys.items()) + "]"
        else:
            out += f"[={rest}]"
    return out


# ------------------------------------------------------------------ managedFields entries


@dataclass
class Entry:
    manager: str
    operation: str
    api_version: str
    time: str
    subresource: str | None
    fields: FieldSet

    def same(self, manager: str, operation: str, subresource: str | None) -> bool:
        return (self.manager, self.operation, self.subresource or None) == (manager, operation, subresource or None)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": encode(self.fields),
        }
        if self.subresource:
            d["subresource"] = self.subresource
        return d


def entries(obj: dict[str, Any] | None) -> list[Entry]:
    out = []
    for e in ((obj or {}).get("metadata") or {}).get("managedFields") or []:
        if not isinstance(e, dict):
            continue
        out.append(
            Entry(
                str(e.get("manager", "")),
                str(e.get("operation", "Update")),
                str(e.get("apiVersion", "")),
                str(e.get("time", "")),
                e.get("subresource") or None,
                decode(e.get("fieldsV1") or {}),
            )
        )
    return out


def _store(obj: dict[str, Any], es: list[Entry]) -> None:
    md = obj.setdefault("metadata", {})
    kept = [e.to_dict() for e in es if e.fields]
    if kept:
        md["managedFields"] = kept
    else:
        md.pop("managedFields", None)


def _changed(old: dict[str, Any] | None, new: dict[str, Any], schema: Node | None) -> tuple[FieldSet, FieldSet]:
    """The paths an update set or changed, and the paths it removed."""
    new_set = fields_of(new, schema, own_maps=True)
    if old is None:
        return new_set, set()
    old_set = fields_of(old, schema, own_maps=True)
    parents = _children(new_set)
    changed = set()
    for p in new_set:
        if p not in old_set or (p not in parents and _at(old, p) != _at(new, p)):
            changed.add(p)
    return changed, old_set - new_set


def update_managed_fields(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    operation: str,
    subresource: str | None,
    schema: Node | None,
    now: str,
) -> None:
    """Record in ``new`` that ``manager`` owns what this write changed (kube's Update operation)."""
    es = _base_entries(old, new)
    changed, removed = _changed(old, new, schema)
    if not changed and not removed:
        _store(new, es)
        return
    for e in es:
        e.fields -= changed | removed
    mine = next((e for e in es if e.same(manager, operation, subresource)), None)
    if mine is None:
        mine = Entry(manager, operation, str(new.get("apiVersion", "")), now, subresource or None, set())
        es.append(mine)
    mine.fields |= changed
    mine.time = now
    mine.api_version = str(new.get("apiVersion", mine.api_version))
    _store(new, es)


def _base_entries(old: dict[str, Any] | None, new: dict[str, Any]) -> list[Entry]:
    """The ownership this write starts from, as kube's decodeLiveOrNew picks it: what the writer
    sent, unless it sent none or an empty list (clients that drop the field must not wipe it);
    ``[{}]`` resets ownership, so this write alone is recorded."""
    given = (new.get("metadata") or {}).get("managedFields")
    if not given:
        return entries(old)
    if given == [{}]:
        return []
    es = entries(new)
    return es if any(e.fields for e in es) else entries(old)


# ------------------------------------------------------------------ server-side apply


def apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    manager: str,
    force: bool,
    schema: Node | None,
    now: str,
) -> dict[str, Any]:
    """The object after ``manager`` applies ``applied`` to ``live`` (None: it is created)."""
    applied = copy.deepcopy(applied)
    applied.get("metadata", {}).pop("managedFields", None)
    mine = fields_of(applied, schema)
    es = entries(live)
    previous = next((e for e in es if e.same(manager, "Apply", None)), None)
    parents = _children(mine)
    conflicts: list[tuple[Entry, Path]] = []
    if live is not None:
        for e in es:
            if e is previous:
                continue  # as in structured-merge-diff, only this manager's Apply entry is itself
            for p in sorted(e.fields & mine):
                if p not in parents and _at(live, p) != _at(applied, p):
                    conflicts.append((e, p))
    if conflicts and not force and not _migrating_from_client_side(live, manager, conflicts, schema):
        raise ConflictError([_conflict(e, p) for e, p in conflicts])
    out = copy.deepcopy(live) if live is not None else {}
    # what this manager applied before and no longer names goes, unless someone else owns it too
    if previous is not None:
        others: FieldSet = set().union(*(e.fields for e in es if e is not previous))
        for p in sorted(previous.fields - mine, key=len, reverse=True):
            if p not in others and p not in _children(others) and not _item_key(p, out):
                _remove(out, p)
    _merge(out, applied, schema)
    for e, p in conflicts:
        e.fields.discard(p)
    if previous is None:
        previous = Entry(manager, "Apply", str(applied.get("apiVersion", "")), now, None, set())
        es.append(previous)
    previous.fields = mine
    previous.time = now
    previous.api_version = str(applied.get("apiVersion", previous.api_version))
    _store(out, es)
    _update_last_applied(out, applied, manager)
    return out


def _conflict(e: Entry, p: Path) -> Conflict:
    return Conflict(e.manager, path_string(p), "" if e.operation == "Apply" else e.api_version, e.subresource)


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _last_applied(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    text = (((obj or {}).get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    try:
        doc = json.loads(text) if text else None
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _migrating_from_client_side(
    live: dict[str, Any] | None, manager: str, conflicts: list[tuple[Entry, Path]], schema: Node | None
) -> bool:
    """kube's path from client-side to server-side apply: ``kubectl apply --server-side`` may take
    the fields its own earlier client-side applies set (those in the last-applied annotation)."""
    if manager != "kubectl":
        return False
    last = _last_applied(live)
    if last is None:
        return False
    allowed = fields_of(last, schema)
    return all(p in allowed for _, p in conflicts)


def _update_last_applied(out: dict[str, Any], applied: dict[str, Any], manager: str) -> None:
    """A server-side apply by kubectl keeps the client-side annotation in step, so a later
    client-side apply computes its patch from what was really applied last."""
    if manager != "kubectl" or _last_applied(out) is None:
        return
    doc = copy.deepcopy(applied)
    ann = (doc.get("metadata") or {}).get("annotations") or {}
    ann.pop(LAST_APPLIED, None)
    out["metadata"]["annotations"][LAST_APPLIED] = json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n"


def _item_key(p: Path, obj: dict[str, Any]) -> bool:
    """Whether ``p`` is a key field of a keyed-list item that stays (someone else still owns part of
    it): removing it would leave an item without its key."""
    if len(p) < 2 or not p[-2].startswith("k:") or not p[-1].startswith("f:"):
        return False
    return p[-1][2:] in json.loads(p[-2][2:]) and _at(obj, p[:-1])[0]


def _remove(obj: Any, p: Path) -> None:
    found, parent = _at(obj, p[:-1])
    if not found:
        return
    kind, rest = p[-1][:2], p[-1][2:]
    if kind == "f:" and isinstance(parent, dict):
        parent.pop(rest, None)
    elif kind == "k:" and isinstance(parent, list):
        want = json.loads(rest)
        parent[:] = [x for x in parent if not (isinstance(x, dict) and all(x.get(k) == v for k, v in want.items()))]
    elif kind == "v:" and isinstance(parent, list):
        v = json.loads(rest)
        parent[:] = [x for x in parent if x != v]


def _merge(live: dict[str, Any], applied: dict[str, Any], node: Node | None) -> None:
    for k, v in applied.items():
        child = node.child(k) if node is not None else None
        cur = live.get(k)
        if isinstance(v, dict) and isinstance(cur, dict) and _granular(child):
            _merge(cur, v, child)
        elif isinstance(v, list) and isinstance(cur, list) and child is not None and child.type == "list":
            live[k] = _merge_list(cur, v, child)
        else:
            live[k] = copy.deepcopy(v)


def _merge_list(cur: list[Any], applied: list[Any], node: Node) -> list[Any]:
    if node.list_type == "set":
        return cur + [x for x in applied if x not in cur]
    if node.list_type != "map":
        return copy.deepcopy(applied)
    out = list(cur)
    for item in applied:
        if not isinstance(item, dict):
            out.append(item)
            continue
        key = {k: item.get(k) for k in node.map_keys if k in item}
        at = next(
            (i for i, x in enumerate(out) if isinstance(x, dict) and all(x.get(k) == v for k, v in key.items())), None
        )
        if at is None:
            out.append(copy.deepcopy(item))
        else:
            _merge(out[at], item, node.elem)
    return out
