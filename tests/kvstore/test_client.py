from __future__ import annotations

import asyncio
import contextlib
import shutil
import time

import pytest

from fleetnet.errors import InvalidInput
from fleetnet.kvstore import KvstoreLeaseExpired, KvstoreUnavailable
from fleetnet.kvstore import client as client_module
from fleetnet.kvstore.client import EtcdClient, WatchEvent
from fleetnet.kvstore.config import EtcdClientConfig
from fleetnet.pki import certs
from tests.kvstore.etcd_harness import Etcd, Pki, free_port, launch_etcd, stop_etcd, temp_dir
from tests.support.names import unique
from tests.support.wait import async_wait_for


def prefix() -> str:
    return f"test/{unique('p')}/"


async def test_put_get_delete(root: EtcdClient) -> None:
    p = prefix()
    rev1 = await root.put(p + "a", b"1")
    rev2 = await root.put(p + "a", b"2")
    kv = await root.get(p + "a")
    assert kv is not None
    assert (kv.key, kv.value, kv.mod_revision, kv.create_revision, kv.lease) == (p + "a", b"2", rev2, rev1, 0)
    assert rev2 > rev1
    assert await root.get(p + "missing") is None
    assert await root.delete(p + "a") is True
    assert await root.delete(p + "a") is False
    assert await root.get(p + "a") is None


async def test_list_prefix_and_delete_prefix(root: EtcdClient) -> None:
    p = prefix()
    for name in ("b", "a", "c/d"):
        await root.put(p + "x/" + name, name.encode())
    await root.put(p + "xy", b"outside")  # shares the characters but not the "x/" prefix
    last = await root.put(p + "x", b"outside too")

    kvs, revision = await root.list_prefix(p + "x/")

    assert [(kv.key, kv.value) for kv in kvs] == [(p + "x/a", b"a"), (p + "x/b", b"b"), (p + "x/c/d", b"c/d")]
    assert revision >= last
    assert await root.delete_prefix(p + "x/") == 3
    assert (await root.list_prefix(p + "x/"))[0] == []
    assert [kv.key for kv in (await root.list_prefix(p))[0]] == [p + "x", p + "xy"]


async def test_list_prefix_reads_pages_at_one_revision(root: EtcdClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "_PAGE", 2)
    p = prefix()
    for i in range(5):
        await root.put(f"{p}{i}", str(i).encode())
    kvs, revision = await root.list_prefix(p)
    assert [kv.value for kv in kvs] == [b"0", b"1", b"2", b"3", b"4"]
    assert revision == max(kv.mod_revision for kv in kvs)


async def test_lease_expiry_removes_key_and_keepalive_keeps_one(root: EtcdClient) -> None:
    p = prefix()
    # etcd raises a 1s TTL to its minimum (2s with a 1s election timeout): one wait covers both leases.
    short = await root.grant_lease(1)
    kept = await root.grant_lease(1)
    await root.put(p + "short", b"", lease=short)
    await root.put(p + "kept", b"", lease=kept)
    assert await root.keepalive_once(kept) >= 1
    keeper = asyncio.create_task(root.keepalive_forever(kept, 0.3))
    try:
        await async_wait_for(lambda: _gone(root, p + "short"), timeout=8, interval=0.1, what="the leased key to expire")
        kv = await root.get(p + "kept")
        assert kv is not None and kv.lease == kept
        await root.revoke_lease(kept)
        with pytest.raises(KvstoreLeaseExpired, match="grant a new lease"):
            await asyncio.wait_for(keeper, timeout=3)
    finally:
        keeper.cancel()
        with contextlib.suppress(BaseException):
            await keeper
    assert await root.get(p + "kept") is None
    with pytest.raises(KvstoreLeaseExpired):
        await root.keepalive_once(kept)
    await root.revoke_lease(kept)  # already gone: fine


async def _gone(client: EtcdClient, key: str) -> bool:
    return await client.get(key) is None


async def test_watch_sees_puts_and_deletes_in_order_from_a_revision(root: EtcdClient) -> None:
    p = prefix()
    _, start = await root.list_prefix(p)
    r1 = await root.put(p + "a", b"1")
    r2 = await root.put(p + "b", b"2")
    r3 = await root.put(p + "outside-prefix-sibling", b"")  # still under p: seen
    await root.put(p[:-1] + "-not-under", b"")  # not under p: not seen
    assert await root.delete(p + "a")
    r4 = (await root.list_prefix(p))[1]  # the delete's revision: nothing else writes meanwhile

    events: list[WatchEvent] = []
    async with contextlib.aclosing(root.watch_prefix(p, start_revision=start + 1)) as watch:
        async for event in watch:
            events.append(event)
            if len(events) == 4:
                break
        assert events == [
            WatchEvent("put", p + "a", b"1", r1),
            WatchEvent("put", p + "b", b"2", r2),
            WatchEvent("put", p + "outside-prefix-sibling", b"", r3),
            WatchEvent("delete", p + "a", b"", r4),
        ]
        # And live events after the history.
        r5 = await root.put(p + "c", b"3")
        assert await asyncio.wait_for(anext(watch), timeout=5) == WatchEvent("put", p + "c", b"3", r5)


async def test_watch_raises_unavailable_when_etcd_dies(fresh_etcd: Etcd) -> None:
    client = await fresh_etcd.client("root")
    try:
        p = prefix()
        rev = await client.put(p + "a", b"1")
        async with contextlib.aclosing(client.watch_prefix(p, start_revision=rev)) as watch:
            assert (await asyncio.wait_for(anext(watch), timeout=5)).key == p + "a"
            fresh_etcd.kill()
            started = time.monotonic()
            with pytest.raises(KvstoreUnavailable, match=f"etcd at {fresh_etcd.url}"):
                await asyncio.wait_for(anext(watch), timeout=5)
            assert time.monotonic() - started < 5
        # Calls fail fast too, naming the endpoint.
        with pytest.raises(KvstoreUnavailable, match="check that it is running"):
            await client.get(p + "a")
    finally:
        await client.close()


async def test_connect_with_wrong_ca_is_unavailable_with_a_sentence(etcd: Etcd, pki: Pki) -> None:
    directory = temp_dir()
    try:
        other_ca = certs.write_ca(directory, "other-ca", certs.new_ca("other"))
        cert, key = pki.pairs["root"]
        with pytest.raises(KvstoreUnavailable) as info:
            await EtcdClient.connect([etcd.url], ca_file=other_ca, cert_file=cert, key_file=key, timeout=2)
        message = str(info.value)
        assert message.startswith(f"the TLS handshake with etcd at {etcd.url} failed")
        assert "check that the trusted CA signed the server's certificate" in message
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def test_server_certificate_is_checked_against_the_ip_of_the_endpoint(pki: Pki) -> None:
    """grpc verifies an IP target by IP SAN: a server certificate without 127.0.0.1 is refused."""
    directory = temp_dir()
    no_ip = Pki(directory, pki.ca, pki.ca_file)
    no_ip.add(
        "server",
        certs.issue(pki.ca, "clustermesh-apiserver.cilium.io", dns=["*.mesh.cilium.io"], server=True),
    )
    server = launch_etcd(no_ip)
    cert, key = pki.pairs["root"]
    seen: list[str] = []

    async def refused_by_name() -> bool:
        try:
            client = await EtcdClient.connect(
                [server.url], ca_file=pki.ca_file, cert_file=cert, key_file=key, timeout=1
            )
        except KvstoreUnavailable as e:
            seen.append(str(e))  # "unreachable" while etcd is still starting
            return "Hostname Verification" in str(e)
        await client.close()
        raise AssertionError("connected to a server whose certificate does not name 127.0.0.1")

    try:
        await async_wait_for(refused_by_name, timeout=10, interval=0.05, what="a refusal by name")
        assert seen[-1].startswith(f"the TLS handshake with etcd at {server.url} failed")
    finally:
        stop_etcd(server)
        shutil.rmtree(directory, ignore_errors=True)


async def test_connection_refused_names_the_endpoint(pki: Pki) -> None:
    url = f"https://127.0.0.1:{free_port()}"
    cert, key = pki.pairs["root"]
    started = time.monotonic()
    with pytest.raises(KvstoreUnavailable, match=f"etcd at {url} is unreachable"):
        await EtcdClient.connect([url], ca_file=pki.ca_file, cert_file=cert, key_file=key, timeout=3)
    assert time.monotonic() - started < 3


async def test_connect_tries_endpoints_in_order_and_from_config(etcd: Etcd, pki: Pki) -> None:
    dead = f"https://127.0.0.1:{free_port()}"
    cert, key = pki.pairs["root"]
    cfg = EtcdClientConfig((dead, etcd.url), str(pki.ca_file), str(cert), str(key))
    async with await EtcdClient.from_config(cfg, timeout=3) as client:
        assert client.endpoint == etcd.url
        assert client.user == "root"
        status = await client.status()
        assert status.version.startswith("3.4")
        assert status.leader == status.member_id != 0
        assert status.cluster_id != 0 and status.db_size > 0 and status.raft_term >= 1


async def test_bad_endpoints_and_files_are_invalid_input(pki: Pki) -> None:
    cert, key = pki.pairs["root"]
    for endpoint in ("http://127.0.0.1:2379", "127.0.0.1:2379", "https://127.0.0.1"):
        with pytest.raises(InvalidInput, match="https://HOST:PORT"):
            await EtcdClient.connect([endpoint], ca_file=pki.ca_file, cert_file=cert, key_file=key)
    with pytest.raises(InvalidInput, match="cannot read the trusted CA file"):
        await EtcdClient.connect(["https://127.0.0.1:1"], ca_file="/nonexistent/ca.crt", cert_file=cert, key_file=key)
