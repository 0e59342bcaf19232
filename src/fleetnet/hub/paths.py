"""Where a fleet keeps its files: everything lives under one home directory.

The home is ``--home``, else ``$FLEETNET_HOME``, else ``~/.fleetnet``. Each member gets a folder
that its own processes (agent, clustermesh-apiserver) read, so they never depend on the hub.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

BPFFS_ROOT = Path("/run/fleetnet")


def resolve_home(home: str | os.PathLike[str] | None) -> Path:
    if home:
        return Path(home).expanduser().absolute()
    env = os.environ.get("FLEETNET_HOME")
    if env:
        return Path(env).expanduser().absolute()
    return Path("~/.fleetnet").expanduser().absolute()


@dataclass(frozen=True, slots=True)
class FleetPaths:
    home: Path

    @property
    def store(self) -> Path:
        return self.home / "fleet.db"

    @property
    def socket(self) -> Path:
        return self.home / "fleetnet.sock"

    @property
    def pid(self) -> Path:
        return self.home / "fleetnet.pid"

    @property
    def daemon_record(self) -> Path:
        """The running daemon's process record (pid and start time), written by the daemon itself."""
        return self.home / "daemon.json"

    @property
    def log(self) -> Path:
        return self.home / "fleetnet.log"

    def bpffs(self, prefix: str) -> Path:
        """Where the fleet mounts its bpffs. Not under the home: libbpf turns every '.' of a pin path
        into '_', so the path must have no dot, and a home may (mktemp -d gives /tmp/tmp.XXXX)."""
        return BPFFS_ROOT / prefix

    @property
    def kubeconfig(self) -> Path:
        """One context per local member, named after it: what `fleetnet kubectl MEMBER` uses."""
        return self.home / "kubeconfig"

    @property
    def state(self) -> Path:
        """The recorded state `fleetnet down` cleans up from, even after a crash (kept outside SQLite)."""
        return self.home / "state.json"

    def cluster(self, name: str) -> ClusterPaths:
        return ClusterPaths(self.home / "clusters" / name)


@dataclass(frozen=True, slots=True)
class ClusterPaths:
    root: Path

    @property
    def config(self) -> Path:
        """The cluster's cilium-config equivalent: name, id, nodes, CIDRs, versions, mesh options."""
        return self.root / "cluster.json"

    @property
    def kube(self) -> Path:
        """The cluster's Kubernetes control plane: PKI, kubeconfigs, the API server's store."""
        return self.root / "kube"

    def kubeconfig(self, component: str) -> Path:
        return self.kube / f"{component}.kubeconfig"

    @property
    def clustermesh(self) -> Path:
        """Cilium's clustermesh config directory: one etcd client config per remote cluster."""
        return self.root / "clustermesh"

    @property
    def apiserver(self) -> Path:
        return self.root / "apiserver"

    @property
    def agent_socket(self) -> Path:
        return self.root / "agent.sock"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"
