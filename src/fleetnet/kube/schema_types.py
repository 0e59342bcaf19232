"""The shape of one Kubernetes type, as the merge and validation code walks it.

A ``Node`` is one point of a kind's schema: an object with named fields, a map with one value
type, a list with one item type, or a scalar. Lists carry what both patch flavours need: the
strategic-merge-patch tags (``patchStrategy``, ``patchMergeKey``) that client-side ``kubectl
apply`` relies on, and the server-side-apply tags (``x-kubernetes-list-type`` and
``x-kubernetes-list-map-keys``) that decide which manager owns which item. ``schema.py`` builds the
trees; ``patch.py``, ``fieldmanager.py`` and strict field validation read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

NodeType = Literal["object", "map", "list", "string", "integer", "number", "boolean", "int-or-string", "any"]
ListType = Literal["atomic", "set", "map"]


@dataclass(eq=False, slots=True)
class Node:
    """Mutable only while a schema is being built (trees may be cyclic); treat as frozen after."""

    type: NodeType
    # object: its properties; map and list: empty
    fields: Mapping[str, Node] = field(default_factory=dict)
    # list: the item; map: the value; otherwise None
    elem: Node | None = None
    # lists: server-side apply semantics (None = atomic, the Kubernetes default)
    list_type: ListType | None = None
    map_keys: tuple[str, ...] = ()
    # lists and objects: strategic merge patch semantics
    patch_strategy: str | None = None  # "merge" | "replace" | "retainKeys" | "merge,retainKeys"
    patch_merge_key: str | None = None
    # maps: x-kubernetes-map-type ("atomic" or "granular", default granular)
    map_type: str | None = None
    # object with x-kubernetes-preserve-unknown-fields: any field is accepted below it
    preserve_unknown: bool = False
    required: tuple[str, ...] = ()
    description: str = ""
    format: str | None = None
    # the Go type name in OpenAPI (io.k8s.api.core.v1.PodSpec), for definitions and explain
    ref: str | None = None

    def child(self, name: str) -> Node | None:
        """The node under ``name``: an object's field, or a map's value (any key)."""
        if self.type == "object":
            return self.fields.get(name)
        if self.type == "map":
            return self.elem
        return None
