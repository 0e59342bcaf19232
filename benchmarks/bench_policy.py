"""What identity policy costs at mesh scale (issue 4): on the wire with 1,000 remote identities allowed,
and in the control plane when a remote cluster adds 1,000 endpoints.

One real local fleet (``fleetnet up --clusters 2``, both members joined into one network). c1 runs two
identical echo pods, ``bench-echo`` (selected by the policy) and ``bench-open`` (not selected); c2 runs
the client pod (``app=bench-client``) and a second pod (``app=bench-other``) that the policy does not
allow. The policy is a real CiliumNetworkPolicy applied to c1, compiled and programmed by c1's agent:

    ingress of app=bench-echo: fromEndpoints app=bench-client in any cluster
    (matchExpressions io.cilium.k8s.policy.cluster Exists), TCP 8080

1. Request rate and latency from c2's client to bench-echo, enforcing that policy with 1,000 further
   remote identities allowed by it (1,001 entries in its policy map, 1,000 extra ipcache entries),
   against bench-open at the same time (no policy on it): runs alternate between the two pods, and the
   latency client alternates request by request, so both share whatever else this 2-core host is doing
   (its load swings the request rate by 2-4× from one run to the next). The same measurement before the
   policy exists (both pods without policy) is the A/A control. Target: ≥ 95 % of no policy.
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

PAIRS = 8  # traffic: runs per pod and phase
QUICK_PAIRS = 2
SECONDS = 2.0  # ab takes whole seconds
QUICK_SECONDS = 2.0
RECOMPUTES = 3  # samples of each add/remove
QUICK_RECOMPUTES = 1
CONCURRENCY = 16
TARGET = 0.95
SYNTHETIC = 1_000
BASE_N = 10
INPROC_SIZES = (10, 1_000, 10_000)
QUICK_INPROC_SIZES = (10, 1_000)
INPROC_REPS = 5
POLL = 0.01
SETTLE_TIMEOUT = 60.0
RECOMPUTE_TIMEOUT = 180.0

PROFILE = "bench-policy"
POLICY = "bench-policy"
ECHO, OPEN, CLIENT, OTHER = "bench-echo", "bench-open", "bench-client", "bench-other"
NAMESPACE = "default"
PORT = traffic.ECHO_PORT
PROTO_TCP = 6
DIR_INGRESS = 0  # policy_key.dir

C1_MANIFEST = "---\n".join(
    f"""apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: {name}}}}}
spec:
  containers:
  - {{name: echo, image: fleetnet/echo, ports: [{{containerPort: {PORT}}}]}}
"""
    for name in (ECHO, OPEN)
)
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

BEFORE, DURING = "before the policy", "with the policy"  # phases
NONE = f"{OPEN}: no policy"
ENFORCED = f"{ECHO}: policy"
AA = "A/A before the policy (%)"
BASE_COL = f"{BASE_N} endpoints"
BIG_COL = f"{SYNTHETIC:,} endpoints"
BASE_PER = f"{BASE_N}: µs per endpoint"
BIG_PER = f"{SYNTHETIC:,}: µs per endpoint"
SYNTHETIC_CIDR_NOTE = "the upper half of c2's pod CIDR, which no node of c2 allocates from"
NEW_CONN = "new connection per request (ab -c 8 per pod, both at once)"


def _progress(msg: str) -> None:
    progress(NAME, msg)


# ---------------------------------------------------------------- samples


@dataclass(frozen=True, slots=True)
class Recompute:
    """One add or remove of synthetic endpoints in c2, seen from c1 (seconds)."""

    writes: float  # c2's etcd: first to last write
    policy: float  # from c2's first write until c1's policy map is complete
    ipcache: float  # same, c1's ipcache
    policy_lag: float  # from c2's last identity write until c1's policy map is complete
    ipcache_lag: float  # from c2's last ipcache write until c1's ipcache is complete


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

    # (phase, pod) → runs
    ab: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    latency: dict[tuple[str, str], list[tools.Latency]] = field(default_factory=dict)
    # ("add"|"remove", n) → samples
    recompute: dict[tuple[str, int], list[Recompute]] = field(default_factory=dict)
    # new identities → samples; the idle recompute measured next to each size
    inproc: dict[int, list[Inproc]] = field(default_factory=dict)
    inproc_idle: dict[int, list[Inproc]] = field(default_factory=dict)
    inproc_entries: dict[int, int] = field(default_factory=dict)
    policy_entries: list[int] = field(default_factory=list)  # echo endpoint's entries while enforced
    ipcache_entries: list[int] = field(default_factory=list)  # c1's ipcache size while enforced
    policy_drops: int = 0  # DROP_POLICY counted in c1 while measuring with the policy (the denied probe)
    apply_seconds: list[float] = field(default_factory=list)  # CNP apply → enforced on the endpoint
    loadavg: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- the fleet


@dataclass
class Setup:
    fleet: LocalFleet
    bpffs: Path
    dp: Any  # c1's ClusterDatapath
    client_netns: str
    other_netns: str
    echo_ip: str
    open_ip: str
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
    open_pod = fleet.wait_pod("c1", OPEN)
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
    # the fleet's bpffs, as c1's agent reads it from its cluster config (not necessarily under the home)
    bpffs = Path(c1["bpffs"])
    dp = fleetnet_module("datapath.loader").ClusterDatapath(bpffs, "c1")
    try:
        c2_low, c2_high = fleetnet_module("plan.identity").identity_range(int(c2["cluster_id"]))
        client_identity = wait_for(
            lambda: (i := _ipcache_identity(dp, client_ip)) is not None and c2_low <= i <= c2_high and i,
            SETTLE_TIMEOUT,
            f"c1's ipcache to learn the identity of c2's client {client_ip}",
        )
        s = Setup(
            fleet=fleet,
            bpffs=bpffs,
            dp=dp,
            client_netns=str(client["status"]["fleetnet"]["netns"]),
            other_netns=str(other["status"]["fleetnet"]["netns"]),
            echo_ip=echo_ip,
            open_ip=str(open_pod["status"]["podIP"]),
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
        for name, ip in ((ECHO, s.echo_ip), (OPEN, s.open_ip)):
            who = traffic.http_get(s.client_netns, ip, PORT)
            if (who.get("cluster"), who.get("pod")) != ("c1", name):
                raise BenchError(f"a request from c2's client to {name} {ip}:{PORT} was answered by {who}.")
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
    if not (ids <= official) if add else bool(ids & official):
        raise BenchError("PolicyMap.entries disagrees with the raw read of the policy map.")
    keys = fleetnet_module("model.keys")
    return Recompute(
        writes=w.last - w.first,
        policy=t_policy - w.first,
        ipcache=t_ipcache - w.first,
        policy_lag=t_policy - w.last_under(keys.IDENTITY_ID_PREFIX + "/"),
        ipcache_lag=t_ipcache - w.last_under(keys.IP_PREFIX + "/"),
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
    return (
        f"c2's writes took {r.writes:.2f} s; after c2's last write of each kind: policy map {r.policy_lag:+.3f} s, "
        f"ipcache {r.ipcache_lag:+.3f} s"
    )


# ---------------------------------------------------------------- traffic


def _check(s: Setup, phase: str) -> None:
    """Both pods answer the client; the pod the policy does not allow reaches bench-echo only before."""
    enforced = phase == DURING
    if s.enforced != enforced or (len(s.present) == SYNTHETIC) != enforced:
        raise BenchError(f"the fleet is not in the state {phase!r}.")
    for name, ip in ((ECHO, s.echo_ip), (OPEN, s.open_ip)):
        if not tools.probe(s.client_netns, ip, PORT, 3.0):
            raise BenchError(f"c2's client cannot reach {name} ({phase}).")
    if not tools.probe(s.other_netns, s.open_ip, PORT, 3.0):
        raise BenchError(f"{OTHER} cannot reach {OPEN} ({phase}).")
    other_ok = tools.probe(s.other_netns, s.echo_ip, PORT, 1.0)
    if other_ok == enforced:
        raise BenchError(f"{OTHER} was {'let through to' if other_ok else 'refused by'} {ECHO} {phase}.")


def ab_both(s: Setup, secs: float) -> dict[str, float]:
    """One ab -c CONCURRENCY/2 against each pod, started together: both runs share the host's load."""
    got: dict[str, float] = {}
    errors: list[BaseException] = []

    def one(name: str, ip: str) -> None:
        try:
            got[name] = tools.ab_rate(s.client_netns, ip, PORT, secs, CONCURRENCY // 2)
        except BaseException as e:  # re-raised below
            errors.append(e)

    threads = [
        threading.Thread(target=one, args=(name, ip), name=f"bench-policy-ab-{name}")
        for name, ip in ((ECHO, s.echo_ip), (OPEN, s.open_ip))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return got


def measure(s: Setup, samples: Samples, phase: str, pairs: int, secs: float) -> None:
    """``pairs`` times: ab against both pods at once, then one latency run that alternates between
    the pods request by request (which pod goes first alternates from run to run)."""
    drops_before = s.dp.metrics.read().get("DROP_POLICY", 0)
    _check(s, phase)
    if phase == DURING:
        ids = {e.identity for e in s.dp.policy.entries(s.echo_ep) if e.direction == "ingress"}
        samples.policy_entries.append(len(ids))
        samples.ipcache_entries.append(len(s.dp.ipcache.items()))
    pods = [(ECHO, s.echo_ip), (OPEN, s.open_ip)]
    for r in range(pairs):
        got = ab_both(s, secs)
        for name, rate in got.items():
            samples.ab.setdefault((phase, name), []).append(rate)
        order = pods if r % 2 == 0 else pods[::-1]
        lats = tools.latency(s.client_netns, [(ip, PORT) for _, ip in order], secs)
        for (name, _), lat in zip(order, lats, strict=True):
            samples.latency.setdefault((phase, name), []).append(lat)
        by = dict(zip([n for n, _ in order], lats, strict=True))
        _progress(
            f"{phase}, {r + 1}/{pairs}: ab {ECHO} {got[ECHO]:,.0f} / {OPEN} {got[OPEN]:,.0f} req/s; "
            f"p50 {by[ECHO].p50_us:,.0f} / {by[OPEN].p50_us:,.0f} µs"
        )
    if phase == DURING:
        samples.policy_drops += s.dp.metrics.read().get("DROP_POLICY", 0) - drops_before


def recompute_cycle(s: Setup, samples: Samples) -> None:
    """From no synthetic endpoint: BASE_N added and removed (the baseline), then SYNTHETIC added."""
    if s.present:
        raise BenchError("a recompute cycle starts with no synthetic endpoint published.")
    add_endpoints(s, BASE_N, samples)
    remove_endpoints(s, samples)
    add_endpoints(s, SYNTHETIC, samples)


def top_up(s: Setup, samples: Samples, runs: int) -> None:
    """More add/remove cycles (policy applied, no traffic) until every kind has ``runs`` samples."""
    kinds = [("add", BASE_N), ("remove", BASE_N), ("add", SYNTHETIC), ("remove", SYNTHETIC)]
    if not s.enforced:
        policy_on(s, samples)
    while any(len(samples.recompute.get(k, [])) < runs for k in kinds):
        if s.present:
            remove_endpoints(s, samples)
        else:
            recompute_cycle(s, samples)


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
    scratch = loader.ClusterDatapath(s.bpffs, "benchpol" + secrets.token_hex(3))
    try:
        scratch.load()

        def entries(compiled: Any) -> frozenset[Any]:
            pol = compiled[s.echo_ep]
            return frozenset(maps.PolicyEntry(e.direction, e.identity, e.dport, e.proto, e.deny) for e in pol.entries)

        def recompute(ids: dict[int, Any], ipc: dict[str, Any], last: dict[str, Any] | None) -> tuple[Inproc, int]:
            t0 = time.perf_counter()
            compiled = plan.compile_policies("c1", [policy], endpoints, ids)
            t1 = time.perf_counter()
            want = entries(compiled)
            scratch.policy.replace_endpoint(s.echo_ep, want)
            t2 = time.perf_counter()
            if ipc != last:  # as Identities._sync_ipcache: no sync when the desired ipcache did not change
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
                recompute(base_ids, base_ipc, None)  # back to the base state, not timed
                got, count = recompute(ids, ipc, base_ipc)
                samples.inproc.setdefault(n, []).append(got)
                samples.inproc_entries[n] = count
                # a reconcile with nothing new for policy: what every agent reconcile pays once N identities are known
                idle, _ = recompute(ids, ipc, dict(ipc))
                samples.inproc_idle.setdefault(n, []).append(idle)
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


def _paired(xs: Sequence[float] | None, of: Sequence[float] | None) -> float | None:
    """The median over runs of x / of (in %), runs paired by position: both sides of a run saw the same load."""
    if not xs or not of:
        return None
    return statistics.median(100.0 * x / o for x, o in zip(xs, of, strict=False) if o)


def _verdict(pct: float | None) -> str | None:
    return None if pct is None else f"≥ {TARGET:.0%}: " + ("met" if pct >= 100 * TARGET else "MISSED")


def _r(x: float | None, digits: int = 0) -> float | int | None:
    if x is None:
        return None
    return round(x) if digits == 0 else round(x, digits)


def _runs(xs: Sequence[float], digits: int = 0) -> str:
    return ", ".join(f"{x:,.{digits}f}" for x in xs)


def _lat(xs: Sequence[tools.Latency] | None, fn: Callable[[tools.Latency], float]) -> float | None:
    return _med([fn(x) for x in xs]) if xs else None


def summarize(s: Samples, quick: bool) -> list[Table]:
    """The tables of a run (pure, so the unit tests can feed it made-up samples)."""
    pairs, secs = (QUICK_PAIRS, QUICK_SECONDS) if quick else (PAIRS, SECONDS)
    entries = f"{_r(_med(s.policy_entries))}" if s.policy_entries else f"~{SYNTHETIC + 1:,}"
    ipcache = f"{_r(_med(s.ipcache_entries))}" if s.ipcache_entries else "~1,000 more"
    setup_note = (
        f"Client: a pod in c2 (app={CLIENT}); servers: two fleetnet/echo pods in c1 (one Python process each), "
        f"on their own addresses (no service). A CiliumNetworkPolicy in c1 selects {ECHO} and allows ingress on "
        f"TCP {PORT} from app={CLIENT} in any cluster; c1's agent compiled it against c2's real client identity "
        f"and {SYNTHETIC:,} synthetic identities of c2 (each its own label set with app={CLIENT}, published in "
        f"c2's clustermesh etcd), so {ECHO} enforces ingress with {entries} allowed identities in its policy map "
        f"and c1's ipcache holds {ipcache} entries. {OPEN} has no policy (the same ipcache, no enforcement)."
    )
    check_note = (
        f"Checked before each phase: the client gets answers from both pods, and a pod of c2 that the policy "
        f"does not allow (app={OTHER}) gets one from {ECHO} before the policy and none with it "
        f"({s.policy_drops} DROP_POLICY counted by c1's datapath while measuring with the policy: that probe's "
        "SYN and its retries)."
    )
    runs_note = (
        f"{pairs} runs of {secs:g} s; in each, one ab (HTTP/1.0, a new connection per request, -c "
        f"{CONCURRENCY // 2}) against each pod, both started together, so that both see the same load from the "
        "rest of this shared host (it swings the rate 2-4× from run to run). Rate cells: the median over runs; "
        "'% of no policy': the median over runs of the run's bench-echo / bench-open rate (paired, which "
        f"cancels the swings), which the target reads. '{AA}': the same, measured before the policy was applied "
        "(neither pod had policy): how far apart two identical pods are here, to read the ratio against. The "
        "echo servers' single Python process bounds the rates: policy is looked up once per new connection (its "
        "SYN; conntrack passes the rest), so its cost shows only as far as it adds to a whole request."
    )
    rate_rows: list[tuple[Any, ...]] = []
    if s.ab:
        n, e = _med(s.ab.get((DURING, OPEN))), _med(s.ab.get((DURING, ECHO)))
        pct = _paired(s.ab.get((DURING, ECHO)), s.ab.get((DURING, OPEN)))
        aa = _paired(s.ab.get((BEFORE, ECHO)), s.ab.get((BEFORE, OPEN)))
        rate_rows.append(
            (NEW_CONN, len(s.ab.get((DURING, ECHO), [])), _r(n), _r(e), _r(pct, 1), _r(aa, 1), _verdict(pct))
        )
    rates = Table(
        title=f"Request rate to a pod enforcing ingress policy over {SYNTHETIC:,} remote identities (req/s)",
        columns=("load", "runs", NONE, ENFORCED, "% of no policy", AA, "target"),
        rows=rate_rows,
        baseline=Baseline(column=NONE, versus=ENFORCED, ratio_title="policy / none", lower_is_better=False),
        precision=1,
        notes=(setup_note, check_note, runs_note),
    )
    lat_rows: list[tuple[Any, ...]] = []
    stats: list[tuple[str, Callable[[tools.Latency], float]]] = [
        ("mean", lambda x: x.mean_us),
        ("p50", lambda x: x.p50_us),
        ("p90", lambda x: x.p90_us),
        ("p99", lambda x: x.p99_us),
    ]
    for label, fn in stats:
        if not s.latency:
            break
        n, e = _lat(s.latency.get((DURING, OPEN)), fn), _lat(s.latency.get((DURING, ECHO)), fn)

        def of(phase: str, pod: str, fn: Callable[[tools.Latency], float] = fn) -> list[float]:
            return [fn(x) for x in s.latency.get((phase, pod), [])]

        # paired per run, oriented so that above 100 % the pod without policy was the slower one
        pct = _paired(of(DURING, OPEN), of(DURING, ECHO))
        aa = _paired(of(BEFORE, OPEN), of(BEFORE, ECHO))
        runs = len(s.latency.get((DURING, ECHO), []))
        lat_rows.append((label, runs, _r(n), _r(e), _r(pct, 1), _r(aa, 1), _verdict(pct)))
    latency = Table(
        title="Per-request latency, one request at a time (µs)",
        columns=("statistic", "runs", NONE, ENFORCED, "none / policy (%)", AA, "target"),
        rows=lat_rows,
        baseline=Baseline(column=NONE, versus=ENFORCED, ratio_title="none / policy"),
        precision=1,
        notes=(
            "One client process in c2's client pod, sequential requests, each on a new TCP connection (connect, "
            "GET, read to close; time.perf_counter around the whole request), to the two pods in turn, request "
            f"by request, for {secs:g} s per run. Statistics of every request of a run; each cell is the median "
            "over runs. Each request's SYN goes through the ingress policy lookup at the pod's host-side veth in "
            "c1 (for the pod with no policy, the lookup is skipped by the endpoint's enforcement flag).",
            "'none / policy (%)': the median over runs of the run's bench-open / bench-echo statistic (paired); "
            "≥ 95 % means the policy added at most ~5 %, which the target reads. A/A: the same ratio before the "
            "policy, both pods without it.",
        ),
    )
    tables = [rates, latency]
    if s.recompute:
        tables.append(_recompute_table(s))
    if s.inproc:
        tables.append(_inproc_table(s))
    every: list[tuple[str, str]] = []
    for phase in (BEFORE, DURING):
        for pod in (ECHO, OPEN):
            if s.ab.get((phase, pod)):
                every.append((f"{phase}, {pod}: ab req/s", _runs(s.ab[(phase, pod)])))
            if s.latency.get((phase, pod)):
                lats = s.latency[(phase, pod)]
                every.append((f"{phase}, {pod}: p50 µs", _runs([x.p50_us for x in lats])))
                every.append((f"{phase}, {pod}: p99 µs", _runs([x.p99_us for x in lats])))
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
        ("c1's policy map complete, after c2's last identity write", lambda r: r.policy_lag),
        ("c1's ipcache complete, from c2's first write", lambda r: r.ipcache),
        ("c1's ipcache complete, after c2's last ipcache write", lambda r: r.ipcache_lag),
    ]
    for op in ("add", "remove"):
        small, big = s.recompute.get((op, BASE_N), []), s.recompute.get((op, SYNTHETIC), [])
        if not big:
            continue
        for label, fn in metrics:
            t_small, t_big = _med([fn(r) for r in small]), _med([fn(r) for r in big])
            rows.append(
                (
                    f"{op}: {label}",
                    len(big),
                    _r(t_small, 3),
                    _r(t_big, 3),
                    _r(None if t_small is None else 1e6 * t_small / BASE_N),
                    _r(None if t_big is None else 1e6 * t_big / SYNTHETIC),
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
        "in its next reconcile (it runs on every change to c2's store) every identity and endpoint of a pod it "
        "does not run, racing its exporter; real pods "
        "take seconds each to start on this host.",
        "Timed with CLOCK_MONOTONIC (shared by the writer process and the benchmark): from c2's first write "
        "until c1's pinned policy map holds (add) or has lost (remove) every synthetic identity in the echo "
        f"endpoint's ingress entries (polled every {POLL * 1000:.0f} ms with one batch read of the map; "
        "confirmed at the end with ClusterDatapath.policy.entries), and until c1's ipcache holds / has lost "
        "every synthetic address. The identity keys are written before the ipcache keys (and removed after "
        "them), so each map is also timed from c2's last write of the keys it depends on: that is c1's own "
        "part (watch event → the agent's next reconcile → compile → map write), the rest is c2's writes.",
        f"Baseline, measured in the same run: the same with {BASE_N} endpoints. ratio = time per endpoint with "
        f"{BASE_N} / time per endpoint with {SYNTHETIC:,}: 1× is linear in N, above 1× the cost per endpoint "
        "falls as N grows (fixed costs amortized), below 1× it rises. Most of the end-to-end time is c2's "
        "sequential etcd writes (one gRPC put each, as the exporter does); the rows 'after c2's last ... write' "
        "are c1's own delay, and a small one there means c1 kept up with c2's stream of writes.",
    ]
    if s.loadavg:
        notes.append(
            "Load average (1/5/15 min) at the start and end of this benchmark: "
            + " → ".join(s.loadavg)
            + " (a shared 2-core host: other work runs beside these measurements)."
        )
    return Table(
        title=f"c1's policy recompute after c2 adds or removes endpoints, end to end (s): {BASE_N} vs {SYNTHETIC:,}",
        columns=("measurement", "runs", BASE_COL, BIG_COL, BASE_PER, BIG_PER),
        rows=rows,
        baseline=Baseline(column=BASE_PER, versus=BIG_PER, ratio_title="per-endpoint cost, 10 / 1,000"),
        precision=3,
        notes=notes,
    )


def _inproc_table(s: Samples) -> Table:
    rows: list[tuple[Any, ...]] = []
    smallest = min(s.inproc)
    per_small = _med([1e3 * x.total_ms / smallest for x in s.inproc[smallest]])
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
                _r(_med([1e3 * x.total_ms / n for x in got]), 2),
                _r(per_small, 2),
            )
        )
    per_col, base_col = "µs per identity", f"µs per identity at {smallest:,}"
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
            per_col,
            base_col,
        ),
        rows=rows,
        baseline=Baseline(column=base_col, versus=per_col, ratio_title=f"per-identity cost, {smallest:,} / N"),
        precision=2,
        notes=(
            "What c1's agent does per recompute, timed in the benchmark's process: plan.policy.compile_policies "
            "(the stored CNP, parsed with parse_policy; the echo endpoint; the base identities + N new ones of "
            "c2), then PolicyMap.replace_endpoint with the endpoint's entries and IpcacheMap.sync with the "
            "desired ipcache (base + N addresses), on a scratch datapath loaded into the fleet's bpffs (the same "
            "BPF object and map types as c1's, attached to nothing; unloaded afterwards).",
            "Each run starts from the base state (client + other identities programmed, not timed). 'idle "
            "recompute': right after, the same recompute with nothing new (compile against the N identities now "
            "known, a replace_endpoint that finds nothing to write, the desired ipcache compared with the last "
            "one and not synced, as Identities._sync_ipcache does): what c1's agent pays on every reconcile "
            "(it runs one on every change to its inputs: any watch event from any remote, any change to its "
            "object store) once N identities are known. Baseline: the cost "
            f"per new identity with {smallest:,}; ratio = that / the cost per new identity with N (1× linear, "
            "above 1× cheaper per identity as N grows).",
        ),
    )


# ---------------------------------------------------------------- the benchmark


def _loadavg() -> str:
    try:
        return " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def run(quick: bool) -> list[Table]:
    traffic.require_tools("ab")
    pairs = QUICK_PAIRS if quick else PAIRS
    secs = QUICK_SECONDS if quick else SECONDS
    samples = Samples(loadavg=[_loadavg()])
    with local_fleet("fleetnet-bench-policy-", 2, NAME) as fleet:
        s = setup(fleet)
        try:
            _progress(f"c2 client → {ECHO} {s.echo_ip} and {OPEN} {s.open_ip} in c1 ready")
            measure(s, samples, BEFORE, pairs, secs)
            policy_on(s, samples)
            recompute_cycle(s, samples)
            measure(s, samples, DURING, pairs, secs)
            top_up(s, samples, QUICK_RECOMPUTES if quick else RECOMPUTES)
            measure_inproc(s, samples, QUICK_INPROC_SIZES if quick else INPROC_SIZES)
        finally:
            s.dp.close()
    samples.loadavg.append(_loadavg())
    return summarize(samples, quick)
