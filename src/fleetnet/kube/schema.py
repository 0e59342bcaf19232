"""The schema tree of each kind the API server stores, built from ``data/kube-schema.json``.

Built-in kinds are complete (every field kube knows), because kubectl asks for strict field
validation and a missing field would refuse a valid manifest. Cilium's custom resources keep
whatever is under their spec and status, as a CRD with ``x-kubernetes-preserve-unknown-fields``
does; their metadata is still checked.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from fleetnet.kube.schema_types import Node

CILIUM_TOP = {
    "CiliumNetworkPolicy": ("spec", "specs", "status"),
    "CiliumClusterwideNetworkPolicy": ("spec", "specs", "status"),
    "CiliumEndpoint": ("status",),
    "CiliumIdentity": ("security-labels",),
    "CiliumNode": ("spec", "status"),
}


@functools.cache
def document() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(resources.files("fleetnet").joinpath("data/kube-schema.json").read_text())
    return doc


@functools.cache
def _definitions() -> dict[str, Node]:
    """Every definition as a Node, references resolved (the trees share nodes and may be cyclic)."""
    defs = document()["definitions"]
    maps: dict[str, dict[str, Node]] = {name: {} for name in defs}
    nodes = {
        name: Node(
            "object",
            fields=maps[name],
            ref=name,
            required=tuple(d.get("required", ())),
            description=d.get("description", ""),
            patch_strategy=d.get("patchStrategy"),
        )
        for name, d in defs.items()
    }
    # filled in place: copies made by _node share these dicts, so they see every field
    for name, d in defs.items():
        maps[name].update({k: _node(p, nodes) for k, p in d.get("properties", {}).items()})
    return nodes


def _node(p: dict[str, Any], nodes: dict[str, Node]) -> Node:
    if "ref" in p:
        target = nodes[p["ref"]]
        if not any(k in p for k in ("patchStrategy", "listType", "description")):
            return target
        # a field's own tags and description sit on a copy that shares the target's fields
        return Node(
            "object",
            fields=target.fields,
            patch_strategy=p.get("patchStrategy") or target.patch_strategy,
            description=p.get("description", ""),
            ref=target.ref,
            required=target.required,
        )
    t = p.get("type", "any")
    n = Node(t, description=p.get("description", ""), format=p.get("format"))
    if t == "list":
        n.elem = _node(p["items"], nodes)
        lt = p.get("listType")
        n.list_type = lt
        n.map_keys = tuple(p.get("listMapKeys", ()))
        n.patch_strategy = p.get("patchStrategy")
        n.patch_merge_key = p.get("patchMergeKey")
    elif t == "map":
        n.elem = _node(p["additional"], nodes)
    return n


def definitions() -> dict[str, Node]:
    return _definitions()


@functools.cache
def _cilium(kind: str) -> Node:
    defs = _definitions()
    fields: dict[str, Node] = {
        "apiVersion": Node("string", description="APIVersion defines the versioned schema of this object."),
        "kind": Node("string", description="Kind is a string value representing the REST resource."),
        "metadata": defs["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"],
    }
    for f in CILIUM_TOP[kind]:
        fields[f] = Node("any", preserve_unknown=True)
    return Node("object", fields=fields, ref=f"io.cilium.v2.{kind}", description=f"{kind} (cilium.io/v2)")


def root(api_version: str, kind: str) -> Node | None:
    """The schema of ``kind``, or None for a kind this server does not know."""
    if api_version == "cilium.io/v2" and kind in CILIUM_TOP:
        return _cilium(kind)
    name = document()["roots"].get(f"{api_version}/{kind}")
    return None if name is None else _definitions()[name]
