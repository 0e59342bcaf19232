"""fleetnet: a fleet manager for cross-cluster networking (Cilium ClusterMesh, managed)."""

__version__ = "0.1.0"
