"""The certificates of a ClusterMesh member, with Cilium's names (reference §4.3).

Keeping Cilium's common names matters beyond looks: etcd takes the client certificate's CN as the
user name, so these CNs are the users that ``fleetnet.kvstore.users`` creates and grants roles to.
"""

from __future__ import annotations

from collections.abc import Sequence

from fleetnet.pki.certs import CertKeyPair, issue

SERVER_NAME = "clustermesh-apiserver.cilium.io"
MESH_DOMAIN = "mesh.cilium.io"
ROOT_USER = "root"


def admin_user(cluster: str) -> str:
    return f"admin-{cluster}"


def remote_user(cluster: str) -> str:
    return f"remote-{cluster}"


def server_cert(
    ca: CertKeyPair, node_ips: Sequence[str], *, namespace: str = "kube-system", days: int = 1095
) -> CertKeyPair:
    """The etcd server certificate of a member's clustermesh-apiserver (``*-server-cert``): the chart's
    names (with the Service's, which agents dial with KVStoreMesh) and the addresses peers dial."""
    return issue(
        ca,
        SERVER_NAME,
        dns=(SERVER_NAME, f"*.{MESH_DOMAIN}", f"clustermesh-apiserver.{namespace}.svc"),
        ips=("127.0.0.1", "::1", *node_ips),
        server=True,
        days=days,
    )


def admin_cert(ca: CertKeyPair, cluster: str, *, days: int = 1095) -> CertKeyPair:
    """What the member's own exporter uses against its own etcd (root role)."""
    return issue(ca, admin_user(cluster), days=days)


def remote_cert(ca: CertKeyPair, cluster: str, *, days: int = 1095) -> CertKeyPair:
    """What ``cluster`` uses to read the other members' etcds (authMode ``cluster``: named after itself)."""
    return issue(ca, remote_user(cluster), days=days)


def local_cert(ca: CertKeyPair, cluster: str, *, days: int = 1095) -> CertKeyPair:
    """What the member's own agents use against its own clustermesh-apiserver with KVStoreMesh."""
    return issue(ca, f"local-{cluster}", days=days)


def root_cert(ca: CertKeyPair, *, days: int = 1095) -> CertKeyPair:
    """The etcd ``root`` user: only for setting up users and roles on a fresh etcd."""
    return issue(ca, ROOT_USER, days=days)
