"""``python -m fleetnet.local.controllers`` as the local driver runs it: a child process that acts
on the cluster, costs nothing while idle, and exits 0 on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from fleetnet.kube.client import KubeClient
from tests.local.controllers.support import deployment, res
from tests.support.apiserver import TestApiServer
from tests.support.wait import wait_for

RS = res("ReplicaSet")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_the_module_runs_acts_and_stops_on_sigterm(api: TestApiServer, client: KubeClient) -> None:
    log = open(api.root / "controllers.log", "wb")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetnet.local.controllers", "--kubeconfig", str(api.kubeconfig), "-v"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        client.create(deployment("cm", "default", replicas=1))
        wait_for(lambda: client.list(RS, "default")[0], timeout=20, what="a ReplicaSet from the child")
        # idle: nothing for the manager to act on; over a measured second (a measurement window,
        # not a wait for anything) its CPU time must not move measurably
        wait_for(lambda: client.get(res("Deployment"), "cm", "default").get("status"), what="status written")
        before, t0 = cpu_seconds(proc.pid), time.monotonic()
        wait_for(lambda: time.monotonic() - t0 > 1.0, interval=0.1, what="an idle second")
        assert cpu_seconds(proc.pid) - before < 0.05
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = (api.root / "controllers.log").read_text()
    assert "Traceback" not in out, out


def test_a_bad_kubeconfig_is_one_sentence_and_exit_2() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "fleetnet.local.controllers", "--kubeconfig", "/nonexistent/kubeconfig"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
