"""procs.py: detached processes, start-time checks, running inside a namespace with its /etc files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetnet.errors import InvalidInput
from fleetnet.local import netlink, procs, topology
from fleetnet.local.procs import ProcessFailure, ProcRecord
from tests.support.names import unique
from tests.support.wait import wait_for


def sleeper(tag: str, ignore_term: bool = False) -> list[str]:
    """A process that says it is ready and then sleeps; ``tag`` (from unique) names it in ps."""
    setup = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); " if ignore_term else ""
    return [sys.executable, "-c", setup + "import time; print('ready', flush=True); time.sleep(60)", tag]


@pytest.fixture
def records() -> Iterator[list[ProcRecord]]:
    started: list[ProcRecord] = []
    try:
        yield started
    finally:
        for rec in started:
            procs.terminate(rec, timeout=1.0)


@pytest.fixture
def netns() -> Iterator[str]:
    name = unique("fnt")
    netlink.create_netns(name)
    try:
        netlink.set_link_up(name, "lo")
        yield name
    finally:
        topology.remove_hosts(name)
        netlink.delete_netns(name)


def test_records_round_trip_through_json() -> None:
    rec = ProcRecord(pid=123, start_time=456, argv=("etcd", "--name", "x"), boot_id="b")
    assert rec == ProcRecord.from_dict(json.loads(json.dumps(rec.to_dict())))
    assert ProcRecord(1, 2, ()) == ProcRecord.from_dict({"pid": 1, "start_time": 2, "argv": []})  # older records


@pytest.mark.parametrize("data", [{}, {"pid": "1", "start_time": 2, "argv": []}, {"pid": 1, "start_time": 2}])
def test_malformed_records_are_refused(data: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        ProcRecord.from_dict(data)


def test_spawn_writes_the_pid_and_logs_output(tmp_path: Path, records: list[ProcRecord]) -> None:
    rec = procs.spawn(
        sleeper(unique("fnt")), netns=None, log_path=str(tmp_path / "log"), pid_path=str(tmp_path / "pid")
    )
    records.append(rec)
    assert f"{rec.pid}\n" == (tmp_path / "pid").read_text()
    wait_for(lambda: "ready" in (tmp_path / "log").read_text(), what="the sleeper to start")
    assert procs.is_alive(rec)
    assert os.getsid(rec.pid) == rec.pid  # its own session: a terminal hang-up does not reach it


def test_a_missing_program_is_a_process_failure(tmp_path: Path) -> None:
    with pytest.raises(ProcessFailure, match="no-such-program"):
        procs.spawn(["no-such-program"], netns=None, log_path=str(tmp_path / "log"), pid_path=str(tmp_path / "pid"))


def test_terminate_respects_the_start_time(tmp_path: Path, records: list[ProcRecord]) -> None:
    rec = procs.spawn(
        sleeper(unique("fnt")), netns=None, log_path=str(tmp_path / "log"), pid_path=str(tmp_path / "pid")
    )
    records.append(rec)
    impostor = ProcRecord(pid=rec.pid, start_time=rec.start_time + 1, argv=rec.argv)
    previous_boot = ProcRecord(pid=rec.pid, start_time=rec.start_time, argv=rec.argv, boot_id="another-boot")
    for other in (impostor, previous_boot):
        assert not procs.is_alive(other)
        assert not procs.terminate(other)
    assert procs.is_alive(rec)
    assert procs.terminate(rec)
    assert not procs.is_alive(rec)
    assert not procs.terminate(rec)


def test_terminate_kills_what_ignores_sigterm(tmp_path: Path, records: list[ProcRecord]) -> None:
    log = tmp_path / "log"
    rec = procs.spawn(
        sleeper(unique("fnt"), ignore_term=True), netns=None, log_path=str(log), pid_path=str(tmp_path / "p")
    )
    records.append(rec)
    wait_for(lambda: "ready" in log.read_text(), what="the sleeper to ignore SIGTERM")
    assert procs.terminate(rec, timeout=0.2)
    assert not procs.is_alive(rec)


@pytest.mark.root
def test_spawned_process_outlives_the_process_that_started_it(
    tmp_path: Path, netns: str, records: list[ProcRecord]
) -> None:
    log, pid = tmp_path / "log", tmp_path / "pid"
    script = (
        "import json, sys; from fleetnet.local import procs; "
        f"rec = procs.spawn({sleeper(unique('fnt'))!r}, netns={netns!r}, log_path={str(log)!r}, "
        f"pid_path={str(pid)!r}); print(json.dumps(rec.to_dict()))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True)
    rec = ProcRecord.from_dict(json.loads(done.stdout))
    records.append(rec)
    assert procs.is_alive(rec)  # its starter has exited
    assert os.stat(f"/proc/{rec.pid}/ns/net").st_ino == os.stat(f"{netlink.NETNS_DIR}/{netns}").st_ino
    assert procs.terminate(rec)
    assert not procs.is_alive(rec)


@pytest.mark.root
def test_processes_in_a_pod_see_its_hosts_file_and_the_host_does_not(
    tmp_path: Path, netns: str, records: list[ProcRecord]
) -> None:
    with open("/etc/hosts") as f:
        host_before = f.read()
    with open("/proc/self/mountinfo") as f:
        mounts_before = f.read()
    topology.write_hosts(netns, {"10.96.0.10": ["echo.default.svc.cluster.local", "echo.default", "echo"]})

    cat = procs.run_in_netns(netns, ["cat", "/etc/hosts"], timeout=10)
    assert cat.returncode == 0
    assert "10.96.0.10\techo.default.svc.cluster.local echo.default echo" in cat.stdout.splitlines()
    resolve = "import socket, sys; print(socket.gethostbyname(sys.argv[1]))"
    got = procs.run_in_netns(netns, [sys.executable, "-c", resolve, "echo.default"], timeout=10)
    assert got.stdout.strip() == "10.96.0.10", got.stderr

    # A long-running process sees later rewrites too (the file is rewritten in place).
    rec = procs.spawn(sleeper(unique("fnt")), netns=netns, log_path=str(tmp_path / "log"), pid_path=str(tmp_path / "p"))
    records.append(rec)
    topology.write_hosts(netns, {"10.96.0.11": ["late"]})
    with open(f"/proc/{rec.pid}/root/etc/hosts") as f:
        assert "10.96.0.11\tlate" in f.read().splitlines()

    with open("/etc/hosts") as f:
        assert host_before == f.read()
    with open("/proc/self/mountinfo") as f:
        assert mounts_before == f.read()


@pytest.mark.root
def test_run_in_netns_captures_output_and_enforces_the_timeout(netns: str) -> None:
    done = procs.run_in_netns(netns, [sys.executable, "-c", "import sys; print('out'); sys.exit(3)"], timeout=10)
    assert (done.returncode, done.stdout) == (3, "out\n")
    links = procs.run_in_netns(netns, [sys.executable, "-c", "import socket; print(socket.if_nameindex())"], timeout=10)
    assert links.stdout.strip() == "[(1, 'lo')]"  # inside the namespace: only its own loopback
    with pytest.raises(ProcessFailure, match="longer than"):
        procs.run_in_netns(netns, [sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.3)


@pytest.mark.root
def test_exec_in_netns_replaces_the_process(netns: str) -> None:
    show_links = "import socket; print(socket.if_nameindex())"
    script = (
        "import sys; from fleetnet.local import procs; "
        f"procs.exec_in_netns({netns!r}, [sys.executable, '-c', {show_links!r}])"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "[(1, 'lo')]", done.stderr
