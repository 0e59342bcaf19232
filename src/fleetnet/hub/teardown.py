"""`fleetnet down`: remove everything a fleet made on the host, from the recorded state alone.

Order matters: processes first (so nothing re-creates what we remove), then namespaces (pods,
nodes, underlays: deleting a namespace deletes its links and routes), then per-namespace files,
then bpffs mounts. Processes are ended by pid and start time: the recorded daemons, and every
process living inside one of the fleet's namespaces — such a process can only have been started
by the fleet (pods' containers are found this way, with no store to read).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from fleetnet.hub.paths import FleetPaths
from fleetnet.hub.record import read_record
from fleetnet.local import procs, topology


@dataclass
class TeardownReport:
    processes: int = 0
    namespaces: int = 0
    mounts: int = 0
    errors: list[str] = field(default_factory=list)


def teardown(paths: FleetPaths, *, keep_files: bool = False) -> TeardownReport:
    report = TeardownReport()
    rec = read_record(paths.state)
    if rec is None:
        return report
    # the recorded daemons by their records; then whatever lives in the fleet's namespaces (the pods'
    # containers, anything a crash left): a process there can only have been started by the fleet
    records = [procs.ProcRecord.from_dict(p) for p in rec.processes.values()]
    records += procs.records_in_netns(topology.owned_netns(rec.prefix))
    for pr in records:
        try:
            if procs.is_alive(pr):
                procs.terminate(pr)
                report.processes += 1
        except Exception as e:
            report.errors.append(f"process {pr.pid}: {e}")
    try:
        report.namespaces = len(topology.remove_all(rec.prefix))
    except Exception as e:
        report.errors.append(f"namespaces of {rec.prefix}: {e}")
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
