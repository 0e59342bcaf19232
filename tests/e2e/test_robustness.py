"""Robustness: the hub is not in the data path; a remote etcd failing is seen and recovered from;
`down` cleans up from the recorded state even after a crash."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

import httpx
import pytest

from fleetnet.local import procs
from tests.e2e.manifests import ECHO
from tests.support.fleet import TestFleet
from tests.support.wait import wait_for

pytestmark = pytest.mark.root


def join(fleet: TestFleet, members: list[str]) -> None:
    for c in members:
        fleet.run("member", "update", c, "--labels", "network=blue")
    fleet.run("clustermeshprofile", "create", "blue", "--member-selector", "network=blue")
    fleet.json("clustermeshprofile", "apply", "blue")


def running(fleet: TestFleet, member: str) -> dict[str, Any]:
    return {p["metadata"]["name"]: p for p in fleet.pods(member) if p.get("status", {}).get("phase") == "Running"}


def container_record(pod: dict[str, Any]) -> procs.ProcRecord:
    """The process of a pod's container, from its containerID (fleetnet://<pid>-<start time>)."""
    from fleetnet.local.podstatus import parse_container_id

    found = parse_container_id(pod["status"]["containerStatuses"][0]["containerID"])
    assert found is not None
    return procs.ProcRecord(pid=found[0], start_time=found[1], argv=())


def record(fleet: TestFleet, role: str) -> procs.ProcRecord:
    state = json.loads((fleet.home / "state.json").read_text())
    return procs.ProcRecord.from_dict(state["processes"][role])


def remote_ready(fleet: TestFleet, member: str, remote: str) -> bool | None:
    """Asked of the member's agent on its own socket: the not-ready window after an etcd dies is a few
    seconds (the hub restarts it), too short to poll through the CLI on a busy machine."""
    sock = fleet.home / "clusters" / member / "agent.sock"
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock))) as c:
        clusters = c.get("http://agent/v1/cluster", timeout=2).json()["clusters"]
    for c in clusters:
        if c["name"] == remote:
            return bool(c["ready"])
    return None


def test_daemon_crash_and_restart_do_not_disturb_the_mesh(fleet: TestFleet) -> None:
    fleet.up(2)
    join(fleet, ["c1", "c2"])
    fleet.apply("c1", ECHO)
    fleet.apply("c2", ECHO)
    wait_for(lambda: len(running(fleet, "c1")) == 2 and len(running(fleet, "c2")) == 2, timeout=30, what="pods")
    target = next(p for n, p in running(fleet, "c2").items() if n.startswith("echo-"))["status"]["podIP"]
    assert fleet.probe("c1", "client", f"http://{target}:8080")["answered"] == 1
    client_netns = fleet.pod_netns("c1", "client")
    daemon = procs.ProcRecord.from_dict(json.loads((fleet.home / "daemon.json").read_text()))
    os.kill(daemon.pid, signal.SIGKILL)  # a crash: no clean-up code runs
    assert procs.wait_until_dead(daemon, 10)
    # no hub: traffic, routes and agents are untouched
    assert fleet.probe_in(client_netns, f"http://{target}:8080", count=5)["answered"] == 5
    assert procs.is_alive(record(fleet, "agent:c1")) and procs.is_alive(record(fleet, "etcd:c2"))
    fleet.run("up")  # a new daemon on the same store
    members = {m["name"]: m for m in fleet.json("member", "list")}
    assert {n: m["meshProperties"]["status"]["state"] for n, m in members.items()} == {
        "c1": "Connected",
        "c2": "Connected",
    }
    assert fleet.json("clustermeshprofile", "show", "blue")["properties"]["status"]["state"] == "Connected"
    assert fleet.probe("c1", "client", f"http://{target}:8080")["answered"] == 1


def test_killed_etcd_is_seen_not_ready_and_recovers(fleet: TestFleet) -> None:
    fleet.up(3)
    join(fleet, ["c1", "c2", "c3"])
    etcd = record(fleet, "etcd:c2")
    os.kill(etcd.pid, signal.SIGKILL)
    wait_for(lambda: remote_ready(fleet, "c1", "c2") is False, timeout=15, interval=0.05, what="c1 sees c2 not ready")
    assert remote_ready(fleet, "c1", "c3") is True  # one remote failing does not affect the others
    status = fleet.json("cilium", "c1", "clustermesh", "status")["clusters"]
    c2 = next(c for c in status if c["name"] == "c2")
    assert c2["num-failures"] >= 1 and c2["last-failure-reason"]
    # the hub restarts the dead etcd (like a kubelet) and every agent reconnects by itself
    wait_for(
        lambda: remote_ready(fleet, "c1", "c2") and remote_ready(fleet, "c3", "c2"),
        timeout=30,
        what="c2 ready again on c1 and c3",
    )
    assert record(fleet, "etcd:c2").pid != etcd.pid
    wait_for(
        lambda: fleet.json("clustermeshprofile", "show", "blue")["properties"]["status"]["state"] == "Connected",
        timeout=10,
        what="network Connected again",
    )


def test_down_after_a_crash_removes_everything(fleet: TestFleet) -> None:
    fleet.up(2)
    join(fleet, ["c1", "c2"])
    fleet.apply("c1", ECHO)
    wait_for(lambda: len(running(fleet, "c1")) == 2, timeout=30, what="pods")
    state = json.loads((fleet.home / "state.json").read_text())
    recorded = [procs.ProcRecord.from_dict(p) for p in state["processes"].values()]
    pods = [container_record(p) for p in running(fleet, "c1").values()]
    daemon = procs.ProcRecord.from_dict(json.loads((fleet.home / "daemon.json").read_text()))
    os.kill(daemon.pid, signal.SIGKILL)
    assert procs.wait_until_dead(daemon, 10)
    p = fleet.run("down")
    assert "is down" in p.stdout
    assert fleet.leftovers() == []
    assert not any(procs.is_alive(r) for r in recorded + pods)


def test_down_stops_a_daemon_run_in_the_foreground(fleet: TestFleet) -> None:
    """`fleetnet serve` in a terminal, `fleetnet down` in another: the daemon ends, nothing is left."""
    import subprocess
    import sys

    env = dict(os.environ, FLEETNET_HOME=str(fleet.home))
    log = open(fleet.home / "serve.out", "wb")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen([sys.executable, "-m", "fleetnet.cli.main", "serve"], env=env, stdout=log, stderr=log)
    log.close()
    try:
        wait_for(lambda: fleet.run("status", check=False).returncode == 0, timeout=30, what="the daemon answers")
        fleet.run("member", "create", "c1", "--local")
        out = fleet.json("down")
        assert out["processes"] >= 1
        assert proc.wait(timeout=20) is not None  # ended by down, not by this test
        assert fleet.run("status", check=False).returncode != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
