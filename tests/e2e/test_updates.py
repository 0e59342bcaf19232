"""Issue 5: staged update runs of local clusters — strategies, waits, approvals, skips, stop and start.

Real clusters are upgraded (new versions in their config, agents and clustermesh-apiservers restarted
on them) while a pod in c1 keeps calling a global service whose backends are in c2 and c3: not one
request may fail. Pre-validation refuses runs before they touch a member.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleetnet.cli.client import Client
from fleetnet.local import netlink, procs
from fleetnet.workloads import probe
from tests.support.fleet import TestFleet
from tests.support.wait import wait_for

pytestmark = pytest.mark.root

GLOBAL = (Path(__file__).parents[2] / "examples" / "echo-global.yaml").read_text()
BEFORE, BEFORE_CILIUM = "1.33.6", "1.18.3"  # what `fleetnet up` gives new members

STAGES = {
    "stages": [
        {
            "name": "canary",
            "groups": [{"name": "canary"}],
            "afterStageWaitInSeconds": 600,  # skipped below
            "afterGates": [{"type": "Approval", "displayName": "canary looks good"}],
        },
        {
            "name": "prod",
            "groups": [{"name": "prod", "maxConcurrency": "2"}],
            "meshHealthCheck": True,
            "afterStageWaitInSeconds": 2,  # waited out
        },
    ]
}


class Prober:
    """HTTP requests from inside a pod's network namespace, one after another, until stopped."""

    def __init__(self, netns: str, url: str) -> None:
        self.url = url
        self.answered: Counter[str] = Counter()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=netlink.call_in_netns, args=(netns, self._loop), daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            a = probe.request(self.url, timeout=1.0)
            if a.ok:
                self.answered[str(a.who.get("cluster"))] += 1
            else:
                self.failures.append(str(a.error))
            self._stop.wait(0.01)  # pacing between requests, so the prober does not hog a core

    def __enter__(self) -> Prober:
        self._thread.start()
        wait_for(lambda: sum(self.answered.values()) or self.failures, timeout=10, what="the first probe")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def stages_file(tmp_path: Path, stages: dict[str, Any]) -> str:
    path = tmp_path / "stages.json"
    path.write_text(json.dumps(stages))
    return str(path)


def run_doc(f: TestFleet, name: str) -> dict[str, Any]:
    return dict(f.json("updaterun", "show", name))


def members_of(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for st in run["status"]["stages"] for g in st["groups"] for m in g["members"]}


def cilium_version(f: TestFleet, member: str) -> str:
    return str(f.json("cilium", member, "status")["version"]["cilium"])


def versions(f: TestFleet) -> dict[str, tuple[str, str]]:
    return {m["name"]: (m["kubernetesVersion"], m["ciliumVersion"]) for m in f.json("member", "list")}


# ---------------------------------------------------------------- pre-validation (a fleet of its own)


def test_prevalidation_refuses_a_run_before_it_touches_a_member(fleet: TestFleet, tmp_path: Path) -> None:
    fleet.up(0)
    for name, version in (("edge", "1.34.1"), ("core", "1.33.2")):  # Cilium 1.18.5 and 1.17.6
        fleet.run(
            "member",
            "create",
            name,
            "--local",
            "--kubernetes-version",
            version,
            "--group",
            name,
            "--labels",
            "network=green",
        )
    fleet.run("clustermeshprofile", "create", "green", "--member-selector", "network=green")
    fleet.json("clustermeshprofile", "apply", "green")

    def refusal(run: str, version: str, group: str) -> str:
        stages = stages_file(tmp_path, {"stages": [{"name": "s", "groups": [{"name": group}]}]})
        fleet.run(
            "updaterun", "create", run, "--upgrade-type", "Full", "--kubernetes-version", version, "--stages", stages
        )
        p = fleet.run("updaterun", "start", run, check=False)
        assert p.returncode == 1, p.stdout
        return p.stderr.strip()

    assert refusal("unknown", "1.34.2", "edge") == (
        "error: update run unknown cannot start: member edge in stage s: Kubernetes 1.34.2 is not in the version "
        "catalog; choose one listed by `fleetnet versions`."
    )
    assert refusal("downgrade", "1.33.6", "edge").startswith(
        "error: update run downgrade cannot start: member edge in stage s: Kubernetes 1.33.6 is older than the "
        "current 1.34.1, and downgrades are not supported"
    )
    assert refusal("skipped-minor", "1.35.0", "core").startswith(
        "error: update run skipped-minor cannot start: member core in stage s: upgrading Kubernetes 1.33.2 to "
        "1.35.0 skips minor 1.34; upgrade to a 1.34 release first."
    )
    # edge alone to 1.35.0 is a valid upgrade, but it would put Cilium 1.19 beside core's 1.17 in one network
    assert refusal("skew", "1.35.0", "edge").startswith(
        "error: update run skew cannot start: network green, stage s: member core could run Cilium 1.17.6 while "
        "member edge runs Cilium 1.19.0, 2 minor versions apart (ClusterMesh peers may differ by at most 1)"
    )
    runs = fleet.json("updaterun", "list")
    assert {r["name"]: r["status"]["status"]["state"] for r in runs} == dict.fromkeys(
        ("unknown", "downgrade", "skipped-minor", "skew"), "NotStarted"
    )
    assert versions(fleet) == {"edge": ("1.34.1", "1.18.5"), "core": ("1.33.2", "1.17.6")}
    assert cilium_version(fleet, "edge") == "1.18.5"


# ---------------------------------------------------------------- runs over a network with traffic


@pytest.fixture(scope="module")
def mesh() -> Iterator[TestFleet]:
    f = TestFleet()
    try:
        f.up(3)
        for c, group in (("c1", "canary"), ("c2", "prod"), ("c3", "prod")):
            f.run("member", "update", c, "--labels", "network=blue", "--group", group)
        f.run("clustermeshprofile", "create", "blue", "--member-selector", "network=blue")
        f.json("clustermeshprofile", "apply", "blue")
        # c1 has the client and no echo backends: every answer crosses to c2 or c3
        f.apply("c1", GLOBAL.replace("replicas: 2", "replicas: 0"))
        for c in ("c2", "c3"):
            f.apply(c, GLOBAL.replace("replicas: 2", "replicas: 1"))
        wait_for(lambda: len(running(f, "c1")) == 1, timeout=30, what="c1's client")
        for c in ("c2", "c3"):
            wait_for(lambda c=c: len(running(f, c)) == 2, timeout=30, what=f"pods of {c}")
        yield f
    finally:
        f.close()
        assert f.leftovers() == []


def running(f: TestFleet, member: str) -> dict[str, Any]:
    return {p["metadata"]["name"]: p for p in f.pods(member, "demo") if p.get("status", {}).get("phase") == "Running"}


def test_a_staged_run_with_a_wait_an_approval_and_a_skip_keeps_traffic_flowing(mesh: TestFleet, tmp_path: Path) -> None:
    f = mesh
    vip = f.json("kubectl", "c1", "get", "svc", "echo", "-n", "demo")["spec"]["clusterIP"]
    netns = f.pod_netns("c1", "client", "demo")
    before = versions(f)
    f.run("updatestrategy", "create", "safe", "--stages", stages_file(tmp_path, STAGES))
    f.run(
        "updaterun",
        "create",
        "up134",
        "--upgrade-type",
        "Full",
        "--kubernetes-version",
        "1.34.1",
        "--update-strategy-name",
        "safe",
    )
    with Prober(netns, f"http://{vip}:80/") as prober:
        f.run("updaterun", "start", "up134")
        f.run("updaterun", "wait", "up134", "--state", "Pending", "--timeout", "60")
        (gate,) = f.json("gate", "list", "--state", "Pending", "--gate-type", "Approval")
        assert gate["properties"]["target"]["updateRunProperties"] == {
            "name": "up134",
            "stage": "canary",
            "group": None,
            "timing": "After",
        }
        # the canary is done and the rest untouched while the run waits
        assert cilium_version(f, "c1") == "1.18.5"
        assert versions(f) == {**before, "c1": ("1.34.1", "1.18.5")}
        f.run("updaterun", "skip", "up134", "--targets", "AfterStageWait:canary")
        f.run("gate", "approve", gate["name"])
        f.run("updaterun", "wait", "up134", "--timeout", "90")
        run = run_doc(f, "up134")
    assert run["status"]["status"]["state"] == "Completed"
    canary, prod = run["status"]["stages"]
    assert canary["afterStageWaitStatus"]["status"]["state"] == "Skipped"
    assert canary["afterGates"][0]["status"]["state"] == "Completed"
    assert prod["afterStageWaitStatus"]["status"]["state"] == "Completed"
    assert prod["meshHealthCheckStatus"]["status"]["state"] == "Completed", prod["meshHealthCheckStatus"]
    c2, c3 = (members_of(run)[n]["status"] for n in ("c2", "c3"))
    assert max(c2["startTime"], c3["startTime"]) < min(c2["completedTime"], c3["completedTime"]), "not concurrent"
    assert versions(f) == dict.fromkeys(("c1", "c2", "c3"), ("1.34.1", "1.18.5"))
    assert {c: cilium_version(f, c) for c in ("c1", "c2", "c3")} == dict.fromkeys(("c1", "c2", "c3"), "1.18.5")
    assert f.json("gate", "list", "--state", "Pending") == []
    assert prober.failures == []
    assert set(prober.answered) == {"c2", "c3"} and sum(prober.answered.values()) >= 100, prober.answered


def test_stop_then_start_resumes_at_the_first_unprocessed_member(mesh: TestFleet) -> None:
    f = mesh
    f.run("updaterun", "create", "up1343", "--upgrade-type", "Full", "--kubernetes-version", "1.34.3")
    client = Client(f.home)  # start and stop back to back: the CLI's start-up would let c1 finish first
    client.post("/updateRuns/up1343/start")
    stopping = client.post("/updateRuns/up1343/stop")
    assert [m["status"]["state"] for m in members_of(stopping).values()] == ["Running", "NotStarted", "NotStarted"]
    assert stopping["status"]["status"]["state"] == "Stopping"
    f.run("updaterun", "wait", "up1343", "--state", "Stopped", "--timeout", "60")
    stopped = members_of(run_doc(f, "up1343"))
    assert [m["status"]["state"] for m in stopped.values()] == ["Completed", "NotStarted", "NotStarted"]
    assert versions(f)["c1"] == ("1.34.3", "1.18.7")
    assert versions(f)["c2"] != ("1.34.3", "1.18.7")
    # the daemon restarts in between: the run lives in the store
    daemon = procs.ProcRecord.from_dict(json.loads((f.home / "daemon.json").read_text()))
    procs.terminate(daemon)
    f.run("up")
    f.run("updaterun", "start", "up1343")
    f.run("updaterun", "wait", "up1343", "--timeout", "60")
    done = members_of(run_doc(f, "up1343"))
    assert [(m["status"]["state"], m["attempts"]) for m in done.values()] == [("Completed", 1)] * 3
    assert done["c1"]["status"]["completedTime"] < done["c2"]["status"]["startTime"]  # c1 was not done again
    assert cilium_version(f, "c3") == "1.18.7"
    assert versions(f) == dict.fromkeys(("c1", "c2", "c3"), ("1.34.3", "1.18.7"))
