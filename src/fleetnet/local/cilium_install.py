"""Cilium "installed" on a local cluster: the objects ``helm install cilium`` leaves in kube-system
that matter to the mesh — the agent's ServiceAccount, ClusterRole and binding (the chart's
rules, so the local agent may do exactly what cilium-agent may), the clustermesh-apiserver's, the
``cilium-config`` ConfigMap and the ``cilium`` DaemonSet. The local agent process plays the
DaemonSet's pods. Pure: the driver writes these through the API.
"""

from __future__ import annotations

from typing import Any

from fleetnet.kube.apiserver.auth import cluster_role, cluster_role_binding

NAMESPACE = "kube-system"
PART_OF = {"app.kubernetes.io/part-of": "cilium"}
READ = ["get", "list", "watch"]


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


# install/kubernetes/cilium/templates/cilium-agent/clusterrole.yaml (defaults: no l2announcements,
# tls.secretsBackend local)
AGENT_RULES = [
    _rule(["networking.k8s.io"], ["networkpolicies"], READ),
    _rule(["discovery.k8s.io"], ["endpointslices"], READ),
    _rule([""], ["namespaces", "services", "pods", "endpoints", "nodes"], READ),
    _rule(["apiextensions.k8s.io"], ["customresourcedefinitions"], ["list", "watch", "get"]),
    _rule(
        ["cilium.io"],
        [
            "ciliumloadbalancerippools",
            "ciliumbgppeeringpolicies",
            "ciliumclusterwideenvoyconfigs",
            "ciliumclusterwidenetworkpolicies",
            "ciliumegressgatewaypolicies",
            "ciliumendpoints",
            "ciliumendpointslices",
            "ciliumenvoyconfigs",
            "ciliumidentities",
            "ciliumlocalredirectpolicies",
            "ciliumnetworkpolicies",
            "ciliumnodes",
            "ciliumnodeconfigs",
            "ciliumcidrgroups",
            "ciliuml2announcementpolicies",
        ],
        ["list", "watch"],
    ),
    _rule(["cilium.io"], ["ciliumidentities", "ciliumendpoints", "ciliumnodes"], ["create"]),
    _rule(["cilium.io"], ["ciliumidentities"], ["update"]),
    _rule(["cilium.io"], ["ciliumendpoints"], ["delete", "get"]),
    _rule(["cilium.io"], ["ciliumnodes", "ciliumnodes/status"], ["get", "update"]),
    _rule(
        ["cilium.io"],
        [
            "ciliumnetworkpolicies/status",
            "ciliumclusterwidenetworkpolicies/status",
            "ciliumendpoints/status",
            "ciliumendpoints",
            "ciliuml2announcementpolicies/status",
        ],
        ["patch"],
    ),
]

# On a real cluster cilium-operator garbage-collects unused identities; the local agent does that
# part of the operator's job, so it gets that one extra right, under a name that says so.
LOCAL_OPERATOR_RULES = [_rule(["cilium.io"], ["ciliumidentities"], ["delete", "get"])]

# install/kubernetes/cilium/templates/clustermesh-apiserver/clusterrole.yaml
CLUSTERMESH_RULES = [
    _rule(["cilium.io"], ["ciliumnodes", "ciliumendpoints", "ciliumidentities"], ["create"]),
    _rule(["cilium.io"], ["ciliumexternalworkloads/status", "ciliumnodes", "ciliumidentities"], ["update"]),
    _rule(["cilium.io"], ["ciliumendpoints", "ciliumendpoints/status"], ["patch"]),
    _rule(["cilium.io"], ["ciliumidentities", "ciliumexternalworkloads", "ciliumendpoints", "ciliumnodes"], READ),
    _rule(["apiextensions.k8s.io"], ["customresourcedefinitions"], ["list", "watch"]),
    _rule([""], ["endpoints", "namespaces", "services"], READ),
    _rule(["discovery.k8s.io"], ["endpointslices"], READ),
]


def _sa(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": NAMESPACE}}


def _binding(name: str, sa: str) -> dict[str, Any]:
    return cluster_role_binding(name, name, [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}], PART_OF)


def cilium_config(cluster_name: str, cluster_id: int, routing_mode: str, pod_cidr: str) -> dict[str, Any]:
    """The keys of ``cilium-config`` a local cluster's agent runs with (chart defaults plus native routing)."""
    native = routing_mode == "native"
    data = {
        "cluster-name": cluster_name,
        "cluster-id": str(cluster_id),
        "routing-mode": "native" if native else "tunnel",
        "tunnel-protocol": "vxlan",
        "ipv4-native-routing-cidr": pod_cidr if native else "",
        "auto-direct-node-routes": "true" if native else "false",
        "ipam": "kubernetes",
        "kube-proxy-replacement": "true",
        "bpf-lb-sock": "false",
        "enable-ipv4": "true",
        "enable-ipv6": "false",
        "identity-allocation-mode": "crd",
        "enable-policy": "default",
        "policy-default-local-cluster": "true",
        "max-connected-clusters": "255",
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cilium-config", "namespace": NAMESPACE},
        "data": data,
    }


def daemonset(cilium_version: str) -> dict[str, Any]:
    labels = {"k8s-app": "cilium", "app.kubernetes.io/name": "cilium-agent", **PART_OF}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "cilium", "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "selector": {"matchLabels": {"k8s-app": "cilium"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": "cilium",
                    "hostNetwork": True,
                    "priorityClassName": "system-node-critical",
                    "containers": [
                        {
                            "name": "cilium-agent",
                            "image": f"quay.io/cilium/cilium:v{cilium_version.lstrip('v')}",
                            "command": ["cilium-agent"],
                            "args": ["--config-dir=/tmp/cilium/config-map"],
                            "env": [{"name": "CILIUM_CLUSTERMESH_CONFIG", "value": "/var/lib/cilium/clustermesh/"}],
                            "volumeMounts": [
                                {
                                    "name": "clustermesh-secrets",
                                    "mountPath": "/var/lib/cilium/clustermesh",
                                    "readOnly": True,
                                }
                            ],
                        }
                    ],
                    "volumes": [
                        {
                            "name": "clustermesh-secrets",
                            "projected": {
                                "defaultMode": 256,
                                "sources": [{"secret": {"name": "cilium-clustermesh", "optional": True}}],
                            },
                        }
                    ],
                },
            },
        },
    }


def install_objects(
    cluster_name: str, cilium_version: str, routing_mode: str, pod_cidr: str, cluster_id: int = 0
) -> list[dict[str, Any]]:
    """What a local cluster gets at creation, in an order that can be applied as it stands."""
    return [
        _sa("cilium"),
        cluster_role("cilium", AGENT_RULES, PART_OF),
        _binding("cilium", "cilium"),
        cluster_role("fleetnet:local-cilium-operator", LOCAL_OPERATOR_RULES, PART_OF),
        cluster_role_binding(
            "fleetnet:local-cilium-operator",
            "fleetnet:local-cilium-operator",
            [{"kind": "ServiceAccount", "name": "cilium", "namespace": NAMESPACE}],
            PART_OF,
        ),
        _sa("clustermesh-apiserver"),
        cluster_role("clustermesh-apiserver", CLUSTERMESH_RULES, PART_OF),
        _binding("clustermesh-apiserver", "clustermesh-apiserver"),
        cilium_config(cluster_name, cluster_id, routing_mode, pod_cidr),
        daemonset(cilium_version),
    ]
