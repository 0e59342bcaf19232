"""Strict reading of Kubernetes manifests into the value types of ``kube_types``.

``kubectl apply -f`` on a local cluster must refuse what a real cluster would refuse, and refuse
what fleetnet cannot emulate, before anything is applied: so every document is checked field by
field and the first problem raises ``InvalidInput`` with one sentence naming the document and the
field path. Fields that ``kubectl get -o yaml`` adds (uid, resourceVersion, status, defaults) are
accepted and ignored so that a manifest taken from a real cluster applies unchanged.

The field readers live in ``kube_fields``, the naming rules in ``kube_names``, the workload and
service kinds in ``kube_workloads`` and ``kube_services``; this module holds the simple kinds
(Namespace, Cilium policies), the table of kinds and the entry points.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import yaml

from fleetnet.errors import InvalidInput
from fleetnet.model.kube_fields import _TOP, PROTOCOLS, _describe, _Doc, _list, _mapping, _metadata, _str
from fleetnet.model.kube_names import (
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_iana_svc_name,
    label_key_problem,
    label_value_problem,
)
from fleetnet.model.kube_services import _parse_endpointslice, _parse_service
from fleetnet.model.kube_types import CCNP_KIND, CNP_KIND, KubeObject, Namespace, PolicyObject
from fleetnet.model.kube_workloads import _parse_deployment, _parse_pod

__all__ = [
    "PROTOCOLS",
    "is_dns1035_label",
    "is_dns1123_label",
    "is_dns1123_subdomain",
    "is_iana_svc_name",
    "label_key_problem",
    "label_value_problem",
    "object_from_dict",
    "parse_document",
    "parse_manifests",
]


def _parse_namespace(d: _Doc, doc: dict[str, Any], ns: str | None, stored: bool) -> KubeObject:
    meta = _metadata(d, doc.get("metadata"), namespaced=False, name_rule="label", default_namespace=None)
    _mapping(d, doc, "", _TOP, {"status"})
    if doc.get("spec") is not None:
        _mapping(d, doc["spec"], "spec", set(), {"finalizers"})
    return Namespace(meta)


def _parse_policy(d: _Doc, doc: dict[str, Any], ns: str | None, stored: bool) -> KubeObject:
    namespaced = d.kind == CNP_KIND
    meta = _metadata(d, doc.get("metadata"), namespaced=namespaced, name_rule="subdomain", default_namespace=ns)
    _mapping(d, doc, "", _TOP | {"specs"}, {"status"})
    assert d.kind is not None
    # plan/policy validates the rules; here they are carried as they are
    return PolicyObject(kind=d.kind, meta=meta, spec=doc.get("spec"), specs=doc.get("specs"))


_Parser = Callable[[_Doc, dict[str, Any], str | None, bool], KubeObject]
_KINDS: dict[str, tuple[str, _Parser]] = {
    "Namespace": ("v1", _parse_namespace),
    "Pod": ("v1", _parse_pod),
    "Deployment": ("apps/v1", _parse_deployment),
    "Service": ("v1", _parse_service),
    CNP_KIND: ("cilium.io/v2", _parse_policy),
    CCNP_KIND: ("cilium.io/v2", _parse_policy),
}
# kinds that only fleetnet's own controllers write
_STORED_KINDS: dict[str, tuple[str, _Parser]] = {"EndpointSlice": ("discovery.k8s.io/v1", _parse_endpointslice)}


def _supported_kinds() -> str:
    return ", ".join(f"{k} ({v[0]})" for k, v in _KINDS.items())


def parse_document(doc: Any, d: _Doc, *, namespace: str | None = None, stored: bool = False) -> Iterator[KubeObject]:
    """Objects of one document (a ``v1 List`` yields its items)."""
    if not isinstance(doc, dict):
        d.fail("", f"must be a mapping with apiVersion and kind, not {_describe(doc)}")
    kind = doc.get("kind")
    api_version = doc.get("apiVersion")
    if kind in (None, ""):
        d.fail("kind", "is required")
    if api_version in (None, ""):
        d.fail("apiVersion", "is required")
    kind = _str(d, kind, "kind")
    api_version = _str(d, api_version, "apiVersion")
    if kind == "List" and api_version == "v1" and d.item is None:
        _mapping(d, doc, "", {"apiVersion", "kind", "items"}, {"metadata"})
        for i, item in enumerate(_list(d, doc.get("items"), "items")):
            sub = _Doc(d.source, d.index, i)
            yield from parse_document(item, sub, namespace=namespace, stored=stored)
        return
    table = {**_KINDS, **_STORED_KINDS} if stored else _KINDS
    if kind not in table:
        d.fail("", f"kind {kind!r} is not supported; fleetnet accepts {_supported_kinds()}")
    d.kind = kind
    want, parser = table[kind]
    if api_version != want:
        d.fail("apiVersion", f"is {api_version!r}, but {kind} is served as {want}")
    yield parser(d, doc, namespace, stored)


def parse_manifests(text: str, source: str, *, namespace: str | None = None) -> list[KubeObject]:
    """Every object of a multi-document YAML stream, or ``InvalidInput`` at the first problem.

    ``namespace`` is ``kubectl -n``: the namespace for objects that name none, and the only one
    allowed for those that do. Empty documents are skipped, as kubectl does.
    """
    out: list[KubeObject] = []
    index = 0
    try:
        for doc in yaml.load_all(text, Loader=yaml.CSafeLoader):
            index += 1
            if doc is None:
                continue
            out.extend(parse_document(doc, _Doc(source, index), namespace=namespace))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = e.problem or e.context or "cannot be parsed"
        raise InvalidInput(f"{source}: malformed YAML{where}: {problem}.") from e
    except yaml.YAMLError as e:
        raise InvalidInput(f"{source}: malformed YAML: {e}.") from e
    return out


def object_from_dict(data: Mapping[str, Any]) -> KubeObject:
    """One object as the object store keeps it (``to_dict()`` form, with status and EndpointSlices)."""
    objs = list(parse_document(dict(data), _Doc("stored object", 1), stored=True))
    if len(objs) != 1:
        raise InvalidInput("a stored object must be a single object, not a List.")
    return objs[0]
