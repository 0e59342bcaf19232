"""What ``kubeadm init`` does for a local cluster: its own CA (not the mesh CA), the API server's
serving certificate, the service-account signing key, and one kubeconfig per component.

Files live under the cluster's folder (``kube/``), keys and kubeconfigs 0600:

    ca.crt ca.key                   the cluster CA (kubeconfigs carry ca.crt as data)
    apiserver.crt apiserver.key     serving cert: SANs 127.0.0.1, the node addresses, kubernetes.default...
    sa.key sa.pub                   signs ServiceAccount tokens
    admin.kubeconfig                kubernetes-admin (system:masters), via the host's loopback port
    controller-manager.kubeconfig   system:kube-controller-manager, via the node address
    kubelet.kubeconfig              system:node:<node> (system:nodes), via the node address
    cilium.kubeconfig               ServiceAccount kube-system/cilium (a token), via the node address
    clustermesh-apiserver.kubeconfig   ServiceAccount kube-system/clustermesh-apiserver
    apiserver.json                  the API server's own configuration
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

from fleetnet.kube import kubeconfig
from fleetnet.kube.apiserver.server import Listen, ServerConfig
from fleetnet.pki import certs, tokens
from fleetnet.pki.certs import CertKeyPair

SECURE_PORT = 6443
ADMIN_USER = "kubernetes-admin"
SA_COMPONENTS = ("cilium", "clustermesh-apiserver")


@dataclass(frozen=True, slots=True)
class KubeFiles:
    root: Path

    @property
    def ca(self) -> Path:
        return self.root / "ca.crt"

    @property
    def config(self) -> Path:
        return self.root / "apiserver.json"

    @property
    def store(self) -> Path:
        return self.root / "state.db"

    def kubeconfig(self, component: str) -> Path:
        return self.root / f"{component}.kubeconfig"


def free_loopback_port() -> int:
    """A port on 127.0.0.1 nothing listens on now (the API server binds it for the host side)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def init(
    root: Path,
    cluster: str,
    *,
    node_netns: str,
    node_ip: str,
    node_name: str,
    node_ips: list[str],
    service_cidr: str,
    kubernetes_version: str,
    logs_dir: Path,
    fleet_prefix: str,
    host_port: int | None = None,
) -> ServerConfig:
    """Make the cluster's PKI and kubeconfigs (once) and write the API server's configuration."""
    files = KubeFiles(root)
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    if files.ca.exists():
        ca = CertKeyPair((root / "ca.crt").read_bytes(), (root / "ca.key").read_bytes())
    else:
        ca = certs.new_ca(f"{cluster}-ca", days=3650)
        certs.write_pair(root, "ca", ca)
    vip = str(next(ipaddress.IPv4Network(service_cidr).hosts()))
    if not (root / "apiserver.crt").exists():
        serving = certs.issue(
            ca,
            "kube-apiserver",
            dns=[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
                f"{cluster}-control-plane",
            ],
            ips=["127.0.0.1", vip, *node_ips],
            server=True,
            days=3650,
        )
        certs.write_pair(root, "apiserver", serving)
    if not (root / "sa.key").exists():
        priv, pub = tokens.new_signing_key()
        _write(root / "sa.key", priv, 0o600)
        _write(root / "sa.pub", pub, 0o644)
    port = host_port or free_loopback_port()
    inside = f"https://{node_ip}:{SECURE_PORT}"
    outside = f"https://127.0.0.1:{port}"
    admin = certs.issue(ca, ADMIN_USER, organizations=["system:masters"], days=3650)
    kubeconfig.write(
        files.kubeconfig("admin"),
        kubeconfig.build(
            cluster, outside, ca.cert_pem, cert_pem=admin.cert_pem, key_pem=admin.key_pem, user=f"{cluster}-admin"
        ),
    )
    cm = certs.issue(ca, "system:kube-controller-manager", days=3650)
    kubeconfig.write(
        files.kubeconfig("controller-manager"),
        kubeconfig.build(
            cluster,
            inside,
            ca.cert_pem,
            cert_pem=cm.cert_pem,
            key_pem=cm.key_pem,
            user="system:kube-controller-manager",
        ),
    )
    node = certs.issue(ca, f"system:node:{node_name}", organizations=["system:nodes"], days=3650)
    kubeconfig.write(
        files.kubeconfig("kubelet"),
        kubeconfig.build(
            cluster, inside, ca.cert_pem, cert_pem=node.cert_pem, key_pem=node.key_pem, user=f"system:node:{node_name}"
        ),
    )
    priv = (root / "sa.key").read_bytes()
    for sa in SA_COMPONENTS:
        token = tokens.mint(priv, "kube-system", sa, "")
        kubeconfig.write(files.kubeconfig(sa), kubeconfig.build(cluster, inside, ca.cert_pem, token=token, user=sa))
    cfg = ServerConfig(
        cluster=cluster,
        store=files.store,
        tls_cert=root / "apiserver.crt",
        tls_key=root / "apiserver.key",
        client_ca=root / "ca.crt",
        sa_public=root / "sa.pub",
        sa_private=root / "sa.key",
        service_cidr=service_cidr,
        kubernetes_version=kubernetes_version,
        advertise_address=node_ip,
        secure_port=SECURE_PORT,
        listen=(Listen(node_ip, SECURE_PORT, node_netns), Listen("127.0.0.1", port, None)),
        logs_dir=logs_dir,
        fleet_prefix=fleet_prefix,
    )
    import json

    _write(files.config, json.dumps(cfg.to_dict(), indent=2).encode(), 0o600)
    return cfg


def _write(path: Path, data: bytes, mode: int) -> None:
    import os

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def host_server(cfg: ServerConfig) -> str:
    """The URL the host (hub, kubectl) uses."""
    for x in cfg.listen:
        if x.netns is None:
            return f"https://{x.host}:{x.port}"
    raise ValueError("the API server has no host listener")


def standalone(
    root: Path,
    *,
    port: int | None = None,
    service_cidr: str = "10.96.0.0/16",
    version: str = "1.33.6",
    extra: dict[str, object] | None = None,
) -> ServerConfig:
    """An API server on 127.0.0.1 only, with its own PKI and an admin kubeconfig: what tests and
    benchmarks run (no cluster, no namespaces). Writes ``apiserver.json`` and ``admin.kubeconfig``."""
    import json

    root.mkdir(parents=True, exist_ok=True)
    port = port or free_loopback_port()
    ca = certs.new_ca("standalone-cluster-ca")
    certs.write_pair(root, "ca", ca)
    certs.write_pair(
        root, "apiserver", certs.issue(ca, "kube-apiserver", ips=["127.0.0.1"], dns=["localhost"], server=True)
    )
    priv, pub = tokens.new_signing_key()
    _write(root / "sa.key", priv, 0o600)
    _write(root / "sa.pub", pub, 0o644)
    admin = certs.issue(ca, ADMIN_USER, organizations=["system:masters"])
    kubeconfig.write(
        root / "admin.kubeconfig",
        kubeconfig.build(
            "standalone", f"https://127.0.0.1:{port}", ca.cert_pem, cert_pem=admin.cert_pem, key_pem=admin.key_pem
        ),
    )
    cfg = ServerConfig(
        cluster="standalone",
        store=root / "state.db",
        tls_cert=root / "apiserver.crt",
        tls_key=root / "apiserver.key",
        client_ca=root / "ca.crt",
        sa_public=root / "sa.pub",
        sa_private=root / "sa.key",
        service_cidr=service_cidr,
        kubernetes_version=version,
        advertise_address="127.0.0.1",
        secure_port=port,
        listen=(Listen("127.0.0.1", port),),
        logs_dir=root / "logs",
        fleet_prefix="fnstandalone",
        extra=dict(extra or {}),
    )
    _write(root / "apiserver.json", json.dumps(cfg.to_dict(), indent=2).encode(), 0o600)
    return cfg
