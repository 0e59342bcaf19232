"""Whose ClusterMesh is this? Telling fleetnet's objects from a self-managed mesh.

A cluster whose ``clustermesh-apiserver`` Deployment or ``cilium-clustermesh`` Secret was written by
someone else (``cilium clustermesh enable``, a Helm release with ``clustermesh.useAPIServer``, a
GitOps tool) already runs a ClusterMesh that fleetnet must not overwrite: joining it is refused
with the sentence this module returns. Objects fleetnet wrote carry its
``app.kubernetes.io/managed-by: fleetnet`` label and the ``fleetnet.io/network`` annotation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from fleetnet.model.chart.meta import (
    ANNOTATION_NETWORK,
    APISERVER,
    CLUSTERMESH_SECRET,
    DEFAULT_NAMESPACE,
    LABEL_MANAGED_BY,
    MANAGED_BY_FLEETNET,
)

HELM_RELEASE_ANNOTATION = "meta.helm.sh/release-name"

Verdict = Literal["absent", "fleetnet", "other-network", "self-managed"]


@dataclass(frozen=True, slots=True)
class MeshOwnership:
    verdict: Verdict
    reason: str  # one sentence
    network: str | None = None  # the fleetnet network the objects were written for

    @property
    def self_managed(self) -> bool:
        return self.verdict == "self-managed"


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _where(kind: str, name: str, obj: Mapping[str, Any]) -> str:
    return f"{kind} {_meta(obj).get('namespace') or DEFAULT_NAMESPACE}/{name}"


def _writer(obj: Mapping[str, Any]) -> str:
    meta = _meta(obj)
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    manager = labels.get(LABEL_MANAGED_BY)
    release = annotations.get(HELM_RELEASE_ANNOTATION)
    if manager == "Helm" or release:
        return f"managed by Helm (release {release})" if release else "managed by Helm"
    if manager:
        return f"managed by {manager}"
    return f"not labelled {LABEL_MANAGED_BY}: {MANAGED_BY_FLEETNET}"


def clustermesh_ownership(
    cluster: str,
    deployment: Mapping[str, Any] | None,
    clustermesh_secret: Mapping[str, Any] | None,
    network: str | None = None,
) -> MeshOwnership:
    """Who wrote the live ClusterMesh objects of ``cluster`` (None = the object does not exist).

    ``network`` is the network being applied: fleetnet objects of another network are reported as
    such (the member is in that network), not as a self-managed mesh.
    """
    present = [
        (kind, name, obj)
        for kind, name, obj in (
            ("Deployment", APISERVER, deployment),
            ("Secret", CLUSTERMESH_SECRET, clustermesh_secret),
        )
        if obj is not None
    ]
    if not present:
        return MeshOwnership(
            "absent",
            f"{cluster} runs no ClusterMesh: it has neither a {APISERVER} Deployment "
            f"nor a {CLUSTERMESH_SECRET} Secret.",
        )
    for kind, name, obj in present:
        if (_meta(obj).get("labels") or {}).get(LABEL_MANAGED_BY) != MANAGED_BY_FLEETNET:
            return MeshOwnership(
                "self-managed",
                f"{cluster} already runs a self-managed ClusterMesh: {_where(kind, name, obj)} is {_writer(obj)}, "
                "not by fleetnet; remove it (e.g. cilium clustermesh disable) before the fleet can manage the mesh.",
            )
    networks = {(_meta(obj).get("annotations") or {}).get(ANNOTATION_NETWORK) for _, _, obj in present}
    others = sorted(n for n in networks if n and n != network)
    if network is not None and others:
        return MeshOwnership(
            "other-network",
            f"{cluster} is already in network {others[0]}: its ClusterMesh objects are annotated "
            f"{ANNOTATION_NETWORK}: {others[0]}.",
            network=others[0],
        )
    written_for = network if network is not None else (others[0] if others else None)
    return MeshOwnership(
        "fleetnet",
        f"{cluster}'s ClusterMesh objects were written by fleetnet"
        + (f" for network {written_for}." if written_for else "."),
        network=written_for,
    )


def self_managed_reason(
    cluster: str, deployment: Mapping[str, Any] | None, clustermesh_secret: Mapping[str, Any] | None
) -> str | None:
    """The refusal sentence when someone other than fleetnet runs the cluster's ClusterMesh, else None."""
    ownership = clustermesh_ownership(cluster, deployment, clustermesh_secret)
    return ownership.reason if ownership.self_managed else None
