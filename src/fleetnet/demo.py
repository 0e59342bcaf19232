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

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
URL = "http://echo.demo.svc.cluster.local:80"
GLOBAL_ECHO = """apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: demo, labels: {app: echo}}
spec:
  replicas: 2
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      containers:
      - {name: echo, image: fleetnet/echo, ports: [{name: http, containerPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata:
  name: echo
  namespace: demo
  annotations: {service.cilium.io/global: "true"}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 80, targetPort: http, protocol: TCP}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: demo, labels: {app: client}}
spec:
  containers:
  - {name: client, image: fleetnet/client}
"""
ONLY_C2 = """apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: allow-only-from-c2, namespace: demo}
spec:
  endpointSelector: {matchLabels: {app: echo}}
  ingress:
  - fromEndpoints:
    - matchLabels: {io.cilium.k8s.policy.cluster: c2}
    toPorts:
    - ports: [{port: "8080", protocol: TCP}]
"""
STAGES = {
    "stages": [
        {
            "name": "canary",
            "groups": [{"name": "canary"}],
            "afterStageWaitInSeconds": 5,
            "afterGates": [{"displayName": "canary looks good", "type": "Approval"}],
            "meshHealthCheck": True,
        },
        {"name": "prod", "groups": [{"name": "prod", "maxConcurrency": "2"}]},
    ]
}


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

    def pods(self, member: str, namespace: str = "default") -> dict[str, Any]:
        return {
            p["metadata"]["name"]: p
            for p in self.js("kubectl", member, "get", "pods", "-n", namespace)["items"]
            if p.get("status", {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
        }

    def running(self, member: str, n: int, namespace: str = "default") -> dict[str, Any] | None:
        pods = self.pods(member, namespace)
        return pods if len(pods) == n else None

    def probe(
        self, member: str, url: str, count: int = 1, namespace: str = "default", show: bool = True
    ) -> dict[str, Any]:
        ns = [] if namespace == "default" else ["-n", namespace]
        if show:
            console.print(
                f"[bold green]$[/] fleetnet kubectl {member} exec client {' '.join(ns)} -- "
                f"fleetnet probe {url} --count {count}"
            )
        argv = [FLEETNET, "kubectl", member, "exec", "client", *ns, "--", FLEETNET, "probe", url]
        argv += ["--count", str(count), "--timeout", "1", "-o", "json"]
        p = procs.run(argv, timeout=300, env=self.env)
        try:
            out = json.loads(p.stdout)
        except ValueError as e:
            raise DemoFailed(f"probe from {member} printed no result: {p.stderr.strip()}") from e
        if show and count <= 3:
            for a in out["answers"]:
                ok = f"  answered by {a['cluster']}/{a['pod']} (client {a['client']})"
                console.print(ok if a["ok"] else f"  failed: {a['error']}")
        return dict(out)

    def chart(self, counts: dict[str, int], total: int) -> None:
        """Answers per cluster as a bar chart in the terminal."""
        width = 40
        for cluster in sorted(counts):
            n = counts[cluster]
            bar = "█" * max(1, round(width * n / total)) if n else ""
            console.print(f"  {cluster:>4} [cyan]{bar:<{width}}[/] {n:>4} ({100 * n / total:.0f}%)")

    def run(self, keep: bool) -> None:
        self.manifest.parent.mkdir(parents=True, exist_ok=True)
        self.manifest.write_text(GLOBAL_ECHO)
        clusters = ("c1", "c2", "c3")
        self.step("1. Three local clusters (each node and pod a network namespace, eBPF on every pod veth)")
        self.sh("up", "--clusters", "3")
        self.step("2. A cross-cluster network: label the members, create the profile, preview, apply")
        for c in clusters:
            self.sh("member", "update", c, "--labels", "network=blue", show=False)
        self.sh("clustermeshprofile", "create", "blue", "--member-selector", "network=blue")
        self.sh("clustermeshprofile", "apply", "blue", "--what-if")
        rows = self.js("clustermeshprofile", "apply", "blue", "--what-if")
        self.check(
            [r["action"] for r in rows] == ["Add"] * 3, "what-if: three members will be added, nothing changed yet"
        )
        start = time.monotonic()
        self.sh("clustermeshprofile", "apply", "blue")
        state = self.js("clustermeshprofile", "show", "blue")["properties"]["status"]["state"]
        self.check(state == "Connected", f"network blue is Connected ({time.monotonic() - start:.1f} s)")
        self.sh("cilium", "c1", "clustermesh", "status")
        self.step('3. A global echo service (service.cilium.io/global: "true") in all three clusters')
        for c in clusters:
            self.sh("kubectl", c, "apply", "-f", str(self.manifest))
        pods = {c: self.wait(functools.partial(self.running, c, 3, "demo"), f"pods of {c} running") for c in clusters}
        self.wait(lambda: self.backend_clusters("c1") == set(clusters), "c1 knows the backends of c1, c2 and c3")
        self.sh("cilium", "c1", "service", "list")
        self.step("4. A client in c1 calls the service: answers come from every cluster")
        out = self.probe("c1", URL, count=300, namespace="demo")
        self.chart(out["byCluster"], 300)
        self.check(set(out["byCluster"]) == set(clusters) and out["failed"] == 0, "300/300 answered, by all three")
        self.step("5. service.cilium.io/shared=false on c3: c3 stops sharing its backends")
        self.sh("kubectl", "c3", "annotate", "service", "echo", "-n", "demo", "service.cilium.io/shared=false")
        self.wait(lambda: "c3" not in self.backend_clusters("c1"), "c1 dropped c3's backends")
        out = self.probe("c1", URL, count=300, namespace="demo")
        self.chart(out["byCluster"], 300)
        self.check(set(out["byCluster"]) == {"c1", "c2"}, "c1's requests now go to c1 and c2 only")
        out = self.probe("c3", URL, count=60, namespace="demo", show=False)
        self.check(set(out["byCluster"]) == set(clusters), "c3 still uses the backends of c1 and c2")
        self.step("6. CiliumNetworkPolicy in c1: its echo pods admit traffic from cluster c2 only")
        policy = self.home / "allow-only-from-c2.yaml"
        policy.write_text(ONLY_C2)
        self.sh("kubectl", "c1", "apply", "-f", str(policy))
        echo = next(p for n, p in sorted(pods["c1"].items()) if n.startswith("echo-"))
        url = f"http://{echo['status']['podIP']}:8080"
        self.wait(
            lambda: self.probe("c3", url, namespace="demo", show=False)["answered"] == 0,
            "c3 → c1's echo pod is dropped",
        )
        self.check(self.probe("c2", url, namespace="demo")["answered"] == 1, "c2 → c1's echo pod is answered")
        self.sh(
            "cilium",
            "c1",
            "policy",
            "trace",
            "--src",
            "c3/demo/client",
            "--dst",
            f"c1/demo/{echo['metadata']['name']}",
            "--dport",
            "8080/TCP",
        )
        # the update run's mesh health check probes every pair of members: lift the fence first
        self.sh("kubectl", "c1", "delete", "cnp", "allow-only-from-c2", "-n", "demo")
        self.step("7. A staged update run: canary first, an approval, then the rest")
        self.sh("versions", show=False)
        self.sh("member", "update", "c1", "--group", "canary", show=False)
        self.sh("member", "update", "c2", "--group", "prod", show=False)
        self.sh("member", "update", "c3", "--group", "prod", show=False)
        stages = self.home / "stages.json"
        stages.write_text(json.dumps(STAGES, indent=2))
        self.sh("updatestrategy", "create", "safe", "--stages", str(stages))
        target = self.upgrade_target()
        self.sh(
            "updaterun",
            "create",
            "up",
            "--upgrade-type",
            "Full",
            "--kubernetes-version",
            target,
            "--update-strategy-name",
            "safe",
        )
        self.sh("updaterun", "start", "up")
        gates = self.wait(
            lambda: [g for g in self.js("gate", "list", "--state", "Pending")], "the approval gate is Pending"
        )
        self.sh("gate", "list", "--state", "Pending")
        self.sh("gate", "approve", str(gates[0].get("name") or gates[0].get("id")))
        self.sh("updaterun", "wait", "up", "--timeout", "300")
        self.sh("updaterun", "show", "up")
        versions = {m["name"]: m["kubernetesVersion"] for m in self.js("member", "list")}
        self.check(set(versions.values()) == {target}, f"every member runs Kubernetes {target}")
        self.check(
            self.probe("c3", url, namespace="demo", show=False)["answered"] == 1,
            "cross-cluster traffic still works after the upgrade",
        )
        self.step("8. A member leaves: relabel it and apply")
        self.sh("member", "update", "c3", "--labels", "network=none", show=False)
        self.sh("clustermeshprofile", "apply", "blue", "--what-if")
        self.sh("clustermeshprofile", "apply", "blue")
        self.wait(
            lambda: "c3" not in {c["name"] for c in self.js("cilium", "c1", "clustermesh", "status")["clusters"]},
            "c1 no longer has c3 as a remote",
        )
        if keep:
            console.print(f"\nThe fleet is still running. Explore it with: export FLEETNET_HOME={self.home}")
            return
        self.step("9. Tear down: every namespace, pin and process goes")
        self.sh("down")

    def backend_clusters(self, member: str) -> set[str]:
        """The clusters behind the demo's global service (port 80; not the cluster's `kubernetes`)."""
        services = self.js("cilium", member, "service", "list")
        return {b["cluster"] for s in services if s["frontend"].endswith(":80/TCP") for b in s["backends"]}

    def upgrade_target(self) -> str:
        """The newest patch of the next Kubernetes minor after the members' version."""
        current = self.js("member", "show", "c1")["kubernetesVersion"]
        major, minor = (int(x) for x in current.split(".")[:2])
        catalog = self.js("versions")
        entries = catalog.get("versions", catalog) if isinstance(catalog, dict) else catalog
        nxt = [e["kubernetes"] for e in entries if e["kubernetes"].startswith(f"{major}.{minor + 1}.")]
        if not nxt:
            raise DemoFailed(f"the catalog has no {major}.{minor + 1} release to upgrade to")
        return sorted(nxt, key=lambda v: tuple(int(x) for x in v.split(".")))[-1]


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
