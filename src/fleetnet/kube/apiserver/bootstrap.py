"""The objects every cluster has from its first start, as kube-apiserver creates them: the four
system namespaces, the bootstrap RBAC policy, and the ``kubernetes`` Service with its EndpointSlice
pointing at this API server. Idempotent: run at every start, it only adds what is missing and
keeps the ``kubernetes`` endpoints on the advertised address.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from fleetnet.kube.apiserver import strategy
from fleetnet.kube.apiserver.allocator import first_ip
from fleetnet.kube.apiserver.auth import bootstrap_rbac
from fleetnet.kube.apiserver.handlers import Handlers
from fleetnet.kube.resources import REGISTRY

NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def _ensure(h: Handlers, obj: dict[str, Any], replace: bool = False) -> None:
    res = REGISTRY.by_kind(obj["kind"], obj["apiVersion"])
    assert res is not None
    md = obj["metadata"]
    key = h.key(res, md.get("namespace"), md["name"])
    old = h.storage.get(key)
    if old is not None and not replace:
        return
    obj = copy.deepcopy(obj)
    if old is None:
        strategy.prepare_create(res, obj, str(uuid.uuid4()), strategy.now_rfc3339())
        h.admission.on_create(res, obj, False)
    else:
        strategy.prepare_update(res, obj, old.obj)
        obj["metadata"]["resourceVersion"] = str(old.rv)
        if obj == old.obj:
            return
    h.storage.put(key, obj)


def bootstrap(h: Handlers, service_cidr: str, advertise: str, port: int) -> None:
    for ns in NAMESPACES:
        _ensure(h, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    for obj in bootstrap_rbac():
        _ensure(h, obj)
    vip = first_ip(service_cidr)
    _ensure(
        h,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "kubernetes",
                "namespace": "default",
                "labels": {"component": "apiserver", "provider": "kubernetes"},
            },
            "spec": {
                "type": "ClusterIP",
                "clusterIP": vip,
                "clusterIPs": [vip],
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
                "sessionAffinity": "None",
            },
        },
    )
    _ensure(
        h,
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "kubernetes",
                "namespace": "default",
                "labels": {"kubernetes.io/service-name": "kubernetes"},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [advertise], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        },
        replace=True,
    )
