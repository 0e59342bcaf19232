"""The configuration a local cluster's own processes run from (its ``cilium-config``).

The hub writes ``cluster.json`` into the member's folder; the agent and the clustermesh-apiserver
of that member read it. ``cluster_id`` 0 means "not in a network" — ClusterMesh is off, as in Cilium.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class NodeConfig:
    name: str
    netns: str
    ip: str  # the node's address on the underlay (its InternalIP)
    pod_cidr: str


@dataclass(frozen=True, slots=True)
class MeshConfig:
    profile: str
    require_global_namespace: bool = False
    policy_default_local_cluster: bool = True
    service_cache_ttl_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    name: str
    fleet_prefix: str  # prefix of every network namespace this fleet creates
    pod_cidr: str
    service_cidr: str
    kubernetes_version: str
    cilium_version: str
    nodes: tuple[NodeConfig, ...]
    bpffs: str
    cluster_id: int = 0
    mesh: MeshConfig | None = None
    apiserver_port: int = 2379
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mesh_enabled(self) -> bool:
        # Cilium creates the ClusterMesh subsystem only with a cluster id and a config directory
        return self.cluster_id != 0 and self.mesh is not None

    @property
    def control_node(self) -> NodeConfig:
        """The node whose namespace hosts the agent and the clustermesh-apiserver (host network)."""
        return self.nodes[0]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> ClusterConfig:
        d = json.loads(text)
        mesh = d.get("mesh")
        return ClusterConfig(
            name=d["name"],
            fleet_prefix=d["fleet_prefix"],
            pod_cidr=d["pod_cidr"],
            service_cidr=d["service_cidr"],
            kubernetes_version=d["kubernetes_version"],
            cilium_version=d["cilium_version"],
            nodes=tuple(NodeConfig(**n) for n in d["nodes"]),
            bpffs=d["bpffs"],
            cluster_id=int(d.get("cluster_id", 0)),
            mesh=None if mesh is None else MeshConfig(**mesh),
            apiserver_port=int(d.get("apiserver_port", 2379)),
            extra=dict(d.get("extra") or {}),
        )

    def write(self, path: Path) -> None:
        write_atomic(path, self.to_json())

    @staticmethod
    def read(path: Path) -> ClusterConfig:
        return ClusterConfig.from_json(path.read_text())


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Readers poll these files: a rename makes each change appear whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
