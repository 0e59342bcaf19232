"""How the clustermesh-apiserver is reached and what it may read: its Services, ServiceAccount and RBAC.

Rendered as ``install/kubernetes/cilium/templates/clustermesh-apiserver/{service,metrics-service,
serviceaccount,clusterrole,clusterrolebinding}.yaml`` render them with the chart's defaults. The
ClusterRole reads CRDs with list/watch only in 1.16, adds get in 1.17 and ciliumendpointslices in
1.18.
"""

from __future__ import annotations

from typing import Any

from fleetnet.model.chart.apiserver import ETCD_METRICS_PORT, KVSTOREMESH_METRICS_PORT, METRICS_PORT
from fleetnet.model.chart.inputs import ChartValues
from fleetnet.model.chart.meta import (
    APISERVER,
    APISERVER_LABELS,
    APISERVER_SELECTOR,
    LABEL_COMPONENT,
    LABEL_PART_OF,
    METRICS_SERVICE,
    metadata,
)
from fleetnet.model.chart.secrets import ETCD_PORT


def service_account(values: ChartValues) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(APISERVER, values.namespace, values.network),
    }


def _rule(group: str, resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": [group], "resources": resources, "verbs": verbs}


def cluster_role(values: ChartValues) -> dict[str, Any]:
    v = values.cilium_version
    read = ["get", "list", "watch"]
    cilium = ["ciliumidentities", "ciliumendpoints", "ciliumnodes"]
    if v.at_least(18):
        cilium.append("ciliumendpointslices")
    rules = [
        _rule("cilium.io", cilium, read),
        _rule("apiextensions.k8s.io", ["customresourcedefinitions"], read if v.at_least(17) else ["list", "watch"]),
        _rule("", ["endpoints", "namespaces", "services"], read),
        _rule("discovery.k8s.io", ["endpointslices"], read),
    ]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": metadata(APISERVER, None, values.network, labels={LABEL_PART_OF: "cilium"}),
        "rules": rules,
    }


def cluster_role_binding(values: ChartValues) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": metadata(APISERVER, None, values.network, labels={LABEL_PART_OF: "cilium"}),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": APISERVER},
        "subjects": [{"kind": "ServiceAccount", "name": APISERVER, "namespace": values.namespace}],
    }


def service(values: ChartValues) -> dict[str, Any]:
    """The Service peers dial: port 2379, whose targetPort Kubernetes defaults to 2379 (container port ``etcd``)."""
    port: dict[str, Any] = {"port": ETCD_PORT}
    if values.service_type == "NodePort" and values.node_port is not None:
        port["nodePort"] = values.node_port
    spec: dict[str, Any] = {"type": values.service_type, "selector": dict(APISERVER_SELECTOR), "ports": [port]}
    # The chart always renders externalTrafficPolicy: Cluster; Kubernetes refuses it on a ClusterIP
    # Service ("may only be set for externally-accessible services"), so it is left out there.
    if values.service_type != "ClusterIP":
        spec["externalTrafficPolicy"] = "Cluster"
    spec["internalTrafficPolicy"] = "Cluster"
    if values.replicas > 1:  # enableSessionAffinity: HAOnly (each replica runs its own etcd)
        spec["sessionAffinity"] = "ClientIP"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(
            APISERVER, values.namespace, values.network, labels=APISERVER_LABELS, annotations=values.service_annotations
        ),
        "spec": spec,
    }


def metrics_service(values: ChartValues) -> dict[str, Any]:
    def port(name: str, number: int) -> dict[str, Any]:
        return {"name": name, "port": number, "protocol": "TCP", "targetPort": name}

    ports = [port("apiserv-metrics", METRICS_PORT)]
    if values.kvstoremesh:
        ports.append(port("kvmesh-metrics", KVSTOREMESH_METRICS_PORT))
    ports.append(port("etcd-metrics", ETCD_METRICS_PORT))
    labels = {**APISERVER_LABELS, LABEL_COMPONENT: "metrics"}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(METRICS_SERVICE, values.namespace, values.network, labels=labels),
        "spec": {"clusterIP": "None", "type": "ClusterIP", "ports": ports, "selector": dict(APISERVER_SELECTOR)},
    }
