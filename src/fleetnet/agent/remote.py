"""One remote cluster as the agent sees it: connect, validate, list, watch, sweep.

Cilium's semantics (reference cilium-clustermesh.md §4.6, §7): the cluster-config must be read and
valid before anything else (id 0 is reserved, an id may not clash with ours or another remote's,
the name must match); each prefix is listed only after the remote's sync canary says its export is
complete; after a reconnect every known key is marked stale, the new listing refreshes the live
ones and the rest are deleted (mark and sweep). A disconnect keeps the last-known state; removing
the remote from the configuration drains it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fleetnet.errors import FleetnetError
from fleetnet.kvstore import KvstoreUnavailable
from fleetnet.kvstore.client import EtcdClient, KeyValue
from fleetnet.kvstore.config import EtcdClientConfig

log = logging.getLogger(__name__)

CLUSTER_CONFIG_TIMEOUT = 30.0  # Cilium waits 3 min; local clusters answer at once or not at all
RETRY_MIN, RETRY_MAX = 0.2, 3.0


class ClusterIDs:
    """Cilium's ClusterIDsManager: one remote per id, never the local id, never 0."""

    def __init__(self, local_id: int) -> None:
        self.local_id = local_id
        self.used: dict[int, str] = {}

    def reserve(self, cluster_id: int, name: str) -> str | None:
        if cluster_id == 0:
            return "clusterID 0 is reserved"
        if cluster_id == self.local_id:
            return f"clusterID {cluster_id} is assigned to the local cluster"
        owner = self.used.get(cluster_id)
        if owner is not None and owner != name:
            return f"clusterID {cluster_id} is already used by remote cluster {owner}"
        self.used[cluster_id] = name
        return None

    def release(self, cluster_id: int, name: str) -> None:
        if self.used.get(cluster_id) == name:
            del self.used[cluster_id]


@dataclass
class Prefix:
    """A watched prefix of the remote and the handler that turns its keys into local state."""

    name: str  # nodes | services | identities | endpoints
    key_prefix: str
    canary: str  # the sync canary key of that prefix
    on_upsert: Callable[[str, KeyValue], None]
    on_delete: Callable[[str, str], None]
    keys: set[str] = field(default_factory=set)
    synced: bool = False


class RemoteCluster:
    def __init__(
        self,
        name: str,
        config: EtcdClientConfig,
        ids: ClusterIDs,
        local_name: str,
        make_prefixes: Callable[[RemoteCluster], list[Prefix]],
        on_change: Callable[[], None],
    ) -> None:
        self.name = name
        self.config = config
        self.ids = ids
        self.local_name = local_name
        self.on_change = on_change
        self.connected = False
        self.config_retrieved = False
        self.cluster_id: int | None = None
        self.cluster_config: dict[str, Any] | None = None
        self.failures = 0
        self.last_failure: float | None = None
        self.last_failure_reason: str | None = None
        self.status = "Waiting for initial connection to be established"
        self.disconnected_since: float | None = None
        self.prefixes = make_prefixes(self)
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self.connected and self.config_retrieved and all(p.synced for p in self.prefixes)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"remote-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if self.cluster_id is not None:
            self.ids.release(self.cluster_id, self.name)

    def drain(self) -> None:
        """The remote was removed from the configuration: forget everything it told us."""
        for p in self.prefixes:
            for k in sorted(p.keys):
                p.on_delete(self.name, k)
            p.keys.clear()
            p.synced = False
        self.on_change()

    def _fail(self, reason: str) -> None:
        self.failures += 1
        self.last_failure = time.time()
        self.last_failure_reason = reason
        if self.connected or self.disconnected_since is None:
            self.disconnected_since = time.monotonic()
        self.connected = False
        self.status = f"error: {reason}"
        for p in self.prefixes:
            p.synced = False
        log.warning("remote cluster %s: %s", self.name, reason)
        self.on_change()

    async def _run(self) -> None:
        delay = RETRY_MIN
        while True:
            client: EtcdClient | None = None
            try:
                client = await EtcdClient.from_config(self.config, timeout=3.0)
                self.connected = True
                self.disconnected_since = None
                self.status = f"etcd: 1/1 connected: {self.config.endpoints[0]}"
                log.info("Connection to remote cluster %s established", self.name)
                await self._read_config(client)
                delay = RETRY_MIN
                await self._sync_and_watch(client)
            except asyncio.CancelledError:
                raise
            except (FleetnetError, OSError) as e:
                self._fail(str(e))
            except Exception as e:  # a bug must not end the agent's view of the mesh for good
                log.exception("remote cluster %s", self.name)
                self._fail(f"internal error: {e!r}")
            finally:
                if client is not None:
                    try:
                        await client.close()
                    except Exception:
                        pass
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

    async def _read_config(self, client: EtcdClient) -> None:
        import json

        key = f"cilium/cluster-config/{self.name}"
        deadline = time.monotonic() + CLUSTER_CONFIG_TIMEOUT
        while True:
            kv = await client.get(key)
            if kv is not None:
                break
            if time.monotonic() > deadline:
                raise KvstoreUnavailable(
                    f"remote cluster configuration required but not found at {key}: check that the "
                    "cluster name is correct."
                )
            await asyncio.sleep(0.1)
        cfg = json.loads(kv.value)
        cid = int(cfg.get("id", 0))
        if self.cluster_id is not None and self.cluster_id != cid:
            log.warning("Remote Cluster ID changed for %s: %s -> %s; draining", self.name, self.cluster_id, cid)
            self.ids.release(self.cluster_id, self.name)
            self.drain()
        reason = self.ids.reserve(cid, self.name)
        if reason:
            raise KvstoreUnavailable(f"invalid remote cluster configuration for {self.name}: {reason}")
        self.cluster_id = cid
        self.cluster_config = cfg
        self.config_retrieved = True

    async def _wait_canary(self, client: EtcdClient, p: Prefix) -> None:
        caps = (self.cluster_config or {}).get("capabilities") or {}
        if not caps.get("syncedCanaries"):
            return
        while await client.get(p.canary) is None:
            await asyncio.sleep(0.05)

    async def _sync_and_watch(self, client: EtcdClient) -> None:
        revisions: dict[str, int] = {}
        for p in self.prefixes:
            await self._wait_canary(client, p)
            kvs, rev = await client.list_prefix(p.key_prefix)
            stale = set(p.keys)
            for kv in kvs:
                stale.discard(kv.key)
                p.keys.add(kv.key)
                p.on_upsert(self.name, kv)
            for k in stale:  # mark and sweep: what the new listing lacks is gone
                p.keys.discard(k)
                p.on_delete(self.name, k)
            p.synced = True
            revisions[p.name] = rev
        self.on_change()
        watches = [asyncio.create_task(self._watch(client, p, revisions[p.name] + 1)) for p in self.prefixes]
        try:
            done, _ = await asyncio.wait(watches, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                t.result()
            raise KvstoreUnavailable(f"watch of remote cluster {self.name} ended")
        finally:
            for t in watches:
                t.cancel()

    async def _watch(self, client: EtcdClient, p: Prefix, start: int) -> None:
        async for ev in client.watch_prefix(p.key_prefix, start_revision=start):
            if ev.kind == "put":
                p.keys.add(ev.key)
                p.on_upsert(
                    self.name,
                    KeyValue(key=ev.key, value=ev.value, mod_revision=ev.mod_revision, create_revision=0, lease=0),
                )
            else:
                p.keys.discard(ev.key)
                p.on_delete(self.name, ev.key)
            self.on_change()

    def status_dict(self) -> dict[str, Any]:
        """Cilium's RemoteCluster API model (reference §7.7)."""
        caps = (self.cluster_config or {}).get("capabilities") or {}
        counts = {p.name: len(p.keys) for p in self.prefixes}
        return {
            "name": self.name,
            "ready": self.ready,
            "connected": self.connected,
            "status": self.status,
            "num-nodes": counts.get("nodes", 0),
            "num-endpoints": counts.get("endpoints", 0),
            "num-identities": counts.get("identities", 0),
            "num-shared-services": counts.get("services", 0),
            "num-failures": self.failures,
            "last-failure": self.last_failure,
            "last-failure-reason": self.last_failure_reason,
            "config": {
                "required": True,
                "retrieved": self.config_retrieved,
                "cluster-id": self.cluster_id,
                "kvstoremesh": False,
                "sync-canaries": bool(caps.get("syncedCanaries")),
            },
            "synced": {p.name: p.synced for p in self.prefixes},
        }
