"""The narrow interface between the hub and the clusters it manages.

The hub decides (plans, ids, states); a driver carries the decisions out on one kind of cluster.
``LocalDriver`` builds emulated clusters on this host; a kubernetes driver writes Cilium's
ClusterMesh configuration through a kubeconfig. Everything here is an effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fleetnet.model.member import Member
from fleetnet.model.profile import ProfileOptions
from fleetnet.pki.certs import CertKeyPair


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """What a member needs to reach another member's clustermesh-apiserver."""

    name: str
    cluster_id: int
    endpoint: str  # https://<ip>:<port>, the first of ``endpoints``
    endpoints: tuple[str, ...] = ()  # every address (a NodePort Service answers on every node)

    def __post_init__(self) -> None:
        if not self.endpoints:
            object.__setattr__(self, "endpoints", (self.endpoint,))


@dataclass(frozen=True, slots=True)
class RemoteStatus:
    name: str
    ready: bool
    connected: bool
    error: str | None


class ClusterDriver(Protocol):
    def create_cluster(self, member: Member) -> None: ...

    def delete_cluster(self, member: Member) -> None: ...

    def join(
        self, member: Member, cluster_id: int, ca: CertKeyPair, options: ProfileOptions, profile: str
    ) -> PeerInfo: ...

    def set_peers(self, member: Member, ca: CertKeyPair, peers: Sequence[PeerInfo]) -> None: ...

    def set_options(self, member: Member, options: ProfileOptions) -> None: ...

    def leave(self, member: Member) -> None: ...

    def remote_status(self, member: Member) -> list[RemoteStatus] | None:
        """Per-remote status as the member's agent reports it; None when the agent cannot be asked."""
        ...

    def agent_get(self, member: Member, path: str) -> Any: ...

    def upgrade(self, member: Member, kubernetes_version: str, cilium_version: str) -> None: ...
