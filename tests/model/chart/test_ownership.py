"""Self-managed ClusterMesh detection: whose clustermesh-apiserver and cilium-clustermesh are these?"""

from __future__ import annotations

from typing import Any

from fleetnet.model.chart import clustermesh_ownership, render_join, self_managed_reason
from tests.model.chart import values


def _obj(kind: str, name: str, labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> dict:
    meta: dict[str, Any] = {"name": name, "namespace": "kube-system"}
    if labels is not None:
        meta["labels"] = labels
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": kind, "metadata": meta}


def test_absent() -> None:
    o = clustermesh_ownership("c1", None, None)
    assert o.verdict == "absent"
    assert o.reason == (
        "c1 runs no ClusterMesh: it has neither a clustermesh-apiserver Deployment nor a cilium-clustermesh Secret."
    )
    assert not o.self_managed


def test_helm_release_is_self_managed() -> None:
    dep = _obj(
        "Deployment",
        "clustermesh-apiserver",
        labels={"app.kubernetes.io/managed-by": "Helm", "k8s-app": "clustermesh-apiserver"},
        annotations={"meta.helm.sh/release-name": "cilium"},
    )
    o = clustermesh_ownership("c1", dep, None)
    assert o.self_managed
    assert o.reason == (
        "c1 already runs a self-managed ClusterMesh: Deployment kube-system/clustermesh-apiserver is managed by "
        "Helm (release cilium), not by fleetnet; remove it (e.g. cilium clustermesh disable) before the fleet can "
        "manage the mesh."
    )
    assert self_managed_reason("c1", dep, None) == o.reason


def test_unlabelled_secret_is_self_managed_even_beside_our_deployment() -> None:
    ours = render_join(values())
    dep = ours.get("Deployment", "clustermesh-apiserver")
    secret = _obj("Secret", "cilium-clustermesh")
    o = clustermesh_ownership("c1", dep, secret, network="blue")
    assert o.self_managed
    assert "Secret kube-system/cilium-clustermesh is not labelled app.kubernetes.io/managed-by: fleetnet" in o.reason


def test_other_manager_is_named() -> None:
    secret = _obj("Secret", "cilium-clustermesh", labels={"app.kubernetes.io/managed-by": "argocd"})
    assert "is managed by argocd, not by fleetnet" in str(self_managed_reason("c1", None, secret))


def test_fleetnet_objects_of_this_and_of_another_network() -> None:
    ours = render_join(values())
    dep, secret = ours.get("Deployment", "clustermesh-apiserver"), ours.get("Secret", "cilium-clustermesh")
    mine = clustermesh_ownership("c1", dep, secret, network="blue")
    assert (mine.verdict, mine.network) == ("fleetnet", "blue")
    assert mine.reason == "c1's ClusterMesh objects were written by fleetnet for network blue."
    assert self_managed_reason("c1", dep, secret) is None
    other = clustermesh_ownership("c1", dep, secret, network="red")
    assert (other.verdict, other.network) == ("other-network", "blue")
    assert (
        other.reason
        == "c1 is already in network blue: its ClusterMesh objects are annotated fleetnet.io/network: blue."
    )
    unknown = clustermesh_ownership("c1", dep, None)
    assert (unknown.verdict, unknown.network) == ("fleetnet", "blue")
