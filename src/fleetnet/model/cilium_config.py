"""CiliumClusterConfig, what a clustermesh-apiserver says about its cluster, and the RFC 3339
timestamps of the sync canaries and the heartbeat.

Keys: ``cilium/cluster-config/<cluster>``, ``cilium/synced/...`` and ``cilium/.heartbeat``. Source:
``pkg/clustermesh/types/types.go`` (CiliumClusterConfig, ``ValidateRemoteConfig``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fleetnet.errors import InvalidInput
from fleetnet.model import keys
from fleetnet.model.cilium_ids import DEFAULT_MAX_CONNECTED_CLUSTERS, _parse_key, cluster_id_problem
from fleetnet.model.gojson import _Decoder, go_json

ENDPOINT_SLICES_EXPORT_MODES = ("", "services-and-endpointslices", "endpointslices-only")

# Go field names (json tags where Cilium has them), in struct order
_CAPABILITY_FIELDS = (
    "syncedCanaries",
    "cached",
    "maxConnectedClusters",
    "serviceExportsEnabled",
    "endpointSlicesExportMode",
)


# ---------------------------------------------------------------------------------------------
# CiliumClusterConfig: cilium/cluster-config/<cluster>


@dataclass(frozen=True, slots=True)
class ClusterCapabilities:
    synced_canaries: bool = False
    cached: bool = False
    max_connected_clusters: int = 0
    # None: the cluster does not support MCS-API service exports at all
    service_exports_enabled: bool | None = None
    endpoint_slices_export_mode: str = ""

    def to_go(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.synced_canaries:
            out["syncedCanaries"] = True
        if self.cached:
            out["cached"] = True
        if self.max_connected_clusters:
            out["maxConnectedClusters"] = self.max_connected_clusters
        if self.service_exports_enabled is not None:
            out["serviceExportsEnabled"] = self.service_exports_enabled
        if self.endpoint_slices_export_mode:
            out["endpointSlicesExportMode"] = self.endpoint_slices_export_mode
        return out


@dataclass(frozen=True, slots=True)
class CiliumClusterConfig:
    """What a clustermesh-apiserver says about its cluster; every agent reads it before anything else."""

    id: int = 0
    capabilities: ClusterCapabilities = field(default_factory=ClusterCapabilities)

    @classmethod
    def exported(
        cls, cluster_id: int, max_connected_clusters: int = DEFAULT_MAX_CONNECTED_CLUSTERS
    ) -> CiliumClusterConfig:
        """The config a clustermesh-apiserver writes for its own cluster (sync canaries supported,
        MCS-API service exports supported but off)."""
        return cls(
            cluster_id,
            ClusterCapabilities(
                synced_canaries=True, max_connected_clusters=max_connected_clusters, service_exports_enabled=False
            ),
        )

    def to_go(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.id:
            out["id"] = self.id
        out["capabilities"] = self.capabilities.to_go()
        return out

    def to_json(self) -> bytes:
        return go_json(self.to_go())

    @classmethod
    def from_json(cls, data: bytes | str, key: str) -> CiliumClusterConfig:
        dec = _Decoder("cluster config", key)
        _parse_key(dec, key, keys.KeyKind.CLUSTER_CONFIG)
        top = dec.struct(dec.load(data), "", ("id", "capabilities"))
        caps = dec.struct(top.get("capabilities"), "capabilities", _CAPABILITY_FIELDS)
        exports = caps.get("serviceExportsEnabled")
        return cls(
            dec.uint(top.get("id"), "id", 32),
            ClusterCapabilities(
                synced_canaries=dec.boolean(caps.get("syncedCanaries"), "capabilities.syncedCanaries"),
                cached=dec.boolean(caps.get("cached"), "capabilities.cached"),
                max_connected_clusters=dec.uint(
                    caps.get("maxConnectedClusters"), "capabilities.maxConnectedClusters", 32
                ),
                service_exports_enabled=None
                if exports is None
                else dec.boolean(exports, "capabilities.serviceExportsEnabled"),
                endpoint_slices_export_mode=dec.string(
                    caps.get("endpointSlicesExportMode"), "capabilities.endpointSlicesExportMode"
                ),
            ),
        )

    def remote_problem(self, local_max_connected_clusters: int = DEFAULT_MAX_CONNECTED_CLUSTERS) -> str | None:
        """Cilium's ``ValidateRemoteConfig`` (config required, as in current Cilium): why an agent
        refuses this remote, or None. Id clashes with other clusters are the caller's to check."""
        if self.id == 0:
            return "remote cluster is missing cluster configuration"
        problem = cluster_id_problem(self.id, local_max_connected_clusters)
        if problem:
            return problem
        remote_max = self.capabilities.max_connected_clusters
        if (
            local_max_connected_clusters != DEFAULT_MAX_CONNECTED_CLUSTERS
            and remote_max != local_max_connected_clusters
        ):
            return f"mismatched MaxConnectedClusters; local={local_max_connected_clusters}, remote={remote_max}"
        if self.capabilities.endpoint_slices_export_mode not in ENDPOINT_SLICES_EXPORT_MODES:
            return f"invalid endpoint slices export mode {self.capabilities.endpoint_slices_export_mode!r}"
        return None


# ---------------------------------------------------------------------------------------------
# sync canaries and heartbeat: an RFC 3339 timestamp


def format_timestamp(when: datetime) -> bytes:
    """Go's ``time.Format(time.RFC3339)``: seconds precision, 'Z' for UTC, else ±hh:mm."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    text = when.replace(microsecond=0).isoformat()
    return (text[:-6] + "Z" if text.endswith("+00:00") else text).encode()


def parse_timestamp(data: bytes | str) -> datetime:
    """An RFC 3339 timestamp as written in ``cilium/synced/...`` and ``cilium/.heartbeat``."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as e:
        raise InvalidInput(f"{text!r} is not an RFC 3339 timestamp.") from e
    if when.tzinfo is None:
        raise InvalidInput(f"{text!r} is not an RFC 3339 timestamp: it has no time zone.")
    return when
