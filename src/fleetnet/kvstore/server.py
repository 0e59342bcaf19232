"""The command line of a member's etcd (the kvstore half of its clustermesh-apiserver).

Pure: this module only decides the argv; ``fleetnet.local.procs`` starts and stops the process. The
flags target Debian's etcd 3.4 on a small shared machine: one member, mutual TLS on the client port
(etcd takes the client certificate's CN as the user name, which is how Cilium's users and roles
work), plain HTTP for the peer port on loopback only (there are never other members), and a short
compaction history, a small quota and frequent snapshots because each cluster holds little data.
etcd 3.4 has no ``--unsafe-no-fsync`` (it arrived in 3.5), so that flag is not used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ETCD_BINARY = "/usr/bin/etcd"

HEARTBEAT_MS = 100
# Ten heartbeats: etcd's recommended ratio, and slack for a busy 2-core machine that runs many etcds.
ELECTION_MS = 1000
# Enough history for a watcher that lost its stream for a few minutes to resume without a re-list.
COMPACTION_RETENTION = "5m"
QUOTA_BACKEND_BYTES = 256 * 1024 * 1024
SNAPSHOT_COUNT = 10_000


@dataclass(frozen=True, slots=True)
class EtcdServerSpec:
    name: str
    data_dir: Path
    listen_ip: str
    client_port: int
    peer_port: int
    cert_file: Path
    key_file: Path
    trusted_ca_file: Path


def _host(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


def client_url(spec: EtcdServerSpec) -> str:
    """The URL other members' agents put in their etcd client config for this etcd."""
    return f"https://{_host(spec.listen_ip)}:{spec.client_port}"


def argv(spec: EtcdServerSpec) -> list[str]:
    """The full ``etcd`` command line for ``spec``."""
    listen = [client_url(spec)]
    if spec.listen_ip != "127.0.0.1":
        # Loopback too, so the member's own exporter and the hub's checks work without the underlay.
        listen.append(f"https://127.0.0.1:{spec.client_port}")
    peer = f"http://127.0.0.1:{spec.peer_port}"
    return [
        ETCD_BINARY,
        "--name",
        spec.name,
        "--data-dir",
        str(spec.data_dir),
        "--listen-client-urls",
        ",".join(listen),
        "--advertise-client-urls",
        client_url(spec),
        "--client-cert-auth",
        "--trusted-ca-file",
        str(spec.trusted_ca_file),
        "--cert-file",
        str(spec.cert_file),
        "--key-file",
        str(spec.key_file),
        "--listen-peer-urls",
        peer,
        "--initial-advertise-peer-urls",
        peer,
        "--initial-cluster",
        f"{spec.name}={peer}",
        "--initial-cluster-state",
        "new",
        "--initial-cluster-token",
        spec.name,
        "--heartbeat-interval",
        str(HEARTBEAT_MS),
        "--election-timeout",
        str(ELECTION_MS),
        "--auto-compaction-mode",
        "periodic",
        "--auto-compaction-retention",
        COMPACTION_RETENTION,
        "--quota-backend-bytes",
        str(QUOTA_BACKEND_BYTES),
        "--snapshot-count",
        str(SNAPSHOT_COUNT),
        "--max-snapshots",
        "2",
        "--max-wals",
        "2",
        "--logger",
        "zap",
        "--log-level",
        "warn",
        "--log-outputs",
        "stderr",
    ]
