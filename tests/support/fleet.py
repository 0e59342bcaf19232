"""Drive a real fleet through the `fleetnet` command line, as a user or a script would.

Each test fleet has its own home (so its own namespace prefix); ``close()`` runs `fleetnet down`
even when the test failed, and then checks that nothing of the fleet is left on the host.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

FLEETNET = str(Path(sys.executable).with_name("fleetnet"))


class CliError(AssertionError):
    pass


class TestFleet:
    __test__ = False

    def __init__(self, home: Path | None = None) -> None:
        self.owns_home = home is None
        self.home = home or Path(tempfile.mkdtemp(prefix="fleetnet-test-"))
        self.prefix: str | None = None

    def run(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 180.0
    ) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, FLEETNET_HOME=str(self.home))
        p = subprocess.run([FLEETNET, *args], capture_output=True, text=True, env=env, input=input, timeout=timeout)
        if check and p.returncode != 0:
            raise CliError(f"fleetnet {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
        return p

    def json(self, *args: str, check: bool = True, input: str | None = None) -> Any:
        p = self.run(*args, "-o", "json", check=check, input=input)
        return json.loads(p.stdout) if p.stdout.strip() else None

    def up(self, clusters: int, nodes: int = 1) -> None:
        self.run("up", "--clusters", str(clusters), "--nodes", str(nodes))
        state = json.loads((self.home / "state.json").read_text())
        self.prefix = state["prefix"]

    def apply(self, member: str, manifest: str) -> list[dict[str, Any]]:
        """`kubectl apply -f -`; the objects as kubectl prints them (one object, or a List of them)."""
        out = self.json("kubectl", member, "apply", "-f", "-", input=manifest)
        return list(out["items"]) if out.get("kind") == "List" else [out]

    def pods(self, member: str, namespace: str = "default") -> list[dict[str, Any]]:
        return list(self.json("kubectl", member, "get", "pods", "-n", namespace)["items"])

    def pod_netns(self, member: str, pod: str, namespace: str = "default") -> str:
        """The network namespace of a local cluster's pod (its name is derived, not stored)."""
        from fleetnet.local import topology

        assert self.prefix is not None
        return topology.pod_netns(self.prefix, member, namespace, pod)

    def exec(
        self, member: str, pod: str, *cmd: str, namespace: str = "default", check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        return self.run("kubectl", member, "exec", pod, "-n", namespace, "--", *cmd, check=check)

    def probe(self, member: str, pod: str, url: str, count: int = 1, namespace: str = "default") -> dict[str, Any]:
        p = self.exec(
            member,
            pod,
            FLEETNET,
            "probe",
            url,
            "--count",
            str(count),
            "--timeout",
            "1",
            "-o",
            "json",
            namespace=namespace,
        )
        return dict(json.loads(p.stdout))

    def probe_in(self, netns: str, url: str, count: int = 1) -> dict[str, Any]:
        """Probe from inside a pod's namespace without asking the daemon (it may be down)."""
        from fleetnet.local import procs

        p = procs.run_in_netns(
            netns, [FLEETNET, "probe", url, "--count", str(count), "--timeout", "1", "-o", "json"], timeout=60
        )
        return dict(json.loads(p.stdout))

    def leftovers(self) -> list[str]:
        if not self.prefix:
            return []
        out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        return [line.split()[0] for line in out.splitlines() if line.startswith(self.prefix + "_")]

    def close(self) -> None:
        self.run("down", check=False)
        if self.owns_home:
            shutil.rmtree(self.home, ignore_errors=True)
