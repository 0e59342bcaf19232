"""What identity policy costs at mesh scale (issue 4): on the wire with 1,000 remote identities allowed,
and in the control plane when a remote cluster adds 1,000 endpoints.

One real local fleet (``fleetnet up --clusters 2``, both members joined into one network). c1 runs the
echo pod (``app=bench-echo``); c2 runs the client pod (``app=bench-client``) and a second pod
(``app=bench-other``) that the policy does not allow. The policy is a real CiliumNetworkPolicy applied
to c1, compiled and programmed by c1's agent:

    ingress of app=bench-echo: fromEndpoints app=bench-client in any cluster
    (matchExpressions io.cilium.k8s.policy.cluster Exists), TCP 8080

1. Request rate and latency from c2's client to c1's echo pod with that policy enforced and 1,000
   further remote identities allowed by it (1,001 entries in the endpoint's policy map, 1,000 extra
   ipcache entries), against the same pods with no policy (no CNP, no extra identities), runs of the
   two states interleaved. Target: ≥ 95 % of no policy.
2. The time from c2 publishing 1,000 new endpoints until c1's pinned policy map (and ipcache) holds
   them, against 10 endpoints; and the same recompute in process (``plan.policy.compile_policies`` +
   ``PolicyMap.replace_endpoint`` + ``IpcacheMap.sync`` on a scratch datapath), against an idle
   recompute. The 1,000 "endpoints" are synthetic pods of c2 published in c2's clustermesh etcd exactly
   as its exporter would publish them (see ``_policy_tools`` for why not as objects in c2's store);
   each has a label set of its own that the policy selects (``app=bench-client, bench-id=<i>``).
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import _policy_tools as tools
from benchmarks import _traffic as traffic
from benchmarks._fleet import BenchError, LocalFleet, fleetnet_module, local_fleet, progress, wait_for
from benchmarks.report import Baseline, Table

NAME = "policy"
DESCRIPTION = (
    "Identity policy at scale: request rate and latency to a pod whose ingress policy allows 1,000 remote "
    "identities against no policy, and the time for c1 to recompute its policy map after c2 adds 1,000 "
    "endpoints against 10."
)

RUNS = 3
QUICK_RUNS = 1
SECONDS = 3.0
QUICK_SECONDS = 2.0
CONCURRENCY = 16
TARGET = 0.95
SYNTHETIC = 1_000
BASE_N = 10
INPROC_SIZES = (10, 1_000, 10_000)
QUICK_INPROC_SIZES = (10, 1_000)
INPROC_REPS = 3
POLL = 0.01
SETTLE_TIMEOUT = 60.0
RECOMPUTE_TIMEOUT = 180.0

PROFILE = "bench-policy"
POLICY = "bench-policy"
ECHO, CLIENT, OTHER = "bench-echo", "bench-client", "bench-other"
NAMESPACE = "default"
PORT = traffic.ECHO_PORT
PROTO_TCP = 6
DIR_INGRESS = 0  # policy_key.dir

C1_MANIFEST = f"""apiVersion: v1
kind: Pod
metadata: {{name: {ECHO}, labels: {{app: {ECHO}}}}}
spec:
  containers:
  - {{name: echo, image: fleetnet/echo, ports: [{{containerPort: {PORT}}}]}}
"""
C2_MANIFEST = f"""apiVersion: v1
kind: Pod
metadata: {{name: {CLIENT}, labels: {{app: {CLIENT}}}}}
spec:
  containers:
  - {{name: client, image: fleetnet/client}}
---
apiVersion: v1
kind: Pod
metadata: {{name: {OTHER}, labels: {{app: {OTHER}}}}}
spec:
  containers:
  - {{name: client, image: fleetnet/client}}
"""
POLICY_MANIFEST = f"""apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {{name: {POLICY}, namespace: {NAMESPACE}}}
spec:
  endpointSelector: {{matchLabels: {{app: {ECHO}}}}}
  ingress:
  - fromEndpoints:
    - matchLabels: {{app: {CLIENT}}}
      matchExpressions: [{{key: io.cilium.k8s.policy.cluster, operator: Exists}}]
    toPorts: [{{ports: [{{port: "{PORT}", protocol: TCP}}]}}]
"""

NONE = "no policy"
ENFORCED = f"policy, {SYNTHETIC:,} identities"
BASE_COL = f"{BASE_N} endpoints"
BIG_COL = f"{SYNTHETIC:,} endpoints"
SYNTHETIC_CIDR_NOTE = "the upper half of c2's pod CIDR, which no node of c2 allocates from"
NEW_CONN = "new connection per request (ab -c 16)"
SEQUENTIAL = "one request at a time (1 client)"


def _progress(msg: str) -> None:
    progress(NAME, msg)


# ---------------------------------------------------------------- samples


@dataclass(frozen=True, slots=True)
class Recompute:
    """One add or remove of synthetic endpoints in c2, seen from c1 (seconds)."""

    writes: float  # c2's etcd: first to last write
    policy: float  # from c2's first write until c1's policy map is complete
    ipcache: float  # same, c1's ipcache
    after_writes: float  # from c2's last write until both are complete


@dataclass(frozen=True, slots=True)
class Inproc:
    """One in-process recompute (milliseconds)."""

    compile_ms: float
    policy_ms: float
    ipcache_ms: float

    @property
    def total_ms(self) -> float:
        return self.compile_ms + self.policy_ms + self.ipcache_ms


@dataclass
class Samples:
    """What a run measured (``summarize`` turns it into tables)."""

    # state (NONE/ENFORCED) → runs
    ab: dict[str, list[float]] = field(default_factory=dict)
    seq_rate: dict[str, list[float]] = field(default_factory=dict)
    p50: dict[str, list[float]] = field(default_factory=dict)
    p90: dict[str, list[float]] = field(default_factory=dict)
    p99: dict[str, list[float]] = field(default_factory=dict)
    # ("add"|"remove", n) → samples
    recompute: dict[tuple[str, int], list[Recompute]] = field(default_factory=dict)
    # new identities → samples; the idle recompute measured next to each size
    inproc: dict[int, list[Inproc]] = field(default_factory=dict)
    inproc_idle: dict[int, list[Inproc]] = field(default_factory=dict)
    inproc_entries: dict[int, int] = field(default_factory=dict)
    policy_entries: list[int] = field(default_factory=list)  # echo endpoint's entries while enforced
    ipcache_entries: list[int] = field(default_factory=list)  # c1's ipcache size while enforced
    policy_drops: int = 0  # DROP_POLICY counted in c1 during the enforced runs (the denied probe)
    apply_seconds: list[float] = field(default_factory=list)  # CNP apply → enforced on the endpoint
    loadavg: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- the fleet


@dataclass
class Setup:
    fleet: LocalFleet
    dp: Any  # c1's ClusterDatapath
    client_netns: str
    other_netns: str
    echo_ip: str
    echo_ep: int
    client_identity: int
    c2_dir: Path
    c2_netns: str  # c2's control node: where its clustermesh etcd listens on 127.0.0.1
    c2_host_ip: str
    c1_id: int
    c2_id: int
    synthetic_cidr: str
    present: list[tools.Synthetic] = field(default_factory=list)  # synthetic endpoints published now
    enforced: bool = False

    # ------------------------------------------------------------ c1's maps, read cheaply while polling
    def ingress_identities(self) -> set[int]:
        """Identities with an entry in the echo endpoint's ingress policy (raw keys: one batch read)."""
        key = fleetnet_module("datapath.maps").POLICY_KEY
        out = set()
        for k, _v in self.dp.map("fn_policy").items():
            identity, ep, _dport, _proto, direction = key.unpack(k)
            if ep == self.echo_ep and direction == DIR_INGRESS:
                out.add(identity)
        return out

    def ipcache_holds(self, e: tools.Synthetic) -> bool:
        """Whether c1's ipcache maps the address to this identity (an LPM lookup, as the datapath does)."""
        return _ipcache_identity(self.dp, e.ip) == e.identity

    def enforcing(self) -> bool:
        rec = self.dp.endpoints.get(self.echo_ip)
        return bool(rec is not None and rec.info.ingress_enforced)


def _ipcache_identity(dp: Any, ip: str) -> int | None:
    e = dp.ipcache.lookup(ip)
    return None if e is None else int(e.identity)


def setup(fleet: LocalFleet) -> Setup:
    fleet.join(PROFILE, ["c1", "c2"])
    fleet.apply("c1", C1_MANIFEST)
    fleet.apply("c2", C2_MANIFEST)
    echo = fleet.wait_pod("c1", ECHO)
    client = fleet.wait_pod("c2", CLIENT)
    other = fleet.wait_pod("c2", OTHER)
    echo_ip = str(echo["status"]["podIP"])
    client_ip = str(client["status"]["podIP"])
    c2_dir = fleet.home / "clusters" / "c2"
    c2 = json.loads((c2_dir / "cluster.json").read_text())
    c1 = json.loads((fleet.home / "clusters" / "c1" / "cluster.json").read_text())
    pod_cidr = ipaddress.IPv4Network(c2["pod_cidr"])
    # the upper half of c2's pod CIDR: no node of c2 allocates from it
    synthetic_cidr = list(pod_cidr.subnets(prefixlen_diff=1))[1]
    for n in c2["nodes"]:
        if ipaddress.IPv4Network(n["pod_cidr"]).overlaps(synthetic_cidr):
            raise BenchError(f"c2's node {n['name']} allocates from {synthetic_cidr}; the synthetic pods need it free.")
    dp = fleetnet_module("datapath.loader").ClusterDatapath(fleet.bpffs, "c1")
    try:
        c2_low, c2_high = fleetnet_module("plan.identity").identity_range(int(c2["cluster_id"]))
        client_identity = wait_for(
            lambda: (i := _ipcache_identity(dp, client_ip)) is not None and c2_low <= i <= c2_high and i,
            SETTLE_TIMEOUT,
            f"c1's ipcache to learn the identity of c2's client {client_ip}",
        )
        s = Setup(
            fleet=fleet,
            dp=dp,
            client_netns=str(client["status"]["fleetnet"]["netns"]),
            other_netns=str(other["status"]["fleetnet"]["netns"]),
            echo_ip=echo_ip,
            echo_ep=int(fleetnet_module("agent.datapath").endpoint_id(echo_ip)),
            client_identity=int(client_identity),
            c2_dir=c2_dir,
            c2_netns=str(c2["nodes"][0]["netns"]),
            c2_host_ip=str(c2["nodes"][0]["ip"]),
            c1_id=int(c1["cluster_id"]),
            c2_id=int(c2["cluster_id"]),
            synthetic_cidr=str(synthetic_cidr),
        )
        traffic.tune_client(s.client_netns)
        who = traffic.http_get(s.client_netns, echo_ip, PORT)
        if who.get("cluster") != "c1":
            raise BenchError(f"a request from c2's client to {echo_ip}:{PORT} was answered by {who}, not by c1.")
    except BaseException:
        dp.close()
        raise
    return s


# ---------------------------------------------------------------- policy on and off


def policy_on(s: Setup, samples: Samples) -> None:
    start = time.monotonic()
    s.fleet.apply("c1", POLICY_MANIFEST)
    wait_for(
        lambda: s.enforcing() and s.client_identity in s.ingress_identities(),
        SETTLE_TIMEOUT,
        f"c1's agent to enforce {POLICY} on {ECHO} with c2's client allowed",
    )
    samples.apply_seconds.append(time.monotonic() - start)
    s.enforced = True


def policy_off(s: Setup) -> None:
    s.fleet.delete("c1", "CiliumNetworkPolicy", POLICY)
    wait_for(
        lambda: not s.enforcing() and not s.ingress_identities(),
        SETTLE_TIMEOUT,
        f"c1's agent to stop enforcing policy on {ECHO}",
    )
    s.enforced = False


# ---------------------------------------------------------------- c2 adds or removes endpoints


def _records(s: Setup, eps: Sequence[tools.Synthetic]) -> dict[str, str]:
    return tools.etcd_records(eps, NAMESPACE, s.c2_host_ip)


def _timed_change(s: Setup, add: Sequence[tools.Synthetic], remove: Sequence[tools.Synthetic]) -> Recompute:
    """Publish ``add`` or withdraw ``remove`` in c2's etcd; poll c1's maps until they reflect it."""
    if add and remove:
        raise ValueError("one change at a time")
    puts = _records(s, add) if add else None
    # withdrawn in the reverse order: ipcache entries first, then identities
    deletes = list(reversed(list(_records(s, remove)))) if remove else []
    ids = {e.identity for e in (add or remove)}
    result: dict[str, Any] = {}

    def write() -> None:
        try:
            result["written"] = tools.etcd_write(s.c2_netns, s.c2_dir, puts, deletes)
        except BaseException as e:  # re-raised by the polling thread
            result["error"] = e

    writer = threading.Thread(target=write, name="bench-policy-etcd", daemon=True)
    writer.start()
    t_policy = t_ipcache = None
    pending = list(add or remove)
    deadline = time.monotonic() + RECOMPUTE_TIMEOUT
    while t_policy is None or t_ipcache is None:
        if "error" in result:
            raise result["error"]
        now = time.monotonic()
        if now > deadline:
            raise BenchError(f"c1's maps did not reflect {len(ids)} {'new' if add else 'removed'} endpoints in time.")
        if t_policy is None:
            have = s.ingress_identities()
            if (ids <= have) if add else not (ids & have):
                t_policy = now
        if t_ipcache is None:
            # the agent writes the ipcache in one sync: checking the pending ones in order stops at the
            # first that is not there yet, so a poll costs a lookup or two until the sync happens
            while pending and s.ipcache_holds(pending[0]) == bool(add):
                pending.pop(0)
            if not pending:
                t_ipcache = now
        time.sleep(POLL)  # a poll interval; the deadline bounds the wait
    writer.join(timeout=RECOMPUTE_TIMEOUT)
    if "error" in result:
        raise result["error"]
    w: tools.Written = result["written"]
    # the policy map as the datapath package reads it, once, to confirm what the raw poll saw
    official = {e.identity for e in s.dp.policy.entries(s.echo_ep) if e.direction == "ingress"}
    if (ids <= official) if add else (ids & official):
        raise BenchError("PolicyMap.entries disagrees with the raw read of the policy map.")
    return Recompute(
        writes=w.last - w.first,
        policy=t_policy - w.first,
        ipcache=t_ipcache - w.first,
        after_writes=max(t_policy, t_ipcache) - w.last,
    )


def add_endpoints(s: Setup, n: int, samples: Samples) -> None:
    if not s.enforced:
        raise BenchError("adding endpoints is only timed with the policy applied.")
    eps = tools.synthetic_endpoints(
        n,
        start=len(s.present),
        cluster="c2",
        cluster_id=s.c2_id,
        pod_labels={"app": CLIENT},
        namespace=NAMESPACE,
        cidr=s.synthetic_cidr,
    )
    r = _timed_change(s, eps, [])
    s.present.extend(eps)
    samples.recompute.setdefault(("add", n), []).append(r)
    _progress(f"c2 adds {n:,} endpoints: c1's policy map in {r.policy:.2f} s, ipcache {r.ipcache:.2f} s ({_rc(r)})")


def remove_endpoints(s: Setup, samples: Samples | None) -> None:
    eps, n = list(s.present), len(s.present)
    if not eps:
        return
    if s.enforced:
        r = _timed_change(s, [], eps)
        if samples is not None:
            samples.recompute.setdefault(("remove", n), []).append(r)
        _progress(f"c2 removes {n:,} endpoints: c1's policy map in {r.policy:.2f} s ({_rc(r)})")
    else:
        tools.etcd_write(s.c2_netns, s.c2_dir, None, list(reversed(list(_records(s, eps)))))
    s.present.clear()


def _rc(r: Recompute) -> str:
    return f"c2's writes took {r.writes:.2f} s, both maps done {r.after_writes:+.2f} s after the last"


# ---------------------------------------------------------------- traffic in one state


def measure(s: Setup, samples: Samples, state: str, secs: float) -> None:
    enforced = state == ENFORCED
    if s.enforced != enforced or (len(s.present) == SYNTHETIC) != enforced:
        raise BenchError(f"the fleet is not in the state {state!r}.")
    if not tools.probe(s.client_netns, s.echo_ip, PORT, 3.0):
        raise BenchError(f"c2's client cannot reach {ECHO} ({state}).")
    drops_before = s.dp.metrics.read().get("DROP_POLICY", 0)
    other_ok = tools.probe(s.other_netns, s.echo_ip, PORT, 1.0)
    if other_ok == enforced:
        raise BenchError(f"{OTHER} was {'let through' if other_ok else 'refused'} with {state}.")
    if enforced:
        ids = {e.identity for e in s.dp.policy.entries(s.echo_ep) if e.direction == "ingress"}
        samples.policy_entries.append(len(ids))
        samples.ipcache_entries.append(len(s.dp.ipcache.items()))
    ab = traffic.ab_rate(s.client_netns, s.echo_ip, PORT, secs, CONCURRENCY)
    lat = tools.latency(s.client_netns, s.echo_ip, PORT, secs)
    if enforced:
        samples.policy_drops += s.dp.metrics.read().get("DROP_POLICY", 0) - drops_before
    samples.ab.setdefault(state, []).append(ab)
    samples.seq_rate.setdefault(state, []).append(lat.rate)
    samples.p50.setdefault(state, []).append(lat.p50_us)
    samples.p90.setdefault(state, []).append(lat.p90_us)
    samples.p99.setdefault(state, []).append(lat.p99_us)
    _progress(
        f"{state}: ab {ab:,.0f} req/s; one at a time {lat.rate:,.0f} req/s, "
        f"p50 {lat.p50_us:,.0f} µs, p99 {lat.p99_us:,.0f} µs"
    )


def to_state(s: Setup, samples: Samples, state: str) -> None:
    """NONE: no CNP and no synthetic endpoints; ENFORCED: the CNP and SYNTHETIC synthetic endpoints.
    Going to ENFORCED also takes a baseline sample (BASE_N endpoints added and removed)."""
    if state == ENFORCED:
        if not s.enforced:
            policy_on(s, samples)
        if not s.present:
            add_endpoints(s, BASE_N, samples)
            remove_endpoints(s, samples)
            add_endpoints(s, SYNTHETIC, samples)
    else:
        remove_endpoints(s, samples)
        if s.enforced:
            policy_off(s)


def top_up(s: Setup, samples: Samples, runs: int) -> None:
    """More add/remove cycles (policy applied, no traffic) until every kind has ``runs`` samples."""
    kinds = [("add", BASE_N), ("remove", BASE_N), ("add", SYNTHETIC), ("remove", SYNTHETIC)]
    if not s.enforced:
        policy_on(s, samples)
    while any(len(samples.recompute.get(k, [])) < runs for k in kinds):
        if s.present:
            remove_endpoints(s, samples)
        else:
            add_endpoints(s, BASE_N, samples)
            remove_endpoints(s, samples)
            add_endpoints(s, SYNTHETIC, samples)


# ---------------------------------------------------------------- in process


def measure_inproc(s: Setup, samples: Samples, sizes: Sequence[int]) -> None:
    """compile_policies + PolicyMap.replace_endpoint + IpcacheMap.sync, as c1's agent runs them, on a
    scratch datapath in the fleet's bpffs (its own pinned maps, attached to nothing)."""
    loader = fleetnet_module("datapath.loader")
    maps = fleetnet_module("datapath.maps")
    plan = fleetnet_module("plan.policy")
    labels_mod = fleetnet_module("plan.labels")
    policy = plan.parse_policy(s.fleet.objects("c1", "CiliumNetworkPolicy", POLICY)[0])
    c1_id = s.c1_id
    c1_low, _ = fleetnet_module("plan.identity").identity_range(c1_id)
    c2_low, _ = fleetnet_module("plan.identity").identity_range(s.c2_id)
    echo_labels = labels_mod.pod_security_labels({"app": ECHO}, NAMESPACE, "c1")
    base_ids = {
        c1_low + 1: echo_labels,
        c2_low + 1: labels_mod.pod_security_labels({"app": CLIENT}, NAMESPACE, "c2"),
        c2_low + 2: labels_mod.pod_security_labels({"app": OTHER}, NAMESPACE, "c2"),
    }
    endpoints = [plan.Endpoint(s.echo_ep, NAMESPACE, ECHO, echo_labels, c1_low + 1)]
    base_ipc = {
        f"{s.echo_ip}/32": maps.IpcacheEntry(c1_low + 1, c1_id),
        "10.254.0.1/32": maps.IpcacheEntry(c2_low + 1, s.c2_id),
        "10.254.0.2/32": maps.IpcacheEntry(c2_low + 2, s.c2_id),
    }
    scratch = loader.ClusterDatapath(s.fleet.bpffs, "benchpol" + secrets.token_hex(3))
    try:
        scratch.load()

        def entries(compiled: Any) -> frozenset[Any]:
            pol = compiled[s.echo_ep]
            return frozenset(maps.PolicyEntry(e.direction, e.identity, e.dport, e.proto, e.deny) for e in pol.entries)

        def recompute(ids: dict[int, Any], ipc: dict[str, Any] | None) -> tuple[Inproc, int]:
            t0 = time.perf_counter()
            compiled = plan.compile_policies("c1", [policy], endpoints, ids)
            t1 = time.perf_counter()
            want = entries(compiled)
            scratch.policy.replace_endpoint(s.echo_ep, want)
            t2 = time.perf_counter()
            if ipc is not None:  # the agent skips the sync when the desired ipcache did not change
                scratch.ipcache.sync(ipc)
            t3 = time.perf_counter()
            return Inproc(1e3 * (t1 - t0), 1e3 * (t2 - t1), 1e3 * (t3 - t2)), len(want)

        for n in sizes:
            eps = tools.synthetic_endpoints(
                n,
                start=0,
                cluster="c2",
                cluster_id=s.c2_id,
                pod_labels={"app": CLIENT},
                namespace=NAMESPACE,
                cidr=s.synthetic_cidr,
            )
            ids = dict(base_ids)
            ipc = dict(base_ipc)
            for e in eps:
                ids[e.identity] = labels_mod.LabelSet.from_cilium_key(e.labels_key)
                ipc[f"{e.ip}/32"] = maps.IpcacheEntry(e.identity, s.c2_id)
            for _ in range(INPROC_REPS):
                recompute(base_ids, base_ipc)  # back to the base state, not timed
                idle, _ = recompute(base_ids, None)
                samples.inproc_idle.setdefault(n, []).append(idle)
                got, count = recompute(ids, ipc)
                samples.inproc.setdefault(n, []).append(got)
                samples.inproc_entries[n] = count
            _progress(
                f"in process, {n:,} new identities: {_median([x.total_ms for x in samples.inproc[n]]):.1f} ms "
                f"(idle {_median([x.total_ms for x in samples.inproc_idle[n]]):.2f} ms)"
            )
    finally:
        scratch.unload()


# ---------------------------------------------------------------- tables


def _median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _med(xs: Sequence[float] | None) -> float | None:
    return statistics.median(xs) if xs else None


def _pct(x: float | None, of: float | None, lower_is_better: bool = False) -> float | None:
    if x is None or of is None or not x or not of:
        return None
    return 100.0 * (of / x if lower_is_better else x / of)


def _verdict(pct: float | None) -> str | None:
    return None if pct is None else f"≥ {TARGET:.0%}: " + ("met" if pct >= 100 * TARGET else "MISSED")


def _r(x: float | None, digits: int = 0) -> float | int | None:
    if x is None:
        return None
    return round(x) if digits == 0 else round(x, digits)


def _runs(xs: Sequence[float], digits: int = 0) -> str:
    return ", ".join(f"{x:,.{digits}f}" for x in xs)


def summarize(s: Samples, quick: bool) -> list[Table]:
    """The tables of a run (pure, so the unit tests can feed it made-up samples)."""
    runs, secs = (QUICK_RUNS, QUICK_SECONDS) if quick else (RUNS, SECONDS)
    setup_note = (
        f"Client: a pod in c2 (app={CLIENT}); server: the fleetnet/echo pod in c1 (app={ECHO}, one Python "
        f"process), on its own address (no service). '{ENFORCED}': a CiliumNetworkPolicy in c1 selects the echo "
        f"pod and allows ingress on TCP {PORT} from app={CLIENT} in any cluster; c1's agent compiled it against "
        f"c2's real client identity and {SYNTHETIC:,} synthetic identities of c2 (each its own label set with "
        f"app={CLIENT}), so the endpoint enforces ingress with "
        + (f"{_r(_med(s.policy_entries))} " if s.policy_entries else "~1,001 ")
        + "allowed identities in its policy map and c1's ipcache holds "
        + (f"{_r(_med(s.ipcache_entries))} entries " if s.ipcache_entries else f"{SYNTHETIC:,} extra entries ")
        + f"({SYNTHETIC:,} synthetic). '{NONE}': the CNP deleted and the synthetic endpoints withdrawn."
    )
    check_note = (
        f"Checked before every run: the client gets an answer; a pod of c2 that the policy does not allow "
        f"(app={OTHER}) gets one with no policy and none with the policy ({s.policy_drops} DROP_POLICY counted "
        "by c1's datapath during the enforced runs: the denied probe's SYN retries)."
    )
    runs_note = (
        f"Each cell is the median of {runs} run{'s' if runs > 1 else ''} of {secs:g} s per load, the two states "
        "interleaved (none, policy, policy, none, ...). The echo server's single Python process bounds both "
        "rates: policy is looked up once per new connection (the SYN), so its cost shows through only as far "
        "as it adds to a whole request."
    )
    rate_rows: list[tuple[Any, ...]] = []
    for label, got in ((NEW_CONN, s.ab), (SEQUENTIAL, s.seq_rate)):
        if not got:
            continue
        n, e = _med(got.get(NONE)), _med(got.get(ENFORCED))
        pct = _pct(e, n)
        rate_rows.append((label, len(got.get(ENFORCED, [])), _r(n), _r(e), _r(pct, 1), _verdict(pct)))
    rates = Table(
        title=f"Request rate to a pod enforcing ingress policy over {SYNTHETIC:,} remote identities (req/s)",
        columns=("load", "runs", NONE, ENFORCED, "% of no policy", "target"),
        rows=rate_rows,
        baseline=Baseline(column=NONE, versus=ENFORCED, ratio_title="policy / none", lower_is_better=False),
        precision=1,
        notes=(setup_note, check_note, runs_note),
    )
    lat_rows: list[tuple[Any, ...]] = []
    for label, got in (("p50", s.p50), ("p90", s.p90), ("p99", s.p99)):
        if not got:
            continue
        n, e = _med(got.get(NONE)), _med(got.get(ENFORCED))
        pct = _pct(e, n, lower_is_better=True)
        lat_rows.append((label, len(got.get(ENFORCED, [])), _r(n), _r(e), _r(pct, 1), _verdict(pct)))
    latency = Table(
        title="Per-request latency, one request at a time (µs)",
        columns=("percentile", "runs", NONE, ENFORCED, "none / policy (%)", "target"),
        rows=lat_rows,
        baseline=Baseline(column=NONE, versus=ENFORCED, ratio_title="none / policy"),
        precision=1,
        notes=(
            "One client process in c2's client pod, sequential requests, each on a new TCP connection: connect, "
            "GET, read to close (time.perf_counter around the whole request). Percentiles of every request of a "
            "run; each cell is the median over runs. Every request's SYN goes through the ingress policy lookup "
            "at the echo pod's host-side veth in c1 (conntrack lets the rest of the connection through).",
            "Ratio and target: latency with no policy over latency with it (≥ 95 % means the policy added at "
            "most ~5 %).",
        ),
    )
    tables = [rates, latency]
    if s.recompute:
        tables.append(_recompute_table(s))
    if s.inproc:
        tables.append(_inproc_table(s))
    every: list[tuple[str, str]] = []
    for label, got, digits in (
        (NEW_CONN + ", req/s", s.ab, 0),
        (SEQUENTIAL + ", req/s", s.seq_rate, 0),
        ("p50 µs", s.p50, 0),
        ("p99 µs", s.p99, 0),
    ):
        for state in (NONE, ENFORCED):
            if got.get(state):
                every.append((f"{label}: {state}", _runs(got[state], digits)))
    for (op, n), rs in sorted(s.recompute.items()):
        every.append((f"c2 {op}s {n:,}: c1 policy map (s)", _runs([r.policy for r in rs], 2)))
        every.append((f"c2 {op}s {n:,}: c1 ipcache (s)", _runs([r.ipcache for r in rs], 2)))
        every.append((f"c2 {op}s {n:,}: c2's etcd writes (s)", _runs([r.writes for r in rs], 2)))
    if s.apply_seconds:
        every.append(("CNP apply → enforced on the endpoint (s)", _runs(s.apply_seconds, 2)))
    tables.append(
        Table(
            title="Policy: every run",
            columns=("measurement", "runs"),
            rows=every,
            notes=("In the order measured.",),
        )
    )
    return tables


def _recompute_table(s: Samples) -> Table:
    rows: list[tuple[Any, ...]] = []
    metrics: list[tuple[str, Callable[[Recompute], float]]] = [
        ("c2's etcd: first to last write", lambda r: r.writes),
        ("c1's policy map complete, from c2's first write", lambda r: r.policy),
        ("c1's ipcache complete, from c2's first write", lambda r: r.ipcache),
        ("both complete, after c2's last write", lambda r: r.after_writes),
    ]
    for op in ("add", "remove"):
        small, big = s.recompute.get((op, BASE_N), []), s.recompute.get((op, SYNTHETIC), [])
        if not big:
            continue
        for label, fn in metrics:
            rows.append(
                (
                    f"{op}: {label}",
                    len(big),
                    _r(_med([fn(r) for r in small]), 3),
                    _r(_med([fn(r) for r in big]), 3),
                )
            )
    notes = [
        "c2 'adds N endpoints': N synthetic pods of c2 (distinct label sets app=bench-client,bench-id=<i>, "
        f"identities in c2's range, addresses in {SYNTHETIC_CIDR_NOTE}) published in c2's clustermesh etcd as c2's "
        "exporter publishes pods: N identity keys then N ipcache keys (same keys and values, built with "
        "fleetnet's own model code), one put at a time, from c2's node namespace with c2's admin certificate. "
        "'remove' deletes them (ipcache keys first). c1's agent gets them through its ClusterMesh watch of c2, "
        "validates them, recompiles the policy and rewrites the echo endpoint's policy map and the ipcache; "
        "nothing is written into c1's maps by the benchmark.",
        "Why not CiliumIdentity/CiliumEndpoint objects in c2's object store: c2's agent garbage-collects "
        "(within 50 ms) every identity and endpoint of a pod it does not run, racing its exporter; real pods "
        "take seconds each to start on this host.",
        "Timed with CLOCK_MONOTONIC (shared by the writer process and the benchmark): from c2's first write "
        "until c1's pinned policy map holds (add) or has lost (remove) every synthetic identity in the echo "
        f"endpoint's ingress entries (polled every {POLL * 1000:.0f} ms with one batch read of the map; "
        "confirmed at the end with ClusterDatapath.policy.entries), and until c1's ipcache holds / has lost "
        "every synthetic address. The identity keys are written before the ipcache keys, so the policy map "
        "can be complete before c2's last write.",
        f"Baseline, measured in the same run: the same with {BASE_N} endpoints. ratio = {BASE_N}-endpoint time / "
        f"{SYNTHETIC:,}-endpoint time: {BASE_N / SYNTHETIC:g}× would be linear in N, 1× a cost that does not "
        "depend on N. Most of the end-to-end time is c2's sequential etcd writes (one gRPC put each, as the "
        "exporter does); 'after c2's last write' is what c1 adds once c2 is done.",
    ]
    if s.loadavg:
        notes.append(
            "Load average (1/5/15 min) at the start and end of this benchmark: "
            + " → ".join(s.loadavg)
            + " (a shared 2-core host: other work runs beside these measurements)."
        )
    return Table(
        title=f"c1's policy recompute after c2 adds or removes endpoints, end to end (s): {BASE_N} vs {SYNTHETIC:,}",
        columns=("measurement", "runs", BASE_COL, BIG_COL),
        rows=rows,
        baseline=Baseline(column=BASE_COL, versus=BIG_COL, ratio_title=f"{BASE_N} / {SYNTHETIC:,}"),
        precision=3,
        notes=notes,
    )


def _inproc_table(s: Samples) -> Table:
    rows: list[tuple[Any, ...]] = []
    for n in sorted(s.inproc):
        got, idle = s.inproc[n], s.inproc_idle.get(n, [])
        rows.append(
            (
                n,
                len(got),
                s.inproc_entries.get(n),
                _r(_med([x.compile_ms for x in got]), 2),
                _r(_med([x.policy_ms for x in got]), 2),
                _r(_med([x.ipcache_ms for x in got]), 2),
                _r(_med([x.total_ms for x in got]), 2),
                _r(_med([x.total_ms for x in idle]), 3),
            )
        )
    return Table(
        title="The same recompute in process: compile + policy map + ipcache (ms)",
        columns=(
            "new remote identities",
            "runs",
            "policy entries",
            "compile",
            "policy map",
            "ipcache",
            "total",
            "idle recompute",
        ),
        rows=rows,
        baseline=Baseline(column="idle recompute", versus="total", ratio_title="idle / total"),
        precision=2,
        notes=(
            "What c1's agent does per recompute, timed in the benchmark's process: plan.policy.compile_policies "
            "(the stored CNP, parsed with parse_policy; the echo endpoint; the base identities + N new ones of "
            "c2), then PolicyMap.replace_endpoint with the endpoint's entries and IpcacheMap.sync with the "
            "desired ipcache (base + N addresses), on a scratch datapath loaded into the fleet's bpffs (the same "
            "BPF object and map types as c1's, attached to nothing; unloaded afterwards).",
            "Each run starts from the base state (client + other identities programmed, not timed). Baseline, "
            "measured next to each size: an idle recompute (nothing new: compile, and a replace_endpoint that "
            "finds nothing to write; the agent skips the ipcache sync when the desired ipcache is unchanged). "
            "ratio = idle / total.",
        ),
    )


# ---------------------------------------------------------------- the benchmark


def _loadavg() -> str:
    try:
        return " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def states(runs: int) -> list[str]:
    """none, policy, policy, none, none, policy, ...: each state first in every other pair."""
    out: list[str] = []
    for r in range(runs):
        out += [NONE, ENFORCED] if r % 2 == 0 else [ENFORCED, NONE]
    return out


def run(quick: bool) -> list[Table]:
    traffic.require_tools("ab")
    runs = QUICK_RUNS if quick else RUNS
    secs = QUICK_SECONDS if quick else SECONDS
    samples = Samples(loadavg=[_loadavg()])
    with local_fleet("fleetnet-bench-policy-", 2, NAME) as fleet:
        s = setup(fleet)
        try:
            _progress(f"c2 client → {ECHO} {s.echo_ip} in c1 ready (endpoint {s.echo_ep})")
            for state in states(runs):
                to_state(s, samples, state)
                measure(s, samples, state, secs)
            top_up(s, samples, runs)
            measure_inproc(s, samples, QUICK_INPROC_SIZES if quick else INPROC_SIZES)
        finally:
            s.dp.close()
    samples.loadavg.append(_loadavg())
    return summarize(samples, quick)
