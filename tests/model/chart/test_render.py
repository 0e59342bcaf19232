"""The whole join: apply order, the leave set, stale objects, and invariants over any peer set."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fleetnet.kvstore.config import is_cluster_config, parse
from fleetnet.model.chart import ChartVersion, ObjectRef, Peer, leave_refs, render_join, stale_refs
from tests.model.chart import values


def _names(refs: tuple[ObjectRef, ...]) -> list[str]:
    return [str(r) for r in refs]


def test_apply_order() -> None:
    assert _names(render_join(values()).refs) == [
        "Secret kube-system/cilium-ca",
        "Secret kube-system/clustermesh-apiserver-server-cert",
        "Secret kube-system/clustermesh-apiserver-admin-cert",
        "Secret kube-system/clustermesh-apiserver-remote-cert",
        "Secret kube-system/clustermesh-apiserver-local-cert",
        "ConfigMap kube-system/clustermesh-remote-users",
        "ConfigMap kube-system/cilium-config",
        "ServiceAccount kube-system/clustermesh-apiserver",
        "ClusterRole clustermesh-apiserver",
        "ClusterRoleBinding clustermesh-apiserver",
        "Service kube-system/clustermesh-apiserver",
        "Service kube-system/clustermesh-apiserver-metrics",
        "Secret kube-system/cilium-kvstoremesh",
        "Deployment kube-system/clustermesh-apiserver",
        "Secret kube-system/cilium-clustermesh",
    ]


def test_leave_set_is_what_join_wrote_but_cilium_config_newest_first() -> None:
    rendering = render_join(values())
    leave = rendering.leave
    assert leave[0] == ObjectRef("v1", "Secret", "kube-system", "cilium-clustermesh")
    assert leave[-1] == ObjectRef("v1", "Secret", "kube-system", "cilium-ca")
    assert ObjectRef("v1", "ConfigMap", "kube-system", "cilium-config") not in leave
    assert set(leave) == set(rendering.refs) - {ObjectRef("v1", "ConfigMap", "kube-system", "cilium-config")}
    assert ObjectRef("rbac.authorization.k8s.io/v1", "ClusterRole", None, "clustermesh-apiserver") in leave
    assert leave == leave_refs(rendering.objects)


def test_stale_refs_after_kvstoremesh_is_turned_off() -> None:
    before = render_join(values()).refs
    after = render_join(values(kvstoremesh=False)).refs
    assert _names(stale_refs(before, after)) == [
        "Secret kube-system/clustermesh-apiserver-local-cert",
        "Secret kube-system/cilium-kvstoremesh",
    ]
    assert stale_refs(after, after) == ()


def test_no_ca_secret_when_the_key_stays_in_the_hub() -> None:
    kinds = _names(render_join(values(ca_key_in_cluster=False)).refs)
    assert "Secret kube-system/cilium-ca" not in kinds


def test_another_namespace() -> None:
    rendering = render_join(values(namespace="cilium"))
    for ref in rendering.refs:
        assert ref.namespace in ("cilium", None)
    secret = rendering.get("Secret", "cilium-clustermesh")
    cfg = parse(base64.b64decode(secret["data"]["c2"]).decode())
    assert cfg.endpoints == ("https://clustermesh-apiserver.cilium.svc:2379",)
    binding = rendering.get("ClusterRoleBinding", "clustermesh-apiserver")
    assert binding["subjects"][0]["namespace"] == "cilium"


def test_objects_are_plain_json_and_independent() -> None:
    first = render_join(values())
    json.dumps(first.objects)
    first.objects[0]["metadata"]["labels"]["x"] = "y"
    first.get("Deployment", "clustermesh-apiserver")["spec"]["template"]["spec"]["containers"][0]["args"].clear()
    again = render_join(values())
    assert "x" not in again.objects[0]["metadata"]["labels"]
    assert again.get("Deployment", "clustermesh-apiserver")["spec"]["template"]["spec"]["containers"][0]["args"]


def test_pod_checksum_follows_cluster_name_and_id() -> None:
    def checksum(**kw: Any) -> str:
        dep = render_join(values(**kw)).get("Deployment", "clustermesh-apiserver")
        return str(dep["spec"]["template"]["metadata"]["annotations"]["fleetnet.io/cilium-config-checksum"])

    assert checksum() == checksum(peers=())  # a peer change does not restart the pods
    assert checksum() != checksum(cluster_id=7)
    assert checksum() != checksum(cluster_name="c9")


_peer_names = st.lists(st.from_regex(r"\A[a-z][a-z0-9]{0,6}\Z"), unique=True, max_size=6).map(
    lambda names: [n for n in names if n not in ("c1", "default")]
)


@st.composite
def _peer_sets(draw: st.DrawFn) -> tuple[Peer, ...]:
    names = draw(_peer_names)
    ids = draw(st.lists(st.integers(min_value=2, max_value=255), unique=True, min_size=len(names), max_size=len(names)))
    return tuple(Peer(n, i, (f"https://10.1.{i}.1:{2379 + i}",)) for n, i in zip(names, ids, strict=True))


@settings(max_examples=60, deadline=None)
@given(
    peers=_peer_sets(),
    kvstoremesh=st.booleans(),
    version=st.sampled_from(["1.16.9", "1.17.6", "1.18.3", "1.19.2"]),
)
def test_invariants_over_any_peer_set(peers: tuple[Peer, ...], kvstoremesh: bool, version: str) -> None:
    rendering = render_join(values(version, peers=peers, kvstoremesh=kvstoremesh))
    names = sorted(p.name for p in peers)
    config_ref = ObjectRef("v1", "ConfigMap", "kube-system", "cilium-config")
    # leave removes exactly what join wrote, except the keys it restores in cilium-config
    assert sorted(rendering.leave) == sorted(set(rendering.refs) - {config_ref})
    assert len(set(rendering.refs)) == len(rendering.refs)
    for obj in rendering.objects:
        assert obj["metadata"]["annotations"]["fleetnet.io/network"] == "blue"
        if ObjectRef.of(obj) != config_ref:
            assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "fleetnet"
    # the agents' secret has one readable cluster config per peer, named after it
    mesh = rendering.get("Secret", "cilium-clustermesh")["data"]
    assert sorted(mesh) == names
    for name in names:
        assert is_cluster_config(base64.b64decode(mesh[name]).decode())
    users = rendering.get("ConfigMap", "clustermesh-remote-users")["data"]["users.yaml"]
    for name in names:
        assert f"- name: remote-{name}\n" in users
    if kvstoremesh:
        remote = rendering.get("Secret", "cilium-kvstoremesh")["data"]
        assert sorted(remote) == names
        for p in peers:
            assert parse(base64.b64decode(remote[p.name]).decode()).endpoints == p.endpoints
    else:
        for p in peers:
            assert parse(base64.b64decode(mesh[p.name]).decode()).endpoints == p.endpoints
    expected_keys = {"cluster-name", "cluster-id", "max-connected-clusters", "clustermesh-enable-endpoint-sync"}
    assert expected_keys <= set(rendering.get("ConfigMap", "cilium-config")["data"])
    assert ChartVersion.parse(version).tag in str(rendering.get("Deployment", "clustermesh-apiserver"))
