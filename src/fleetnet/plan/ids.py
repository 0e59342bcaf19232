"""Cilium cluster ids for the members of one network: 1..255, unique, stable while a member stays.

Id 0 is reserved by Cilium ("ClusterMesh disabled"); ids encode into security identities
(cluster id << 16), so an id must never change under a running member. Cilium's extended mode
(max-connected-clusters 511) allows 1..511; a caller that uses it passes ``maximum``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fleetnet.errors import Conflict

CLUSTER_ID_MIN = 1
CLUSTER_ID_MAX = 255


def allocate_ids(kept: Mapping[str, int], joining: Sequence[str], maximum: int = CLUSTER_ID_MAX) -> dict[str, int]:
    """Ids for ``joining`` members (lowest free first), leaving the ``kept`` ids untouched."""
    used = set(kept.values())
    out: dict[str, int] = {}
    candidate = CLUSTER_ID_MIN
    for name in joining:
        while candidate in used:
            candidate += 1
        if candidate > maximum:
            raise Conflict(f"no free Cilium cluster id for member {name}: all {maximum} are in use.")
        out[name] = candidate
        used.add(candidate)
    return out
