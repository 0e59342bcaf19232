"""Names, labels and annotations shared by every ClusterMesh object fleetnet writes.

The names, label keys and paths are Cilium's (its Helm chart, ``install/kubernetes/cilium``, and
its agent defaults), so that a real cilium-agent finds what it looks for; the
``app.kubernetes.io/managed-by: fleetnet`` label and the ``fleetnet.io/`` annotations are
fleetnet's own, added on top so that the driver can tell its objects from anyone else's and remove
exactly them when a member leaves.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# --- object names (chart templates named in the comment) ---------------------------------------
DEFAULT_NAMESPACE = "kube-system"  # the chart's .Release.Namespace as Cilium is installed
CONFIG_MAP = "cilium-config"  # cilium-configmap.yaml
CA_SECRET = "cilium-ca"  # cilium-ca-secret.yaml (helper cilium.ca.setup: $secretName)
APISERVER = "clustermesh-apiserver"  # clustermesh-apiserver/{deployment,service,serviceaccount,clusterrole*}.yaml
METRICS_SERVICE = "clustermesh-apiserver-metrics"  # clustermesh-apiserver/metrics-service.yaml
USERS_CONFIG_MAP = "clustermesh-remote-users"  # clustermesh-apiserver/users-configmap.yaml
CLUSTERMESH_SECRET = "cilium-clustermesh"  # clustermesh-config/clustermesh-secret.yaml
KVSTOREMESH_SECRET = "cilium-kvstoremesh"  # clustermesh-config/kvstoremesh-secret.yaml
SERVER_CERT_SECRET = "clustermesh-apiserver-server-cert"  # clustermesh-apiserver/tls-*/server-secret.yaml
ADMIN_CERT_SECRET = "clustermesh-apiserver-admin-cert"  # clustermesh-apiserver/tls-*/admin-secret.yaml
REMOTE_CERT_SECRET = "clustermesh-apiserver-remote-cert"  # clustermesh-apiserver/tls-*/remote-secret.yaml
LOCAL_CERT_SECRET = "clustermesh-apiserver-local-cert"  # clustermesh-apiserver/tls-helm/local-secret.yaml
AGENT_DAEMONSET = "cilium"  # cilium-agent/daemonset.yaml

# --- paths --------------------------------------------------------------------------------------
# The agent's CILIUM_CLUSTERMESH_CONFIG (cilium-agent/daemonset.yaml) and kvstoremesh's
# --clustermesh-config: one etcd client config file per remote cluster, named after it.
CLUSTERMESH_CONFIG_DIR = "/var/lib/cilium/clustermesh"

# --- keys of kubernetes.io/tls secrets (every tls-*/ template) -----------------------------------
TLS_CA = "ca.crt"
TLS_CERT = "tls.crt"
TLS_KEY = "tls.key"
SECRET_TYPE_TLS = "kubernetes.io/tls"

# --- labels and annotations ---------------------------------------------------------------------
LABEL_K8S_APP = "k8s-app"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_FLEETNET = "fleetnet"
# Which cross-cluster network (ClusterMeshProfile) an object was written for.
ANNOTATION_NETWORK = "fleetnet.io/network"
# On the clustermesh-apiserver pod template: a digest of the cilium-config keys its containers read
# through env (cluster-name, cluster-id), so that changing them rolls the pods as the chart's
# ``cilium.io/cilium-configmap-checksum`` does for the agents.
ANNOTATION_CONFIG_CHECKSUM = "fleetnet.io/cilium-config-checksum"
# The chart's marker for objects that differ at every render (1.19 cilium-ca-secret.yaml).
LABEL_NON_IDEMPOTENT = "cilium.io/helm-template-non-idempotent"

# The labels every clustermesh-apiserver template puts on its Deployment and Services.
APISERVER_LABELS: Mapping[str, str] = {
    LABEL_K8S_APP: APISERVER,
    LABEL_PART_OF: "cilium",
    LABEL_NAME: APISERVER,
}
APISERVER_SELECTOR: Mapping[str, str] = {LABEL_K8S_APP: APISERVER}


@dataclass(frozen=True, slots=True, order=True)
class ObjectRef:
    """What identifies one object the driver wrote: enough to delete exactly it."""

    api_version: str
    kind: str
    namespace: str | None  # None for cluster-scoped kinds (ClusterRole, ClusterRoleBinding)
    name: str

    @staticmethod
    def of(obj: Mapping[str, Any]) -> ObjectRef:
        meta = obj.get("metadata") or {}
        return ObjectRef(str(obj["apiVersion"]), str(obj["kind"]), meta.get("namespace"), str(meta["name"]))

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"


def b64(data: bytes | str) -> str:
    """Secret ``data`` values: base64 of the bytes (strings are UTF-8)."""
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


def metadata(
    name: str,
    namespace: str | None,
    network: str,
    *,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    managed: bool = True,
) -> dict[str, Any]:
    """Object metadata: the chart's labels, then fleetnet's label and annotation on top.

    ``managed=False`` is for objects fleetnet only contributes fields to (``cilium-config``):
    they keep their owner's ``managed-by`` label and get only the network annotation.
    """
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    all_labels = dict(labels or {})
    if managed:
        all_labels[LABEL_MANAGED_BY] = MANAGED_BY_FLEETNET
    if all_labels:
        meta["labels"] = all_labels
    meta["annotations"] = {**(annotations or {}), ANNOTATION_NETWORK: network}
    return meta
