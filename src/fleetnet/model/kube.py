"""Kubernetes manifests for local clusters: the kinds fleetnet emulates, parsed strictly.

A user's ``kubectl apply -f`` on a local member goes through ``parse_manifests`` first: the whole
stream is checked and the first problem is reported (one sentence naming the document, the kind
and name, and the field path) before anything is applied, so a bad file changes nothing. The
types are frozen values (``kube_types``), the validation rules live in ``kube_parse``; this module
is the one to import.

Supported: Namespace (v1), Pod (v1), Deployment (apps/v1, ``matchLabels`` selectors), Service
(v1, ClusterIP or headless), CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy (cilium.io/v2,
rules carried raw for ``plan/policy``), a ``v1 List`` of those; EndpointSlice (discovery.k8s.io/v1)
is written by fleetnet's controllers only and read back with ``object_from_dict``. Pods run one of
the built-in images: ``fleetnet/echo`` (an echo server on every containerPort) or
``fleetnet/client`` (an idle pod to exec and probe from).
"""

from __future__ import annotations

from collections.abc import Mapping

from fleetnet.model.kube_parse import (
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_iana_svc_name,
    label_key_problem,
    label_value_problem,
    object_from_dict,
    parse_manifests,
)
from fleetnet.model.kube_types import (
    CCNP_KIND,
    CLUSTER_SCOPED_KINDS,
    CNP_KIND,
    EMPTY,
    ENDPOINTSLICE_CONTROLLER,
    IMAGE_CLIENT,
    IMAGE_ECHO,
    LABEL_HEADLESS,
    LABEL_MANAGED_BY,
    LABEL_POD_TEMPLATE_HASH,
    LABEL_SERVICE_NAME,
    NAMESPACED_KINDS,
    SUPPORTED_IMAGES,
    Container,
    ContainerPort,
    Deployment,
    Endpoint,
    EndpointPort,
    EndpointSlice,
    FrozenMap,
    KubeObject,
    Namespace,
    ObjectMeta,
    Pod,
    PodSpec,
    PodStatus,
    PodTemplate,
    PolicyObject,
    Service,
    ServicePort,
    freeze,
    object_key,
)

__all__ = [
    "CCNP_KIND",
    "CLUSTER_SCOPED_KINDS",
    "CNP_KIND",
    "EMPTY",
    "ENDPOINTSLICE_CONTROLLER",
    "IMAGE_CLIENT",
    "IMAGE_ECHO",
    "LABEL_HEADLESS",
    "LABEL_MANAGED_BY",
    "LABEL_POD_TEMPLATE_HASH",
    "LABEL_SERVICE_NAME",
    "NAMESPACED_KINDS",
    "SUPPORTED_IMAGES",
    "Container",
    "ContainerPort",
    "Deployment",
    "Endpoint",
    "EndpointPort",
    "EndpointSlice",
    "FrozenMap",
    "KubeObject",
    "Namespace",
    "ObjectMeta",
    "Pod",
    "PodSpec",
    "PodStatus",
    "PodTemplate",
    "PolicyObject",
    "Service",
    "ServicePort",
    "freeze",
    "is_dns1035_label",
    "is_dns1123_label",
    "is_dns1123_subdomain",
    "is_iana_svc_name",
    "label_key_problem",
    "label_value_problem",
    "matches",
    "object_from_dict",
    "object_key",
    "parse_manifests",
]


def matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` satisfy an equality-based selector (every selector pair is present)."""
    return all(labels.get(k) == v for k, v in selector.items())
