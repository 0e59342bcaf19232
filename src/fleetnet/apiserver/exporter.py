"""The clustermesh-apiserver of a local cluster: projects the cluster's state into its own etcd.

A cluster writes only its own keys (Cilium's single-writer rule): ``cilium/cluster-config/<name>``
(re-written if modified or deleted), ``cilium/state/nodes/v1/<name>/...``, and — through the
projections registered in ``projections`` — services, identities and ipcache entries. After the
first complete export of each prefix it writes that prefix's sync canary, so that remote agents
never sweep entries from a half-written dataset. It also keeps ``cilium/.heartbeat`` fresh and the
etcd users of its peers (``remote-<peer>``, read-only) in step with ``peers.json``.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from fleetnet.hub.paths import ClusterPaths
from fleetnet.kube.client import KubeClient
from fleetnet.kube.objects import ClusterObjects
from fleetnet.kvstore import users
from fleetnet.kvstore.client import EtcdClient
from fleetnet.model.cluster import ClusterConfig, write_atomic

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 60.0
POLL = 0.05
CONFIG_CHECK = 2.0  # how often the cluster-config key is verified (re-written if modified or deleted)


def cluster_config_value(cluster_id: int) -> bytes:
    return json.dumps(
        {"id": cluster_id, "capabilities": {"syncedCanaries": True, "maxConnectedClusters": 255}},
        separators=(",", ":"),
    ).encode()


def node_value(cfg: ClusterConfig, name: str, ip: str, pod_cidr: str) -> bytes:
    """A Cilium ``Node`` (Go field names, reference §3.3.3)."""
    net = ipaddress.IPv4Network(pod_cidr)
    return json.dumps(
        {
            "Name": name,
            "Cluster": cfg.name,
            "IPAddresses": [
                {"Type": "InternalIP", "IP": ip},
                {"Type": "CiliumInternalIP", "IP": str(net.network_address + 1)},
            ],
            "IPv4AllocCIDR": {"IP": str(net.network_address), "Mask": base64.b64encode(net.netmask.packed).decode()},
            "IPv4SecondaryAllocCIDRs": None,
            "IPv6AllocCIDR": None,
            "IPv6SecondaryAllocCIDRs": None,
            "IPv4HealthIP": "",
            "IPv6HealthIP": "",
            "IPv4IngressIP": "",
            "IPv6IngressIP": "",
            "ClusterID": cfg.cluster_id,
            "Source": "custom-resource",
            "EncryptionKey": 0,
            "Labels": {"kubernetes.io/hostname": name},
            "Annotations": {},
            "NodeIdentity": 0,
            "WireguardPubKey": "",
            "BootID": "",
        },
        separators=(",", ":"),
    ).encode()


class ObjectReader(Protocol):
    def list(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]: ...


# A projection maps the cluster's objects to the keys of one prefix: prefix name → (key prefix,
# function(cfg, objects) → {key: value}). Services, identities and ipcache register here.
Projection = Callable[[ClusterConfig, ObjectReader], Mapping[str, bytes]]
# what the clustermesh-apiserver watches (as ServiceAccount kube-system/clustermesh-apiserver)
WATCHED = ("Namespace", "Service", "EndpointSlice", "CiliumIdentity", "CiliumEndpoint", "CiliumNode")


@dataclass(frozen=True, slots=True)
class Prefix:
    canary_name: str  # the part after cilium/synced/<cluster>/
    key_prefix: str
    project: Projection


def nodes_projection(cfg: ClusterConfig, objects: ObjectReader) -> dict[str, bytes]:
    """The cluster's CiliumNodes, as the clustermesh-apiserver exports them."""
    out: dict[str, bytes] = {}
    for cn in objects.list("CiliumNode"):
        spec = cn.get("spec") or {}
        ip = next((a.get("ip") for a in spec.get("addresses") or [] if a.get("type") == "InternalIP"), None)
        cidrs = (spec.get("ipam") or {}).get("podCIDRs") or []
        if ip and cidrs:
            name = cn["metadata"]["name"]
            out[f"cilium/state/nodes/v1/{cfg.name}/{name}"] = node_value(cfg, name, str(ip), str(cidrs[0]))
    return out


def prefixes(cfg: ClusterConfig) -> list[Prefix]:
    from fleetnet.apiserver import projections

    return [
        Prefix("cilium/state/nodes/v1", f"cilium/state/nodes/v1/{cfg.name}/", nodes_projection),
        *projections.extra_prefixes(cfg),
    ]


class Exporter:
    def __init__(self, cluster_dir: Path) -> None:
        self.paths = ClusterPaths(cluster_dir)
        self.ap = self.paths.apiserver
        self.cfg = ClusterConfig.read(self.paths.config)
        self._changed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        kc = self.paths.kubeconfig("clustermesh-apiserver")
        self.objects = ClusterObjects(
            lambda: KubeClient.from_kubeconfig(kc, user_agent="clustermesh-apiserver/fleetnet"),
            WATCHED,
            self._on_change,
            field_manager="clustermesh-apiserver",
        )
        self.exported: dict[str, dict[str, bytes]] = {}
        self.users: set[str] = set()

    def _on_change(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._changed.set)

    async def _connect(self, cert: str, timeout: float) -> EtcdClient:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return await EtcdClient.connect(
                    [f"https://127.0.0.1:{self.cfg.apiserver_port}"],
                    ca_file=str(self.ap / "ca.crt"),
                    cert_file=str(self.ap / f"{cert}.crt"),
                    key_file=str(self.ap / f"{cert}.key"),
                    timeout=2.0,
                )
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.objects.start()
        while not await asyncio.to_thread(self.objects.wait_synced, 5.0):
            log.warning("waiting for the Kubernetes API of %s", self.cfg.name)
        root = await self._connect("root", 30.0)
        marker = self.ap / "users-initialized"
        if not marker.exists():
            await users.init_cluster_users(root, self.cfg.name)
            marker.write_text("1")
        await self.sync_users(root)
        admin = await self._connect("admin", 10.0)
        cc_key = f"cilium/cluster-config/{self.cfg.name}"
        await admin.put(cc_key, cluster_config_value(self.cfg.cluster_id))
        lease = await admin.grant_lease(600)
        keepalive = asyncio.create_task(admin.keepalive_forever(lease, 60.0))
        pfx = prefixes(self.cfg)
        for p in pfx:
            await self.sync_prefix(admin, p, initial=True)
            ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            await admin.put(f"cilium/synced/{self.cfg.name}/{p.canary_name}", ts.encode(), lease=lease)
        await admin.put("cilium/.heartbeat", datetime.now(UTC).isoformat().encode())
        write_atomic(self.ap / "status.json", json.dumps({"ready": True, "time": time.time()}))
        log.info("initial export of %s complete", self.cfg.name)
        last_hb = time.monotonic()
        last_peers = None
        cfg_mtime = self.paths.config.stat().st_mtime
        last_cc = time.monotonic()
        try:
            while True:
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout=POLL * 4)
                except TimeoutError:
                    pass
                changed = self._changed.is_set()
                self._changed.clear()
                peers_text = (self.ap / "peers.json").read_text() if (self.ap / "peers.json").exists() else "[]"
                if peers_text != last_peers:
                    last_peers = peers_text
                    await self.sync_users(root)
                mtime = self.paths.config.stat().st_mtime
                if mtime != cfg_mtime or changed:
                    cfg_mtime = mtime
                    self.cfg = ClusterConfig.read(self.paths.config)
                    for p in prefixes(self.cfg):
                        await self.sync_prefix(admin, p)
                if time.monotonic() - last_cc > CONFIG_CHECK:
                    last_cc = time.monotonic()
                    kv = await admin.get(cc_key)
                    if kv is None or kv.value != cluster_config_value(self.cfg.cluster_id):
                        await admin.put(cc_key, cluster_config_value(self.cfg.cluster_id))
                if time.monotonic() - last_hb > HEARTBEAT_INTERVAL:
                    await admin.put("cilium/.heartbeat", datetime.now(UTC).isoformat().encode())
                    last_hb = time.monotonic()
        finally:
            keepalive.cancel()
            self.objects.stop()

    async def sync_users(self, root: EtcdClient) -> None:
        try:
            peers = set(json.loads((self.ap / "peers.json").read_text()))
        except (OSError, ValueError):
            peers = set()
        for p in sorted(peers - self.users):
            await users.ensure_remote_user(root, p)
        for p in sorted(self.users - peers):
            await users.remove_remote_user(root, p)
        self.users = peers

    async def sync_prefix(self, admin: EtcdClient, p: Prefix, initial: bool = False) -> None:
        desired = dict(p.project(self.cfg, self.objects))
        if initial:
            kvs, _ = await admin.list_prefix(p.key_prefix)
            current = {kv.key: kv.value for kv in kvs}
        else:
            current = self.exported.get(p.key_prefix, {})
        puts = [admin.put(k, v) for k, v in desired.items() if current.get(k) != v]
        deletes = [admin.delete(k) for k in set(current) - set(desired)]
        # pipelined on the one gRPC channel, in bounded batches: one round trip per key is what limits
        # how fast a large change (a thousand pods) reaches the other clusters
        ops = puts + deletes
        for i in range(0, len(ops), 64):
            await asyncio.gather(*ops[i : i + 64])
        self.exported[p.key_prefix] = desired
