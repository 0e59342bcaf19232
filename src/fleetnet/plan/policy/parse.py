"""Parse and validate CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy documents (loaded YAML).

fleetnet enforces a subset of Cilium's policy language (``docs/policy-subset.md``). Anything outside
it is refused here, with a sentence naming the document and the exact field path, rather than
silently ignored: a policy that is half understood would enforce something the user did not write.
Selectors come out already narrowed to the namespace a CNP implies (see ``selector``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

from fleetnet.errors import InvalidInput
from fleetnet.plan.labels import LABEL_NAMESPACE, SOURCE_ANY, SOURCE_K8S, SOURCE_RESERVED
from fleetnet.plan.policy.model import (
    KIND_CCNP,
    KIND_CNP,
    PROTOCOL_NUMBERS,
    Entity,
    PeerRule,
    Policy,
    PolicyRef,
    PortProtocol,
    Requirement,
    Rule,
    RuleRef,
    Section,
    Selector,
    SelectorKey,
)
from fleetnet.plan.policy.selector import peer_in_namespace, selects_init, subject_in_namespace

API_VERSION = "cilium.io/v2"

_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")

_TOP_FIELDS = {"apiVersion", "kind", "metadata", "spec", "specs", "status"}
_META_FIELDS = {
    "name",
    "namespace",
    "labels",
    "annotations",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "finalizers",
    "ownerReferences",
}
_RULE_FIELDS = {"endpointSelector", "ingress", "ingressDeny", "egress", "egressDeny", "description"}
_PEER_FIELDS = {"ingress": ("fromEndpoints", "fromEntities"), "egress": ("toEndpoints", "toEntities")}
_SELECTOR_FIELDS = {"matchLabels", "matchExpressions"}
_EXPRESSION_FIELDS = {"key", "operator", "values"}
_PORT_RULE_FIELDS = {"ports"}
_PORT_FIELDS = {"port", "protocol"}
_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
_SECTIONS: tuple[Section, ...] = ("ingress", "ingressDeny", "egress", "egressDeny")

# Fields of Cilium's API that fleetnet knows but does not enforce: refused with a pointer to the doc.
_CILIUM_ONLY = {
    "nodeSelector",
    "labels",
    "enableDefaultDeny",
    "log",
    "fromCIDR",
    "fromCIDRSet",
    "fromRequires",
    "fromGroups",
    "fromNodes",
    "toCIDR",
    "toCIDRSet",
    "toRequires",
    "toServices",
    "toFQDNs",
    "toGroups",
    "toNodes",
    "icmps",
    "authentication",
    "rules",
    "serverNames",
    "listener",
    "originatingTLS",
    "terminatingTLS",
    "endPort",
}
_CILIUM_ONLY_ENTITIES = {"world-ipv4", "world-ipv6"}


class _Doc:
    """The document being parsed, so every error names it."""

    def __init__(self, label: str) -> None:
        self.label = label

    def fail(self, path: str, problem: str) -> NoReturn:
        raise InvalidInput(f"{self.label}: {path} {problem}.")

    def mapping(self, path: str, value: Any, allowed: Iterable[str]) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(path, f"must be a mapping, not {_kind_of(value)}")
        allowed = set(allowed)
        for field in value:
            if field in allowed:
                continue
            where = f"{path}.{field}" if path else str(field)
            if field in _CILIUM_ONLY:
                self.fail(where, "is a Cilium field that fleetnet does not enforce; see docs/policy-subset.md")
            hint = _misplaced_hint(str(field), allowed)
            self.fail(where, f"is not a known field{hint}; fields here: {', '.join(sorted(allowed))}")
        return value

    def sequence(self, path: str, value: Any) -> list[Any] | None:
        if value is None:
            return None
        if not isinstance(value, list):
            self.fail(path, f"must be a list, not {_kind_of(value)}")
        return value

    def string(self, path: str, value: Any) -> str:
        if not isinstance(value, str):
            self.fail(path, f"is {value!r}, {_kind_of(value)}, where a string is expected; quote it")
        return value


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    if value is None:
        return "empty"
    return type(value).__name__


def _misplaced_hint(field: str, allowed: set[str]) -> str:
    swaps = {"from": "to", "to": "from"}
    for prefix, other in swaps.items():
        if field.startswith(prefix) and other + field[len(prefix) :] in allowed:
            direction = "ingress" if prefix == "from" else "egress"
            return f" here ({field} belongs in {direction} rules)"
    return ""


def _check_label_key(doc: _Doc, path: str, key: str) -> None:
    prefix, slash, name = key.rpartition("/")
    ok = len(name) <= 63 and _NAME.fullmatch(name) is not None
    if slash:
        ok = ok and len(prefix) <= 253 and _DNS_SUBDOMAIN.fullmatch(prefix) is not None
    if not ok:
        doc.fail(path, f"has the label key {key!r}, which is not a valid Kubernetes label key")


def _check_label_value(doc: _Doc, path: str, value: str) -> None:
    if value and (len(value) > 63 or _NAME.fullmatch(value) is None):
        doc.fail(path, f"is {value!r}, which is not a valid Kubernetes label value")


def _selector_key(doc: _Doc, path: str, text: str) -> SelectorKey:
    if text.startswith("$"):
        source, key = SOURCE_RESERVED, text[1:]
    elif ":" in text:
        source, _, key = text.partition(":")
        if source not in (SOURCE_K8S, SOURCE_ANY, SOURCE_RESERVED):
            doc.fail(path, f"uses the label source {source!r}; write the key bare or with k8s:, any: or reserved:")
    else:
        source, key = SOURCE_ANY, text
    _check_label_key(doc, path, key)
    return SelectorKey(source, key)


def _selector(doc: _Doc, path: str, value: Any) -> tuple[Selector, Mapping[str, Any]]:
    if value is None:
        doc.fail(path, "is empty; write {} to select everything")
    raw = doc.mapping(path, value, _SELECTOR_FIELDS)
    reqs: list[Requirement] = []
    labels = raw.get("matchLabels") or {}
    if not isinstance(labels, Mapping):
        doc.fail(f"{path}.matchLabels", f"must be a mapping, not {_kind_of(labels)}")
    for k, v in labels.items():
        where = f"{path}.matchLabels.{k}"
        key = _selector_key(doc, where, doc.string(f"{where} (the key)", k))
        _check_label_value(doc, where, doc.string(where, v))
        reqs.append(Requirement(key, "In", (v,)))
    for i, item in enumerate(doc.sequence(f"{path}.matchExpressions", raw.get("matchExpressions")) or []):
        where = f"{path}.matchExpressions[{i}]"
        expr = doc.mapping(where, item, _EXPRESSION_FIELDS)
        if "key" not in expr:
            doc.fail(where, "has no key")
        key = _selector_key(doc, f"{where}.key", doc.string(f"{where}.key", expr["key"]))
        op = expr.get("operator")
        if op not in _OPERATORS:
            doc.fail(f"{where}.operator", f"is {op!r}; use In, NotIn, Exists or DoesNotExist")
        values = doc.sequence(f"{where}.values", expr.get("values")) or []
        for j, v in enumerate(values):
            _check_label_value(doc, f"{where}.values[{j}]", doc.string(f"{where}.values[{j}]", v))
        if op in ("In", "NotIn") and not values:
            doc.fail(f"{where}.values", f"must list at least one value for operator {op}")
        if op in ("Exists", "DoesNotExist") and values:
            doc.fail(f"{where}.values", f"must be empty for operator {op}")
        reqs.append(Requirement(key, op, tuple(sorted(set(values)))))
    return Selector(tuple(reqs)), labels


def _entities(doc: _Doc, path: str, value: Any) -> tuple[Entity, ...] | None:
    items = doc.sequence(path, value)
    if items is None:
        return None
    known = {e.value: e for e in Entity}
    out = []
    for i, item in enumerate(items):
        name = doc.string(f"{path}[{i}]", item)
        if name in _CILIUM_ONLY_ENTITIES:
            doc.fail(f"{path}[{i}]", f"is the entity {name!r}, which fleetnet does not support; use world")
        if name not in known:
            doc.fail(f"{path}[{i}]", f"is {name!r}, not an entity; use one of {', '.join(sorted(known))}")
        out.append(known[name])
    return tuple(out)


def _port(doc: _Doc, path: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        doc.fail(path, f"must be a port number, not {_kind_of(value)}")
    text = str(value).strip()
    if not text.isdigit():
        doc.fail(path, f"is {text!r}: named ports are not supported by fleetnet; write the port number (1-65535)")
    port = int(text)
    if not 1 <= port <= 65535:
        doc.fail(path, f"is {port}; a port must be between 1 and 65535 (leave port out to mean every port)")
    return port


def _ports(doc: _Doc, path: str, value: Any) -> tuple[PortProtocol, ...] | None:
    rules = doc.sequence(path, value)
    if not rules:
        return None  # absent or []: no L4 restriction, as in Cilium
    out: list[PortProtocol] = []
    for i, item in enumerate(rules):
        where = f"{path}[{i}]"
        rule = doc.mapping(where, item, _PORT_RULE_FIELDS)
        ports = doc.sequence(f"{where}.ports", rule.get("ports"))
        if not ports:
            doc.fail(f"{where}.ports", "must list at least one port; leave toPorts out to allow every port")
        for j, p in enumerate(ports):
            pwhere = f"{where}.ports[{j}]"
            if p is None:
                doc.fail(pwhere, "is empty; give port and/or protocol")
            port = doc.mapping(pwhere, p, _PORT_FIELDS)
            number = _port(doc, f"{pwhere}.port", port.get("port"))
            proto_name = port.get("protocol", "ANY")
            if proto_name not in PROTOCOL_NUMBERS:
                doc.fail(f"{pwhere}.protocol", f"is {proto_name!r}, which is not supported; use TCP, UDP or ANY")
            out.append(PortProtocol(number, PROTOCOL_NUMBERS[proto_name]))
    return tuple(out)


def _peer_rule(
    doc: _Doc, path: str, value: Any, ref: RuleRef, namespace: str | None, subject_is_init: bool
) -> PeerRule:
    if value is None:
        doc.fail(path, "is empty; write {} for a rule that allows nothing")
    direction = "ingress" if ref.section.startswith("ingress") else "egress"
    endpoints_field, entities_field = _PEER_FIELDS[direction]
    raw = doc.mapping(path, value, (endpoints_field, entities_field, "toPorts"))
    endpoints: tuple[Selector, ...] | None = None
    items = doc.sequence(f"{path}.{endpoints_field}", raw.get(endpoints_field))
    if items is not None:
        endpoints = tuple(
            peer_in_namespace(_selector(doc, f"{path}.{endpoints_field}[{i}]", item)[0], namespace, subject_is_init)
            for i, item in enumerate(items)
        )
    entities = _entities(doc, f"{path}.{entities_field}", raw.get(entities_field))
    ports = _ports(doc, f"{path}.toPorts", raw.get("toPorts"))
    return PeerRule(ref, endpoints, entities, ports)


def _rule(doc: _Doc, path: str, value: Any, policy: PolicyRef, spec_index: int | None) -> Rule:
    raw = doc.mapping(path, value, _RULE_FIELDS)
    if "endpointSelector" not in raw:
        doc.fail(path, "has no endpointSelector; write endpointSelector: {} to select every endpoint")
    subject, match_labels = _selector(doc, f"{path}.endpointSelector", raw["endpointSelector"])
    namespace = policy.namespace
    if namespace is not None:
        for k, v in match_labels.items():
            if _selector_key(doc, path, k).names(LABEL_NAMESPACE) and v != namespace:
                doc.fail(
                    f"{path}.endpointSelector.matchLabels.{k}",
                    f"is {v!r}, but a CiliumNetworkPolicy in namespace {namespace} only selects endpoints "
                    "of its own namespace; use a CiliumClusterwideNetworkPolicy to select others",
                )
    init = selects_init(subject)
    sections: dict[Section, tuple[PeerRule, ...]] = {}
    for section in _SECTIONS:
        items = doc.sequence(f"{path}.{section}", raw.get(section)) or []
        sections[section] = tuple(
            _peer_rule(doc, f"{path}.{section}[{i}]", item, RuleRef(policy, spec_index, section, i), namespace, init)
            for i, item in enumerate(items)
        )
    description = raw.get("description") or ""
    return Rule(
        policy=policy,
        spec_index=spec_index,
        endpoint_selector=subject_in_namespace(subject, namespace),
        ingress=sections["ingress"],
        ingress_deny=sections["ingressDeny"],
        egress=sections["egress"],
        egress_deny=sections["egressDeny"],
        description=doc.string(f"{path}.description", description),
    )


def parse_policy(document: Any, default_namespace: str | None = None) -> Policy:
    """Parse one loaded YAML document; a CNP without ``metadata.namespace`` takes ``default_namespace``."""
    kind = document.get("kind") if isinstance(document, Mapping) else None
    label = kind if kind in (KIND_CNP, KIND_CCNP) else "policy document"
    doc = _Doc(str(label))
    raw = doc.mapping("", document, _TOP_FIELDS)
    if kind not in (KIND_CNP, KIND_CCNP):
        doc.fail("kind", f"is {kind!r}; fleetnet accepts {KIND_CNP} and {KIND_CCNP}")
    if raw.get("apiVersion") != API_VERSION:
        doc.fail("apiVersion", f"is {raw.get('apiVersion')!r}; use {API_VERSION}")
    meta = doc.mapping("metadata", raw.get("metadata"), _META_FIELDS)
    name = meta.get("name")
    if not isinstance(name, str) or len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
        shown = "missing" if name is None else repr(name)
        doc.fail("metadata.name", f"is {shown}; give a lowercase DNS name (a-z, 0-9, '-', '.')")
    namespace = meta.get("namespace")
    if kind == KIND_CNP:
        namespace = namespace or default_namespace
        if not isinstance(namespace, str) or len(namespace) > 63 or not _DNS_LABEL.fullmatch(namespace):
            doc.label = f"{kind} {name}"
            shown = "missing" if namespace is None else f"{namespace!r}, not a namespace name"
            doc.fail("metadata.namespace", f"is {shown}; a {KIND_CNP} needs the namespace it lives in")
    elif namespace:
        doc.label = f"{kind} {name}"
        doc.fail("metadata.namespace", f"is {namespace!r}, but a {KIND_CCNP} is cluster-scoped; remove it")
    else:
        namespace = None
    ref = PolicyRef(kind, namespace, name)
    doc.label = str(ref)
    rules: list[Rule] = []
    if raw.get("spec") is not None:
        rules.append(_rule(doc, "spec", raw["spec"], ref, None))
    for i, spec in enumerate(doc.sequence("specs", raw.get("specs")) or []):
        rules.append(_rule(doc, f"specs[{i}]", spec, ref, i))
    if not rules:
        doc.fail("spec", "is missing; give spec (or specs) with at least one rule")
    return Policy(ref, tuple(rules))


def parse_policies(documents: Iterable[Any], default_namespace: str | None = None) -> list[Policy]:
    """Parse several documents (e.g. ``yaml.safe_load_all``); empty documents are skipped."""
    out: list[Policy] = []
    seen: set[PolicyRef] = set()
    for document in documents:
        if document is None:
            continue
        policy = parse_policy(document, default_namespace)
        if policy.ref in seen:
            raise InvalidInput(f"{policy.ref} appears twice; give each policy a distinct name.")
        seen.add(policy.ref)
        out.append(policy)
    return out
