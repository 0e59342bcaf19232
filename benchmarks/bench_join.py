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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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


# ---------------------------------------------------------------- waiting


def _poll(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}.")
        time.sleep(POLL)  # a poll interval; the deadline bounds the wait


def _state(c: Any) -> str:
    return str(c.get(f"/clusterMeshProfiles/{PROFILE}")["properties"]["status"]["state"])


def _apply(c: Any) -> str:
    """Start an apply and wait until it is over; returns the profile's state then."""
    op = c.post(f"/clusterMeshProfiles/{PROFILE}/apply")
    deadline = time.monotonic() + APPLY_TIMEOUT
    while (state := _state(c)) == "Applying":
        if time.monotonic() > deadline:
            raise BenchError(f"apply of {PROFILE} still running after {APPLY_TIMEOUT:.0f} s (operation {op['id']}).")
        time.sleep(POLL)  # a poll interval; the deadline bounds the wait
    if state not in ("Connected", "NotConnected"):
        done = c.get(f"/operations/{op['id']}")
        raise BenchError(f"apply of {PROFILE} ended {state} (operation {done['status']}: {done.get('error')}).")
    return state


def _in_network(c: Any) -> dict[str, str]:
    members = c.get("/members", params={"clusterMeshProfile": PROFILE})
    return {m["name"]: str(((m.get("meshProperties") or {}).get("status") or {}).get("state")) for m in members}


def _expect_connected(c: Any, names: Sequence[str]) -> None:
    got = _in_network(c)
    if got != dict.fromkeys(names, "Connected"):
        raise BenchError(f"after apply, the network holds {got}; expected {list(names)} all Connected.")


def _remotes(c: Any, name: str) -> dict[str, bool] | None:
    """The remotes a member's agent has, and whether each is ready (None if the agent does not answer)."""
    try:
        data = c.get(f"/members/{name}/cilium/cluster")
    except Exception:
        return None
    return {r["name"]: bool(r.get("ready")) for r in data.get("clusters", [])}


def _full_mesh(c: Any, names: Sequence[str]) -> bool:
    """Every member's agent reports every other member ready (what Connected promises for all of them)."""
    for n in names:
        r = _remotes(c, n)
        if r is None or any(not r.get(o, False) for o in names if o != n):
            return False
    return True


# ---------------------------------------------------------------- the two ways of joining


def join_fleetnet(c: Any, names: Sequence[str]) -> tuple[float, bool]:
    """Label every member, then time one apply until Connected. Also says whether the mesh was full then."""
    for n in names:
        c.patch(f"/members/{n}", json={"labels": LABELS})
    start = time.monotonic()
    _apply(c)
    elapsed = time.monotonic() - start
    _expect_connected(c, names)
    return elapsed, _full_mesh(c, names)


def join_one_by_one(c: Any, names: Sequence[str]) -> float:
    """Label, apply and wait for one member at a time; timed from the first label until every agent
    sees every peer ready (a one-member apply vouches only for the newcomer, so the end is checked)."""
    start = time.monotonic()
    for i, n in enumerate(names):
        c.patch(f"/members/{n}", json={"labels": LABELS})
        _apply(c)
        _expect_connected(c, names[: i + 1])
    _poll(lambda: _full_mesh(c, names), SETTLE_TIMEOUT, f"every agent of {list(names)} to see every peer ready")
    return time.monotonic() - start


def leave_all(c: Any, names: Sequence[str]) -> None:
    """Reset between runs (not timed): clear the labels, apply, and wait until the agents hold no remotes."""
    for n in names:
        c.patch(f"/members/{n}", json={"labels": {}})
    _apply(c)
    if _in_network(c):
        raise BenchError(f"after the leave, the network still holds {_in_network(c)}.")
    _poll(lambda: all(_remotes(c, n) == {} for n in names), SETTLE_TIMEOUT, f"the agents of {list(names)} to drop")


# ---------------------------------------------------------------- the benchmark


def summarize(
    fleetnet: dict[int, list[float]],
    serial: dict[int, list[float]],
    full_at_connected: list[bool],
    quick: bool,
) -> list[Table]:
    """The tables of a run (pure, so the unit tests can feed it made-up samples)."""
    sizes = sorted(fleetnet)
    target = fleetnet.get(TARGET_CLUSTERS)
    rows = []
    for n in sizes:
        f, s = fleetnet[n], serial.get(n, [])
        verdict: str | None = None
        if n == TARGET_CLUSTERS:
            verdict = f"< {TARGET_SECONDS:.0f} s: " + ("met" if max(f) < TARGET_SECONDS else "MISSED")
        rows.append(
            (
                n,
                len(f),
                statistics.median(f),
                max(f),
                statistics.median(s) if s else None,
                max(s) if s else None,
                verdict,
            )
        )
    if target:
        verdict_note = "met" if max(target) < TARGET_SECONDS else "missed"
        target_note = (
            f"Target: {TARGET_CLUSTERS} clusters Connected in under {TARGET_SECONDS:.0f} s in every run: "
            f"{verdict_note} (max {max(target):.2f} s)."
        )
    else:
        target_note = (
            f"Target ({TARGET_CLUSTERS} clusters Connected in under {TARGET_SECONDS:.0f} s) not measured: "
            + ("--quick stops at " if quick else "sizes stop at ")
            + f"{max(sizes) if sizes else 0} clusters."
        )
    full = sum(full_at_connected)
    summary = Table(
        title="Join: apply → Connected (seconds)",
        columns=("clusters", "runs", FLEETNET, FLEETNET_MAX, SERIAL, SERIAL_MAX, "target"),
        rows=rows,
        baseline=Baseline(column=SERIAL, versus=FLEETNET, ratio_title="speed-up (p50)"),
        notes=(
            "Timed (time.monotonic, client side, polling every 50 ms): from POST /clusterMeshProfiles/NAME/apply "
            "until GET shows the profile Connected; then every member is checked to be Connected. Not timed: "
            "fleet start-up, labelling the members before the apply, and the reset between runs.",
            f"One fleet of {max(sizes) if sizes else 0} one-node local clusters serves all runs; between runs "
            "every member leaves (labels cleared + apply) and its agent is seen to drop every remote, so each "
            "join starts every clustermesh-apiserver (etcd with mTLS + exporter) afresh.",
            "Baseline, measured in the same run and interleaved with fleetnet's runs: the same members joined "
            "one at a time (label one, apply, wait for Connected, next), timed from the first label until every "
            "agent reports every peer ready. speed-up = baseline p50 / fleetnet p50.",
            f"At the moment fleetnet reported Connected, every agent already saw every peer ready in {full} of "
            f"{len(full_at_connected)} runs.",
            target_note,
        ),
    )
    per_run = Table(
        title="Join: every run (seconds)",
        columns=("clusters", "fleetnet", "one by one"),
        rows=[
            (n, ", ".join(f"{x:.2f}" for x in fleetnet[n]), ", ".join(f"{x:.2f}" for x in serial.get(n, [])))
            for n in sizes
        ],
        notes=("Runs in the order they were measured; run k of every size and approach ran in round k.",),
    )
    return [summary, per_run]


def run(quick: bool) -> list[Table]:
    sizes = QUICK_SIZES if quick else SIZES
    runs = QUICK_RUNS if quick else RUNS
    fleetnet: dict[int, list[float]] = {n: [] for n in sizes}
    serial: dict[int, list[float]] = {n: [] for n in sizes}
    full_at_connected: list[bool] = []
    with local_fleet(max(sizes)) as c:
        c.put(f"/clusterMeshProfiles/{PROFILE}", json={"memberSelector": {"byLabel": SELECTOR}})
        for r in range(1, runs + 1):
            for n in sizes:
                names = [f"c{i}" for i in range(1, n + 1)]
                seconds, full = join_fleetnet(c, names)
                fleetnet[n].append(seconds)
                full_at_connected.append(full)
                leave_all(c, names)
                serial[n].append(join_one_by_one(c, names))
                leave_all(c, names)
                _progress(f"round {r}/{runs}, {n} clusters: fleetnet {seconds:.2f} s, one by one {serial[n][-1]:.2f} s")
    return summarize(fleetnet, serial, full_at_connected, quick)
