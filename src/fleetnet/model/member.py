"""Fleet members: the clusters a fleet manages, with Azure's field names.

A member carries user ``labels`` (the mesh selector matches them), an update ``group``, the
versions it runs, how to reach the cluster (a local emulated cluster or a kubeconfig), and
``mesh`` — Azure's read-only ``meshProperties`` — while it belongs to a cross-cluster network.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

MeshState = Literal["Connecting", "Connected", "Disconnecting", "Failed"]
MESH_STATES: tuple[str, ...] = ("Connecting", "Connected", "Disconnecting", "Failed")


@dataclass(frozen=True, slots=True)
class LocalClusterSpec:
    """How a local (emulated) cluster is built; flags exist so prerequisites can fail on purpose."""

    index: int  # fleet-wide ordinal: keeps resource names short and unique
    pod_cidr: str
    service_cidr: str
    nodes: int
    underlay: str = "default"
    network_dataplane: Literal["cilium", "none"] = "cilium"
    routing_mode: Literal["native", "tunnel"] = "native"
    self_managed_clustermesh: bool = False


@dataclass(frozen=True, slots=True)
class KubeconfigSpec:
    path: str
    context: str | None = None


@dataclass(frozen=True, slots=True)
class MeshProperties:
    """Azure ``meshProperties``: present only while the member is in a cross-cluster network."""

    profile: str
    cilium_id: int
    cilium_name: str
    state: MeshState
    last_updated_at: float
    error: str | None = None
    last_operation_id: str | None = None


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    kubernetes_version: str
    cilium_version: str
    labels: dict[str, str] = field(default_factory=dict)
    group: str | None = None
    local: LocalClusterSpec | None = None
    kubeconfig: KubeconfigSpec | None = None
    mesh: MeshProperties | None = None
    provisioning_state: str = "Succeeded"

    def with_mesh(self, mesh: MeshProperties | None) -> Member:
        return replace(self, mesh=mesh)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kubernetesVersion": self.kubernetes_version,
            "ciliumVersion": self.cilium_version,
            "labels": dict(self.labels),
            "group": self.group,
            "local": None
            if self.local is None
            else {
                "index": self.local.index,
                "podCidr": self.local.pod_cidr,
                "serviceCidr": self.local.service_cidr,
                "nodes": self.local.nodes,
                "underlay": self.local.underlay,
                "networkDataplane": self.local.network_dataplane,
                "routingMode": self.local.routing_mode,
                "selfManagedClustermesh": self.local.self_managed_clustermesh,
            },
            "kubeconfig": None
            if self.kubeconfig is None
            else {"path": self.kubeconfig.path, "context": self.kubeconfig.context},
            "meshProperties": None if self.mesh is None else mesh_to_dict(self.mesh),
            "provisioningState": self.provisioning_state,
        }

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Member:
        loc = d.get("local")
        kc = d.get("kubeconfig")
        mp = d.get("meshProperties")
        return Member(
            name=d["name"],
            kubernetes_version=d["kubernetesVersion"],
            cilium_version=d["ciliumVersion"],
            labels=dict(d.get("labels") or {}),
            group=d.get("group"),
            local=None
            if loc is None
            else LocalClusterSpec(
                index=loc["index"],
                pod_cidr=loc["podCidr"],
                service_cidr=loc["serviceCidr"],
                nodes=loc["nodes"],
                underlay=loc["underlay"],
                network_dataplane=loc["networkDataplane"],
                routing_mode=loc["routingMode"],
                self_managed_clustermesh=loc.get("selfManagedClustermesh", False),
            ),
            kubeconfig=None if kc is None else KubeconfigSpec(path=kc["path"], context=kc.get("context")),
            mesh=None if mp is None else mesh_from_dict(mp),
            provisioning_state=d.get("provisioningState", "Succeeded"),
        )


def mesh_to_dict(m: MeshProperties) -> dict[str, Any]:
    return {
        "ciliumProperties": {"id": m.cilium_id, "name": m.cilium_name},
        "status": {
            "state": m.state,
            "lastUpdatedAt": m.last_updated_at,
            "lastOperationId": m.last_operation_id,
            "error": None if m.error is None else {"message": m.error},
        },
        "clusterMeshProfileResourceId": f"clusterMeshProfiles/{m.profile}",
    }


def mesh_from_dict(d: dict[str, Any]) -> MeshProperties:
    err = d["status"].get("error")
    return MeshProperties(
        profile=d["clusterMeshProfileResourceId"].rsplit("/", 1)[-1],
        cilium_id=d["ciliumProperties"]["id"],
        cilium_name=d["ciliumProperties"]["name"],
        state=d["status"]["state"],
        last_updated_at=d["status"]["lastUpdatedAt"],
        error=None if err is None else err["message"],
        last_operation_id=d["status"].get("lastOperationId"),
    )
