"""Where a manifest document is, and the strict readers of its fields and metadata.

Every reader takes the document (``_Doc``) and the field path, so that the first problem raises
``InvalidInput`` with one sentence naming the document and the field; the kind parsers of
``kube_workloads``, ``kube_services`` and ``kube_parse`` are built from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from fleetnet.errors import InvalidInput
from fleetnet.model.kube_names import _LABEL_RULE, _NAME_RULES, is_dns1123_label, label_key_problem, label_value_problem
from fleetnet.model.kube_types import ObjectMeta

PROTOCOLS = ("TCP", "UDP", "SCTP")

_META_FIELDS = {"name", "namespace", "labels", "annotations"}
# written by the API server; meaningless in a manifest, so a manifest copied from a cluster still applies
_META_IGNORED = {"uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink"}

_TOP = {"apiVersion", "kind", "metadata", "spec"}


class _Doc:
    """Where a document is, so that every error sentence can name it."""

    def __init__(self, source: str, index: int, item: int | None = None) -> None:
        self.source = source
        self.index = index
        self.item = item
        self.kind: str | None = None
        self.name: str | None = None
        self.namespace: str | None = None

    def where(self) -> str:
        out = f"{self.source}, document {self.index}"
        if self.item is not None:
            out += f" item {self.item}"
        if self.kind:
            what = self.kind
            if self.name:
                what += f" {self.namespace}/{self.name}" if self.namespace else f" {self.name}"
            out += f" ({what})"
        return out

    def fail(self, path: str, message: str) -> NoReturn:
        subject = f"{path} " if path else ""
        raise InvalidInput(f"{self.where()}: {subject}{message}.")


def _join(path: str, name: str | int) -> str:
    if isinstance(name, int):
        return f"{path}[{name}]"
    return f"{path}.{name}" if path else name


def _describe(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "a mapping"
    return type(v).__name__


def _mapping(
    d: _Doc, v: Any, path: str, allowed: set[str], ignored: set[str] | frozenset[str] = frozenset()
) -> dict[str, Any]:
    if not isinstance(v, dict):
        d.fail(path, f"must be a mapping, not {_describe(v)}")
    for k in v:
        if not isinstance(k, str):
            d.fail(path, f"has a key {k!r} that is not a string")
        if k not in allowed and k not in ignored:
            supported = ", ".join(sorted(allowed))
            d.fail(_join(path, k), f"is not a supported field (supported here: {supported})")
    return {k: v[k] for k in v if k in allowed}


def _str(d: _Doc, v: Any, path: str) -> str:
    if not isinstance(v, str):
        hint = " (quote it)" if isinstance(v, bool | int | float) else ""
        d.fail(path, f"must be a string, not {_describe(v)}{hint}")
    return v


def _int(d: _Doc, v: Any, path: str, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        d.fail(path, f"must be an integer, not {_describe(v)}")
    if not lo <= v <= hi:
        d.fail(path, f"must be an integer from {lo} to {hi}, got {v}")
    return v


def _bool(d: _Doc, v: Any, path: str) -> bool:
    if not isinstance(v, bool):
        d.fail(path, f"must be true or false, not {_describe(v)}")
    return v


def _list(d: _Doc, v: Any, path: str) -> list[Any]:
    if v is None:
        return []
    if not isinstance(v, list):
        d.fail(path, f"must be a list, not {_describe(v)}")
    return v


def _labels(d: _Doc, v: Any, path: str, *, values_are_labels: bool = True) -> dict[str, str]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        d.fail(path, f"must be a mapping of strings, not {_describe(v)}")
    out: dict[str, str] = {}
    for k, val in v.items():
        key = _str(d, k, path + " key")
        problem = label_key_problem(key)
        if problem:
            d.fail(f"{path} key {key!r}", problem)
        value = _str(d, val, _join(path, key))
        if values_are_labels:
            problem = label_value_problem(value)
            if problem:
                d.fail(_join(path, key), f"value {value!r} {problem}")
        out[key] = value
    return out


def _protocol(d: _Doc, v: Any, path: str) -> str:
    if v is None:
        return "TCP"
    p = _str(d, v, path)
    if p not in PROTOCOLS:
        d.fail(path, f"must be one of {', '.join(PROTOCOLS)}, got {p!r}")
    return p


def _fixed(d: _Doc, obj: Mapping[str, Any], path: str, name: str, accepted: tuple[Any, ...]) -> None:
    """A field accepted only at its default value: fleetnet emulates that value and no other."""
    if name in obj and obj[name] not in accepted:
        shown = " or ".join(repr(a) for a in accepted)
        d.fail(_join(path, name), f"is {obj[name]!r}, but fleetnet supports only {shown}")


def _metadata(d: _Doc, v: Any, *, namespaced: bool, name_rule: str, default_namespace: str | None) -> ObjectMeta:
    if v is None:
        d.fail("metadata.name", "is required")
    m = _mapping(d, v, "metadata", _META_FIELDS, _META_IGNORED)
    if m.get("name") in (None, ""):
        d.fail("metadata.name", "is required")
    name = _str(d, m["name"], "metadata.name")
    check, rule_text = _NAME_RULES[name_rule]
    if not check(name):
        d.fail("metadata.name", f"{name!r} is not a valid name: {rule_text}")
    d.name = name
    namespace: str | None = None
    if namespaced:
        if m.get("namespace") not in (None, ""):
            namespace = _str(d, m["namespace"], "metadata.namespace")
            if not is_dns1123_label(namespace):
                d.fail("metadata.namespace", f"{namespace!r} is not a valid namespace name: {_LABEL_RULE}")
            if default_namespace is not None and namespace != default_namespace:
                d.fail(
                    "metadata.namespace",
                    f"is {namespace!r}, which does not match the namespace {default_namespace!r} "
                    f"given for this apply; remove one of them",
                )
        else:
            namespace = default_namespace or "default"
        d.namespace = namespace
    elif m.get("namespace") not in (None, ""):
        d.fail("metadata.namespace", f"must not be set: {d.kind} is not namespaced")
    labels = _labels(d, m.get("labels"), "metadata.labels")
    annotations = _labels(d, m.get("annotations"), "metadata.annotations", values_are_labels=False)
    return ObjectMeta(name=name, namespace=namespace, labels=labels, annotations=annotations)
