"""A local fleet for benchmarks that need workloads: start it, join members, apply objects, find pods.

``bench_services`` and ``bench_propagation`` both need a real fleet of local clusters (``fleetnet up``
in a home of their own), joined into one cross-cluster network, with objects applied through the
daemon's API and pods found by their status. This module holds that plumbing; each benchmark keeps
only what it measures. The fleet is always brought down in a ``finally`` (``fleetnet down --home``),
which ends every process and removes every namespace, pin and mount the fleet made.

fleetnet is imported by name (``importlib``): it ships no py.typed, and mypy checks this folder on
its own; the daemon's answers are plain JSON (``Any``) anyway.
"""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from fleetnet.cli.client import Client
from fleetnet.errors import FleetnetError, NotFound

T = TypeVar("T")

CLI_TIMEOUT = 300.0
# the hub gives up on a member after 120 s (MeshController.connect_timeout); wait a little longer
APPLY_TIMEOUT = 150.0
POLL = 0.05


class BenchError(RuntimeError):
    """A benchmark could not set up or measure what it needs (the message says what)."""


def progress(name: str, msg: str) -> None:
    print(f"  {name}: {msg}", file=sys.stderr, flush=True)


def wait_for(cond: Callable[[], T | None], timeout: float, what: str, interval: float = POLL) -> T:
    """Poll ``cond`` until it returns something truthy (returned); BenchError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}.")
        time.sleep(interval)  # a poll interval; the deadline bounds the wait


def fleetnet_module(name: str) -> Any:
    """``fleetnet.<name>``, imported by name (see the module docstring)."""
    return importlib.import_module(f"fleetnet.{name}")


class Api(Client):
    """fleetnet's own API client (one kept-open connection), with the benchmarks' error type and an
    optional "absent is fine"."""

    def request(self, method: str, path: str, *, missing_ok: bool = False, **kw: Any) -> Any:
        try:
            return super().request(method, path, **kw)
        except NotFound:
            if missing_ok:
                return None
            raise
        except FleetnetError as e:
            raise BenchError(f"{method} {path}: {e}") from e


class LocalFleet:
    """The API of one fleet home, and the few operations the benchmarks need."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.client = Api(home)
        self._profiles: set[str] = set()

    # ------------------------------------------------------------ the CLI
    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "fleetnet.cli.main", "--home", str(self.home), *args]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False)
        if check and out.returncode != 0:
            raise BenchError(f"`fleetnet {' '.join(args)}` failed ({out.returncode}): {out.stderr.strip()}")
        return out

    def up(self, clusters: int) -> None:
        """Clusters c1..c<clusters> (one node each); those that exist already are kept."""
        self.cli("up", "--clusters", str(clusters), "--nodes", "1", "-o", "json")

    def bpffs(self, member: str = "c1") -> Path:
        """The fleet's bpffs, as the member's agent reads it from its cluster config (not under the home)."""
        cfg = json.loads((self.home / "clusters" / member / "cluster.json").read_text())
        return Path(cfg["bpffs"])

    # ------------------------------------------------------------ networks
    def join(self, profile: str, names: Sequence[str]) -> None:
        """Label ``names`` for ``profile``, apply it, and wait until every agent sees every peer ready."""
        selector = f"fleetnet-bench={profile}"
        if profile not in self._profiles:
            self.client.put(f"/clusterMeshProfiles/{profile}", json={"memberSelector": {"byLabel": selector}})
            self._profiles.add(profile)
        for n in names:
            self.client.patch(f"/members/{n}", json={"labels": {"fleetnet-bench": profile}})
        op = self.client.post(f"/clusterMeshProfiles/{profile}/apply")
        done = wait_for(
            lambda: (d := self.client.get(f"/operations/{op['id']}"))["status"] != "Running" and d,
            APPLY_TIMEOUT,
            f"the apply of {profile} to finish",
        )
        state = self.client.get(f"/clusterMeshProfiles/{profile}")["properties"]["status"]["state"]
        if done["status"] != "Succeeded" or state != "Connected":
            raise BenchError(f"apply of {profile} ended {done['status']}, state {state}: {done.get('error')}")
        wait_for(lambda: self.full_mesh(names), 60.0, f"every agent of {list(names)} to see every peer")

    def remotes(self, name: str) -> dict[str, bool] | None:
        try:
            data = self.client.get(f"/members/{name}/cilium/cluster")
        except BenchError:  # the agent is not answering yet
            return None
        return {r["name"]: bool(r.get("ready")) for r in data.get("clusters", [])}

    def full_mesh(self, names: Sequence[str]) -> bool:
        for n in names:
            r = self.remotes(n)
            if r is None or any(not r.get(o, False) for o in names if o != n):
                return False
        return True

    # ------------------------------------------------------------ objects
    def apply(self, member: str, manifest: str) -> None:
        self.client.post(f"/members/{member}/kube/apply", json={"manifest": manifest, "source": "bench"})

    def delete(self, member: str, kind: str, name: str, namespace: str = "default") -> None:
        self.client.post(f"/members/{member}/kube/delete", json={"kind": kind, "name": name, "namespace": namespace})

    def annotate(self, member: str, kind: str, name: str, annotations: dict[str, str | None]) -> None:
        self.client.post(
            f"/members/{member}/kube/annotate",
            json={"kind": kind, "name": name, "namespace": "default", "annotations": annotations, "overwrite": True},
        )

    def objects(self, member: str, kind: str, name: str | None = None) -> list[dict[str, Any]]:
        params = {"namespace": "default"} | ({"objName": name} if name else {})
        # 404: a named object that does not exist (yet)
        return list(self.client.get(f"/members/{member}/kube/{kind}", params=params, missing_ok=True) or [])

    def running_pod(self, member: str, name_prefix: str) -> dict[str, Any] | None:
        """The first Running pod whose name starts with ``name_prefix`` (None if there is none yet)."""
        for p in self.objects(member, "Pod"):
            st = p.get("status") or {}
            if p["metadata"]["name"].startswith(name_prefix) and st.get("phase") == "Running" and st.get("podIP"):
                return p
        return None

    def wait_pod(self, member: str, name_prefix: str, timeout: float = 90.0) -> dict[str, Any]:
        return wait_for(
            lambda: self.running_pod(member, name_prefix), timeout, f"pod {name_prefix}* in {member} to run"
        )

    def cluster_ip(self, member: str, service: str) -> str | None:
        items = self.objects(member, "Service", service)
        ip = ((items[0].get("spec") or {}).get("clusterIP")) if items else None
        return str(ip) if ip else None

    def wait_cluster_ip(self, member: str, service: str, timeout: float = 60.0) -> str:
        return wait_for(lambda: self.cluster_ip(member, service), timeout, f"a ClusterIP for {service} in {member}")


@contextmanager
def local_fleet(prefix: str, clusters: int, name: str) -> Iterator[LocalFleet]:
    """A fleet of ``clusters`` one-node local clusters in its own home; down in any case."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    fleet = LocalFleet(home)
    try:
        start = time.monotonic()
        fleet.up(clusters)
        progress(name, f"fleet of {clusters} clusters up in {time.monotonic() - start:.1f} s ({home})")
        yield fleet
    finally:
        fleet.client.close()
        down = fleet.cli("down", "-o", "json", check=False)
        if down.returncode == 0:
            shutil.rmtree(home, ignore_errors=True)
        else:
            print(
                f"warning: `fleetnet down --home {home}` failed: {down.stderr.strip()}; the home is kept.",
                file=sys.stderr,
            )
