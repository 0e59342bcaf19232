"""The agent's ClusterMesh subsystem: the set of remote clusters, driven by the config directory.

Cilium's rules (reference §4.1, §7.4): the subsystem exists only when the local cluster id is not 0;
each regular file of the clustermesh config directory whose content contains ``endpoints:`` is one
remote, named by the file; a file named like the local cluster is ignored; a changed file means
reconnect; a removed file means drain that remote.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fleetnet.agent.remote import ClusterIDs, Prefix, RemoteCluster
from fleetnet.agent.routes import NodeRoute, node_route_from_json
from fleetnet.kvstore import config as etcdconfig
from fleetnet.kvstore.client import KeyValue

log = logging.getLogger(__name__)

Upsert = Callable[[str, KeyValue], None]
Delete = Callable[[str, str], None]


def _noop_upsert(_cluster: str, _kv: KeyValue) -> None:
    return None


def _noop_delete(_cluster: str, _key: str) -> None:
    return None


class ClusterMesh:
    def __init__(self, local_name: str, local_id: int, config_dir: Path, on_change: Callable[[], None]) -> None:
        self.local_name = local_name
        self.ids = ClusterIDs(local_id)
        self.config_dir = config_dir
        self.on_change = on_change
        self.remotes: dict[str, RemoteCluster] = {}
        self._hashes: dict[str, str] = {}
        # remote state, by cluster: what the agent programs from
        self.nodes: dict[str, dict[str, NodeRoute]] = {}
        # services, identities and endpoints are consumed by the datapath features; until one
        # registers a handler the keys are only counted (readiness still waits for their canaries)
        self.handlers: dict[str, tuple[Upsert, Delete]] = {}

    def set_local_id(self, cluster_id: int) -> None:
        self.ids.local_id = cluster_id

    def _scan(self, enabled: bool) -> dict[str, tuple[str, etcdconfig.EtcdClientConfig]]:
        wanted: dict[str, tuple[str, etcdconfig.EtcdClientConfig]] = {}
        if not enabled or not self.config_dir.is_dir():
            return wanted
        for f in self.config_dir.iterdir():
            if not f.is_file() or f.name == self.local_name or "." in f.name:
                continue
            try:
                text = f.read_text()
            except OSError:
                continue
            if not etcdconfig.is_cluster_config(text):
                continue
            try:
                wanted[f.name] = (hashlib.sha256(text.encode()).hexdigest(), etcdconfig.parse(text))
            except Exception as e:
                log.warning("ignoring clustermesh config %s: %s", f, e)
        return wanted

    async def reconcile(self, enabled: bool) -> None:
        wanted = self._scan(enabled)
        for name in list(self.remotes):
            if name not in wanted:
                log.info("Remote cluster %s disconnected: removed from the configuration", name)
                rc = self.remotes.pop(name)
                await rc.stop()
                rc.drain()
                self._hashes.pop(name, None)
            elif wanted[name][0] != self._hashes.get(name):
                rc = self.remotes.pop(name)
                await rc.stop()
        for name, (digest, cfg) in wanted.items():
            if name in self.remotes:
                continue
            rc = RemoteCluster(name, cfg, self.ids, self.local_name, self._prefixes, self.on_change)
            self.remotes[name] = rc
            self._hashes[name] = digest
            rc.start()

    def _prefixes(self, rc: RemoteCluster) -> list[Prefix]:
        name = rc.name

        def node_upsert(cluster: str, kv: KeyValue) -> None:
            try:
                r = node_route_from_json(kv.value)
            except (ValueError, KeyError) as e:
                log.warning("skipping invalid node %s from %s: %s", kv.key, cluster, e)
                return
            if r is not None:
                self.nodes.setdefault(cluster, {})[kv.key] = r

        def node_delete(cluster: str, key: str) -> None:
            self.nodes.get(cluster, {}).pop(key, None)

        out = [
            Prefix(
                "nodes",
                f"cilium/state/nodes/v1/{name}/",
                f"cilium/synced/{name}/cilium/state/nodes/v1",
                node_upsert,
                node_delete,
            ),
        ]
        for kind, key_prefix, canary in (
            ("services", f"cilium/state/services/v1/{name}/", "cilium/state/services/v1"),
            ("identities", "cilium/state/identities/v1/id/", "cilium/state/identities/v1"),
            ("endpoints", "cilium/state/ip/v1/default/", "cilium/state/ip/v1"),
        ):
            up, down = self.handlers.get(kind, (_noop_upsert, _noop_delete))
            out.append(Prefix(kind, key_prefix, f"cilium/synced/{name}/{canary}", up, down))
        return out

    def remote_nodes(self) -> list[NodeRoute]:
        return [r for nodes in self.nodes.values() for r in nodes.values()]

    def status(self) -> dict[str, Any]:
        return {"clusters": [rc.status_dict() for rc in sorted(self.remotes.values(), key=lambda r: r.name)]}

    async def close(self) -> None:
        for rc in self.remotes.values():
            await rc.stop()
