"""Cilium's ClusterMesh kvstore values, byte for byte: what one cluster writes and others read.

A fleetnet clustermesh-apiserver must be readable by a real Cilium agent and the other way round,
so these types encode exactly as Go's ``encoding/json`` encodes Cilium's structs (Go field names
where the struct has no tags, struct field order, sorted map keys, Go's HTML escaping) and decode
as ``json.Unmarshal`` does (field names matched case-insensitively, unknown fields ignored, null
leaving the zero value, a wrong JSON type refused), followed by the same validation the Cilium
store applies when it reads a remote key (reference cilium-clustermesh.md §2.3, §3.3). A value
that Cilium would refuse raises ``InvalidInput`` whose sentence is the reason.

Sources: ``pkg/clustermesh/store/store.go`` (ClusterService), ``pkg/identity/identity.go``
(IPIdentityPair), ``pkg/node/types/node.go`` and ``pkg/node/store`` (Node),
``pkg/clustermesh/types/types.go`` (CiliumClusterConfig, cluster ids), ``pkg/labels`` (the
identity's label string).

The types live in one module per kvstore value (``cilium_service``, ``cilium_ipcache``,
``cilium_node``, ``cilium_identity``, ``cilium_config``; cluster ids and the shared key checks in
``cilium_ids``); this module gathers them and is the one to import.
"""

from __future__ import annotations

# InvalidInput, keys and the gojson and kube_types names were importable from here before the
# split, so they still are
from fleetnet.errors import InvalidInput
from fleetnet.model import keys
from fleetnet.model.cilium_config import (
    ENDPOINT_SLICES_EXPORT_MODES,
    CiliumClusterConfig,
    ClusterCapabilities,
    format_timestamp,
    parse_timestamp,
)
from fleetnet.model.cilium_identity import (
    LABEL_SOURCE_K8S,
    LABEL_SOURCE_UNSPEC,
    POLICY_LABEL_CLUSTER,
    Identity,
    Label,
    format_labels,
    parse_labels,
)
from fleetnet.model.cilium_ids import (
    CLUSTER_ID_MIN,
    DEFAULT_MAX_CONNECTED_CLUSTERS,
    MAX_CONNECTED_CLUSTERS,
    MINIMAL_NUMERIC_IDENTITY,
    cluster_id_problem,
    identity_bounds,
)
from fleetnet.model.cilium_ipcache import (
    RESERVED_IDENTITY_HOST,
    RESERVED_IDENTITY_REMOTE_NODE,
    IPIdentityPair,
    NamedPort,
)
from fleetnet.model.cilium_node import NODE_SOURCE_CUSTOM_RESOURCE, Node, NodeAddress
from fleetnet.model.cilium_service import BackendZone, ClusterService, L4Addr
from fleetnet.model.gojson import go_ip_string, go_json
from fleetnet.model.kube_types import EMPTY, FrozenMap, freeze

__all__ = [
    "CLUSTER_ID_MIN",
    "DEFAULT_MAX_CONNECTED_CLUSTERS",
    "EMPTY",
    "ENDPOINT_SLICES_EXPORT_MODES",
    "LABEL_SOURCE_K8S",
    "LABEL_SOURCE_UNSPEC",
    "MAX_CONNECTED_CLUSTERS",
    "MINIMAL_NUMERIC_IDENTITY",
    "NODE_SOURCE_CUSTOM_RESOURCE",
    "POLICY_LABEL_CLUSTER",
    "RESERVED_IDENTITY_HOST",
    "RESERVED_IDENTITY_REMOTE_NODE",
    "BackendZone",
    "CiliumClusterConfig",
    "ClusterCapabilities",
    "ClusterService",
    "FrozenMap",
    "IPIdentityPair",
    "Identity",
    "InvalidInput",
    "L4Addr",
    "Label",
    "NamedPort",
    "Node",
    "NodeAddress",
    "cluster_id_problem",
    "format_labels",
    "format_timestamp",
    "freeze",
    "go_ip_string",
    "go_json",
    "identity_bounds",
    "keys",
    "parse_labels",
    "parse_timestamp",
]
