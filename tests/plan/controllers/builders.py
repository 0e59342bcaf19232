"""Objects as the API server would hold them, for the pure controller decisions."""

from __future__ import annotations

import copy
from typing import Any

from fleetnet.plan.controllers.meta import format_time

T0 = 1_700_000_000.0


def template(image: str = "fleetnet/echo", labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"labels": labels or {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": image, "ports": [{"name": "http", "containerPort": 8080}]}]},
    }


def deployment(replicas: int = 3, *, image: str = "fleetnet/echo", generation: int = 1, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ns", "uid": "d-uid", "generation": generation},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": template(image),
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            **spec,
        },
        "status": {},
    }


def replicaset(
    name: str,
    replicas: int,
    *,
    available: int | None = None,
    image: str = "fleetnet/echo",
    revision: int = 1,
    created: float = T0,
    annotations: dict[str, str] | None = None,
    owner: str = "d-uid",
) -> dict[str, Any]:
    tpl = template(image)
    h = name.rsplit("-", 1)[-1]
    tpl["metadata"]["labels"]["pod-template-hash"] = h
    avail = replicas if available is None else available
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"{name}-uid",
            "generation": 1,
            "creationTimestamp": format_time(created),
            "resourceVersion": "1",
            "labels": dict(tpl["metadata"]["labels"]),
            "annotations": {"deployment.kubernetes.io/revision": str(revision), **(annotations or {})},
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": owner, "controller": True}
            ],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web", "pod-template-hash": h}},
            "template": tpl,
        },
        "status": {
            "replicas": replicas,
            "readyReplicas": avail,
            "availableReplicas": avail,
            "observedGeneration": 1,
        },
    }


def pod(
    name: str,
    *,
    node: str = "n1",
    phase: str = "Running",
    ready: bool = True,
    ready_since: float = T0,
    created: float = T0,
    uid: str | None = None,
    labels: dict[str, str] | None = None,
    ip: str | None = "10.244.0.5",
    deleting: bool = False,
    annotations: dict[str, str] | None = None,
    restarts: int = 0,
    owner: str | None = "rs-uid",
) -> dict[str, Any]:
    md: dict[str, Any] = {
        "name": name,
        "namespace": "ns",
        "uid": uid or f"{name}-uid",
        "creationTimestamp": format_time(created),
        "labels": labels if labels is not None else {"app": "web"},
    }
    if annotations:
        md["annotations"] = annotations
    if deleting:
        md["deletionTimestamp"] = format_time(created + 30)
    if owner:
        md["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": owner, "controller": True}
        ]
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": format_time(ready_since)}
        ],
        "containerStatuses": [{"name": "c", "restartCount": restarts}],
    }
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    spec: dict[str, Any] = {
        "containers": [{"name": "c", "image": "x", "ports": [{"name": "http", "containerPort": 8080}]}]
    }
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec, "status": status}


def clone(obj: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(obj)
