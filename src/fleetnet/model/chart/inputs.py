"""What the renderer is given: one member of one network, its certificates and its peers.

These are the values fleetnet would pass to Cilium's Helm chart (``cluster.name``, ``cluster.id``,
``clustermesh.config.clusters``, ``clustermesh.apiserver.*``...), as typed, validated values. A
value Cilium would refuse is refused here, with the sentence saying what to change, so that the
renderer itself never fails halfway.

Certificates are anything with ``cert_pem`` and ``key_pem`` bytes (``fleetnet.pki.CertKeyPair``
is one): the renderer only copies PEM text into Secrets and never parses it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import urlsplit

from fleetnet.errors import InvalidInput
from fleetnet.model.chart.meta import DEFAULT_NAMESPACE
from fleetnet.model.chart.versions import ChartVersion
from fleetnet.model.cilium import MAX_CONNECTED_CLUSTERS, cluster_id_problem
from fleetnet.model.kube_types import EMPTY, freeze
from fleetnet.model.names import CLUSTER_NAME_MAX, CLUSTER_NAME_RE

ServiceType = Literal["NodePort", "LoadBalancer", "ClusterIP"]
SERVICE_TYPES: tuple[str, ...] = ("NodePort", "LoadBalancer", "ClusterIP")

# How a member's etcd client configs name a peer's clustermesh-apiserver:
# - "address":  the peer's endpoint URLs verbatim (the chart's ``clusters[].address`` form); the
#               peer's server certificate must then carry those IPs as SANs, as fleetnet's do.
# - "hostname": https://<peer>.mesh.cilium.io:<port> resolved through Pod hostAliases (the chart's
#               ``clusters[].ips`` form, what ``cilium clustermesh connect`` writes). The aliases go
#               on the clustermesh-apiserver Deployment with KVStoreMesh, on the cilium DaemonSet
#               without it; fleetnet does not write the DaemonSet, so that needs KVStoreMesh.
PeerAddressing = Literal["address", "hostname"]

DEFAULT_IMAGE_REPOSITORY = "quay.io/cilium/clustermesh-apiserver"


class PemPair(Protocol):
    """A certificate and its key, PEM-encoded (``fleetnet.pki.CertKeyPair`` fits)."""

    @property
    def cert_pem(self) -> bytes: ...

    @property
    def key_pem(self) -> bytes: ...


def _check_cluster_name(what: str, name: str) -> None:
    if not name or len(name) > CLUSTER_NAME_MAX or not CLUSTER_NAME_RE.match(name):
        raise InvalidInput(
            f"{what} {name!r} is not a valid Cilium cluster name: use at most {CLUSTER_NAME_MAX} lower-case "
            "letters, digits and '-', starting and ending with a letter or digit."
        )
    if name == "default":
        raise InvalidInput(f"{what} 'default' is Cilium's name for a cluster outside any mesh; choose another name.")


@dataclass(frozen=True, slots=True)
class PeerTLS:
    """Client TLS material for one peer only (the chart's ``clusters[].tls``).

    Needed only when the peer's clustermesh-apiserver does not trust this member's own
    ``clustermesh-apiserver-remote-cert`` (a different CA); within one fleetnet network every
    member shares the network's CA and peers carry none. ``ca_pem`` takes effect only with a
    certificate and key, as in the chart.
    """

    cert_pem: bytes
    key_pem: bytes
    ca_pem: bytes | None = None


@dataclass(frozen=True, slots=True)
class Peer:
    """Another member of the network: its Cilium name and id, and where its etcd listens."""

    name: str
    cluster_id: int
    endpoints: tuple[str, ...]  # https://<ip>:<port> of its clustermesh-apiserver Service
    tls: PeerTLS | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "endpoints", tuple(self.endpoints))
        _check_cluster_name("peer name", self.name)
        if not self.endpoints:
            raise InvalidInput(f"peer {self.name} has no clustermesh-apiserver endpoint; give at least one https URL.")
        for url in self.endpoints:
            _split_endpoint(self.name, url)

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(_split_endpoint(self.name, url)[0] for url in self.endpoints)

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(sorted({_split_endpoint(self.name, url)[1] for url in self.endpoints}))


def _split_endpoint(peer: str, url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise InvalidInput(
            f"peer {peer} endpoint {url!r} is not a URL ({e}); write it like https://10.0.0.2:2379."
        ) from e
    if parts.scheme != "https" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise InvalidInput(
            f"peer {peer} endpoint {url!r} must be https://<address>:<port> (the clustermesh-apiserver speaks "
            "etcd over mutual TLS), like https://10.0.0.2:2379."
        )
    return parts.hostname, port


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class MemberCerts:
    """The member's clustermesh-apiserver certificates, issued from the network's CA.

    CNs as Cilium expects them (``fleetnet.pki.clustermesh``): server
    ``clustermesh-apiserver.cilium.io``; admin ``admin-<cluster>``; remote ``remote-<cluster>``
    (authMode ``cluster``, the user each peer's etcd knows this member by); local
    ``local-<cluster>`` (Cilium >= 1.17 with KVStoreMesh: the agents' user on their own
    clustermesh-apiserver).
    """

    server: PemPair
    admin: PemPair
    remote: PemPair
    local: PemPair | None = None


@dataclass(frozen=True, slots=True)
class ChartValues:
    """One member of one network, as the chart's values (defaults are the chart's, or said why not)."""

    cluster_name: str  # cluster.name
    cluster_id: int  # cluster.id, 1..max_connected_clusters, unique in the network
    network: str  # the ClusterMeshProfile, for the fleetnet.io/network annotation
    cilium_version: ChartVersion  # the member's running Cilium: picks the chart's shape and image tag
    ca: PemPair  # the network's CA (cilium-ca; ca.crt of every certificate Secret)
    certs: MemberCerts
    peers: tuple[Peer, ...] = ()  # clustermesh.config.clusters: every other member of the network
    kvstoremesh: bool = True  # clustermesh.apiserver.kvstoremesh.enabled (chart default since 1.16)
    max_connected_clusters: int = 255  # clustermesh.maxConnectedClusters: 255 or 511, the same mesh-wide
    service_type: ServiceType = "NodePort"  # clustermesh.apiserver.service.type
    # clustermesh.apiserver.service.nodePort. The chart's 32379 is left out on purpose: the same
    # NodePort in every cluster makes kube-proxy replacement answer locally (cilium/cilium#24692),
    # so fleetnet lets Kubernetes pick one per cluster unless told.
    node_port: int | None = None
    service_annotations: Mapping[str, str] = EMPTY  # e.g. AKS azure-load-balancer-internal: "true"
    peer_addressing: PeerAddressing = "address"
    policy_default_local_cluster: bool = True  # clustermesh.policyDefaultLocalCluster (>= 1.18)
    cache_ttl_seconds: float = 0.0  # clustermesh.cacheTTL (>= 1.19); 0 = never revoke, Cilium's default
    endpoint_slice_sync: bool = False  # clustermesh.enableEndpointSliceSynchronization
    cilium_endpoint_slice: bool = False  # ciliumEndpointSlice.enabled as the cluster runs it (>= 1.18 arg)
    # Whether cilium-ca carries the CA key, as the chart's cilium-ca always does: a Helm release
    # of Cilium that generates Hubble certificates (tls.auto.method=helm, its default) reads
    # cilium-ca and fails without ca.key. Without it, no cilium-ca is written at all (the chart's
    # tls.ca.cert-only case) and the CA reaches the cluster only as ca.crt in the certificate
    # Secrets; the network's key then never leaves the hub.
    ca_key_in_cluster: bool = True
    namespace: str = DEFAULT_NAMESPACE  # the namespace Cilium runs in
    replicas: int = 1  # clustermesh.apiserver.replicas
    image_repository: str = DEFAULT_IMAGE_REPOSITORY  # clustermesh.apiserver.image.repository (no digest)

    def __post_init__(self) -> None:
        ChartVersion.supported(self.cilium_version)
        peers = tuple(sorted(self.peers, key=lambda p: p.name))
        object.__setattr__(self, "peers", peers)
        object.__setattr__(self, "service_annotations", freeze(self.service_annotations))
        _check_cluster_name("cluster name", self.cluster_name)
        self._check_ids()
        self._check_service()
        self._check_peers()
        if self.kvstoremesh and self.cilium_version.at_least(17) and self.certs.local is None:
            raise InvalidInput(
                f"{self.cluster_name} runs KVStoreMesh on Cilium {self.cilium_version}, whose agents read the "
                f"local cache as local-{self.cluster_name}; issue that certificate (MemberCerts.local)."
            )
        if self.cache_ttl_seconds < 0:
            raise InvalidInput(f"the cache TTL must be zero (never revoke) or positive, not {self.cache_ttl_seconds}.")
        if self.replicas < 1:
            raise InvalidInput(f"the clustermesh-apiserver needs at least one replica, not {self.replicas}.")

    def _check_ids(self) -> None:
        if self.max_connected_clusters not in MAX_CONNECTED_CLUSTERS:
            raise InvalidInput(
                f"max-connected-clusters {self.max_connected_clusters} is not supported; "
                "supported values are [255, 511]."
            )
        problem = cluster_id_problem(self.cluster_id, self.max_connected_clusters)
        if problem is not None:
            raise InvalidInput(f"{self.cluster_name} cannot have cluster id {self.cluster_id}: {problem}.")

    def _check_service(self) -> None:
        if self.service_type not in SERVICE_TYPES:
            raise InvalidInput(
                f"service type {self.service_type!r} is not one of {', '.join(SERVICE_TYPES)} "
                "for the clustermesh-apiserver Service."
            )
        if self.node_port is not None:
            if self.service_type != "NodePort":
                raise InvalidInput(
                    f"a node port is only meaningful with service type NodePort, not {self.service_type}."
                )
            if not 1 <= self.node_port <= 65535:
                raise InvalidInput(f"node port {self.node_port} is not a port number.")

    def _check_peers(self) -> None:
        ids: dict[int, str] = {self.cluster_id: self.cluster_name}
        names: set[str] = set()
        for p in self.peers:
            if p.name == self.cluster_name:
                raise InvalidInput(f"{self.cluster_name} cannot be its own peer; give only the other members.")
            if p.name in names:
                raise InvalidInput(f"peer {p.name} is given twice; give each other member once.")
            names.add(p.name)
            problem = cluster_id_problem(p.cluster_id, self.max_connected_clusters)
            if problem is not None:
                raise InvalidInput(f"peer {p.name} cannot have cluster id {p.cluster_id}: {problem}.")
            if p.cluster_id in ids:
                raise InvalidInput(
                    f"peer {p.name} has cluster id {p.cluster_id}, already used by {ids[p.cluster_id]}; "
                    "cluster ids must be unique in a network."
                )
            ids[p.cluster_id] = p.name
            if self.peer_addressing == "hostname":
                self._check_hostname_peer(p)

    def _check_hostname_peer(self, p: Peer) -> None:
        if not self.kvstoremesh:
            raise InvalidInput(
                "hostname addressing without KVStoreMesh needs hostAliases on the cilium DaemonSet, which fleetnet "
                "does not write; use address addressing or turn KVStoreMesh on."
            )
        if not all(_is_ip(h) for h in p.hosts):
            raise InvalidInput(
                f"hostname addressing needs IP endpoints, but peer {p.name} has {', '.join(p.endpoints)}."
            )
        if len(p.ports) != 1:
            raise InvalidInput(
                f"hostname addressing gives a peer one port, but peer {p.name} listens on "
                f"{', '.join(map(str, p.ports))}."
            )
