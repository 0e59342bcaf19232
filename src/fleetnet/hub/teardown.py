"""`fleetnet down`: remove everything a fleet made on the host, from the recorded state alone.

Order matters: processes first (so nothing re-creates what we remove), then namespaces (pods,
nodes, underlays: deleting a namespace deletes its links and routes), then per-namespace files,
then bpffs mounts. Processes are ended by recorded pid and start time; as a safety net, any
process still living inside one of the fleet's namespaces is ended too — such a process can
only have been started by the fleet.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from fleetnet.hub.paths import FleetPaths
from fleetnet.hub.record import read_record
from fleetnet.kube.objstore import ObjectStore
from fleetnet.local import netlink, procs, topology


@dataclass
class TeardownReport:
    processes: int = 0
    namespaces: int = 0
    mounts: int = 0
    errors: list[str] = field(default_factory=list)


def _netns_inode(name: str) -> int | None:
    try:
        return os.stat(f"/var/run/netns/{name}").st_ino
    except OSError:
        return None


def _pids_in_netns(inodes: set[int]) -> list[int]:
    me = os.getpid()
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            if os.stat(f"/proc/{entry}/ns/net").st_ino in inodes:
                found.append(int(entry))
        except OSError:
            continue
    return found


def _pod_process_records(paths: FleetPaths) -> list[procs.ProcRecord]:
    out: list[procs.ProcRecord] = []
    clusters = paths.home / "clusters"
    if not clusters.is_dir():
        return out
    for cdir in clusters.iterdir():
        db = cdir / "kube.db"
        if not db.exists():
            continue
        try:
            store = ObjectStore(db)
            for pod in store.list("Pod"):
                rec = ((pod.get("status") or {}).get("fleetnet") or {}).get("process")
                if rec:
                    out.append(procs.ProcRecord.from_dict(rec))
            store.close()
        except Exception:  # a damaged store must not stop the teardown
            continue
    return out


def teardown(paths: FleetPaths, *, keep_files: bool = False) -> TeardownReport:
    report = TeardownReport()
    rec = read_record(paths.state)
    if rec is None:
        return report
    records = [procs.ProcRecord.from_dict(p) for p in rec.processes.values()] + _pod_process_records(paths)
    for pr in records:
        try:
            if procs.is_alive(pr):
                procs.terminate(pr)
                report.processes += 1
        except Exception as e:
            report.errors.append(f"process {pr.pid}: {e}")
    ours = topology.owned_netns(rec.prefix)
    inodes = {i for i in (_netns_inode(ns) for ns in ours) if i is not None}
    for pid in _pids_in_netns(inodes):
        try:
            os.kill(pid, 9)
            report.processes += 1
        except OSError:
            pass
    # pods, then nodes, then underlays (their kind is the second part of the name)
    order = {"p": 0, "n": 1, "u": 2}
    for ns in sorted(ours, key=lambda n: (order.get(n.split(topology.SEP)[1], 3), n)):
        try:
            netlink.delete_netns(ns)
            report.namespaces += 1
        except Exception as e:
            report.errors.append(f"namespace {ns}: {e}")
        shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)
    for m in rec.mounts:
        if _unmount(m):
            report.mounts += 1
    if not keep_files:
        for p in (paths.state, paths.store, paths.socket, paths.pid):
            for suffix in ("", "-wal", "-shm"):
                Path(str(p) + suffix).unlink(missing_ok=True)
        shutil.rmtree(paths.home / "clusters", ignore_errors=True)
    return report


def _unmount(path: str) -> bool:
    from fleetnet.datapath.loader import umount_bpffs

    try:
        umount_bpffs(Path(path))
    except Exception:
        return False
    for d in (Path(path), Path(path).parent):  # the mount point, and /run/fleetnet when it is empty
        try:
            d.rmdir()
        except OSError:
            break
    return True
