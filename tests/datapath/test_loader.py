"""Loading, pins and map access without traffic: a private bpffs per test, no namespaces needed
except where attachment is the subject."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from pyroute2 import IPRoute, netns

from fleetnet.datapath import bpf
from fleetnet.datapath.bpf import BpfMap, MapFull, PinNotFound
from fleetnet.datapath.loader import MAP_NAMES, OBJECT, PROGRAMS, ClusterDatapath, is_bpffs, mount_bpffs, umount_bpffs
from fleetnet.datapath.maps import (
    REV_NAT_ID,
    Backend,
    EndpointInfo,
    Frontend,
    IpcacheEntry,
    PolicyEntry,
    SyncStats,
    encode_endpoint_info,
    encode_endpoint_key,
    encode_lb4_key,
    encode_slot_key,
)
from fleetnet.errors import InvalidInput, NotFound, SystemFailure
from tests.support.names import unique

root = pytest.mark.root


def test_a_missing_object_says_to_run_make_build(tmp_path: Path) -> None:
    dp = ClusterDatapath(tmp_path, "c1", obj=tmp_path / "bpf_lxc.o")
    with pytest.raises(SystemFailure, match=r"missing; run `make build`"):
        dp.load()


def test_cluster_names_are_checked(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not a valid name"):
        ClusterDatapath(tmp_path, "../etc")


def test_loading_outside_a_bpffs_is_refused(tmp_path: Path) -> None:
    if not OBJECT.exists():
        pytest.skip("needs the built object (make build)")
    with pytest.raises(SystemFailure, match="not on a bpffs"):
        ClusterDatapath(tmp_path, "c1").load()


@root
def test_mount_bpffs_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "fs"
    try:
        mount_bpffs(path)
        mount_bpffs(path)
        assert is_bpffs(path)
        assert Path("/proc/self/mountinfo").read_text().count(f" {path} ") == 1
    finally:
        umount_bpffs(path)
    assert not is_bpffs(path)
    umount_bpffs(path)  # nothing mounted: nothing to do


@root
def test_load_pins_once_and_reuses_the_pins(bpffs: Path) -> None:
    with ClusterDatapath(bpffs, "c1") as dp:
        assert dp.load() is True
        assert sorted(p.name for p in dp.progs_dir.iterdir()) == sorted(PROGRAMS)
        assert sorted(p.name for p in dp.maps_dir.iterdir()) == sorted(MAP_NAMES)
        ids = _prog_ids(dp)
        map_ids = {n: dp.map(n).info.id for n in MAP_NAMES}
        dp.ipcache.upsert("10.1.0.0/16", 1234)
    with ClusterDatapath(bpffs, "c1") as again:
        assert again.load() is False
        assert _prog_ids(again) == ids
        assert again.ipcache.items() == {"10.1.0.0/16": IpcacheEntry(1234)}
        assert again.loaded_digest() == hashlib.sha256(OBJECT.read_bytes()).digest()
        again.upgrade()  # new programs, same maps
        assert _prog_ids(again) != ids
        ids = _prog_ids(again)
        # Pins made from another object (an agent upgrade): load() swaps the programs in place.
        again.map("fn_build").update(b"\0\0\0\0", bytes(32))
        assert again.load() is True
        assert _prog_ids(again) != ids
        assert {n: again.map(n).info.id for n in MAP_NAMES} == map_ids
        assert again.ipcache.items() == {"10.1.0.0/16": IpcacheEntry(1234)}
        again.unload()
    assert not (bpffs / "c1").exists()


def _prog_ids(dp: ClusterDatapath) -> dict[str, int]:
    out = {}
    for name in PROGRAMS:
        fd = bpf.obj_get(dp.progs_dir / name)
        try:
            out[name] = bpf.prog_info(fd).id
        finally:
            bpf.close_fd(fd)
    return out


@root
def test_clusters_have_separate_maps(bpffs: Path) -> None:
    with ClusterDatapath(bpffs, "c1") as c1, ClusterDatapath(bpffs, "c2") as c2:
        c1.load()
        c2.load()
        c1.services.upsert_service(Frontend("10.96.0.1", 80), [Backend("10.1.0.2", 80)])
        assert c2.services.list_services() == {}


@root
def test_sync_of_10000_services_round_trips(bpffs: Path) -> None:
    with ClusterDatapath(bpffs, "big") as dp:
        dp.load()
        desired = {
            Frontend(f"10.96.{i // 250}.{1 + i % 250}", 80 + i % 3, "UDP" if i % 5 == 0 else "TCP"): [
                Backend(f"10.1.{i // 250}.{1 + i % 250}", 8080, 1),
                Backend(f"10.2.{i // 250}.{1 + i % 250}", 8080, 2),
            ]
            for i in range(10_000)
        }
        started = time.monotonic()
        assert dp.services.sync(desired) == SyncStats(10_000, 0, 0)
        took = time.monotonic() - started
        assert dp.services.list_services() == desired
        assert took < 5, f"sync of 10,000 services took {took:.2f}s"

        # Half deleted, a hundred changed, a hundred added: the diff, applied in batches.
        changed = dict(list(desired.items())[5_000:])
        for f in list(changed)[:100]:
            changed[f] = [Backend("10.3.0.1", 9090, 3)]
        for i in range(100):
            changed[Frontend(f"10.97.0.{1 + i}", 443)] = [Backend("10.3.0.2", 8443, 3)]
        assert dp.services.sync(changed) == SyncStats(100, 100, 5_000)
        assert dp.services.list_services() == changed
        # Backends nobody uses any more are gone; a restarted writer finds nothing to do.
        assert len(dp.services.backend_ids()) == len({b for bs in changed.values() for b in bs})
        assert len(list(dp.map("fn_lb4_be").keys())) == len(dp.services.backend_ids())
    with ClusterDatapath(bpffs, "big") as again:
        assert again.services.sync(changed) == SyncStats(0, 0, 0)
        assert again.services.sync({}) == SyncStats(0, 0, 5_100)
        for name in ("fn_lb4_svc", "fn_lb4_slots", "fn_lb4_be", "fn_lb4_revnat"):
            assert list(again.map(name).keys()) == [], name


@root
def test_a_half_written_service_is_repaired_by_the_next_sync(bpffs: Path) -> None:
    f, g = Frontend("10.96.0.1", 80), Frontend("10.96.0.2", 80)
    backends = [Backend("10.1.0.2", 80), Backend("10.1.0.3", 80), Backend("10.1.0.4", 80)]
    with ClusterDatapath(bpffs, "c1") as dp:
        dp.load()
        dp.services.sync({f: backends, g: backends[:1]})
        # As if a writer died mid-update: a slot gone, a stray slot past the count, a lost rev-NAT.
        slots, revnat = dp.map("fn_lb4_slots"), dp.map("fn_lb4_revnat")
        key = encode_lb4_key(f)
        slots.delete(encode_slot_key(key, 1))
        slots.update(encode_slot_key(key, 7), slots.lookup(encode_slot_key(key, 0)) or b"")
        revnat.delete(REV_NAT_ID.pack(dp.services.rev_nat_ids()[g]))
    with ClusterDatapath(bpffs, "c1") as dp:
        assert dp.services.sync({f: backends, g: backends[:1]}) == SyncStats(0, 2, 0)
        assert dp.services.list_services() == {f: backends, g: backends[:1]}
        assert len(list(dp.map("fn_lb4_slots").keys())) == 4
        assert len(list(dp.map("fn_lb4_revnat").keys())) == 2


@root
def test_bpf_map_operations_and_errors(bpffs: Path) -> None:
    with ClusterDatapath(bpffs, "c1") as dp:
        dp.load()
        m = dp.map("fn_endpoints")
        key = encode_endpoint_key("10.1.0.2")
        value = encode_endpoint_info(7, EndpointInfo(1, 1000, "10.1.0.2"))
        assert m.lookup(key) is None
        m.update(key, value)
        assert m.lookup(key) == value
        assert list(m.keys()) == [key]
        assert dict(m.items()) == {key: value}
        assert m.delete(key) is True
        assert m.delete(key) is False
        with pytest.raises(ValueError, match="key of 3 bytes"):
            m.lookup(b"abc")

        keys = [encode_endpoint_key(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}") for i in range(m.info.max_entries)]
        m.update_batch(keys, [value] * len(keys))
        assert sum(1 for _ in m.items()) == m.info.max_entries
        with pytest.raises(MapFull, match=r"bpf map fn_endpoints: update failed: .*the map is full \(16384 entries\)"):
            m.update(encode_endpoint_key("192.168.0.1"), value)
        assert m.delete_batch([*keys[:10], encode_endpoint_key("192.168.0.1"), *keys[10:20]]) == 20
        assert m.clear() == m.info.max_entries - 20
        assert list(m.keys()) == []

        with pytest.raises(PinNotFound, match=r"opening pin .*nothere failed: No such file"):
            BpfMap(dp.maps_dir / "nothere")
        closed = BpfMap(dp.maps_dir / "fn_policy")
        closed.close()
        closed.close()


@root
def test_per_cpu_metrics_read_as_zero_when_idle(bpffs: Path) -> None:
    with ClusterDatapath(bpffs, "c1") as dp:
        dp.load()
        assert dp.metrics.read() == {}
        values = dp.map("fn_metrics").lookup_percpu(b"\0\0\0\0")
        assert values is not None and len(values) == bpf.possible_cpus()


@root
def test_ipcache_longest_prefix_and_sync(bpffs: Path) -> None:
    with ClusterDatapath(bpffs, "c1") as dp:
        dp.load()
        ipc = dp.ipcache
        ipc.upsert("10.2.0.0/16", 2 << 16 | 5, cluster_id=2)
        ipc.upsert("10.2.0.7", 2 << 16 | 9, cluster_id=2)
        assert ipc.lookup("10.2.0.7") == IpcacheEntry(2 << 16 | 9, 2)
        assert ipc.lookup("10.2.3.4") == IpcacheEntry(2 << 16 | 5, 2)
        assert ipc.lookup("10.3.0.1") is None
        with pytest.raises(InvalidInput, match="0 means any"):
            ipc.upsert("10.9.0.1", 0)
        stats = ipc.sync({"10.2.0.7/32": IpcacheEntry(77, 2), "10.4.0.0/24": IpcacheEntry(88, 4)})
        assert stats == SyncStats(1, 1, 1)
        assert ipc.items() == {"10.2.0.7/32": IpcacheEntry(77, 2), "10.4.0.0/24": IpcacheEntry(88, 4)}
        assert ipc.delete("10.4.0.0/24") and not ipc.delete("10.4.0.0/24")


@root
def test_policy_replace_is_a_diff(bpffs: Path) -> None:
    with ClusterDatapath(bpffs, "c1") as dp:
        dp.load()
        a = PolicyEntry("ingress", 1001, 80, 6)
        b = PolicyEntry("egress", 0, 53, 17)
        c = PolicyEntry("ingress", 1002, deny=True)
        assert dp.policy.replace_endpoint(5, [a, b]) == SyncStats(2, 0, 0)
        assert dp.policy.replace_endpoint(6, [a]) == SyncStats(1, 0, 0)
        assert dp.policy.replace_endpoint(5, [a, c, PolicyEntry("ingress", 1001, 80, 6, deny=True)]) == SyncStats(
            1, 1, 1
        )
        assert dp.policy.entries(5) == sorted([c, PolicyEntry("ingress", 1001, 80, 6, deny=True)])
        assert dp.policy.entries(6) == [a]
        dp.close()
        assert dp.policy.endpoints() == {5, 6}  # rebuilt from the map by a new writer
        assert dp.policy.delete_endpoint(5) == 2
        assert dp.policy.entries(5) == []


@root
def test_attach_detach_and_prune_follow_namespaces(bpffs: Path) -> None:
    ns = unique("fnl")
    netns.create(ns)
    try:
        with IPRoute(netns=ns, flags=0) as ipr:
            ipr.link("add", ifname="lxc.0", kind="veth", peer={"ifname": "lxc0p"})
            ifindex = ipr.link_lookup(ifname="lxc.0")[0]
        with ClusterDatapath(bpffs, "c1") as dp:
            with pytest.raises(SystemFailure, match="not loaded"):
                dp.attach(ns, "lxc.0", EndpointInfo(1, 1000, "10.1.0.2"))
            dp.load()
            with pytest.raises(NotFound, match="does not exist in network namespace"):
                dp.attach(ns, "nope0", EndpointInfo(1, 1000, "10.1.0.2"))
            with pytest.raises(NotFound, match="network namespace"):
                dp.attach(unique("fnx"), "lxc.0", EndpointInfo(1, 1000, "10.1.0.2"))
            assert dp.attach(ns, "lxc.0", EndpointInfo(1, 1000, "10.1.0.2")) == ifindex
            # The same veth now serving another address replaces the old entry.
            dp.attach(ns, "lxc.0", EndpointInfo(1, 1000, "10.1.0.3", ingress_enforced=True))
            eps = dp.endpoints.items()
            assert list(eps) == ["10.1.0.3"] and eps["10.1.0.3"].ifindex == ifindex
            assert eps["10.1.0.3"].netns_inode == os.stat(f"/var/run/netns/{ns}").st_ino
            assert dp.attachments() == [(ns, "lxc.0")]
            dp.endpoints.set_enforcement("10.1.0.3", ingress=False, egress=True)
            info = dp.endpoints.items()["10.1.0.3"].info
            assert (info.ingress_enforced, info.egress_enforced) == (False, True)
            dp.detach(ns, "lxc.0")
            dp.detach(ns, "lxc.0")
            assert dp.attachments() == [] and dp.endpoints.items() == {}

            dp.attach(ns, "lxc.0", EndpointInfo(1, 1000, "10.1.0.3"))
            netns.remove(ns)
            assert dp.prune() == 3  # the endpoint and both links
            assert dp.attachments() == [] and dp.endpoints.items() == {}
            dp.detach(ns, "lxc.0")  # the namespace is gone: nothing left to do
    finally:
        if os.path.exists(f"/var/run/netns/{ns}"):
            netns.remove(ns)
