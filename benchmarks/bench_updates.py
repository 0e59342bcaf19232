"""How long an update run takes over 10 local members, by group concurrency, and whether traffic survives it.

One real fleet of 10 one-node local clusters c1..c10, joined into one cross-cluster network, every
member in update group ``all``. Three runs, one after another, each of one stage with that one group,
upgrade every member to the next Kubernetes release (1.33.6 → 1.34.0 → 1.34.1 → 1.34.3, so Cilium
moves too and every agent and clustermesh-apiserver is restarted on it) with the group's
``maxConcurrency`` at 1, 2 and 5. Members within a group are upgraded on the daemon's thread pool, so
a higher concurrency should divide the wall time, as far as a 2-core machine lets agents start in
parallel. The run at concurrency 1 is the baseline: the speed-up of the others is measured against it
in the same fleet.

All the while a pod in c1 calls a global service whose backends are in c2 and c3 (a new connection
per request, 1 s timeout, back to back): the target is zero failed requests through all the runs,
since an agent restart keeps the datapath (pinned maps) and must keep routes and backends.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from benchmarks._fleet import BenchError, LocalFleet, fleetnet_module, local_fleet, progress, wait_for
from benchmarks.report import Baseline, Table

NAME = "updates"
DESCRIPTION = (
    "Wall time of an update run over 10 one-node local members with group maxConcurrency 1, 2 and 5, "
    "and failed requests of a cross-cluster probe running through all of it."
)

MEMBERS = 10
QUICK_MEMBERS = 4
CONCURRENCY = (1, 2, 5)
QUICK_CONCURRENCY = (1, 2)
TARGETS = ("1.34.0", "1.34.1", "1.34.3")  # from 1.33.6, the version `fleetnet up` gives new members
RUN_TIMEOUT = 600.0
PROBE_TIMEOUT = 1.0
PROBE_GAP = 0.01  # between requests, so the prober does not take a whole core from the upgrades

PROFILE = "bench-upd"
GROUP = "all"
SERVICE = "bench-upd"
BACKENDS = ("c2", "c3")

SERVICE_MANIFEST = f"""apiVersion: v1
kind: Service
metadata:
  name: {SERVICE}
  annotations: {{service.cilium.io/global: "true"}}
spec:
  selector: {{app: {SERVICE}}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
"""
ECHO_MANIFEST = f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: {SERVICE}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {SERVICE}}}}}
  template:
    metadata: {{labels: {{app: {SERVICE}}}}}
    spec:
      containers:
      - {{name: echo, image: fleetnet/echo, ports: [{{name: http, containerPort: 8080}}]}}
"""
CLIENT_MANIFEST = """apiVersion: v1
kind: Pod
metadata: {name: bench-upd-client}
spec:
  containers:
  - {name: client, image: fleetnet/client}
"""

CONC = "group maxConcurrency"
WALL = "wall (s)"
SERIAL = "concurrency 1 wall (s)"


def _progress(msg: str) -> None:
    progress(NAME, msg)


class Prober:
    """Requests from inside a pod's network namespace, one after another, counted until stopped."""

    def __init__(self, netns: str, url: str) -> None:
        self.answered: Counter[str] = Counter()
        self.failures: list[str] = []
        self._url = url
        self._stop = threading.Event()
        netlink = fleetnet_module("local.netlink")
        self._probe = fleetnet_module("workloads.probe")
        self._thread = threading.Thread(target=netlink.call_in_netns, args=(netns, self._loop), daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            a = self._probe.request(self._url, PROBE_TIMEOUT)
            if a.ok:
                self.answered[str(a.who.get("cluster"))] += 1
            else:
                self.failures.append(str(a.error))
            self._stop.wait(PROBE_GAP)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def counts(self) -> tuple[int, int]:
        return sum(self.answered.values()), len(self.failures)


@dataclass(frozen=True, slots=True)
class RunSample:
    concurrency: int
    target: str
    members: int
    wall: float  # client side: from the start request until the run was seen Completed
    server: float  # the run's own start → completed times
    per_member: list[float]  # each member's upgrade, start → completed
    peak: int  # the most members upgrading at one moment
    requests: int
    failures: int


@dataclass
class Samples:
    runs: list[RunSample] = field(default_factory=list)
    failure_reasons: Counter[str] = field(default_factory=Counter)
    answered_by: Counter[str] = field(default_factory=Counter)


def setup(fleet: LocalFleet, names: Sequence[str]) -> tuple[str, str]:
    """Network, groups and workloads; returns the client pod's namespace and the URL it calls."""
    fleet.join(PROFILE, names)
    for n in names:
        fleet.client.patch(f"/members/{n}", json={"group": GROUP})
    fleet.apply("c1", SERVICE_MANIFEST + "---\n" + CLIENT_MANIFEST)
    for n in BACKENDS:
        fleet.apply(n, SERVICE_MANIFEST + "---\n" + ECHO_MANIFEST)
    client = fleet.wait_pod("c1", "bench-upd-client")
    for n in BACKENDS:
        fleet.wait_pod(n, SERVICE)
    vip = fleet.wait_cluster_ip("c1", SERVICE)
    url = f"http://{vip}:80/"
    netns = client["status"]["fleetnet"]["netns"]
    wait_for(
        lambda: answering(netns, url, 20) == set(BACKENDS),
        60.0,
        f"the client in c1 to reach backends in {', '.join(BACKENDS)}",
    )
    return netns, url


def answering(netns: str, url: str, n: int) -> set[str]:
    """The clusters that answered ``n`` requests from inside ``netns``."""
    probe = fleetnet_module("workloads.probe")
    netlink = fleetnet_module("local.netlink")
    answers = [netlink.call_in_netns(netns, partial(probe.request, url, PROBE_TIMEOUT)) for _ in range(n)]
    return {str(a.who.get("cluster")) for a in answers if a.ok}


def ended(fleet: LocalFleet, run: str) -> dict[str, Any] | None:
    """The run once it has come to an end (Completed or Failed), else None."""
    doc: dict[str, Any] = fleet.client.get(f"/updateRuns/{run}")
    return doc if doc["status"]["status"]["state"] in ("Completed", "Failed") else None


def one_run(fleet: LocalFleet, prober: Prober, names: Sequence[str], concurrency: int, target: str) -> RunSample:
    run = f"bench-c{concurrency}"
    strategy = {"stages": [{"name": "all", "groups": [{"name": GROUP, "maxConcurrency": str(concurrency)}]}]}
    body = {"managedClusterUpdate": {"upgrade": {"type": "Full", "kubernetesVersion": target}}, "strategy": strategy}
    fleet.client.put(f"/updateRuns/{run}", json=body)
    requests0, failures0 = prober.counts()
    start = time.monotonic()
    fleet.client.post(f"/updateRuns/{run}/start")
    doc: dict[str, Any] = wait_for(partial(ended, fleet, run), RUN_TIMEOUT, f"update run {run} to end", interval=0.1)
    wall = time.monotonic() - start
    requests1, failures1 = prober.counts()
    status = doc["status"]["status"]
    if status["state"] != "Completed":
        raise BenchError(f"update run {run} ended {status['state']}: {(status.get('error') or {}).get('message')}")
    members = [m for st in doc["status"]["stages"] for g in st["groups"] for m in g["members"]]
    at = {m["name"]: m["kubernetesVersion"] for m in fleet.client.get("/members")}
    if sorted(m["name"] for m in members) != sorted(names) or set(at.values()) != {target}:
        raise BenchError(f"after update run {run} the members run {at}, not all {target}.")
    return RunSample(
        concurrency=concurrency,
        target=target,
        members=len(members),
        wall=wall,
        server=status["completedTime"] - status["startTime"],
        per_member=[m["status"]["completedTime"] - m["status"]["startTime"] for m in members],
        peak=peak_overlap([(m["status"]["startTime"], m["status"]["completedTime"]) for m in members]),
        requests=requests1 - requests0,
        failures=failures1 - failures0,
    )


def peak_overlap(intervals: Sequence[tuple[float, float]]) -> int:
    """The most intervals open at one moment (an interval ending as another starts does not overlap it)."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    peak = now = 0
    for _, step in edges:  # at equal times the end (-1) sorts first
        now += step
        peak = max(peak, now)
    return peak


def summarize(s: Samples, quick: bool) -> list[Table]:
    """The tables of a run (pure, so the unit tests can feed it made-up samples)."""
    serial = next((r.wall for r in s.runs if r.concurrency == 1), None)
    rows = [
        (
            r.concurrency,
            r.members,
            r.peak,
            f"{r.target}",
            r.wall,
            serial,
            r.server,
            sum(r.per_member) / len(r.per_member) if r.per_member else None,
            max(r.per_member) if r.per_member else None,
            r.requests,
            r.failures,
        )
        for r in s.runs
    ]
    failures = sum(r.failures for r in s.runs)
    requests = sum(r.requests for r in s.runs)
    notes = [
        "Timed (time.monotonic, client side, polling every 100 ms): from POST /updateRuns/NAME/start returning "
        "until GET shows the run Completed; 'run (s)' is the run's own startTime → completedTime. Each member's "
        "upgrade (start → completed) covers rewriting its versions, restarting its agent (and "
        "clustermesh-apiserver) and waiting until the agent reports the new Cilium; 'most at once' is the largest "
        "number of members whose upgrades overlapped, from those times. A restarted agent is a new Python process "
        "that spends most of its start-up on the CPU, so on a 2-core machine parallel upgrades each take longer "
        "and the speed-up stays well below the concurrency.",
        "One fleet, one network of all members, one stage with one group of all members; the runs follow each "
        f"other ({' → '.join(('1.33.6', *TARGETS[: len(s.runs)]))}). Baseline: the run at group concurrency 1 in "
        "the same fleet; speed-up = its wall time / this run's.",
        f"Probe: a pod in c1 calls a global service with backends in {' and '.join(BACKENDS)} (its ClusterIP in "
        f"c1, a new connection per request, {PROBE_TIMEOUT:.0f} s timeout) through all the runs: {requests} "
        f"requests, {failures} failed (target 0: {'met' if failures == 0 else 'MISSED'}); answered by "
        + ", ".join(f"{c}: {n}" for c, n in sorted(s.answered_by.items()))
        + ".",
    ]
    if s.failure_reasons:
        notes.append(
            "Failed requests: " + ", ".join(f"{reason} ({n}×)" for reason, n in s.failure_reasons.most_common(3)) + "."
        )
    if quick:
        notes.append(f"--quick: {QUICK_MEMBERS} members and concurrency {', '.join(map(str, QUICK_CONCURRENCY))}.")
    return [
        Table(
            title=f"Update run over {s.runs[0].members if s.runs else MEMBERS} members, by group concurrency",
            columns=(
                CONC,
                "members",
                "most at once",
                "to Kubernetes",
                WALL,
                SERIAL,
                "run (s)",
                "member mean (s)",
                "member max (s)",
                "probe requests",
                "probe failures",
            ),
            rows=rows,
            baseline=Baseline(column=SERIAL, versus=WALL, ratio_title="speed-up"),
            notes=notes,
        )
    ]


def run(quick: bool) -> list[Table]:
    size = QUICK_MEMBERS if quick else MEMBERS
    levels = QUICK_CONCURRENCY if quick else CONCURRENCY
    names = [f"c{i}" for i in range(1, size + 1)]
    s = Samples()
    with local_fleet("fleetnet-bench-updates-", size, NAME) as fleet:
        netns, url = setup(fleet, names)
        _progress(f"{size} members in network {PROFILE}; c1's client calls {url} (backends in c2 and c3)")
        prober = Prober(netns, url)
        prober.start()
        try:
            for concurrency, target in zip(levels, TARGETS, strict=False):
                r = one_run(fleet, prober, names, concurrency, target)
                s.runs.append(r)
                _progress(
                    f"concurrency {concurrency}: {r.members} members to {target} in {r.wall:.1f} s; "
                    f"probe {r.requests} requests, {r.failures} failed"
                )
        finally:
            prober.stop()
        s.failure_reasons.update(prober.failures)
        s.answered_by.update(prober.answered)
    return summarize(s, quick)
