"""Numeric security identities: ranges per cluster, reserved ids, allocation and remote validation.

Cilium encodes the cluster id in the identity number (``cluster_id << 16`` with 255 clusters, ``<< 15``
with 511), so identities are unique across a mesh without any translation and a remote cluster's
identities can be checked against the range its id owns. These are the same numbers fleetnet programs
into the policy map, so they follow Cilium bit for bit (``pkg/identity/numericidentity.go``).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum

from fleetnet.errors import Conflict, InvalidInput
from fleetnet.plan.labels import LABEL_CLUSTER, SOURCE_K8S, LabelSet, reserved_labels

# Identities below this are reserved and never allocated (the range of cluster 0 starts here).
MINIMAL_NUMERIC_IDENTITY = 256
# Identities travel in 24 bits on the wire (VXLAN/Geneve VNI); the cluster id takes the top bits of those.
NUMERIC_IDENTITY_BITLENGTH = 24
MAX_CONNECTED_CLUSTERS = (255, 511)


class ReservedIdentity(IntEnum):
    """Cilium's reserved identities; they belong to no cluster."""

    HOST = 1
    WORLD = 2
    UNMANAGED = 3
    HEALTH = 4
    INIT = 5
    REMOTE_NODE = 6
    KUBE_APISERVER = 7
    INGRESS = 8

    @property
    def label_name(self) -> str:
        return self.name.lower().replace("_", "-")


RESERVED_IDENTITIES: Mapping[int, LabelSet] = {int(r): reserved_labels(r.label_name) for r in ReservedIdentity}


def _check_max_connected(max_connected: int) -> None:
    if max_connected not in MAX_CONNECTED_CLUSTERS:
        raise InvalidInput(f"max-connected-clusters {max_connected} is not supported; use 255 or 511.")


def cluster_id_shift(max_connected: int = 255) -> int:
    """How far the cluster id is shifted inside an identity: 16 with 255 clusters, 15 with 511."""
    _check_max_connected(max_connected)
    return NUMERIC_IDENTITY_BITLENGTH - (max_connected + 1).bit_length() + 1


def _check_cluster_id(cluster_id: int, max_connected: int) -> None:
    _check_max_connected(max_connected)
    if not 0 <= cluster_id <= max_connected:
        raise InvalidInput(f"cluster id {cluster_id} is out of range; use 1..{max_connected} (0 means no mesh).")


def identity_range(cluster_id: int, max_connected: int = 255) -> tuple[int, int]:
    """The identities a cluster allocates from, both ends included (cluster 0: 256..65535)."""
    _check_cluster_id(cluster_id, max_connected)
    shift = cluster_id_shift(max_connected)
    low = MINIMAL_NUMERIC_IDENTITY if cluster_id == 0 else cluster_id << shift
    return low, ((cluster_id + 1) << shift) - 1


def cluster_of(identity: int, max_connected: int = 255) -> int:
    """The cluster id encoded in an identity (0 for reserved identities and cluster 0)."""
    return (identity >> cluster_id_shift(max_connected)) & max_connected


def is_reserved(identity: int) -> bool:
    return 0 < identity < MINIMAL_NUMERIC_IDENTITY


def allocate(existing: Mapping[LabelSet, int], labels: LabelSet, cluster_id: int, max_connected: int = 255) -> int:
    """The identity of ``labels`` in this cluster.

    Stable: a label set that already has an identity inside the cluster's range keeps it (one outside
    the range is left from an earlier cluster id and is replaced). A new label set takes the lowest id
    not in use, starting just above the bottom of the range.
    """
    low, high = identity_range(cluster_id, max_connected)
    current = existing.get(labels)
    if current is not None and low <= current <= high:
        return current
    used = {i for i in existing.values() if low <= i <= high}
    for candidate in range(low + 1, high + 1):
        if candidate not in used:
            return candidate
    raise Conflict(
        f"cluster id {cluster_id} has used all {high - low} identities of its range; "
        "remove unused workloads or label sets before adding new ones."
    )


def validate_remote_identity(
    identity: int,
    labels: LabelSet,
    remote_cluster_name: str,
    remote_cluster_id: int,
    max_connected: int = 255,
) -> str | None:
    """Why an identity imported from a remote cluster must be skipped, or None when it is valid.

    The same checks as Cilium's remote identity cache: the id lies in the range of the remote's cluster
    id, and the labels name the remote cluster with a ``k8s``-source cluster label.
    """
    if not 1 <= remote_cluster_id <= max_connected:
        return f"remote cluster {remote_cluster_name} has cluster id {remote_cluster_id}, outside 1..{max_connected}"
    low, high = identity_range(remote_cluster_id, max_connected)
    if not low <= identity <= high:
        return (
            f"identity {identity} is outside the range {low}..{high} of cluster id {remote_cluster_id} "
            f"({remote_cluster_name})"
        )
    label = labels.get(LABEL_CLUSTER)
    if label is None:
        return f"identity {identity} has no {LABEL_CLUSTER} label"
    if label.source != SOURCE_K8S:
        return f"identity {identity} has its cluster label with source {label.source}, expected {SOURCE_K8S}"
    if label.value != remote_cluster_name:
        return f"identity {identity} names cluster {label.value}, expected {remote_cluster_name}"
    return None
