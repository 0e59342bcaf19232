"""Label and field selectors as the API server reads them from ``labelSelector`` and ``fieldSelector``.

Label selectors (k8s.io/apimachinery/pkg/labels): ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``,
``a notin (x,y)``, ``a`` (exists), ``!a`` (does not exist), joined by commas (all must hold).
``!=`` and ``notin`` also match objects without the key, as in Kubernetes. Field selectors
(k8s.io/apimachinery/pkg/fields) are ``=``, ``==`` and ``!=`` on the fields each resource allows.
Pure; errors are ``ApiError`` 400s with kube's wording.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fleetnet.kube.status import bad_request

_TOKEN = re.compile(r"\s*(!=|==|=|\(|\)|,|!|[^\s!=(),]+)")


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        if self.op in ("=", "in"):
            return has and labels[self.key] in self.values
        # != and notin: true also when the key is absent
        return not has or labels[self.key] not in self.values


@dataclass(frozen=True, slots=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        lbl = labels or {}
        return all(r.matches(lbl) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


EVERYTHING = LabelSelector()


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise bad_request(f"unable to parse requirement: found '{text[pos]}', expected: identifier")
        out.append(m.group(1))
        pos = m.end()
    return out


def parse_label_selector(text: str | None) -> LabelSelector:
    if not text or not text.strip():
        return EVERYTHING
    toks = _tokens(text)
    reqs: list[Requirement] = []
    i = 0

    def expect_key(j: int) -> str:
        if j >= len(toks) or toks[j] in ("=", "==", "!=", "(", ")", ",", "!"):
            found = toks[j] if j < len(toks) else "EOF"
            raise bad_request(f"unable to parse requirement: found '{found}', expected: identifier")
        return toks[j]

    while i < len(toks):
        if toks[i] == "!":
            key = expect_key(i + 1)
            reqs.append(Requirement(key, "!"))
            i += 2
        else:
            key = expect_key(i)
            i += 1
            if i >= len(toks) or toks[i] == ",":
                reqs.append(Requirement(key, "exists"))
            elif toks[i] in ("=", "==", "!="):
                op = "!=" if toks[i] == "!=" else "="
                value = toks[i + 1] if i + 1 < len(toks) and toks[i + 1] not in (",", "(", ")") else ""
                i += 2 if value else 1
                reqs.append(Requirement(key, op, (value,)))
            elif toks[i] in ("in", "notin"):
                op = toks[i]
                if i + 1 >= len(toks) or toks[i + 1] != "(":
                    found = toks[i + 1] if i + 1 < len(toks) else "EOF"
                    raise bad_request(f"unable to parse requirement: found '{found}', expected: '('")
                j = i + 2
                values: list[str] = []
                while j < len(toks) and toks[j] != ")":
                    if toks[j] != ",":
                        values.append(toks[j])
                    j += 1
                if j >= len(toks):
                    raise bad_request("unable to parse requirement: found 'EOF', expected: ')'")
                reqs.append(Requirement(key, op, tuple(values)))
                i = j + 1
            else:
                raise bad_request(
                    f"unable to parse requirement: found '{toks[i]}', expected: '=', '!=', '==', 'in', notin'"
                )
        _check_key(reqs[-1].key)
        if i < len(toks):
            if toks[i] != ",":
                raise bad_request(f"unable to parse requirement: found '{toks[i]}', expected: ','")
            i += 1
    return LabelSelector(tuple(reqs))


def _check_key(key: str) -> None:
    from fleetnet.model.kube import label_key_problem

    problem = label_key_problem(key)
    if problem is not None:
        raise bad_request(f'unable to parse requirement: invalid label key "{key}": {problem}')


def from_label_selector_object(sel: Mapping[str, Any] | None) -> LabelSelector:
    """A ``metav1.LabelSelector`` (matchLabels + matchExpressions), as Deployments and ReplicaSets carry."""
    if not sel:
        return EVERYTHING
    reqs = [Requirement(k, "=", (str(v),)) for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for e in sel.get("matchExpressions") or []:
        op = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}.get(str(e.get("operator")))
        if op is None:
            continue
        reqs.append(Requirement(str(e.get("key")), op, tuple(str(v) for v in e.get("values") or ())))
    return LabelSelector(tuple(reqs))


def format_label_selector(sel: Mapping[str, Any] | None) -> str:
    """The string form kube writes (``kubectl get -o wide`` SELECTOR, Scale.status.selector)."""
    if not sel:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for e in sel.get("matchExpressions") or []:
        op = str(e.get("operator"))
        vals = ",".join(sorted(str(v) for v in e.get("values") or ()))
        if op == "Exists":
            parts.append(str(e.get("key")))
        elif op == "DoesNotExist":
            parts.append(f"!{e.get('key')}")
        else:
            parts.append(f"{e.get('key')} {op.lower()} ({vals})")
    return ",".join(parts)


# --- field selectors ---------------------------------------------------------------------------

FieldGetter = Callable[[Mapping[str, Any]], str]


def _path(*keys: str) -> FieldGetter:
    def get(obj: Mapping[str, Any]) -> str:
        cur: Any = obj
        for k in keys:
            if not isinstance(cur, Mapping):
                return ""
            cur = cur.get(k)
        if cur is None:
            return ""
        if isinstance(cur, bool):
            return "true" if cur else "false"
        return str(cur)

    return get


_COMMON: dict[str, FieldGetter] = {
    "metadata.name": _path("metadata", "name"),
    "metadata.namespace": _path("metadata", "namespace"),
}
# what each resource adds (kube's per-registry GetAttrs / field label conversion funcs)
FIELDS: dict[str, dict[str, FieldGetter]] = {
    "pods": {
        "spec.nodeName": _path("spec", "nodeName"),
        "spec.restartPolicy": _path("spec", "restartPolicy"),
        "spec.schedulerName": _path("spec", "schedulerName"),
        "spec.serviceAccountName": _path("spec", "serviceAccountName"),
        "spec.hostNetwork": _path("spec", "hostNetwork"),
        "status.phase": _path("status", "phase"),
        "status.podIP": _path("status", "podIP"),
        "status.nominatedNodeName": _path("status", "nominatedNodeName"),
    },
    "events": {
        "involvedObject.kind": _path("involvedObject", "kind"),
        "involvedObject.namespace": _path("involvedObject", "namespace"),
        "involvedObject.name": _path("involvedObject", "name"),
        "involvedObject.uid": _path("involvedObject", "uid"),
        "involvedObject.apiVersion": _path("involvedObject", "apiVersion"),
        "involvedObject.resourceVersion": _path("involvedObject", "resourceVersion"),
        "involvedObject.fieldPath": _path("involvedObject", "fieldPath"),
        "reason": _path("reason"),
        "reportingComponent": _path("reportingComponent"),
        "source": _path("source", "component"),
        "type": _path("type"),
    },
    "namespaces": {"status.phase": _path("status", "phase")},
    "secrets": {"type": _path("type")},
    "nodes": {"spec.unschedulable": _path("spec", "unschedulable")},
    "replicasets": {"status.replicas": _path("status", "replicas")},
}


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    field: str
    equal: bool
    value: str
    get: FieldGetter

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return (self.get(obj) == self.value) == self.equal


@dataclass(frozen=True, slots=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all(r.matches(obj) for r in self.requirements)

    def exact_name(self) -> str | None:
        for r in self.requirements:
            if r.field == "metadata.name" and r.equal:
                return r.value
        return None


NO_FIELDS = FieldSelector()


def parse_field_selector(text: str | None, plural: str) -> FieldSelector:
    if not text or not text.strip():
        return NO_FIELDS
    allowed = {**_COMMON, **FIELDS.get(plural, {})}
    reqs: list[FieldRequirement] = []
    for part in _split_unescaped(text):
        part = part.strip()
        if not part:
            continue
        for op in ("!=", "==", "="):
            if op in part:
                field, value = part.split(op, 1)
                break
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        field = field.strip()
        get = allowed.get(field)
        if get is None:
            raise bad_request(f"field label not supported: {field}")
        reqs.append(FieldRequirement(field, op != "!=", _unescape(value.strip()), get))
    return FieldSelector(tuple(reqs))


def _split_unescaped(text: str) -> list[str]:
    out, cur, esc = [], "", False
    for ch in text:
        if esc:
            cur += "\\" + ch
            esc = False
        elif ch == "\\":
            esc = True
        elif ch == ",":
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)
