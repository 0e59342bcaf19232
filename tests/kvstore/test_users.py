from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest

from fleetnet.errors import Conflict
from fleetnet.kvstore import KvstorePermissionDenied
from fleetnet.kvstore.client import EtcdClient
from fleetnet.kvstore.users import ensure_remote_user, init_cluster_users, remove_remote_user
from fleetnet.pki import clustermesh
from tests.kvstore.etcd_harness import CLUSTER, PEER, Etcd, Pki, start_etcd, stop_etcd


@pytest.fixture(scope="module")
def auth_etcd(pki: Pki) -> Iterator[Etcd]:
    """An etcd set up as a member ``c1`` whose peer ``c2`` may read it, with a few keys written."""
    server = start_etcd(pki)

    async def setup() -> None:
        async with await server.client("root") as root:
            await root.put("cilium/state/nodes/v1/c1/n1", b"node")
            await root.put("cilium/cluster-config/c1", b"{}")
            await root.put("cilium/cluster-config/c9", b"{}")
            await root.put("cilium/synced/c1/cilium/state/nodes/v1", b"now")
            await root.put("cilium/.heartbeat", b"now")
            await root.put("cilium/cache/nodes/v1/c9/n1", b"cached")
            await init_cluster_users(root, CLUSTER)
            await ensure_remote_user(root, PEER)

    try:
        asyncio.run(setup())
        yield server
    finally:
        stop_etcd(server)


@pytest.fixture
async def remote(auth_etcd: Etcd) -> AsyncIterator[EtcdClient]:
    async with await auth_etcd.client("remote") as client:
        yield client


async def test_remote_user_reads_what_cilium_allows(remote: EtcdClient) -> None:
    assert remote.user == "remote-c2"
    kvs, _ = await remote.list_prefix("cilium/state/")
    assert [kv.key for kv in kvs] == ["cilium/state/nodes/v1/c1/n1"]
    config = await remote.get("cilium/cluster-config/c1")
    assert config is not None and config.value == b"{}"
    assert await remote.get("cilium/.heartbeat") is not None
    assert len((await remote.list_prefix("cilium/synced/c1/"))[0]) == 1


async def test_remote_user_cannot_write_nor_read_elsewhere(remote: EtcdClient) -> None:
    with pytest.raises(KvstorePermissionDenied) as info:
        await remote.put("cilium/state/nodes/v1/c2/n1", b"intruder")
    assert "'cilium/state/nodes/v1/c2/n1'" in str(info.value) and "'remote-c2'" in str(info.value)
    with pytest.raises(KvstorePermissionDenied, match="remote-c2"):
        await remote.delete("cilium/state/nodes/v1/c1/n1")
    for key in ("cilium/cluster-config/c9", "cilium/cache/nodes/v1/c9/n1"):
        with pytest.raises(KvstorePermissionDenied, match=key):
            await remote.get(key)
    with pytest.raises(KvstorePermissionDenied, match="cilium/cache/"):
        await remote.list_prefix("cilium/cache/")
    with pytest.raises(KvstorePermissionDenied, match="refused to watch"):
        async with contextlib.aclosing(remote.watch_prefix("cilium/cache/", start_revision=1)) as watch:
            await asyncio.wait_for(anext(watch), timeout=5)


async def test_remote_user_can_watch_state(remote: EtcdClient) -> None:
    async with contextlib.aclosing(remote.watch_prefix("cilium/state/", start_revision=1)) as watch:
        event = await asyncio.wait_for(anext(watch), timeout=5)
    assert (event.kind, event.key) == ("put", "cilium/state/nodes/v1/c1/n1")


async def test_admin_writes_and_manages_users(auth_etcd: Etcd, pki: Pki) -> None:
    async with await auth_etcd.client("admin") as admin:
        assert admin.user == "admin-c1"
        assert await admin.put("cilium/state/nodes/v1/c1/n2", b"node") > 0
        assert await admin.delete("cilium/state/nodes/v1/c1/n2")
        assert set(await admin.list_users()) >= {"root", "admin-c1", "remote-c2"}
        assert await admin.user_roles("remote-c2") == ["remote"]
        with pytest.raises(Conflict):
            await init_cluster_users(admin, CLUSTER)  # not idempotent, like Cilium's


async def test_ensure_and_remove_remote_user(auth_etcd: Etcd, pki: Pki) -> None:
    pki.add("remote-c3", clustermesh.remote_cert(pki.ca, "c3"))
    async with await auth_etcd.client("root") as root, await auth_etcd.client("remote-c3") as c3:
        with pytest.raises(KvstorePermissionDenied, match="remote-c3"):
            await c3.get("cilium/cluster-config/c1")
        await ensure_remote_user(root, "c3")
        await ensure_remote_user(root, "c3")  # again: no error, same roles
        assert await root.user_roles("remote-c3") == ["remote"]
        assert await c3.get("cilium/cluster-config/c1") is not None
        await remove_remote_user(root, "c3")
        await remove_remote_user(root, "c3")  # already gone: fine
        # The open connection is refused from its next request on.
        with pytest.raises(KvstorePermissionDenied, match="remote-c3"):
            await c3.get("cilium/cluster-config/c1")
