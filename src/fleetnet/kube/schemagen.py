"""Writes ``data/kube-schema.json``: the schema of every built-in kind the API server stores.

The field tree (names, types, required fields, descriptions) comes from the official Python client's
models, which are generated from kube's OpenAPI document, so it stays complete without a copy of
that document here. What the models leave out is added from ``TAGS``: the strategic-merge-patch
and server-side-apply list tags of kube's Go types, and the Go integer widths that kube's decode
errors name. Run ``python -m fleetnet.kube.schemagen`` after bumping the ``kubernetes`` client;
``tests/kube/test_schema.py`` fails while the file is stale.
"""

from __future__ import annotations

import datetime
import json
import types
import typing
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "data" / "kube-schema.json"

# the kinds served, by apiVersion/kind -> the client model class
ROOTS = {
    "v1/Namespace": "V1Namespace",
    "v1/Pod": "V1Pod",
    "v1/Service": "V1Service",
    "v1/ConfigMap": "V1ConfigMap",
    "v1/Secret": "V1Secret",
    "v1/Node": "V1Node",
    "v1/ServiceAccount": "V1ServiceAccount",
    "v1/Event": "CoreV1Event",
    "apps/v1/Deployment": "V1Deployment",
    "apps/v1/ReplicaSet": "V1ReplicaSet",
    "apps/v1/DaemonSet": "V1DaemonSet",
    "discovery.k8s.io/v1/EndpointSlice": "V1EndpointSlice",
    "coordination.k8s.io/v1/Lease": "V1Lease",
    "rbac.authorization.k8s.io/v1/ClusterRole": "V1ClusterRole",
    "rbac.authorization.k8s.io/v1/ClusterRoleBinding": "V1ClusterRoleBinding",
    "rbac.authorization.k8s.io/v1/Role": "V1Role",
    "rbac.authorization.k8s.io/v1/RoleBinding": "V1RoleBinding",
}

# Go package of each type, for the OpenAPI definition names (io.k8s.api.core.v1.PodSpec)
_META = {
    "ObjectMeta",
    "ListMeta",
    "LabelSelector",
    "LabelSelectorRequirement",
    "ManagedFieldsEntry",
    "OwnerReference",
    "Time",
    "MicroTime",
    "Condition",
}
_APPS = ("Deployment", "ReplicaSet", "DaemonSet", "RollingUpdate", "StatefulSet")
_DISCOVERY = {"EndpointSlice", "Endpoint", "EndpointConditions", "EndpointHints", "ForZone", "ForNode", "EndpointPort"}
_RBAC = {
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "PolicyRule",
    "AggregationRule",
    "Subject",
    "RoleRef",
}

# (Go type, json field) -> tags kube's Go types carry and the client models drop
L = dict[str, Any]
_MERGE_NAME: L = {"patchStrategy": "merge", "patchMergeKey": "name", "listType": "map", "listMapKeys": ["name"]}
_COND: L = {"patchStrategy": "merge", "patchMergeKey": "type", "listType": "map", "listMapKeys": ["type"]}
TAGS: dict[tuple[str, str], L] = {
    ("ObjectMeta", "finalizers"): {"patchStrategy": "merge", "listType": "set"},
    ("ObjectMeta", "ownerReferences"): {
        "patchStrategy": "merge",
        "patchMergeKey": "uid",
        "listType": "map",
        "listMapKeys": ["uid"],
    },
    ("ObjectMeta", "managedFields"): {"listType": "atomic"},
    ("PodSpec", "containers"): _MERGE_NAME,
    ("PodSpec", "initContainers"): _MERGE_NAME,
    ("PodSpec", "ephemeralContainers"): _MERGE_NAME,
    ("PodSpec", "imagePullSecrets"): _MERGE_NAME,
    ("PodSpec", "resourceClaims"): {**_MERGE_NAME, "patchStrategy": "merge,retainKeys"},
    ("PodSpec", "schedulingGates"): _MERGE_NAME,
    ("PodSpec", "volumes"): {**_MERGE_NAME, "patchStrategy": "merge,retainKeys"},
    ("PodSpec", "hostAliases"): {
        "patchStrategy": "merge",
        "patchMergeKey": "ip",
        "listType": "map",
        "listMapKeys": ["ip"],
    },
    ("PodSpec", "topologySpreadConstraints"): {
        "patchStrategy": "merge",
        "patchMergeKey": "topologyKey",
        "listType": "map",
        "listMapKeys": ["topologyKey", "whenUnsatisfiable"],
    },
    ("PodSpec", "tolerations"): {"listType": "atomic"},
    ("PodSpec", "readinessGates"): {"listType": "atomic"},
    ("Container", "ports"): {
        "patchStrategy": "merge",
        "patchMergeKey": "containerPort",
        "listType": "map",
        "listMapKeys": ["containerPort", "protocol"],
    },
    ("Container", "env"): _MERGE_NAME,
    ("Container", "volumeMounts"): {
        "patchStrategy": "merge",
        "patchMergeKey": "mountPath",
        "listType": "map",
        "listMapKeys": ["mountPath"],
    },
    ("Container", "volumeDevices"): {
        "patchStrategy": "merge",
        "patchMergeKey": "devicePath",
        "listType": "map",
        "listMapKeys": ["devicePath"],
    },
    ("Container", "resizePolicy"): {"listType": "atomic"},
    ("EphemeralContainer", "ports"): {
        "patchStrategy": "merge",
        "patchMergeKey": "containerPort",
        "listType": "map",
        "listMapKeys": ["containerPort", "protocol"],
    },
    ("EphemeralContainer", "env"): _MERGE_NAME,
    ("EphemeralContainer", "volumeMounts"): {
        "patchStrategy": "merge",
        "patchMergeKey": "mountPath",
        "listType": "map",
        "listMapKeys": ["mountPath"],
    },
    ("PodStatus", "conditions"): _COND,
    ("PodStatus", "podIPs"): {
        "patchStrategy": "merge",
        "patchMergeKey": "ip",
        "listType": "map",
        "listMapKeys": ["ip"],
    },
    ("PodStatus", "hostIPs"): {"patchStrategy": "merge", "patchMergeKey": "ip", "listType": "atomic"},
    ("PodStatus", "containerStatuses"): {"listType": "atomic"},
    ("PodStatus", "initContainerStatuses"): {"listType": "atomic"},
    ("ServiceSpec", "ports"): {
        "patchStrategy": "merge",
        "patchMergeKey": "port",
        "listType": "map",
        "listMapKeys": ["port", "protocol"],
    },
    ("ServiceSpec", "clusterIPs"): {"listType": "atomic"},
    ("ServiceSpec", "externalIPs"): {"listType": "atomic"},
    ("ServiceSpec", "ipFamilies"): {"listType": "atomic"},
    ("ServiceStatus", "conditions"): {
        "patchStrategy": "merge",
        "patchMergeKey": "type",
        "listType": "map",
        "listMapKeys": ["type"],
    },
    ("NodeSpec", "podCIDRs"): {"patchStrategy": "merge", "listType": "set"},
    ("NodeSpec", "taints"): {"listType": "atomic"},
    ("NodeStatus", "conditions"): _COND,
    ("NodeStatus", "addresses"): {
        "patchStrategy": "merge",
        "patchMergeKey": "type",
        "listType": "map",
        "listMapKeys": ["type"],
    },
    ("ServiceAccount", "secrets"): {"patchStrategy": "merge", "patchMergeKey": "name", "listType": "atomic"},
    ("DeploymentSpec", "strategy"): {"patchStrategy": "retainKeys"},
    ("DaemonSetSpec", "updateStrategy"): {"patchStrategy": "retainKeys"},
    ("DeploymentStatus", "conditions"): _COND,
    ("ReplicaSetStatus", "conditions"): _COND,
    ("DaemonSetStatus", "conditions"): _COND,
    ("NamespaceStatus", "conditions"): _COND,
    ("Volume", ""): {"patchStrategy": "retainKeys"},
    ("EndpointSlice", "endpoints"): {"listType": "atomic"},
    ("EndpointSlice", "ports"): {"listType": "atomic"},
    ("LabelSelector", "matchExpressions"): {"listType": "atomic"},
}

# integers kube declares int64; every other integer field is an int32
INT64 = {
    "activeDeadlineSeconds",
    "terminationGracePeriodSeconds",
    "deletionGracePeriodSeconds",
    "runAsUser",
    "runAsGroup",
    "fsGroup",
    "supplementalGroups",
    "generation",
    "observedGeneration",
    "expirationSeconds",
    "count",
    "leaseTransitions",
}
# fields of type resource.Quantity: a string or a number on the wire
QUANTITY_MAPS = {"limits", "requests", "capacity", "allocatable", "hard", "used"}


def go_name(model: str) -> str:
    for p in ("CoreV1", "DiscoveryV1", "RbacV1", "AppsV1", "V1", "V2"):
        if model.startswith(p) and len(model) > len(p) and model[len(p)].isupper():
            return model[len(p) :]
    return model


def definition_name(model: str) -> str:
    g = go_name(model)
    if g in _META:
        return f"io.k8s.apimachinery.pkg.apis.meta.v1.{g}"
    if g in _DISCOVERY or model.startswith("DiscoveryV1"):
        return f"io.k8s.api.discovery.v1.{g}"
    if g in _RBAC or model.startswith("RbacV1"):
        return f"io.k8s.api.rbac.v1.{g}"
    if g.startswith(_APPS):
        return f"io.k8s.api.apps.v1.{g}"
    if g in ("Lease", "LeaseSpec"):
        return f"io.k8s.api.coordination.v1.{g}"
    return f"io.k8s.api.core.v1.{g}"


def _strip(tp: Any) -> Any:
    """The type under Optional[...] and Annotated[...]."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) == 1:
                tp = args[0]
            else:
                return tuple(_strip(a) for a in args)
        else:
            return tp


def _type(tp: Any, field: str, todo: list[type]) -> dict[str, Any]:
    tp = _strip(tp)
    if isinstance(tp, tuple):
        if set(tp) <= {int, str}:
            return {"type": "int-or-string"}
        if set(tp) == {bytes, str}:  # []byte: base64 text in JSON
            return {"type": "string", "format": "byte"}
        return {"type": "any"}
    origin = typing.get_origin(tp)
    if origin in (list, typing.List):  # noqa: UP006 - the models spell it typing.List
        return {"type": "list", "items": _type(typing.get_args(tp)[0], field, todo)}
    if origin in (dict, typing.Dict):  # noqa: UP006
        value = _type(typing.get_args(tp)[1], "", todo)
        if field in QUANTITY_MAPS:
            value = {"type": "int-or-string", "format": "quantity"}
        return {"type": "map", "additional": value}
    if tp is str:
        return {"type": "string"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer", "format": "int64" if field in INT64 else "int32"}
    if tp is float:
        return {"type": "number", "format": "double"}
    if tp in (datetime.datetime, datetime.date):
        return {"type": "string", "format": "date-time"}
    if tp is bytearray or tp is bytes:
        return {"type": "string", "format": "byte"}
    if isinstance(tp, type) and hasattr(tp, "model_fields"):
        todo.append(tp)
        return {"ref": definition_name(tp.__name__)}
    return {"type": "any"}


def _definition(cls: Any, todo: list[type]) -> dict[str, Any]:
    g = go_name(cls.__name__)
    props: dict[str, Any] = {}
    required = []
    for pyname, f in cls.model_fields.items():
        wire = cls.attribute_map.get(pyname, pyname)
        p = _type(f.annotation, wire, todo)
        if f.description:
            p["description"] = f.description
        p.update(TAGS.get((g, wire), {}))
        props[wire] = p
        if f.is_required():
            required.append(wire)
    doc = (cls.__doc__ or "").split("Attributes:")[0].strip()
    d: dict[str, Any] = {"type": "object", "description": doc, "properties": props}
    if required:
        d["required"] = required
    d.update(TAGS.get((g, ""), {}))
    return d


def generate() -> dict[str, Any]:
    import kubernetes.client.models as models

    defs: dict[str, Any] = {}
    todo: list[type] = [getattr(models, m) for m in ROOTS.values()]
    while todo:
        cls = todo.pop()
        name = definition_name(cls.__name__)
        if name not in defs:
            defs[name] = _definition(cls, todo)
    roots = {k: definition_name(v) for k, v in ROOTS.items()}
    return {"roots": roots, "definitions": dict(sorted(defs.items()))}


def render() -> str:
    return json.dumps(generate(), indent=1, sort_keys=True) + "\n"


def main() -> None:
    OUT.write_text(render())
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
