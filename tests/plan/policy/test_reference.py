"""Compiled map entries, looked up the way the datapath does, agree with the reference evaluator."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetnet.plan.identity import RESERVED_IDENTITIES, allocate
from fleetnet.plan.labels import LabelSet
from fleetnet.plan.policy import Endpoint, EndpointPolicy, compile_policies, parse_policies, policy_map, trace
from fleetnet.plan.policy.model import ANY_IDENTITY, PROTO_ANY, lookup_keys

from . import reference
from .strategies import CLUSTER_IDS, LOCAL, PACKETS, pod_labels, policy_docs

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _world(label_sets: list[LabelSet]) -> tuple[dict[int, LabelSet], list[Endpoint]]:
    ids: dict[LabelSet, int] = {}
    for labels in label_sets:
        ids[labels] = allocate(ids, labels, CLUSTER_IDS[labels.cluster or LOCAL])
    known = {i: labels for labels, i in ids.items()}
    endpoints = [
        Endpoint(n, labels.namespace or "", f"pod{n}", labels, i)
        for n, (labels, i) in enumerate(sorted(ids.items(), key=lambda kv: kv[1]))
        if labels.cluster == LOCAL
    ]
    return known, endpoints


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    docs=policy_docs(),
    local_sets=st.lists(pod_labels(LOCAL), min_size=1, max_size=4),
    remote_sets=st.lists(pod_labels(), max_size=4),
    default_local=st.booleans(),
)
def test_compiled_lookup_agrees_with_reference(
    docs: list[dict[str, Any]], local_sets: list[LabelSet], remote_sets: list[LabelSet], default_local: bool
) -> None:
    policies = parse_policies(docs)
    known, endpoints = _world(local_sets + remote_sets)
    compiled = compile_policies(LOCAL, policies, endpoints, known, default_local_cluster=default_local)
    _check_map_shape(compiled)
    peers = {**RESERVED_IDENTITIES, **known}
    for ep in endpoints:
        pol = compiled[ep.id]
        for peer_id, peer_labels in peers.items():
            for dport, proto in PACKETS:
                for direction in ("ingress", "egress"):
                    expected = reference.direction_allows(
                        policies, ep.labels, direction, peer_labels, dport, proto, LOCAL, default_local
                    )
                    got = pol.lookup(direction, peer_id, dport, proto).allowed
                    assert got == expected, (direction, ep.labels, peer_labels, dport, proto, pol)


def _check_map_shape(compiled: dict[int, EndpointPolicy]) -> None:
    """One value per map key, no port with protocol ANY, entries only in enforced directions, every
    entry explained by a rule, and every entry reachable by the lookup of a packet it matches."""
    assert len(policy_map(compiled)) == sum(len(p.entries) for p in compiled.values())
    for pol in compiled.values():
        for entry in pol.entries:
            assert not (entry.proto == PROTO_ANY and entry.dport != 0)
            assert pol.enforced(entry.direction)
            assert pol.rules[entry], entry
            probe_id = entry.identity if entry.identity != ANY_IDENTITY else 424242
            assert entry.key in lookup_keys(entry.direction, probe_id, entry.dport, entry.proto or 6)


@FAST
@given(
    docs=policy_docs(),
    local_sets=st.lists(pod_labels(LOCAL), min_size=1, max_size=3),
    remote_sets=st.lists(pod_labels(), max_size=3),
    default_local=st.booleans(),
    packets=st.lists(st.sampled_from(PACKETS), min_size=1, max_size=2, unique=True),
)
def test_trace_agrees_with_reference(
    docs: list[dict[str, Any]],
    local_sets: list[LabelSet],
    remote_sets: list[LabelSet],
    default_local: bool,
    packets: list[tuple[int, int]],
) -> None:
    policies = parse_policies(docs)
    known, endpoints = _world(local_sets + remote_sets)
    local_ids = {ep.identity for ep in endpoints}
    sources = {i: RESERVED_IDENTITIES[i] for i in (1, 2, 6)} | known
    for dst in endpoints:
        for src_id, src_labels in sources.items():
            for dport, proto in packets:
                verdict = trace(
                    src_id,
                    dst,
                    dport,
                    proto,
                    local_cluster=LOCAL,
                    policies=policies,
                    identities=known,
                    endpoints=endpoints,
                    default_local_cluster=default_local,
                )
                expected = reference.allowed(
                    policies, src_labels, src_id in local_ids, dst.labels, True, dport, proto, LOCAL, default_local
                )
                assert verdict.allowed == expected, (verdict, src_labels, dst.labels, dport, proto)
                assert verdict.decided_by.startswith("allowed" if expected else "denied by")
