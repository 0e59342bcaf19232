"""A reference evaluator: decides a packet straight from the parsed rules, the slow, obvious way.

Written apart from ``compile``/``selector`` on purpose (it imports neither): it never resolves
identities or builds map entries, it just asks of every rule "does it select this endpoint, does it
name this peer, does it cover this port". The property tests check that compiling and then looking
up the map gives the same answers.
"""

from __future__ import annotations

from collections.abc import Sequence

from fleetnet.plan.labels import LabelSet
from fleetnet.plan.policy.model import Entity, PeerRule, Policy, Selector

CLUSTER = "io.cilium.k8s.policy.cluster"
# The reserved identities the `cluster` entity covers (every one but world).
IN_CLUSTER_RESERVED = {"host", "remote-node", "init", "ingress", "health", "unmanaged", "kube-apiserver"}


def value_of(labels: LabelSet, source: str, key: str) -> str | None:
    for label in labels.labels:
        if label.key == key and (source == "any" or label.source == source):
            return label.value
    return None


def selector_holds(selector: Selector, labels: LabelSet) -> bool:
    for req in selector.requirements:
        value = value_of(labels, req.key.source, req.key.key)
        if req.operator == "In" and (value is None or value not in req.values):
            return False
        if req.operator == "NotIn" and value is not None and value in req.values:
            return False
        if req.operator == "Exists" and value is None:
            return False
        if req.operator == "DoesNotExist" and value is not None:
            return False
    return True


def _endpoint_peer_holds(selector: Selector, labels: LabelSet, local: str, default_local: bool) -> bool:
    says_cluster = any(r.key.key == CLUSTER and r.key.source in ("k8s", "any") for r in selector.requirements)
    says_reserved = any(r.key.source == "reserved" for r in selector.requirements)
    if default_local and not says_cluster and not says_reserved and value_of(labels, "k8s", CLUSTER) != local:
        return False
    return selector_holds(selector, labels)


def _entity_holds(entity: Entity, labels: LabelSet, local: str) -> bool:
    reserved = {label.key for label in labels.labels if label.source == "reserved"}
    cluster = value_of(labels, "k8s", CLUSTER)
    if entity is Entity.ALL:
        return True
    if entity is Entity.NONE:
        return False
    if entity is Entity.CLUSTER:
        return bool(reserved & IN_CLUSTER_RESERVED) or cluster == local
    if entity is Entity.CLUSTER_MESH:
        return bool(reserved & IN_CLUSTER_RESERVED) or cluster is not None
    return entity.value in reserved


def peer_holds(item: PeerRule, labels: LabelSet, local: str, default_local: bool) -> bool:
    if item.endpoints is None and item.entities is None:
        return item.ports is not None
    return any(_endpoint_peer_holds(s, labels, local, default_local) for s in item.endpoints or ()) or any(
        _entity_holds(e, labels, local) for e in item.entities or ()
    )


def port_holds(item: PeerRule, dport: int, proto: int) -> bool:
    if item.ports is None:
        return True
    for p in item.ports:
        if p.port is None and p.protocol in (0, proto):
            return True
        # A port with protocol ANY means TCP and UDP.
        if p.port is not None and p.port == dport and (p.protocol == proto or (p.protocol == 0 and proto in (6, 17))):
            return True
    return False


def direction_allows(
    policies: Sequence[Policy],
    subject: LabelSet,
    direction: str,
    peer: LabelSet,
    dport: int,
    proto: int,
    local: str,
    default_local: bool,
) -> bool:
    rules = [r for p in policies for r in p.rules if selector_holds(r.endpoint_selector, subject)]
    if direction == "ingress":
        allows = [i for r in rules for i in r.ingress]
        denies = [i for r in rules for i in r.ingress_deny]
    else:
        allows = [i for r in rules for i in r.egress]
        denies = [i for r in rules for i in r.egress_deny]
    if not allows and not denies:
        return True

    def hit(item: PeerRule) -> bool:
        return peer_holds(item, peer, local, default_local) and port_holds(item, dport, proto)

    if any(hit(i) for i in denies):
        return False
    return any(hit(i) for i in allows)


def allowed(
    policies: Sequence[Policy],
    src: LabelSet,
    src_is_local: bool,
    dst: LabelSet,
    dst_is_local: bool,
    dport: int,
    proto: int,
    local: str,
    default_local: bool,
) -> bool:
    egress = not src_is_local or direction_allows(policies, src, "egress", dst, dport, proto, local, default_local)
    ingress = not dst_is_local or direction_allows(policies, dst, "ingress", src, dport, proto, local, default_local)
    return egress and ingress
