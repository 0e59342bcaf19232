"""What a global service costs on the wire: c1's pod → VIP → backend in c2, against pod to pod, and
against kube-proxy's iptables rules as the number of services grows.

Two measurements on one real local fleet (``fleetnet up --clusters 2``, both members joined into a
network). c2 runs the echo Deployment (one replica) behind a global Service; c1 has the same global
Service with no local backend and a client pod, so the VIP in c1 leads only to c2. The load
generators run inside the client pod's network namespace.

1. Requests per second with a new connection per request (``ab -c 16``, HTTP/1.0), keep-alive
   requests per second (HTTP/1.1) and TCP throughput (``iperf3``, one stream, to an iperf3 server
   started in the echo pod's namespace): through the VIP, against the same client talking to the
   echo pod's own address. Target: the VIP at ≥ 95 % of pod to pod.
2. The new-connection rate through the VIP with 1, 1,000 and 10,000 services installed. fleetnet:
   N-1 dummy services written straight into c1's LB maps (``ClusterDatapath.services``) next to
   what its agent wrote. Baseline: kube-proxy's iptables layout with the same N services (target
   last), installed with ``iptables-restore`` in the client's node namespace of a topology built
   by the same code but with no agent and no eBPF (``_traffic.baseline_topology``). Target:
   fleetnet at 10,000 ≥ 95 % of its 1-service rate, while the iptables curve falls.

Other work on a shared 2-core host changes rates several-fold within seconds, so: many short runs in
rounds, the two sides back to back in alternating order; rates are the best round of each side (other
work only ever slows a run down), and every run also records the CPU time of the client and the
server per request, which barely moves under such interference (tables with the medians).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from benchmarks import _traffic as traffic
from benchmarks._fleet import BenchError, LocalFleet, fleetnet_module, local_fleet, progress, wait_for
from benchmarks.report import Baseline, Plot, Table

T = TypeVar("T")

NAME = "services"
DESCRIPTION = (
    "Global service datapath: a c1 pod → VIP → backend in c2 against pod to pod (new-connection and "
    "keep-alive requests/s, TCP throughput), and the new-connection rate with 1, 1,000 and 10,000 services "
    "against kube-proxy's iptables rules."
)

SIZES = (1, 1_000, 10_000)
QUICK_SIZES = (1, 10_000)
RUNS = 8
QUICK_RUNS = 2
SECONDS = 1.0
QUICK_SECONDS = 1.0
CONCURRENCY = 16
TARGET = 0.95
CPU_LIMIT = 100 / TARGET  # % of the reference CPU per request that still allows TARGET of its rate

SERVICE = "bench-echo"
PROFILE = "bench-services"
BASELINE_VIP = "10.97.0.10"

C2_MANIFEST = f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: {SERVICE}, labels: {{app: {SERVICE}}}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {SERVICE}}}}}
  template:
    metadata: {{labels: {{app: {SERVICE}}}}}
    spec:
      containers:
      - {{name: echo, image: fleetnet/echo, ports: [{{containerPort: {traffic.ECHO_PORT}}}]}}
"""
SERVICE_MANIFEST = f"""---
apiVersion: v1
kind: Service
metadata:
  name: {SERVICE}
  annotations: {{service.cilium.io/global: "true"}}
spec:
  selector: {{app: {SERVICE}}}
  ports:
  - {{name: http, port: 80, targetPort: {traffic.ECHO_PORT}}}
  - {{name: iperf, port: {traffic.IPERF_PORT}, targetPort: {traffic.IPERF_PORT}}}
"""
C1_MANIFEST = """apiVersion: v1
kind: Pod
metadata: {name: bench-client, labels: {app: bench-client}}
spec:
  containers:
  - {name: client, image: fleetnet/client}
"""

# measure 1: (row label, unit)
NEW_CONN = ("new connection per request (ab -c 16, HTTP/1.0)", "req/s")
KEEPALIVE = ("keep-alive (16 connections, HTTP/1.1)", "req/s")
THROUGHPUT = ("TCP throughput (iperf3, 1 stream)", "Gbit/s")
LOADS = (NEW_CONN, KEEPALIVE, THROUGHPUT)
DIRECT = "pod IP (direct)"
VIP = "global service VIP"

FLEET_RATE = "fleetnet eBPF (req/s)"
IPT_RATE = "kube-proxy iptables (req/s)"
POD_IP_ROW = "pod IP, no service"
FLEET_CPU = "fleetnet eBPF (CPU µs/req)"
IPT_CPU = "kube-proxy iptables (CPU µs/req)"


def _progress(msg: str) -> None:
    progress(NAME, msg)


@dataclass
class Samples:
    """What a run measured (``summarize`` turns it into tables). Every list holds one value per round,
    in round order, so that values of one round can be compared with each other (paired)."""

    # measure 1: load label → "direct"/"vip" → one value per round
    path: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    # measure 2: services → one value per round (0 = pod IP, no service)
    fleet: dict[int, list[float]] = field(default_factory=dict)
    iptables: dict[int, list[float]] = field(default_factory=dict)
    fleet_install: dict[int, list[float]] = field(default_factory=dict)
    iptables_install: dict[int, list[float]] = field(default_factory=dict)
    # CPU µs per request (per MiB for throughput), same shapes as path / fleet / iptables
    path_cpu: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    fleet_cpu: dict[int, list[float]] = field(default_factory=dict)
    iptables_cpu: dict[int, list[float]] = field(default_factory=dict)
    loadavg: list[str] = field(default_factory=list)

    def add_path(self, label: str, side: str, run: traffic.Run) -> None:
        self.path.setdefault(label, {}).setdefault(side, []).append(run.value)
        self.path_cpu.setdefault(label, {}).setdefault(side, []).append(run.cpu_us_per_unit)

    def add_scaling(self, n: int, got: Mapping[str, traffic.Run]) -> None:
        for side, values, cpu in (
            ("fleet", self.fleet, self.fleet_cpu),
            ("iptables", self.iptables, self.iptables_cpu),
        ):
            values.setdefault(n, []).append(got[side].value)
            cpu.setdefault(n, []).append(got[side].cpu_us_per_unit)


def interleaved(round_: int, fns: Mapping[str, Callable[[], T]]) -> dict[str, T]:
    """One value of each measurement, in an order that alternates with the round, so that the
    load of other work on a shared host hits both sides alike."""
    keys = list(fns) if round_ % 2 == 0 else list(reversed(list(fns)))
    return {k: fns[k]() for k in keys}


def _median(xs: Sequence[float]) -> float | None:
    return statistics.median(xs) if xs else None


def paired_pct(xs: Sequence[float], of: Sequence[float]) -> float | None:
    """Median over rounds of 100·x/of, each x with the ``of`` of its own round.

    Other work on a shared 2-core host changes the rates several-fold within seconds; a ratio of two
    values taken seconds apart keeps most of that out, a ratio of two medians does not."""
    got = [100.0 * x / o for x, o in zip(xs, of, strict=False) if o]
    return statistics.median(got) if got else None


def _runs(xs: Sequence[float], digits: int = 0) -> str:
    return ", ".join(f"{x:,.{digits}f}" for x in xs)


def best(xs: Sequence[float]) -> float | None:
    """The highest of the runs: the rate with the least interference from other work.

    Other work on a shared 2-core host only ever slows a run down (rates here swing several-fold
    within seconds), so the best of many short runs estimates what the path itself can do, as
    ``timeit`` takes the minimum of its repeats."""
    return max(xs) if xs else None


def summarize(s: Samples, quick: bool) -> list[Table]:
    """The tables of a run (pure, so the unit tests can feed it made-up samples)."""
    rows: list[tuple[Any, ...]] = []
    for label, unit in LOADS:
        got = s.path.get(label)
        if not got:
            continue
        d, v = best(got.get("direct", [])), best(got.get("vip", []))
        pct = None if d is None or v is None or not d else 100.0 * v / d
        paired = paired_pct(got.get("vip", []), got.get("direct", []))
        verdict = None if pct is None else f"≥ {TARGET:.0%}: " + ("met" if pct >= 100 * TARGET else "MISSED")
        digits = 2 if unit == "Gbit/s" else 0
        rows.append(
            (label, unit, len(got.get("vip", [])), _r(d, digits), _r(v, digits), _r(pct, 1), _r(paired, 1), verdict)
        )
    path = Table(
        title="Global service c1 → c2: through the VIP against pod to pod (best of the rounds)",
        columns=("load", "unit", "rounds", DIRECT, VIP, "VIP % of direct", "VIP % of direct, paired median", "target"),
        rows=rows,
        baseline=Baseline(column=DIRECT, versus=VIP, ratio_title="VIP / direct", lower_is_better=False),
        precision=2,
        notes=(
            "Client: a pod in c1 (fleetnet/client), load generators run in its network namespace. Server: the "
            "fleetnet/echo pod of a one-replica Deployment in c2 (the Python asyncio echo server, one process), "
            "and an iperf3 server started in the same pod's namespace for the throughput row. The global Service "
            "exists in both clusters; c1 has no local backend, so the VIP (c1's ClusterIP) leads only to c2.",
            "Direct: the same client to the echo pod's own address (no service translation; the eBPF programs "
            "on the pod veths still run: conntrack, policy lookups). VIP: translated by fleetnet's eBPF at the "
            "client pod's host-side veth in c1's node namespace, reverse-translated on the reply.",
            "ab's direct and VIP runs use disjoint source-port ranges (1024–32999, 33000–65000): the client's "
            "kernel derives TCP timestamps from the address it connects to, so a SYN to the VIP reusing a port "
            "whose TIME_WAIT at the server came from a direct connection (or the reverse) fails PAWS and is "
            "retransmitted; with one shared range a third of the SYNs were, halving whichever rate ran second.",
            f"{_runs_note(quick)}; each round measures direct and VIP back to back (order alternating). Cells are "
            "the best round of each side (other work on the shared host only ever slows a run; 'Services: every "
            "run' has them all); the target is read on them. 'paired median' = the median over rounds of that "
            "round's VIP / direct.",
            "The echo server's single Python process bounds both request rates: these rows measure what the VIP "
            "adds to a realistic request, not the datapath's own ceiling (the next table's iptables curve shows "
            "that a per-connection cost does show through).",
        ),
    )
    tables = [path]
    if s.path_cpu:
        tables.append(_path_cpu_table(s, quick))
    if s.fleet:
        tables.append(_scaling_table(s, quick))
    if s.fleet_cpu:
        tables.append(_scaling_cpu_table(s, quick))
    every: list[tuple[Any, ...]] = []
    for label, unit in LOADS:
        digits = 2 if unit == "Gbit/s" else 0
        for side, xs in s.path.get(label, {}).items():
            name = f"{label}: {DIRECT if side == 'direct' else VIP}"
            every.append((name, _r(best(xs), digits), _r(_median(xs), digits), _runs(xs, digits)))
    for who, by_size in (("fleetnet", s.fleet), ("iptables", s.iptables)):
        every += [
            (f"{who}, {_size(n)}", _r(best(xs), 0), _r(_median(xs), 0), _runs(xs)) for n, xs in sorted(by_size.items())
        ]
    for label, unit in LOADS:
        for side, xs in s.path_cpu.get(label, {}).items():
            name = f"CPU µs per {_per(unit)}, {label}: {DIRECT if side == 'direct' else VIP}"
            every.append((name, _r(min(xs), 1), _r(_median(xs), 1), _runs(xs, 1)))
    for who, by_size in (("fleetnet", s.fleet_cpu), ("iptables", s.iptables_cpu)):
        every += [
            (f"CPU µs per request, {who}, {_size(n)}", _r(min(xs), 1), _r(_median(xs), 1), _runs(xs, 1))
            for n, xs in sorted(by_size.items())
        ]
    tables.append(
        Table(
            title="Services: every run",
            columns=("measurement", "best", "median", "runs"),
            rows=every,
            precision=2,
            notes=(
                "Runs in the order measured (req/s; Gbit/s for throughput; CPU in µs per request or per MiB). "
                "'best' is the highest rate, and the lowest CPU time.",
            ),
        )
    )
    return tables


def _r(x: float | None, digits: int) -> float | int | None:
    if x is None:
        return None
    return round(x) if digits == 0 else round(x, digits)


def _size(n: int) -> str:
    return POD_IP_ROW if n == 0 else f"{n:,} service{'s' if n > 1 else ''}"


def _runs_note(quick: bool) -> str:
    runs, secs = (QUICK_RUNS, QUICK_SECONDS) if quick else (RUNS, SECONDS)
    return f"{runs} round{'s' if runs > 1 else ''} of {secs:g} s runs (throughput {secs + 1:g} s)".capitalize()


def _per(unit: str) -> str:
    return "MiB" if unit == "Gbit/s" else "request"


CPU_NOTE = (
    "CPU = CPU time of the load generator (getrusage of the reaped client) plus the server's process "
    "(/proc/<pid>/task/*/schedstat) during the run, over the requests (or MiB) it completed. Packet "
    "processing on the veths (eBPF programs, netfilter) runs mostly in softirq in the context of the "
    "sending process, so it is counted too (softirq work that lands in ksoftirqd or in another process "
    "is not). Unlike the rates, it barely moves when other work competes for the CPUs: each cell is the "
    "median of the rounds."
)


def _path_cpu_table(s: Samples, quick: bool) -> Table:
    rows: list[tuple[Any, ...]] = []
    for label, unit in LOADS:
        got = s.path_cpu.get(label)
        if not got:
            continue
        d, v = _median(got.get("direct", [])), _median(got.get("vip", []))
        pct = None if d is None or v is None or not d else 100.0 * v / d
        verdict = None if pct is None else f"≤ {CPU_LIMIT:.1f}%: " + ("met" if pct <= CPU_LIMIT else "MISSED")
        rows.append((label, f"µs per {_per(unit)}", len(got.get("vip", [])), _r(d, 1), _r(v, 1), _r(pct, 1), verdict))
    return Table(
        title="Global service c1 → c2: CPU time per request, through the VIP against pod to pod (median)",
        columns=("load", "unit", "rounds", DIRECT, VIP, "VIP % of direct", "target"),
        rows=rows,
        baseline=Baseline(column=DIRECT, versus=VIP, ratio_title="direct / VIP", lower_is_better=True),
        precision=1,
        notes=(
            CPU_NOTE,
            "The same runs as the table above. A ratio under 1× means the VIP costs more CPU. Target: when the "
            f"path is CPU-bound, a rate ≥ {TARGET:.0%} of direct needs CPU per request ≤ 1/{TARGET} = "
            f"{CPU_LIMIT:.1f}% of direct.",
        ),
    )


def _scaling_cpu_table(s: Samples, quick: bool) -> Table:
    f1, i1 = _median(s.fleet_cpu.get(1, [])), _median(s.iptables_cpu.get(1, []))
    rows: list[tuple[Any, ...]] = []
    for n in sorted(s.fleet_cpu):
        f, i = _median(s.fleet_cpu[n]), _median(s.iptables_cpu.get(n, []))
        fp = None if n == 0 or f is None or not f1 else 100.0 * f / f1
        ip = None if n == 0 or i is None or not i1 else 100.0 * i / i1
        verdict = None
        if n == max(s.fleet_cpu) and n > 1 and fp is not None:
            verdict = f"≤ {CPU_LIMIT:.1f}% of 1: " + ("met" if fp <= CPU_LIMIT else "MISSED")
        rows.append((_size(n) if n == 0 else n, _r(f, 1), _r(fp, 1), _r(i, 1), _r(ip, 1), verdict))
    return Table(
        title="CPU time per new connection against the number of services (median)",
        columns=("services", FLEET_CPU, "fleetnet % of 1", IPT_CPU, "iptables % of 1", "target"),
        rows=rows,
        baseline=Baseline(column=IPT_CPU, versus=FLEET_CPU, ratio_title="iptables / fleetnet", lower_is_better=True),
        precision=1,
        notes=(
            CPU_NOTE,
            "The same runs as the table above (client = ab, server = the echo process). iptables' rule walk "
            "runs in the client's softirq context, so its cost per connection shows here even when the rate "
            "is bounded by the server.",
        ),
    )


def _scaling_table(s: Samples, quick: bool) -> Table:
    rows: list[tuple[Any, ...]] = []
    largest = max(s.fleet)
    f1, i1 = best(s.fleet.get(1, [])), best(s.iptables.get(1, []))
    for n in sorted(s.fleet):
        f, i = best(s.fleet[n]), best(s.iptables.get(n, []))
        fp = None if n == 0 or f is None or not f1 else 100.0 * f / f1
        ip = None if n == 0 or i is None or not i1 else 100.0 * i / i1
        verdict = None
        if n == largest and n > 1 and fp is not None:
            verdict = f"≥ {TARGET:.0%} of 1: " + ("met" if fp >= 100 * TARGET else "MISSED")
        rows.append(
            (
                _size(n) if n == 0 else n,
                _r(f, 0),
                _r(fp, 1),
                _r(i, 0),
                _r(ip, 1),
                _r(_median(s.fleet_install.get(n, [])), 1),
                _r(_median(s.iptables_install.get(n, [])), 1),
                verdict,
            )
        )
    notes = [
        "New connection per request (ab -c 16, HTTP/1.0) from the client pod to the VIP, target service last "
        "among N (N-1 dummy services with two backends each that no traffic reaches). Cells are the best round "
        "(see the table above; medians in 'Services: every run'); % of 1 = the rate at N over the same side's "
        "rate with 1 service.",
        "fleetnet: the fleet of the table above; the N-1 dummy services are written straight into c1's LB maps "
        "with ClusterDatapath(<fleet bpffs>, 'c1').services.sync(what the agent wrote + dummies) — 10,000 Service "
        "objects through the API would mostly time the agent's reconcile, not the datapath — and removed "
        "afterwards. The maps are hashes, so 'last' means nothing to them. install = that sync.",
        "Baseline: kube-proxy's iptables mode (KUBE-SERVICES → KUBE-SVC-* → KUBE-SEP-*, masquerade marks and "
        f"the KUBE-NODEPORTS rule last, as kube-proxy writes them) with the same N services, the target VIP "
        f"{BASELINE_VIP} → echo pod last, loaded with iptables-restore (the host's iptables, nf_tables backend) "
        "into the nat table of the client's node namespace. It runs in a topology of its own built by "
        "fleetnet's local/topology.py (client pod → node → underlay bridge → node → echo pod, the same echo "
        "server) with no agent and no eBPF; install = iptables-restore.",
        "fleetnet / iptables compares two topologies of the same shape; the row 'pod IP, no service' gives "
        "each one's ceiling (fleetnet's still runs its eBPF programs). The target reads the curves against "
        "their own 1-service rate.",
        f"{_runs_note(quick)}. Every round goes through all sizes (installing each anew, "
        "the nat table deleted before the 'pod IP' row), fleetnet and iptables back to back in alternating "
        "order, so each size sees the host's load drift alike. As above, pod-IP and VIP runs use disjoint "
        "source-port ranges.",
    ]
    if s.loadavg:
        notes.append(
            "Load average (1/5/15 min) at the start and end of this benchmark: "
            + " → ".join(s.loadavg)
            + " (a shared 2-core host: other work runs beside these measurements)."
        )
    return Table(
        title="New connections per second against the number of services (best of the rounds)",
        columns=(
            "services",
            FLEET_RATE,
            "fleetnet % of 1",
            IPT_RATE,
            "iptables % of 1",
            "fleetnet install (ms)",
            "iptables install (ms)",
            "target",
        ),
        rows=rows,
        baseline=Baseline(column=IPT_RATE, versus=FLEET_RATE, ratio_title="fleetnet / iptables", lower_is_better=False),
        precision=1,
        notes=notes,
        plot=Plot(
            x="services",
            series=(FLEET_RATE, IPT_RATE),
            xlabel="services installed",
            ylabel="new connections per second",
            logx=True,
        ),
    )


# ---------------------------------------------------------------- the fleet side


@dataclass(frozen=True, slots=True)
class Setup:
    client_netns: str
    echo_netns: str
    echo_ip: str
    echo_pid: int  # the echo server process the kubelet started in the pod
    vip: str


def _lb(fleet: LocalFleet) -> dict[Any, list[Any]]:
    dp = fleetnet_module("datapath.loader").ClusterDatapath(fleet.bpffs("c1"), "c1")
    try:
        return dict(dp.services.list_services())
    finally:
        dp.close()


def setup(fleet: LocalFleet) -> Setup:
    fleet.join(PROFILE, ["c1", "c2"])
    fleet.apply("c2", C2_MANIFEST + SERVICE_MANIFEST)
    fleet.apply("c1", C1_MANIFEST + SERVICE_MANIFEST)
    echo = fleet.wait_pod("c2", SERVICE + "-")
    client = fleet.wait_pod("c1", "bench-client")
    vip = fleet.wait_cluster_ip("c1", SERVICE)
    echo_ip = str(echo["status"]["podIP"])
    maps = fleetnet_module("datapath.maps")
    want = {
        maps.Frontend(vip, 80, "TCP"): (echo_ip, traffic.ECHO_PORT),
        maps.Frontend(vip, traffic.IPERF_PORT, "TCP"): (echo_ip, traffic.IPERF_PORT),
    }

    def programmed() -> bool:
        try:
            lb = _lb(fleet)
        except fleetnet_module("errors").FleetnetError:  # the agent has not loaded the datapath yet
            return False
        return all([(b.ip, b.port) for b in lb.get(fe, [])] == [be] for fe, be in want.items())

    wait_for(programmed, 60.0, f"c1's LB maps to send {vip} to the echo pod {echo_ip} in c2")
    s = Setup(
        client_netns=str(client["status"]["fleetnet"]["netns"]),
        echo_netns=str(echo["status"]["fleetnet"]["netns"]),
        echo_ip=echo_ip,
        echo_pid=int(echo["status"]["fleetnet"]["process"]["pid"]),
        vip=vip,
    )
    traffic.tune_client(s.client_netns)
    for host, port in ((vip, 80), (echo_ip, traffic.ECHO_PORT)):
        who = traffic.http_get(s.client_netns, host, port)
        if who.get("cluster") != "c2":
            raise BenchError(f"a request from c1's client to {host}:{port} was answered by {who}, not by c2.")
    return s


def dummy_lb(n: int) -> dict[Any, list[Any]]:
    maps = fleetnet_module("datapath.maps")
    return {
        maps.Frontend(s.vip, s.port, "TCP"): [maps.Backend(ip, port, 2) for ip, port in s.backends]
        for s in traffic.dummy_services(n)
    }


def install_fleet(fleet: LocalFleet, n_dummies: int) -> float:
    """c1's LB maps: what the agent wrote + ``n_dummies`` dummy services; milliseconds the sync took."""
    dp = fleetnet_module("datapath.loader").ClusterDatapath(fleet.bpffs("c1"), "c1")
    try:
        svc = dp.services  # a fresh mirror of what the kernel holds now
        dummies = dummy_lb(max(n_dummies, 0))
        ours = {fe for fe in dummy_lb(SIZES[-1])}
        desired = {fe: b for fe, b in svc.list_services().items() if fe not in ours} | dummies
        start = time.monotonic()
        svc.sync(desired)
        return 1000 * (time.monotonic() - start)
    finally:
        dp.close()


def measure_path(s: Samples, st: Setup, runs: int, secs: float, logdir: Path) -> None:
    c = st.client_netns
    iperf = traffic.start_iperf3(st.echo_netns, logdir)
    echo_pids, iperf_pids = [st.echo_pid], [iperf.pid]
    loads: dict[str, Callable[[str, int, int], traffic.Run]] = {
        NEW_CONN[0]: lambda host, port, _: traffic.ab_rate(
            c, host, port, secs, CONCURRENCY, echo_pids, traffic.PORT_RANGES["vip" if host == st.vip else "direct"]
        ),
        KEEPALIVE[0]: lambda host, port, _: traffic.keepalive_rate(c, host, port, secs, CONCURRENCY, echo_pids),
        THROUGHPUT[0]: lambda host, _, iperf_port: traffic.iperf3_gbps(c, host, iperf_port, secs + 1, iperf_pids),
    }
    try:
        for r in range(runs):
            for label, fn in loads.items():
                got = interleaved(
                    r,
                    {
                        "direct": partial(fn, st.echo_ip, traffic.ECHO_PORT, traffic.IPERF_PORT),
                        "vip": partial(fn, st.vip, 80, traffic.IPERF_PORT),
                    },
                )
                for side, run_ in got.items():
                    s.add_path(label, side, run_)
            _progress(
                f"round {r + 1}/{runs} (direct/VIP): "
                + "; ".join(
                    f"{lbl.split(' (')[0]} {s.path[lbl]['direct'][-1]:,.1f}/{s.path[lbl]['vip'][-1]:,.1f}, "
                    f"CPU µs {s.path_cpu[lbl]['direct'][-1]:,.1f}/{s.path_cpu[lbl]['vip'][-1]:,.1f}"
                    for lbl in loads
                )
            )
    finally:
        traffic.stop(iperf)


def measure_scaling(s: Samples, fleet: LocalFleet, st: Setup, sizes: Sequence[int], runs: int, secs: float) -> None:
    with traffic.baseline_topology() as base:
        target = traffic.Svc(BASELINE_VIP, 80, ((base.server_ip, traffic.ECHO_PORT),), SERVICE)
        fleet_ab = partial(
            traffic.ab_rate, st.client_netns, seconds=secs, concurrency=CONCURRENCY, server_pids=[st.echo_pid]
        )
        base_ab = partial(
            traffic.ab_rate, base.client_netns, seconds=secs, concurrency=CONCURRENCY, server_pids=[base.server_pid]
        )
        try:
            for r in range(runs):
                install_fleet(fleet, 0)
                traffic.remove_nat(base.node_netns)
                direct = traffic.PORT_RANGES["direct"]
                got = interleaved(
                    r,
                    {
                        "fleet": partial(fleet_ab, st.echo_ip, traffic.ECHO_PORT, source_ports=direct),
                        "iptables": partial(base_ab, base.server_ip, traffic.ECHO_PORT, source_ports=direct),
                    },
                )
                s.add_scaling(0, got)
                line = [f"pod IP {_line(got)}"]
                for n in sizes:
                    s.fleet_install.setdefault(n, []).append(install_fleet(fleet, n - 1))
                    s.iptables_install.setdefault(n, []).append(
                        1000
                        * traffic.install_iptables(
                            base.node_netns, [*traffic.dummy_services(n - 1), target], base.cluster_cidr
                        )
                    )
                    if r == 0:
                        for netns, host in ((st.client_netns, st.vip), (base.client_netns, BASELINE_VIP)):
                            who = traffic.http_get(netns, host, 80)
                            if who.get("cluster") not in ("c2", "k2"):
                                raise BenchError(f"with {n} services, {host} was answered by {who}.")
                    vip = traffic.PORT_RANGES["vip"]
                    got = interleaved(
                        r,
                        {
                            "fleet": partial(fleet_ab, st.vip, 80, source_ports=vip),
                            "iptables": partial(base_ab, BASELINE_VIP, 80, source_ports=vip),
                        },
                    )
                    s.add_scaling(n, got)
                    line.append(f"{n:,} {_line(got)}")
                _progress(f"round {r + 1}/{runs}, fleetnet/iptables req/s (CPU µs/req): " + ", ".join(line))
        finally:
            install_fleet(fleet, 0)  # the dummies go; what the agent wrote stays


def _line(got: Mapping[str, traffic.Run]) -> str:
    f, i = got["fleet"], got["iptables"]
    return f"{f.value:,.0f}/{i.value:,.0f} ({f.cpu_us_per_unit:.0f}/{i.cpu_us_per_unit:.0f})"


def _loadavg() -> str:
    try:
        return " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def run(quick: bool) -> list[Table]:
    traffic.require_tools("ab", "iperf3", "iptables-restore")
    sizes = QUICK_SIZES if quick else SIZES
    runs = QUICK_RUNS if quick else RUNS
    secs = QUICK_SECONDS if quick else SECONDS
    s = Samples(loadavg=[_loadavg()])
    with local_fleet("fleetnet-bench-services-", 2, NAME) as fleet:
        st = setup(fleet)
        _progress(f"c1 client → VIP {st.vip} → echo pod {st.echo_ip} in c2 ready")
        logdir = fleet.home / "bench-logs"
        logdir.mkdir(exist_ok=True)
        measure_path(s, st, runs, secs, logdir)
        measure_scaling(s, fleet, st, sizes, runs, secs)
    s.loadavg.append(_loadavg())
    return summarize(s, quick)
