"""Cross-cluster networks: Azure's ``fleets/clusterMeshProfiles`` resource.

Creating or updating a profile stores its selector only; membership changes when, and only when,
the user applies it (reference azure-fleet.md §2.5). ``options`` are fleetnet's per-network
settings (Cilium's per-mesh knobs that Azure fixes for you).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

ProfileState = Literal["NotConnected", "Applying", "Connected", "Degraded", "Failed"]
PROFILE_STATES: tuple[str, ...] = ("NotConnected", "Applying", "Connected", "Degraded", "Failed")
MAX_MEMBERS_PER_NETWORK = 255


@dataclass(frozen=True, slots=True)
class ProfileOptions:
    # Azure sets clustermesh-default-global-namespace=false; fleetnet keeps Cilium's default (all
    # namespaces global) unless a network asks for the per-namespace opt-in.
    require_global_namespace: bool = False
    # Cilium >= 1.19 default: peer selectors without a cluster label match the local cluster only.
    policy_default_local_cluster: bool = True
    # Unlike Cilium (0 = never), backends of an unreachable cluster are withdrawn after this TTL.
    service_cache_ttl_seconds: float = 30.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "requireGlobalNamespace": self.require_global_namespace,
            "policyDefaultLocalCluster": self.policy_default_local_cluster,
            "serviceCacheTtlSeconds": self.service_cache_ttl_seconds,
        }

    @staticmethod
    def from_dict(d: dict[str, Any]) -> ProfileOptions:
        return ProfileOptions(
            require_global_namespace=bool(d.get("requireGlobalNamespace", False)),
            policy_default_local_cluster=bool(d.get("policyDefaultLocalCluster", True)),
            service_cache_ttl_seconds=float(d.get("serviceCacheTtlSeconds", 30.0)),
        )


@dataclass(frozen=True, slots=True)
class ProfileStatus:
    state: ProfileState = "NotConnected"
    last_applied_selector: str | None = None
    last_operation_id: str | None = None
    last_operation_error: str | None = None


@dataclass(frozen=True, slots=True)
class ClusterMeshProfile:
    name: str
    member_selector: str
    # the CA of the network: generated at the first apply, kept for the network's life
    options: ProfileOptions = field(default_factory=ProfileOptions)
    status: ProfileStatus = field(default_factory=ProfileStatus)
    provisioning_state: str = "Succeeded"

    def with_status(self, **kw: Any) -> ClusterMeshProfile:
        return replace(self, status=replace(self.status, **kw))

    def to_dict(self) -> dict[str, Any]:
        s = self.status
        return {
            "name": self.name,
            "properties": {
                "provisioningState": self.provisioning_state,
                "memberSelector": {"byLabel": self.member_selector},
                "options": self.options.to_dict(),
                "status": {
                    "state": s.state,
                    "lastAppliedMemberSelector": None
                    if s.last_applied_selector is None
                    else {"byLabel": s.last_applied_selector},
                    "lastOperationId": s.last_operation_id,
                    "lastOperationError": None
                    if s.last_operation_error is None
                    else {"message": s.last_operation_error},
                },
            },
        }

    @staticmethod
    def from_dict(d: dict[str, Any]) -> ClusterMeshProfile:
        p = d["properties"]
        st = p["status"]
        las = st.get("lastAppliedMemberSelector")
        err = st.get("lastOperationError")
        return ClusterMeshProfile(
            name=d["name"],
            member_selector=p["memberSelector"]["byLabel"],
            options=ProfileOptions.from_dict(p.get("options") or {}),
            provisioning_state=p.get("provisioningState", "Succeeded"),
            status=ProfileStatus(
                state=st["state"],
                last_applied_selector=None if las is None else las["byLabel"],
                last_operation_id=st.get("lastOperationId"),
                last_operation_error=None if err is None else err["message"],
            ),
        )
