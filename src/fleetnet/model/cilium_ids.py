"""Cluster ids and the numeric identity range of each cluster, and the checks every kvstore value
makes against its key and its remote cluster.

Source: ``pkg/clustermesh/types/types.go`` (``ValidateClusterID``, ``MaxConnectedClusters``) and
``pkg/identity`` (the per-cluster identity ranges).
"""

from __future__ import annotations

from fleetnet.errors import InvalidInput
from fleetnet.model import keys
from fleetnet.model.gojson import _Decoder

CLUSTER_ID_MIN = 0
MAX_CONNECTED_CLUSTERS = (255, 511)
DEFAULT_MAX_CONNECTED_CLUSTERS = 255
MINIMAL_NUMERIC_IDENTITY = 256


# ---------------------------------------------------------------------------------------------
# cluster ids and identity ranges


def _check_max_connected(max_connected_clusters: int) -> None:
    if max_connected_clusters not in MAX_CONNECTED_CLUSTERS:
        raise InvalidInput(
            f"max-connected-clusters {max_connected_clusters} is not supported; supported values are [255, 511]."
        )


def cluster_id_problem(cluster_id: int, max_connected_clusters: int = DEFAULT_MAX_CONNECTED_CLUSTERS) -> str | None:
    """Cilium's ``ValidateClusterID``: why ``cluster_id`` cannot name a cluster of the mesh, or None."""
    _check_max_connected(max_connected_clusters)
    if cluster_id == CLUSTER_ID_MIN:
        return f"ClusterID {CLUSTER_ID_MIN} is reserved"
    if cluster_id > max_connected_clusters or cluster_id < 0:
        return f"ClusterID > {max_connected_clusters} is not supported"
    return None


def identity_bounds(cluster_id: int, max_connected_clusters: int = DEFAULT_MAX_CONNECTED_CLUSTERS) -> tuple[int, int]:
    """The numeric identities cluster ``cluster_id`` may allocate (inclusive bounds)."""
    _check_max_connected(max_connected_clusters)
    if cluster_id == 0:
        return MINIMAL_NUMERIC_IDENTITY, 65535
    shift = 24 - (max_connected_clusters + 1).bit_length() + 1
    return cluster_id << shift, ((cluster_id + 1) << shift) - 1


# ---------------------------------------------------------------------------------------------
# checks shared by the value types: the key is of the right kind, the value names the right cluster


def _parse_key(dec: _Decoder, key: str, kind: keys.KeyKind) -> keys.ParsedKey:
    try:
        parsed = keys.parse_key(key)
    except InvalidInput:
        dec.fail("", "the key is not a ClusterMesh key")
    if parsed.kind != kind:
        dec.fail("", f"the key is a {parsed.kind} key, not a {kind} key")
    return parsed


def _check_cluster(dec: _Decoder, value_cluster: str, key_cluster: str | None, expected: str | None) -> None:
    if expected is not None and value_cluster != expected:
        dec.fail("", f"unexpected cluster name: got {value_cluster}, expected {expected}")
    if key_cluster is not None and value_cluster != key_cluster:
        dec.fail("", f"unexpected cluster name: got {value_cluster}, expected {key_cluster} (from the key)")
