"""How fast a change in one cluster reaches every other member's load balancer: p50 and p99 of the
time from a write to c1's object store until every other member's LB maps show it, at 3 and 10
clusters. Target: p99 < 500 ms.

One real local fleet: c1..c3 joined into a network first, then c4..c10 created and joined to the
same network. Every member has the global Service ``bench-prop``; only c1 runs pods behind it (a
base pod, always there, plus the pods the samples add). Two kinds of change, alternating:

- endpoint: a pod backing the Service is added to c1 (``kubectl apply`` of a Pod), then removed;
  c1's agent makes its network, its EndpointSlice entry, and the exporter puts it into c1's etcd;
- Service: ``service.cilium.io/shared`` on c1's Service is set to "false" (c1 withdraws its
  backends from the mesh) and then back to "true" (``kubectl annotate``).

Each change is timed from the moment the API call that writes it returns (the object is committed
in c1's store) until every other member's pinned LB maps, read directly with
``ClusterDatapath(...).services.list_services()`` every few milliseconds, hold the new backends of
that member's frontend for the Service (no agent round-trip in the measurement). c1's own maps are
watched too for endpoint changes, as the local part of the path.
"""

from __future__ import annotations

import ipaddress
import math
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks._fleet import BenchError, LocalFleet, fleetnet_module, local_fleet, progress, wait_for
from benchmarks.report import Baseline, Plot, Table

NAME = "propagation"
DESCRIPTION = (
    "Time from a Service or endpoint change in c1 to every other member's LB maps holding it "
    "(p50, p99), at 3 and 10 one-node local clusters."
)

SIZES = (3, 10)
SAMPLES = 20  # per kind of change
QUICK_SAMPLES = 5
TARGET_MS = 500.0
SAMPLE_TIMEOUT = 30.0
POLL = 0.004  # reading the maps of 9 members takes well under 1 ms (a few batched bpf(2) calls each)
GAP = (0.1, 0.3)  # random pause between changes, so that samples do not lock to the agents' poll phase

PROFILE = "bench-prop"
SERVICE = "bench-prop"
BASE_POD = "prop-base"
SERVICE_MANIFEST = f"""apiVersion: v1
kind: Service
metadata:
  name: {SERVICE}
  annotations: {{service.cilium.io/global: "true"}}
spec:
  selector: {{app: {SERVICE}}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
"""

ENDPOINT = "endpoint"
SHARED = "Service"
ALL = "all"
KINDS = (ENDPOINT, SHARED)

P50, P99, MAX = "p50 (ms)", "p99 (ms)", "max (ms)"
TARGET_COL = "target p99 (ms)"


def _progress(msg: str) -> None:
    progress(NAME, msg)


def pod_manifest(name: str) -> str:
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: {SERVICE}}}}}
spec:
  containers:
  - {{name: pod, image: fleetnet/client}}
"""


def percentile(xs: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (with 20 samples, p99 is the largest)."""
    if not xs:
        raise ValueError("no samples")
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


@dataclass(frozen=True, slots=True)
class Sample:
    kind: str
    direction: str  # "pod added", "pod removed", "shared=false", "shared=true"
    every_ms: float  # until the last of the other members showed the change
    per_member_ms: dict[str, float]
    local_ms: float | None  # c1's own maps (None: the change does not touch them)
    write_ms: float  # the API call that wrote the change


@dataclass
class Samples:
    by_size: dict[int, list[Sample]] = field(default_factory=dict)


def summarize(s: Samples, quick: bool) -> list[Table]:
    """The tables of a run (pure, so the unit tests can feed it made-up samples)."""
    rows: list[tuple[Any, ...]] = []
    every: list[tuple[Any, ...]] = []
    for n in sorted(s.by_size):
        samples = s.by_size[n]
        for kind in (*KINDS, ALL):
            got = [x for x in samples if kind in (ALL, x.kind)]
            if not got:
                continue
            ms = [x.every_ms for x in got]
            local = [x.local_ms for x in got if x.local_ms is not None]
            p99 = percentile(ms, 99)
            rows.append(
                (
                    n,
                    kind,
                    len(got),
                    percentile(ms, 50),
                    p99,
                    max(ms),
                    percentile([x.every_ms + x.write_ms for x in got], 99),
                    percentile(local, 50) if local else None,
                    statistics.median(x.write_ms for x in got),
                    TARGET_MS,
                    "met" if p99 < TARGET_MS else "MISSED",
                )
            )
        for direction in dict.fromkeys(x.direction for x in samples):
            ms = [x.every_ms for x in samples if x.direction == direction]
            every.append((n, direction, percentile(ms, 50), ", ".join(f"{x:.0f}" for x in ms)))
        slow = _slowest(samples)
        if slow:
            every.append((n, "slowest members (their p50)", None, slow))
    per_kind = SAMPLES if not quick else QUICK_SAMPLES
    summary = Table(
        title="Propagation: change in c1 → every other member's LB maps (ms)",
        columns=(
            "clusters",
            "change",
            "samples",
            P50,
            P99,
            MAX,
            "p99 from request sent (ms)",
            "c1's own maps p50 (ms)",
            "API write p50 (ms)",
            TARGET_COL,
            "p99 < target",
        ),
        rows=rows,
        baseline=Baseline(column=TARGET_COL, versus=P99, ratio_title="target / p99", lower_is_better=True),
        precision=0,
        plot=Plot(
            x="clusters",
            series=(P50, P99, "c1's own maps p50 (ms)"),
            group="change",
            xlabel="clusters in the network",
            ylabel="propagation latency (ms)",
        ),
        notes=(
            "Timed (time.monotonic): from the return of the API call that writes the change into c1's object "
            "store (POST /members/c1/kube/apply, /kube/delete or /kube/annotate; its own duration is the 'API "
            "write' column) until the pinned LB maps of every other member — read directly with "
            "ClusterDatapath(<fleet bpffs>, member).services.list_services() every "
            f"{POLL * 1000:.0f} ms — hold the change for that member's frontend of the global Service. The "
            "writes go over one kept-open connection to the daemon's socket (fleetnet's CLI client builds a new "
            "HTTP client, SSL context included, for every request: tens of milliseconds that are not the "
            "change's).",
            "'p99 from request sent' adds the API call's own duration to each sample: an upper bound, since "
            "the object is committed somewhere inside that call (the hub answers after the commit).",
            "endpoint: a pod (image fleetnet/client, ready as soon as its process runs) labelled for the Service "
            "is applied to c1, then deleted; the path is c1's agent (pod network, EndpointSlice) → c1's "
            "clustermesh-apiserver exporter → c1's etcd → each member's agent (watch) → its maps. Service: "
            "the annotation service.cilium.io/shared on c1's Service set to false (c1's backends leave every "
            "other member) and back to true; c1's own maps do not change ('—'). all: both kinds together. A base "
            "pod keeps one c1 backend in place throughout.",
            f"{per_kind} changes of each kind per size (half each way), alternating kinds, "
            f"{GAP[0] * 1000:.0f}–{GAP[1] * 1000:.0f} ms apart; p99 is nearest-rank, so with "
            f"{per_kind} samples it is the largest of its row.",
            "One fleet: c1..c3 joined and measured first, then c4..c10 created, joined to the same network and "
            "given the Service, and everything measured again. Members without a pod still run their agent, "
            "exporter and etcd, as in the join benchmark.",
            f"The ratio compares with the target ({TARGET_MS:.0f} ms), not with a measured baseline: above 1× "
            "means the p99 is under it.",
        ),
    )
    detail = Table(
        title="Propagation: every sample by direction (ms, until the last member)",
        columns=("clusters", "change", P50, "samples"),
        rows=every,
        precision=0,
        notes=("Samples in the order measured; the last row of a size names the members that were slowest.",),
    )
    return [summary, detail]


def _slowest(samples: Sequence[Sample]) -> str:
    """Each member's median, slowest first (the three slowest)."""
    by: dict[str, list[float]] = {}
    for x in samples:
        for m, ms in x.per_member_ms.items():
            by.setdefault(m, []).append(ms)
    med = sorted(((statistics.median(v), m) for m, v in by.items()), reverse=True)
    return ", ".join(f"{m} {v:.0f}" for v, m in med[:3])


# ---------------------------------------------------------------- reading the maps


class Maps:
    """Every member's LB maps, read straight from the pins: the backends of one frontend."""

    def __init__(self, fleet: LocalFleet) -> None:
        self.fleet = fleet
        self.loader = fleetnet_module("datapath.loader")
        self.maps = fleetnet_module("datapath.maps")
        self.errors = fleetnet_module("errors")
        self.dps: dict[str, Any] = {}
        self.frontends: dict[str, Any] = {}

    def add(self, member: str, vip: str) -> None:
        self.dps[member] = self.loader.ClusterDatapath(self.fleet.bpffs(member), member)
        self.frontends[member] = self.maps.Frontend(vip, 80, "TCP")

    def backends(self, member: str) -> set[str] | None:
        """Backend addresses of the member's frontend for the Service (None: no such frontend yet)."""
        try:
            got = self.dps[member].services.list_services().get(self.frontends[member])
        except self.errors.FleetnetError:  # a new member's agent has not loaded its datapath yet
            return None
        return None if got is None else {b.ip for b in got}

    def close(self) -> None:
        for dp in self.dps.values():
            dp.close()
        self.dps.clear()


def watch(
    maps: Maps, others: Sequence[str], done: Callable[[set[str] | None], bool], local: bool, what: str
) -> tuple[dict[str, float], float | None]:
    """Poll until every member of ``others`` (and c1, if ``local``) satisfies ``done``: the monotonic
    time at which each first did."""
    pending = set(others) | ({"c1"} if local else set())
    seen: dict[str, float] = {}
    deadline = time.monotonic() + SAMPLE_TIMEOUT
    while pending:
        for m in list(pending):
            if done(maps.backends(m)):
                seen[m] = time.monotonic()
                pending.discard(m)
        if not pending:
            break
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: {sorted(pending)} still not updated after {SAMPLE_TIMEOUT:.0f} s.")
        time.sleep(POLL)  # a poll interval; the deadline bounds the wait
    local_t = seen.pop("c1", None)
    return seen, local_t


def timed(
    kind: str,
    direction: str,
    maps: Maps,
    others: Sequence[str],
    change: Callable[[], None],
    done: Callable[[set[str] | None], bool],
    local: bool,
    what: str,
) -> Sample:
    t0 = time.monotonic()
    change()
    t1 = time.monotonic()
    seen, local_t = watch(maps, others, done, local, what)
    per = {m: 1000 * (t - t1) for m, t in seen.items()}
    return Sample(
        kind=kind,
        direction=direction,
        every_ms=max(per.values()),
        per_member_ms=per,
        local_ms=None if local_t is None else 1000 * (local_t - t1),
        write_ms=1000 * (t1 - t0),
    )


# ---------------------------------------------------------------- the session


class Session:
    def __init__(self, fleet: LocalFleet) -> None:
        self.fleet = fleet
        self.maps = Maps(fleet)
        self.members: list[str] = []
        self.base_ip = ""
        self.c1_cidr = ""
        self.serial = 0

    def grow(self, n: int) -> None:
        """Members c1..c<n> in the network, each with the Service, each frontend showing c1's base pod."""
        new = [f"c{i}" for i in range(len(self.members) + 1, n + 1)]
        start = time.monotonic()
        self.fleet.up(n)
        self.members += new
        self.fleet.join(PROFILE, self.members)
        for m in new:
            self.fleet.apply(m, SERVICE_MANIFEST)
        if not self.base_ip:
            self.fleet.apply("c1", pod_manifest(BASE_POD))
            self.base_ip = str(self.fleet.wait_pod("c1", BASE_POD)["status"]["podIP"])
            self.c1_cidr = str(self.fleet.client.get("/members/c1")["local"]["podCidr"])
        for m in new:
            self.maps.add(m, self.fleet.wait_cluster_ip(m, SERVICE))
        wait_for(
            lambda: all(self.maps.backends(m) == {self.base_ip} for m in self.members),
            90.0,
            f"every member's frontend of {SERVICE} to hold c1's base pod {self.base_ip} only",
        )
        _progress(f"{n} clusters joined, {SERVICE} everywhere, in {time.monotonic() - start:.1f} s")

    def c1_backends(self, ips: set[str] | None) -> set[str]:
        cidr = ipaddress.IPv4Network(self.c1_cidr)
        return {ip for ip in ips or set() if ipaddress.IPv4Address(ip) in cidr}

    def endpoint_pair(self, others: Sequence[str]) -> list[Sample]:
        self.serial += 1
        name = f"prop-e{self.serial}"
        base = {self.base_ip}
        add = timed(
            ENDPOINT,
            "pod added",
            self.maps,
            others,
            lambda: self.fleet.apply("c1", pod_manifest(name)),
            lambda ips: ips is not None and len(ips - base) == 1,
            True,
            f"pod {name} added to c1",
        )
        new_ip = next(iter((self.maps.backends(others[0]) or set()) - base))
        _gap()
        remove = timed(
            ENDPOINT,
            "pod removed",
            self.maps,
            others,
            lambda: self.fleet.delete("c1", "Pod", name),
            lambda ips: ips is not None and new_ip not in ips,
            True,
            f"pod {name} ({new_ip}) removed from c1",
        )
        return [add, remove]

    def shared_pair(self, others: Sequence[str]) -> list[Sample]:
        ann = "service.cilium.io/shared"
        off = timed(
            SHARED,
            "shared=false",
            self.maps,
            others,
            lambda: self.fleet.annotate("c1", "Service", SERVICE, {ann: "false"}),
            lambda ips: ips is not None and not self.c1_backends(ips),
            False,
            "c1's Service set to shared=false",
        )
        _gap()
        on = timed(
            SHARED,
            "shared=true",
            self.maps,
            others,
            lambda: self.fleet.annotate("c1", "Service", SERVICE, {ann: "true"}),
            lambda ips: ips is not None and self.base_ip in ips,
            False,
            "c1's Service set back to shared=true",
        )
        return [off, on]

    def measure(self, per_kind: int) -> list[Sample]:
        others = self.members[1:]
        out: list[Sample] = []
        for _ in range(math.ceil(per_kind / 2)):
            _gap()
            out += self.endpoint_pair(others)
            _gap()
            out += self.shared_pair(others)
        return out


def _gap() -> None:
    time.sleep(random.uniform(*GAP))  # pacing between changes, not a wait for a condition


def run(quick: bool) -> list[Table]:
    per_kind = QUICK_SAMPLES if quick else SAMPLES
    s = Samples()
    with local_fleet("fleetnet-bench-prop-", SIZES[0], NAME) as fleet:
        session = Session(fleet)
        try:
            for n in SIZES:
                session.grow(n)
                got = session.measure(per_kind)
                s.by_size[n] = got
                for kind in KINDS:
                    ms = [x.every_ms for x in got if x.kind == kind]
                    _progress(f"{n} clusters, {kind}: p50 {percentile(ms, 50):.0f} ms, max {max(ms):.0f} ms")
        finally:
            session.maps.close()
    return summarize(s, quick)
