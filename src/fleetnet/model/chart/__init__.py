"""Cilium's ClusterMesh objects as its Helm chart renders them, for one member of one network.

The Kubernetes driver joins every member, real or emulated, by server-side applying (field
manager ``fleetnet``) what this package renders: the objects ``install/kubernetes/cilium`` writes
for ``clustermesh.useAPIServer=true`` and ``clustermesh.config.enabled=true``, the way a user of
``cilium clustermesh enable`` + ``connect`` would get them, with fleetnet's certificates and peers.
Everything here is pure and golden-tested (``tests/model/chart``); the driver does the effects.

Followed: the chart of Cilium 1.19 (read at v1.19.6), with the shapes of 1.16, 1.17 and 1.18 where
they differ (read at v1.16.6, v1.17.6, v1.18.6); ``ChartVersion`` picks them:

- cilium-config keys: 1.18 adds ``policy-default-local-cluster``, 1.19 ``clustermesh-cache-ttl``;
- KVStoreMesh agents read their local cache with ``local-etcd-client.*`` from 1.17 (1.16 used the
  common remote certificate, and created an etcd user ``remote-<self>`` for it);
- etcd listens on 0.0.0.0 and advertises localhost from 1.18 (the pod IP before); the apiserver
  drops ``--enable-external-workloads`` in 1.18; kvstoremesh gets ``--enable-heartbeat=false`` in
  1.18 and ``--clustermesh-cache-ttl`` in 1.19; etcd gets ``--enable-grpc-gateway=false`` in 1.19;
- the ClusterRole gets ``get`` on CRDs in 1.17 and ``ciliumendpointslices`` in 1.18;
- 1.19 labels ``cilium-ca`` ``cilium.io/helm-template-non-idempotent``.

Modules: ``versions`` (which chart), ``inputs`` (the values), ``meta`` (names, labels), ``config``
(cilium-config keys, restart, leave), ``secrets`` (CA, certificates, peer configs), ``apiserver``
(the Deployment), ``access`` (Services, ServiceAccount, RBAC), ``render`` (everything in apply
order, and the leave set), ``ownership`` (self-managed ClusterMesh detection), ``facts`` (a live
cluster's Cilium facts).
"""

from __future__ import annotations

from fleetnet.model.chart.config import (
    chart_defaults,
    cilium_config,
    cilium_config_data,
    go_duration,
    join_snapshot,
    leave_cilium_config,
    leave_cilium_config_data,
    needs_rollout_restart,
    owned_keys,
    restart_reasons,
    unsupported_options,
)
from fleetnet.model.chart.facts import (
    CiliumFacts,
    IdentityFact,
    IpamFact,
    KubeProxyFact,
    PodCidrFact,
    RoutingFact,
    VersionFact,
    cluster_id_ipam_problem,
    max_connected_problem,
    read_cilium_facts,
    read_cilium_version,
    read_identity,
    read_ipam,
    read_kube_proxy,
    read_pod_cidrs,
    read_routing,
)
from fleetnet.model.chart.inputs import ChartValues, MemberCerts, Peer, PeerTLS, PemPair
from fleetnet.model.chart.meta import ANNOTATION_NETWORK, LABEL_MANAGED_BY, MANAGED_BY_FLEETNET, ObjectRef
from fleetnet.model.chart.ownership import MeshOwnership, clustermesh_ownership, self_managed_reason
from fleetnet.model.chart.render import JoinRendering, leave_refs, render_join, stale_refs
from fleetnet.model.chart.versions import SUPPORTED_MINORS, ChartVersion

__all__ = [
    "ANNOTATION_NETWORK",
    "LABEL_MANAGED_BY",
    "MANAGED_BY_FLEETNET",
    "SUPPORTED_MINORS",
    "ChartValues",
    "ChartVersion",
    "CiliumFacts",
    "IdentityFact",
    "IpamFact",
    "JoinRendering",
    "KubeProxyFact",
    "MemberCerts",
    "MeshOwnership",
    "ObjectRef",
    "Peer",
    "PeerTLS",
    "PemPair",
    "PodCidrFact",
    "RoutingFact",
    "VersionFact",
    "chart_defaults",
    "cilium_config",
    "cilium_config_data",
    "cluster_id_ipam_problem",
    "clustermesh_ownership",
    "go_duration",
    "join_snapshot",
    "leave_cilium_config",
    "leave_cilium_config_data",
    "leave_refs",
    "max_connected_problem",
    "needs_rollout_restart",
    "owned_keys",
    "read_cilium_facts",
    "read_cilium_version",
    "read_identity",
    "read_ipam",
    "read_kube_proxy",
    "read_pod_cidrs",
    "read_routing",
    "render_join",
    "restart_reasons",
    "self_managed_reason",
    "stale_refs",
    "unsupported_options",
]
