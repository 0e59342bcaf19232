"""How long joining a cross-cluster network takes: ``apply`` until the profile is Connected.

The design's promise is that one ``apply`` joins many clusters at once (newcomers are configured in
parallel and every member gets the whole peer list in one fan-out). This benchmark times that for
2, 5 and 10 one-node local clusters against the naive way measured in the same run on the same
fleet: adding the members one at a time (label one, apply, wait for Connected, next), which is what
an operator wiring up a mesh by hand, cluster after cluster, goes through. The target is 10 clusters
Connected in under 10 s.

One fleet serves every run: between runs every member leaves (labels cleared, apply) and the agents
are seen to drop their remotes, so each join starts every clustermesh-apiserver (etcd + exporter)
afresh. Only apply → Connected is timed; start-up, labelling before the apply and leaving are not.
"""

from __future__ import annotations

import importlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.report import Baseline, Table

NAME = "join"
DESCRIPTION = (
    "Time from `clustermeshprofile apply` to the network being Connected, for 2, 5 and 10 one-node local "
    "clusters, against joining the same members one at a time."
)

SIZES = (2, 5, 10)
QUICK_SIZES = (2, 5)
RUNS = 3
QUICK_RUNS = 1
TARGET_CLUSTERS = 10
TARGET_SECONDS = 10.0

PROFILE = "bench-join"
LABELS = {"fleetnet-bench": "join"}
SELECTOR = "fleetnet-bench=join"
POLL = 0.05
# the hub gives up on a member after 120 s (MeshController.connect_timeout); wait a little longer
APPLY_TIMEOUT = 150.0
SETTLE_TIMEOUT = 60.0
CLI_TIMEOUT = 300.0

FLEETNET = "fleetnet p50 (s)"
FLEETNET_MAX = "fleetnet max (s)"
SERIAL = "one by one p50 (s)"
SERIAL_MAX = "one by one max (s)"


class BenchError(RuntimeError):
    pass


def _progress(msg: str) -> None:
    print(f"  join: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the fleet


def _cli(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "fleetnet.cli.main", "--home", str(home), *args]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False)
    if check and out.returncode != 0:
        raise BenchError(f"`fleetnet {' '.join(args)}` failed ({out.returncode}): {out.stderr.strip()}")
    return out


@contextmanager
def local_fleet(clusters: int) -> Iterator[Any]:
    """A fleet of ``clusters`` one-node local clusters c1..cN in its own home; down in any case."""
    # by name: fleetnet ships no py.typed, and the daemon's answers are plain JSON (Any) anyway
    client_cls = importlib.import_module("fleetnet.cli.client").Client
    home = Path(tempfile.mkdtemp(prefix="fleetnet-bench-join-"))
    try:
        start = time.monotonic()
        _cli(home, "up", "--clusters", str(clusters), "--nodes", "1", "-o", "json")
        _progress(f"fleet of {clusters} clusters up in {time.monotonic() - start:.1f} s ({home})")
        yield client_cls(home)
    finally:
        down = _cli(home, "down", "-o", "json", check=False)
        if down.returncode == 0:
            shutil.rmtree(home, ignore_errors=True)
        else:
            print(
                f"warning: `fleetnet down --home {home}` failed: {down.stderr.strip()}; the home is kept.",
                file=sys.stderr,
            )


# ---------------------------------------------------------------- one fleet's session


def stray_states(seen: Sequence[str], final: str) -> set[str]:
    """States the profile showed during an apply that were neither "Applying" nor its outcome.

    The apply writes its outcome to the profile just before it marks the operation finished, so
    reading the outcome once while the operation still runs is expected, but not "Applying" again after it.
    """
    stray = {x for x in seen if x not in ("Applying", final)}
    if final in seen and "Applying" in seen[seen.index(final) :]:
        stray.add(final)
    return stray


@dataclass
class Samples:
    """What a run measured, by cluster count (``summarize`` turns it into tables)."""

    fleetnet: dict[int, list[float]] = field(default_factory=dict)
    one_by_one: dict[int, list[float]] = field(default_factory=dict)
    # per fleetnet join: did every agent already see every peer ready when the profile read Connected?
    full_at_connected: list[bool] = field(default_factory=list)
    applies: int = 0
    # profile states other than Applying that GET showed while the apply operation was still running
    stray: Counter[str] = field(default_factory=Counter)


class Session:
    """The client of one fleet, and the samples taken through it."""

    def __init__(self, client: Any, samples: Samples) -> None:
        self.c = client
        self.samples = samples

    def poll(self, cond: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}.")
            time.sleep(POLL)  # a poll interval; the deadline bounds the wait

    def label(self, names: Sequence[str], labels: dict[str, str]) -> None:
        for n in names:
            self.c.patch(f"/members/{n}", json={"labels": labels})

    def apply(self, expect: str) -> None:
        """Apply and return once the operation has finished and the profile reads ``expect``.

        The operation is what says the apply is over: the profile's state alone is not trusted while
        it runs, because the hub's background refresher can overwrite "Applying" mid-apply.
        """
        op = self.c.post(f"/clusterMeshProfiles/{PROFILE}/apply")
        self.samples.applies += 1
        deadline = time.monotonic() + APPLY_TIMEOUT
        seen: list[str] = []  # the profile's states read while the operation was still running
        while True:
            done = self.c.get(f"/operations/{op['id']}")
            state = str(self.c.get(f"/clusterMeshProfiles/{PROFILE}")["properties"]["status"]["state"])
            if done["status"] != "Running":
                break
            seen.append(state)
            if time.monotonic() > deadline:
                raise BenchError(f"apply of {PROFILE} still running after {APPLY_TIMEOUT:.0f} s (operation {op['id']})")
            time.sleep(POLL)  # a poll interval; the deadline bounds the wait
        self.samples.stray.update(stray_states(seen, state))
        if done["status"] != "Succeeded" or state != expect:
            raise BenchError(
                f"apply of {PROFILE} ended {done['status']}, the profile {state} (not {expect}): {done.get('error')}"
            )

    def in_network(self) -> dict[str, str]:
        members = self.c.get("/members", params={"clusterMeshProfile": PROFILE})
        return {m["name"]: str(((m.get("meshProperties") or {}).get("status") or {}).get("state")) for m in members}

    def expect_connected(self, names: Sequence[str]) -> None:
        got = self.in_network()
        if got != dict.fromkeys(names, "Connected"):
            raise BenchError(f"after apply, the network holds {got}; expected {list(names)} all Connected.")

    def remotes(self, name: str) -> dict[str, bool] | None:
        """The remotes a member's agent has, and whether each is ready (None if the agent does not answer)."""
        try:
            data = self.c.get(f"/members/{name}/cilium/cluster")
        except Exception:
            return None
        return {r["name"]: bool(r.get("ready")) for r in data.get("clusters", [])}

    def full_mesh(self, names: Sequence[str]) -> bool:
        """Every member's agent reports every other member ready (what Connected promises for all of them)."""
        for n in names:
            r = self.remotes(n)
            if r is None or any(not r.get(o, False) for o in names if o != n):
                return False
        return True

    # ------------------------------------------------------------ the two ways of joining, and the reset

    def join_fleetnet(self, names: Sequence[str]) -> float:
        """Label every member, then time one apply until Connected."""
        self.label(names, LABELS)
        start = time.monotonic()
        self.apply("Connected")
        elapsed = time.monotonic() - start
        self.expect_connected(names)
        self.samples.fleetnet.setdefault(len(names), []).append(elapsed)
        self.samples.full_at_connected.append(self.full_mesh(names))
        return elapsed

    def join_one_by_one(self, names: Sequence[str], sizes: Sequence[int]) -> dict[int, float]:
        """Label, apply and wait for one member at a time, up to all of ``names``.

        The time for a size k is taken once the k-th member is Connected and every agent of the first
        k sees every other ready (a one-member apply vouches only for the newcomer, so that is checked):
        joining 5 one by one is the first 5 steps of joining 10 one by one, so one pass gives every size.
        """
        start = time.monotonic()
        got: dict[int, float] = {}
        for i, n in enumerate(names):
            self.label([n], LABELS)
            self.apply("Connected")
            k = i + 1
            self.expect_connected(names[:k])
            if k in sizes:
                first = names[:k]
                self.poll(partial(self.full_mesh, first), SETTLE_TIMEOUT, f"every agent of {first} to see every peer")
                got[k] = time.monotonic() - start
                self.samples.one_by_one.setdefault(k, []).append(got[k])
        return got

    def leave_all(self, names: Sequence[str]) -> None:
        """Reset between runs (not timed): clear the labels, apply, wait until the agents hold no remotes."""
        self.label(names, {})
        self.apply("NotConnected")
        if self.in_network():
            raise BenchError(f"after the leave, the network still holds {self.in_network()}.")
        self.poll(lambda: all(self.remotes(n) == {} for n in names), SETTLE_TIMEOUT, f"the agents of {names} to drop")


# ---------------------------------------------------------------- the benchmark


def _times(xs: Sequence[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in xs)


def summarize(s: Samples, quick: bool) -> list[Table]:
    """The tables of a run (pure, so the unit tests can feed it made-up samples)."""
    sizes = sorted(s.fleetnet)
    largest = max(sizes) if sizes else 0
    rows = []
    for n in sizes:
        f, b = s.fleetnet[n], s.one_by_one.get(n, [])
        verdict: str | None = None
        if n == TARGET_CLUSTERS:
            verdict = f"< {TARGET_SECONDS:.0f} s: " + ("met" if max(f) < TARGET_SECONDS else "MISSED")
        rows.append(
            (
                n,
                len(f),
                statistics.median(f),
                max(f),
                statistics.median(b) if b else None,
                max(b) if b else None,
                verdict,
            )
        )
    target = s.fleetnet.get(TARGET_CLUSTERS)
    if target:
        target_note = (
            f"Target: {TARGET_CLUSTERS} clusters Connected in under {TARGET_SECONDS:.0f} s in every run: "
            f"{'met' if max(target) < TARGET_SECONDS else 'missed'} (max {max(target):.2f} s)."
        )
    else:
        target_note = (
            f"Target ({TARGET_CLUSTERS} clusters Connected in under {TARGET_SECONDS:.0f} s) not measured: "
            f"{'--quick stops' if quick else 'the sizes stop'} at {largest} clusters."
        )
    notes = [
        "Timed (time.monotonic, client side, polling every 50 ms): from POST /clusterMeshProfiles/NAME/apply "
        "until its operation has finished and GET shows the profile Connected; then every member is checked to "
        "be Connected. Not timed: fleet start-up, labelling the members before the apply, the reset between runs.",
        f"One fleet of {largest} one-node local clusters serves all runs; between runs every member leaves "
        "(labels cleared + apply) and its agent is seen to drop every remote, so each join starts every "
        "clustermesh-apiserver (etcd with mTLS + exporter) afresh.",
        "Baseline, measured in the same run, one pass per round after fleetnet's joins of that round: the same "
        f"members joined one at a time (label one, apply, wait for Connected, next) up to {largest}; the time for "
        "k clusters runs from the first label until the k-th member is Connected and every agent of the first k "
        "reports every other ready (checked at each reported size). speed-up = baseline p50 / fleetnet p50.",
        f"When fleetnet reported Connected, every agent already saw every peer ready in {sum(s.full_at_connected)} "
        f"of {len(s.full_at_connected)} runs.",
        target_note,
    ]
    if s.stray:
        seen = ", ".join(f"{state} in {k}" for state, k in sorted(s.stray.items()))
        notes.append(
            f"While an apply's operation was still running, GET showed the profile in a state that was neither "
            f"Applying nor the apply's outcome ({seen} of {s.applies} applies, joins and resets together); the "
            "timing waits for the operation to finish, so these numbers are not affected."
        )
    summary = Table(
        title="Join: apply → Connected (seconds)",
        columns=("clusters", "runs", FLEETNET, FLEETNET_MAX, SERIAL, SERIAL_MAX, "target"),
        rows=rows,
        baseline=Baseline(column=SERIAL, versus=FLEETNET, ratio_title="speed-up (p50)"),
        notes=notes,
    )
    per_run = Table(
        title="Join: every run (seconds)",
        columns=("clusters", "fleetnet", "one by one"),
        rows=[(n, _times(s.fleetnet[n]), _times(s.one_by_one.get(n, []))) for n in sizes],
        notes=("In the order measured: the k-th time of every size and of both approaches comes from round k.",),
    )
    return [summary, per_run]


def run(quick: bool) -> list[Table]:
    sizes = QUICK_SIZES if quick else SIZES
    runs = QUICK_RUNS if quick else RUNS
    samples = Samples()
    with local_fleet(max(sizes)) as client:
        bench = Session(client, samples)
        client.put(f"/clusterMeshProfiles/{PROFILE}", json={"memberSelector": {"byLabel": SELECTOR}})
        everyone = [f"c{i}" for i in range(1, max(sizes) + 1)]
        for r in range(1, runs + 1):
            fast: dict[int, float] = {}
            for n in sizes:
                fast[n] = bench.join_fleetnet(everyone[:n])
                bench.leave_all(everyone[:n])
            slow = bench.join_one_by_one(everyone, sizes)
            bench.leave_all(everyone)
            for n in sizes:
                _progress(f"round {r}/{runs}, {n} clusters: fleetnet {fast[n]:.2f} s, one by one {slow[n]:.2f} s")
    return summarize(samples, quick)
