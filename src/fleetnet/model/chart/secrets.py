"""The Secrets and the users ConfigMap of a member's ClusterMesh: CA, certificates, peer configs.

Shapes follow the chart (``install/kubernetes/cilium/templates``):

- ``cilium-ca`` (``cilium-ca-secret.yaml``): no type (Opaque), keys ``ca.crt`` and ``ca.key``.
- ``clustermesh-apiserver-{server,admin,remote,local}-cert`` (``clustermesh-apiserver/tls-provided``,
  the chart's shape when the certificates come from outside as fleetnet's do; ``local`` as in
  ``tls-helm/local-secret.yaml``): ``kubernetes.io/tls`` with ``ca.crt``, ``tls.crt``, ``tls.key``.
- ``cilium-clustermesh`` and ``cilium-kvstoremesh`` (``clustermesh-config/``): one key per peer,
  the etcd client config text of ``clustermesh-config-generate-etcd-cfg``, plus the peer's own
  client TLS material as ``<peer>.etcd-client.{crt,key}`` and ``<peer>.etcd-client-ca.crt``.
  Without KVStoreMesh the agents read ``cilium-clustermesh`` and dial every peer. With it,
  kvstoremesh reads ``cilium-kvstoremesh`` (the peers) and ``cilium-clustermesh`` points every
  peer at the local cache, ``https://clustermesh-apiserver.<ns>.svc:2379``, with the
  ``local-etcd-client.*`` files (1.17+; 1.16 used ``common-etcd-client.*`` there).
- ``clustermesh-remote-users`` (``clustermesh-apiserver/users-configmap.yaml``): the etcd users
  ``remote-<peer>`` the apiserver creates (authMode ``cluster``; 1.16 also ``remote-<self>`` with
  KVStoreMesh, the user its agents then read the cache as).

The files the configs name are projected by the chart's agent DaemonSet and kvstoremesh container
into ``/var/lib/cilium/clustermesh/``: ``common-etcd-client*`` from the remote-cert Secret,
``local-etcd-client*`` from the local-cert Secret, and every key of the peer Secret as is.
"""

from __future__ import annotations

from typing import Any

from fleetnet.kvstore.config import EtcdClientConfig, render
from fleetnet.model.chart.inputs import ChartValues, Peer, PemPair
from fleetnet.model.chart.meta import (
    ADMIN_CERT_SECRET,
    APISERVER,
    CA_SECRET,
    CLUSTERMESH_CONFIG_DIR,
    CLUSTERMESH_SECRET,
    KVSTOREMESH_SECRET,
    LABEL_NON_IDEMPOTENT,
    LABEL_PART_OF,
    LOCAL_CERT_SECRET,
    REMOTE_CERT_SECRET,
    SECRET_TYPE_TLS,
    SERVER_CERT_SECRET,
    TLS_CA,
    TLS_CERT,
    TLS_KEY,
    USERS_CONFIG_MAP,
    b64,
    metadata,
)

CA_KEY = "ca.key"
MESH_DOMAIN = "mesh.cilium.io"  # clustermesh.config.domain
ETCD_PORT = 2379
COMMON_PREFIX = "common-"  # the member's own remote-cert, shared by every peer entry
LOCAL_PREFIX = "local-"  # the local-cert, for the agents' connection to their own KVStoreMesh cache
USERS_KEY = "users.yaml"


def ca_secret(values: ChartValues) -> dict[str, Any] | None:
    """``cilium-ca`` with the network's CA, or None when its key stays in the hub (see ChartValues)."""
    if not values.ca_key_in_cluster:
        return None
    # 1.19 labels cilium-ca non-idempotent even when the CA is provided; 1.16-1.18 have no label.
    labels = {LABEL_NON_IDEMPOTENT: "true"} if values.cilium_version.at_least(19) else {}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(CA_SECRET, values.namespace, values.network, labels=labels),
        "data": {TLS_CA: b64(values.ca.cert_pem), CA_KEY: b64(values.ca.key_pem)},
    }


def tls_secret(values: ChartValues, name: str, pair: PemPair) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(name, values.namespace, values.network),
        "type": SECRET_TYPE_TLS,
        "data": {TLS_CA: b64(values.ca.cert_pem), TLS_CERT: b64(pair.cert_pem), TLS_KEY: b64(pair.key_pem)},
    }


def certificate_secrets(values: ChartValues) -> list[dict[str, Any]]:
    """The clustermesh-apiserver certificates: server, admin, remote, and local with KVStoreMesh."""
    certs = values.certs
    out = [
        tls_secret(values, SERVER_CERT_SECRET, certs.server),
        tls_secret(values, ADMIN_CERT_SECRET, certs.admin),
        tls_secret(values, REMOTE_CERT_SECRET, certs.remote),
    ]
    if values.kvstoremesh and certs.local is not None:
        out.append(tls_secret(values, LOCAL_CERT_SECRET, certs.local))
    return out


def users_yaml(values: ChartValues) -> str:
    """The etcd users the clustermesh-apiserver creates for remote readers (role ``remote``)."""
    names = [p.name for p in values.peers]
    if values.kvstoremesh and not values.cilium_version.at_least(17):
        names.insert(0, values.cluster_name)
    return "users:\n" + "".join(f"- name: remote-{n}\n  role: remote\n" for n in names)


def users_config_map(values: ChartValues) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(USERS_CONFIG_MAP, values.namespace, values.network, labels={LABEL_PART_OF: "cilium"}),
        "data": {USERS_KEY: users_yaml(values)},
    }


def local_cache_endpoint(namespace: str) -> str:
    """Where the agents find their own KVStoreMesh cache (the chart's ``$override``)."""
    return f"https://{APISERVER}.{namespace}.svc:{ETCD_PORT}"


def peer_hostname(peer: Peer) -> str:
    return f"{peer.name}.{MESH_DOMAIN}"


def peer_endpoints(values: ChartValues, peer: Peer) -> tuple[str, ...]:
    """The URLs a member dials for ``peer``, per ``values.peer_addressing``."""
    if values.peer_addressing == "hostname":
        return (f"https://{peer_hostname(peer)}:{peer.ports[0]}",)
    return peer.endpoints


def _files(prefix: str, own_ca: bool) -> tuple[str, str, str]:
    """(trusted-ca-file, cert-file, key-file) under the clustermesh config directory."""
    ca = f"{prefix}etcd-client-ca.crt" if own_ca else f"{COMMON_PREFIX}etcd-client-ca.crt"
    return (
        f"{CLUSTERMESH_CONFIG_DIR}/{ca}",
        f"{CLUSTERMESH_CONFIG_DIR}/{prefix}etcd-client.crt",
        f"{CLUSTERMESH_CONFIG_DIR}/{prefix}etcd-client.key",
    )


def remote_config(values: ChartValues, peer: Peer) -> str:
    """The etcd client config that dials ``peer`` itself (cilium-kvstoremesh, or cilium-clustermesh without it)."""
    tls = peer.tls
    prefix = f"{peer.name}." if tls is not None else COMMON_PREFIX
    # the chart honours clusters[].tls.caCert only together with a certificate and key
    ca, cert, key = _files(prefix, tls is not None and tls.ca_pem is not None)
    return render(EtcdClientConfig(peer_endpoints(values, peer), trusted_ca_file=ca, cert_file=cert, key_file=key))


def local_config(values: ChartValues) -> str:
    """The etcd client config cilium-clustermesh gives every peer with KVStoreMesh: the local cache."""
    prefix = LOCAL_PREFIX if values.cilium_version.at_least(17) else COMMON_PREFIX
    ca, cert, key = _files(prefix, values.cilium_version.at_least(17))
    return render(
        EtcdClientConfig((local_cache_endpoint(values.namespace),), trusted_ca_file=ca, cert_file=cert, key_file=key)
    )


def _peer_tls_data(peer: Peer) -> dict[str, str]:
    if peer.tls is None:
        return {}
    data = {}
    if peer.tls.ca_pem is not None:
        data[f"{peer.name}.etcd-client-ca.crt"] = b64(peer.tls.ca_pem)
    data[f"{peer.name}.etcd-client.key"] = b64(peer.tls.key_pem)
    data[f"{peer.name}.etcd-client.crt"] = b64(peer.tls.cert_pem)
    return data


def _remote_data(values: ChartValues) -> dict[str, str]:
    data: dict[str, str] = {}
    for peer in values.peers:
        data[peer.name] = b64(remote_config(values, peer))
        data.update(_peer_tls_data(peer))
    return data


def clustermesh_secret(values: ChartValues) -> dict[str, Any]:
    """``cilium-clustermesh``: what the agents (and the operator) read, one key per peer."""
    if values.kvstoremesh:
        local = b64(local_config(values))
        data = {peer.name: local for peer in values.peers}
    else:
        data = _remote_data(values)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(CLUSTERMESH_SECRET, values.namespace, values.network),
        "data": data,
    }


def kvstoremesh_secret(values: ChartValues) -> dict[str, Any] | None:
    """``cilium-kvstoremesh``: what KVStoreMesh reads to reach the peers (None without KVStoreMesh)."""
    if not values.kvstoremesh:
        return None
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(KVSTOREMESH_SECRET, values.namespace, values.network),
        "data": _remote_data(values),
    }
