"""The agent of one local cluster: what cilium-agent (and, for emulated clusters, the kubelet and
the controllers) do on a real cluster.

It runs inside the cluster's first node namespace (host network), reads its own folder —
``cluster.json`` (its cilium-config) and the clustermesh config directory —, the cluster's
Kubernetes API (list+watch, as the kubelet and as ServiceAccount ``kube-system/cilium``) and its
remote clusters' etcds, and programs the host: pod namespaces, routes, eBPF maps. It serves
Cilium-style status on a unix socket. A watch event or a changed file wakes the loop, which
reconciles; slow effects run in a worker thread so the remote watches never stall.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from fleetnet.agent.clustermesh import ClusterMesh
from fleetnet.agent.objects import AgentObjects
from fleetnet.agent.routes import RouteReconciler, desired_routes
from fleetnet.hub.paths import ClusterPaths
from fleetnet.kube.client import KubeClient
from fleetnet.kube.objects import ClusterObjects
from fleetnet.model.cluster import ClusterConfig

log = logging.getLogger(__name__)

POLL = 0.1
# Full reconciles run only when an input changed; this light check finds what changes without an
# input (a container that died, a pod that started listening) and reports it as a store change.
HEALTH = 1.0
# After a (re)start, state derived from remote clusters that the host still holds (routes to their pod
# CIDRs, their service backends, their ipcache entries) is left alone until every configured remote has
# synchronised once, or this long: Cilium's clustermesh-sync-timeout. Pruning it from an empty view
# would cut cross-cluster traffic for as long as the remotes take to reconnect.
SYNC_TIMEOUT = 30.0
# what each of the agent's two identities watches
KUBELET_KINDS = ("Pod", "Node", "Lease")
CILIUM_KINDS = (
    "Namespace",
    "Service",
    "EndpointSlice",
    "CiliumNetworkPolicy",
    "CiliumClusterwideNetworkPolicy",
    "CiliumIdentity",
    "CiliumEndpoint",
    "CiliumNode",
)


class Agent:
    def __init__(self, cluster_dir: Path) -> None:
        self.paths = ClusterPaths(cluster_dir)
        self.cfg = ClusterConfig.read(self.paths.config)
        self._loop: asyncio.AbstractEventLoop | None = None
        kubelet_kc, cilium_kc = self.paths.kubeconfig("kubelet"), self.paths.kubeconfig("cilium")
        self.kubelet_objects = ClusterObjects(
            lambda: KubeClient.from_kubeconfig(kubelet_kc, user_agent="kubelet/fleetnet"),
            KUBELET_KINDS,
            self._object_changed,
            field_manager="kubelet",
        )
        self.cilium_objects = ClusterObjects(
            lambda: KubeClient.from_kubeconfig(cilium_kc, user_agent="cilium-agent/fleetnet"),
            CILIUM_KINDS,
            self._object_changed,
            field_manager="cilium-agent",
            patch_kinds=("CiliumEndpoint",),
        )
        self.objects = AgentObjects(self.kubelet_objects, self.cilium_objects)
        self.started = time.time()
        self.mesh = ClusterMesh(self.cfg.name, self.cfg.cluster_id, self.paths.clustermesh, self._mark_dirty)
        self.routes = RouteReconciler()
        self._dirty = asyncio.Event()
        self._routes_dirty = True
        self.features: list[Any] = []  # kubelet, services, policy: each has reconcile() and status()
        self.last_error: str | None = None
        self.datapath: Any = None  # the eBPF datapath, once loaded (agent/datapath.py)
        self._t0 = time.monotonic()
        self._remotes_synced = False
        self._config_scanned = False

    def _mark_dirty(self) -> None:
        self._routes_dirty = True
        self._dirty.set()

    def _object_changed(self) -> None:
        """From an informer's thread: wake the loop."""
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._dirty.set)

    @property
    def mesh_enabled(self) -> bool:
        return self.cfg.mesh_enabled

    async def run(self) -> None:
        from fleetnet.agent.api import serve_api
        from fleetnet.agent.features import load_features

        self._loop = asyncio.get_running_loop()
        self.features, self.datapath = load_features(
            lambda: self.cfg, self.paths, self.objects, self.kubelet_objects, self.mesh
        )
        api = asyncio.create_task(serve_api(self, self.paths.agent_socket))
        self.objects.start()
        # nothing is decided from an empty view: the kubelet would take every running pod for deleted
        while not await asyncio.to_thread(self.objects.wait_synced, 5.0):
            log.warning("waiting for the API server of %s", self.cfg.name)
        cfg_mtime = 0.0
        cm_mtime = -1.0
        rev = -1
        last_full = last_health = 0.0
        try:
            while True:
                try:
                    m = self.paths.config.stat().st_mtime
                    if m != cfg_mtime:
                        cfg_mtime = m
                        self.cfg = ClusterConfig.read(self.paths.config)
                        self.mesh.set_local_id(self.cfg.cluster_id)
                        cm_mtime = -1.0
                        self._mark_dirty()
                    cm = self.paths.clustermesh.stat().st_mtime if self.paths.clustermesh.exists() else 0.0
                    if cm != cm_mtime:
                        cm_mtime = cm
                        await self.mesh.reconcile(self.mesh_enabled)
                        self._config_scanned = True
                    r = self.objects.revision()
                    if r != rev:
                        rev = r
                        self._dirty.set()
                    now = time.monotonic()
                    if self._dirty.is_set() or self._ttl_due(last_full, now):
                        self._dirty.clear()
                        last_full = last_health = now
                        await asyncio.to_thread(self._reconcile)
                    elif now - last_health > HEALTH:
                        last_health = now
                        await asyncio.to_thread(self._health)
                    self.last_error = None
                except Exception as e:
                    log.exception("reconcile failed")
                    self.last_error = str(e)
                try:
                    await asyncio.wait_for(self._dirty.wait(), timeout=POLL)
                except TimeoutError:
                    pass
        finally:
            api.cancel()
            self.objects.stop()
            await self.mesh.close()

    def _ttl_due(self, last_full: float, now: float) -> bool:
        """A remote's service cache TTL ran out since the last reconcile: its backends must go."""
        if not self._remotes_synced and now - self._t0 > SYNC_TIMEOUT:
            return True  # stop waiting for remotes that never synced: prune now
        ttl = self.cfg.mesh.service_cache_ttl_seconds if self.cfg.mesh is not None else 30.0
        for rc in self.mesh.remotes.values():
            if rc.disconnected_since is not None and last_full < rc.disconnected_since + ttl <= now:
                return True
        return False

    def _health(self) -> None:
        for f in self.features:
            check = getattr(f, "check", None)
            if check is not None:
                check()

    def remotes_synced(self) -> bool:
        """Whether remote-derived state may be pruned: every remote synced once since start (or timed out)."""
        if not self._remotes_synced and self._config_scanned:
            done = not self.mesh_enabled or all(rc.ready for rc in self.mesh.remotes.values())
            if done or time.monotonic() - self._t0 > SYNC_TIMEOUT:
                self._remotes_synced = True
        return self._remotes_synced

    def _reconcile(self) -> None:
        """Runs in a worker thread: every effect on the host goes through here."""
        synced = self.remotes_synced()
        if self._routes_dirty and synced:
            self._routes_dirty = False
            remote = self.mesh.remote_nodes() if self.mesh_enabled else []
            self.routes.reconcile(desired_routes(self.cfg.nodes, remote))
        errors = []
        for f in self.features:
            if synced or not getattr(f, "uses_remote_state", False):
                try:
                    f.reconcile()
                except Exception as e:  # one feature failing must not stop the others
                    log.exception("%s reconcile failed", type(f).__name__)
                    errors.append(f"{type(f).__name__}: {e}")
        if errors:
            raise RuntimeError("; ".join(errors))

    def status(self) -> dict[str, Any]:
        remotes = self.mesh.status()["clusters"]
        ready = sum(1 for c in remotes if c["ready"])
        return {
            "cluster": {"name": self.cfg.name, "id": self.cfg.cluster_id},
            "version": {"cilium": self.cfg.cilium_version, "kubernetes": self.cfg.kubernetes_version},
            "uptime": time.time() - self.started,
            "nodes": [{"name": n.name, "ip": n.ip, "podCIDR": n.pod_cidr} for n in self.cfg.nodes],
            "clustermesh": {
                "enabled": self.mesh_enabled,
                "remotes": len(remotes),
                "ready": ready,
                "summary": f"{ready}/{len(remotes)} remote clusters ready" if self.mesh_enabled else "disabled",
            },
            "routes": {ns: len(r) for ns, r in (self.routes.installed or {}).items()},
            "features": {type(f).__name__: f.status() for f in self.features},
            "lastError": self.last_error,
        }
