"""Request bodies of the REST API (pydantic lives only at this edge)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class LocalMemberCreate(Strict):
    name: str
    pod_cidr: str | None = Field(None, alias="podCidr")
    service_cidr: str | None = Field(None, alias="serviceCidr")
    nodes: int = 1
    kubernetes_version: str | None = Field(None, alias="kubernetesVersion")
    labels: dict[str, str] = {}
    underlay: str = "default"
    network_dataplane: str = Field("cilium", alias="networkDataplane")
    routing_mode: str = Field("native", alias="routingMode")
    group: str | None = None
    self_managed_clustermesh: bool = Field(False, alias="selfManagedClustermesh")


class MemberUpdate(Strict):
    labels: dict[str, str] | None = None
    group: str | None = None


class MemberSelector(Strict):
    by_label: str = Field(..., alias="byLabel")


class ProfileCreate(Strict):
    member_selector: MemberSelector = Field(..., alias="memberSelector")
    options: dict[str, Any] | None = None


class PolicyTrace(Strict):
    src: str | None = None
    src_labels: dict[str, str] | None = Field(None, alias="srcLabels")
    dst: str
    dport: int
    protocol: str = "TCP"
    candidate: str | None = None
