"""Endpoint selectors: matching label sets, and the scoping Cilium adds to what a policy writes.

A selector is a conjunction of Kubernetes label-selector requirements over security labels whose keys
carry a source (``k8s:``, ``reserved:``, or ``any:`` for either). Cilium narrows what users write
before it matches anything, and these narrowings decide cross-cluster behaviour, so they live here:

- a CiliumNetworkPolicy's selectors are limited to its namespace, unless a peer names a namespace;
- a CiliumClusterwideNetworkPolicy's peers must at least have a namespace (only pods, not reserved
  identities);
- with ``policy-default-local-cluster`` (Cilium ≥ 1.19, on by default) a peer that says nothing about
  ``io.cilium.k8s.policy.cluster`` only matches the local cluster.

Selectors that name a ``reserved:`` label are left as written.
(``pkg/k8s/apis/cilium.io/utils/utils.go`` and ``pkg/policy/api/entity.go`` in Cilium.)
"""

from __future__ import annotations

from fleetnet.plan.labels import (
    LABEL_CLUSTER,
    LABEL_NAMESPACE,
    NAMESPACE_LABELS_PREFIX,
    SOURCE_K8S,
    SOURCE_RESERVED,
    LabelSet,
)
from fleetnet.plan.policy.model import Entity, Requirement, Selector, SelectorKey

NAMESPACE_KEY = SelectorKey(SOURCE_K8S, LABEL_NAMESPACE)
CLUSTER_KEY = SelectorKey(SOURCE_K8S, LABEL_CLUSTER)


def requirement_matches(req: Requirement, labels: LabelSet) -> bool:
    label = labels.get(req.key.key, req.key.source)
    if req.operator == "In":
        return label is not None and label.value in req.values
    if req.operator == "NotIn":
        return label is None or label.value not in req.values
    if req.operator == "Exists":
        return label is not None
    return label is None  # DoesNotExist


def matches(selector: Selector, labels: LabelSet) -> bool:
    """Whether every requirement of the selector holds for the label set."""
    return all(requirement_matches(r, labels) for r in selector.requirements)


def selects_reserved(selector: Selector) -> bool:
    return selector.names_source(SOURCE_RESERVED)


def selects_init(selector: Selector) -> bool:
    return any(r.key == SelectorKey(SOURCE_RESERVED, "init") for r in selector.requirements)


def _names_namespace_labels(selector: Selector) -> bool:
    return any(
        r.key.source in (SOURCE_K8S, "any") and r.key.key.startswith(NAMESPACE_LABELS_PREFIX)
        for r in selector.requirements
    )


def subject_in_namespace(selector: Selector, namespace: str | None) -> Selector:
    """The endpoint selector of a rule: a CNP only ever selects endpoints of its own namespace."""
    if namespace is None:
        return selector
    return selector.extended(Requirement(NAMESPACE_KEY, "In", (namespace,)))


def peer_in_namespace(selector: Selector, namespace: str | None, subject_is_init: bool = False) -> Selector:
    """A peer selector as Cilium reads it in a CNP (``namespace`` given) or a CCNP (None)."""
    if selects_reserved(selector) or selector.names(LABEL_NAMESPACE):
        return selector
    if namespace is None:
        # A clusterwide peer only matches endpoints that have a namespace: pods, never reserved
        # identities, even when written as {} (except for rules about initializing endpoints).
        return selector if subject_is_init else selector.extended(Requirement(NAMESPACE_KEY, "Exists"))
    if _names_namespace_labels(selector):
        return selector
    return selector.extended(Requirement(NAMESPACE_KEY, "In", (namespace,)))


def scope_to_cluster(selector: Selector, local_cluster: str, default_local_cluster: bool) -> Selector:
    """``policy-default-local-cluster``: a peer without any cluster requirement matches the local
    cluster only. When the switch is off it matches every cluster."""
    if not default_local_cluster or selects_reserved(selector) or selector.names(LABEL_CLUSTER):
        return selector
    return selector.extended(Requirement(CLUSTER_KEY, "In", (local_cluster,)))


def _reserved(name: str) -> Selector:
    return Selector((Requirement(SelectorKey(SOURCE_RESERVED, name), "Exists"),))


def entity_selectors(entity: Entity, local_cluster: str) -> tuple[Selector, ...] | None:
    """The selectors an entity stands for; None for ``all`` (every identity, identity 0 in the map)."""
    if entity is Entity.ALL:
        return None
    if entity is Entity.NONE:
        return ()
    if entity in (Entity.CLUSTER, Entity.CLUSTER_MESH):
        in_cluster = tuple(
            _reserved(name)
            for name in ("host", "remote-node", "init", "ingress", "health", "unmanaged", "kube-apiserver")
        )
        if entity is Entity.CLUSTER:
            return (*in_cluster, Selector((Requirement(CLUSTER_KEY, "In", (local_cluster,)),)))
        return (*in_cluster, Selector((Requirement(CLUSTER_KEY, "Exists"),)))
    return (_reserved(entity.value),)
