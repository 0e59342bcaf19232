"""Projections of a cluster's objects beyond its nodes (services, identities, ipcache).

Kept apart so each feature adds its prefix without touching the exporter loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fleetnet.model.cluster import ClusterConfig

if TYPE_CHECKING:
    from fleetnet.apiserver.exporter import Prefix


def extra_prefixes(cfg: ClusterConfig) -> list[Prefix]:
    from fleetnet.apiserver.exporter import Prefix

    def empty(_cfg: ClusterConfig, _objects: object) -> dict[str, bytes]:
        return {}

    # services, identities and ipcache entries: empty until their exporters land, but their sync
    # canaries are written so remote agents can report every prefix synced
    return [
        Prefix("cilium/state/services/v1", f"cilium/state/services/v1/{cfg.name}/", empty),  # type: ignore[arg-type]
        Prefix("cilium/state/identities/v1", "cilium/state/identities/v1/id/", empty),  # type: ignore[arg-type]
        Prefix("cilium/state/ip/v1", "cilium/state/ip/v1/default/", empty),  # type: ignore[arg-type]
    ]
