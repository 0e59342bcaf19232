"""Projections of security identities and ipcache entries (filled in by the policy feature)."""

from __future__ import annotations

from fleetnet.kube.objstore import ObjectStore
from fleetnet.model.cluster import ClusterConfig


def identities_projection(cfg: ClusterConfig, objects: ObjectStore) -> dict[str, bytes]:
    return {}


def ipcache_projection(cfg: ClusterConfig, objects: ObjectStore) -> dict[str, bytes]:
    return {}
