"""`fleetnet demo`: the whole story on local clusters, told step by step.

Each step prints the command a user would type, runs exactly that command, shows its output and
checks that it behaved as the step says; a step that does not fails the demo (non-zero exit).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel

from fleetnet.local import procs

console = Console()
FLEETNET = str(Path(sys.executable).with_name("fleetnet"))

ECHO = """apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, labels: {app: echo}}
spec:
  replicas: 2
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      containers:
      - {name: echo, image: fleetnet/echo, ports: [{containerPort: 8080}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client, labels: {app: client}}
spec:
  containers:
  - {name: client, image: fleetnet/client}
"""


class DemoFailed(Exception):
    pass


class Demo:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = dict(os.environ, FLEETNET_HOME=str(home))
        self.manifest = home / "echo.yaml"

    def step(self, title: str) -> None:
        console.print()
        console.print(Panel.fit(title, style="bold cyan"))

    def sh(self, *args: str, show: bool = True, expect_ok: bool = True) -> str:
        console.print(f"[bold green]$[/] fleetnet {' '.join(args)}")
        p = procs.run([FLEETNET, *args], timeout=300, env=self.env)
        if show and p.stdout.strip():
            console.print(p.stdout.rstrip(), markup=False, highlight=False)
        if p.stderr.strip():
            console.print(p.stderr.rstrip(), style="yellow", markup=False, highlight=False)
        if expect_ok and p.returncode != 0:
            raise DemoFailed(f"`fleetnet {' '.join(args)}` exited {p.returncode}")
        if not expect_ok and p.returncode == 0:
            raise DemoFailed(f"`fleetnet {' '.join(args)}` was expected to fail but succeeded")
        return p.stdout

    def js(self, *args: str) -> Any:
        p = procs.run([FLEETNET, *args, "-o", "json"], timeout=300, env=self.env)
        if p.returncode != 0:
            raise DemoFailed(f"`fleetnet {' '.join(args)}` failed: {p.stderr.strip()}")
        return json.loads(p.stdout)

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            raise DemoFailed(what)
        console.print(f"[green]✔[/] {what}")

    def wait(self, cond: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            v = cond()
            if v:
                console.print(f"[green]✔[/] {what}")
                return v
            if time.monotonic() > deadline:
                raise DemoFailed(f"timed out waiting for: {what}")
            time.sleep(0.2)

    def pods(self, member: str) -> dict[str, Any]:
        return {
            p["metadata"]["name"]: p
            for p in self.js("kubectl", member, "get", "pods")
            if p.get("status", {}).get("phase") == "Running"
        }

    def running(self, member: str, n: int) -> dict[str, Any] | None:
        pods = self.pods(member)
        return pods if len(pods) == n else None

    def probe(self, member: str, url: str, count: int = 1) -> dict[str, Any]:
        console.print(f"[bold green]$[/] fleetnet kubectl {member} exec client -- fleetnet probe {url} --count {count}")
        p = procs.run(
            [
                FLEETNET,
                "kubectl",
                member,
                "exec",
                "client",
                "--",
                FLEETNET,
                "probe",
                url,
                "--count",
                str(count),
                "--timeout",
                "1",
                "-o",
                "json",
            ],
            timeout=120,
            env=self.env,
        )
        out = json.loads(p.stdout)
        for a in out["answers"][:3]:
            console.print(
                f"  answered by {a['cluster']}/{a['pod']} (client {a['client']})"
                if a["ok"]
                else f"  failed: {a['error']}"
            )
        return dict(out)

    def run(self, keep: bool) -> None:
        self.manifest.parent.mkdir(parents=True, exist_ok=True)
        self.manifest.write_text(ECHO)
        self.step("1. Three local clusters (each node and pod a network namespace)")
        self.sh("up", "--clusters", "3")
        self.step("2. A cross-cluster network: label members, create the profile, preview, apply")
        self.sh("member", "update", "c1", "--labels", "network=blue", show=False)
        self.sh("member", "update", "c2", "--labels", "network=blue", show=False)
        self.sh("clustermeshprofile", "create", "blue", "--member-selector", "network=blue")
        rows = self.js("clustermeshprofile", "apply", "blue", "--what-if")
        self.sh("clustermeshprofile", "apply", "blue", "--what-if")
        self.check(
            [(r["action"], r["name"]) for r in rows] == [("Add", "c1"), ("Add", "c2")],
            "what-if: c1 and c2 will be added, c3 is not selected, nothing changed yet",
        )
        start = time.monotonic()
        self.sh("clustermeshprofile", "apply", "blue")
        state = self.js("clustermeshprofile", "show", "blue")["properties"]["status"]["state"]
        self.check(state == "Connected", f"network blue is Connected ({time.monotonic() - start:.1f} s)")
        self.sh("cilium", "c1", "clustermesh", "status")
        self.step("3. Workloads: an echo Deployment and a client pod in every cluster")
        for c in ("c1", "c2", "c3"):
            self.sh("kubectl", c, "apply", "-f", str(self.manifest))
        pods = {c: self.wait(functools.partial(self.running, c, 3), f"pods of {c} running") for c in ("c1", "c2", "c3")}
        self.sh("kubectl", "c2", "get", "pods", "-o", "wide")
        echo = {c: next(p for n, p in pods[c].items() if n.startswith("echo-")) for c in pods}
        self.step("4. Pod to pod across clusters, directly: no tunnel, no NAT")
        ans = self.probe("c1", f"http://{echo['c2']['status']['podIP']}:8080")
        self.check(ans["answered"] == 1 and ans["answers"][0]["cluster"] == "c2", "a pod in c1 reached a pod in c2")
        self.check(
            ans["answers"][0]["client"] == pods["c1"]["client"]["status"]["podIP"],
            "c2 saw the client's own pod IP (native routing)",
        )
        ans = self.probe("c1", f"http://{echo['c3']['status']['podIP']}:8080")
        self.check(ans["answered"] == 0, "c3 is not in the network: unreachable from c1")
        self.step("5. A member leaves: relabel and apply")
        self.sh("member", "update", "c2", "--labels", "network=none", show=False)
        self.sh("clustermeshprofile", "apply", "blue", "--what-if")
        self.sh("clustermeshprofile", "apply", "blue")
        ans = self.probe("c1", f"http://{echo['c2']['status']['podIP']}:8080")
        self.check(ans["answered"] == 0, "c2 left: c1 can no longer reach it")
        if keep:
            console.print(f"\nThe fleet is still running. Explore it with: export FLEETNET_HOME={self.home}")
            return
        self.step("6. Tear down")
        self.sh("down")


def run_demo(home: Path, keep: bool = False) -> int:
    if os.geteuid() != 0:
        console.print("error: the demo needs root (network namespaces, eBPF).", style="red")
        return 1
    demo_home = (
        home
        if os.environ.get("FLEETNET_HOME") or home != Path("~/.fleetnet").expanduser()
        else (Path("~/.fleetnet-demo").expanduser())
    )
    demo = Demo(demo_home)
    try:
        demo.run(keep)
    except DemoFailed as e:
        console.print(f"\n[bold red]demo failed:[/] {e}")
        if not keep:
            procs.run([FLEETNET, "down"], timeout=300, env=demo.env)
        return 1
    console.print("\n[bold green]demo complete[/]")
    return 0
