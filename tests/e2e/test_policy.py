"""Issue: security identities and CiliumNetworkPolicy enforced across clusters, in eBPF.

Three clusters in one network, the global echo service in each; policies applied in c1.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleetnet.local import netlink, procs
from tests.support.fleet import TestFleet
from tests.support.wait import wait_for

pytestmark = pytest.mark.root

EXAMPLES = Path(__file__).parents[2] / "examples"
GLOBAL = (EXAMPLES / "echo-global.yaml").read_text()
ONLY_C2 = (EXAMPLES / "allow-only-from-c2.yaml").read_text()


def cnp(name: str, spec: str) -> str:
    head = f"apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: {name}, namespace: demo}}\n"
    return head + f"spec:\n{spec}"


DENY_C2 = cnp(
    "deny-c2",
    """  endpointSelector: {matchLabels: {app: echo}}
  ingressDeny:
  - fromEndpoints: [{matchLabels: {io.cilium.k8s.policy.cluster: c2}}]
""",
)
ALLOW_ANY_CLUSTER = cnp(
    "allow-mesh",
    """  endpointSelector: {matchLabels: {app: echo}}
  ingress:
  - fromEndpoints:
    - matchExpressions: [{key: io.cilium.k8s.policy.cluster, operator: Exists}]
""",
)
FROM_CLIENTS = cnp(
    "from-clients",
    """  endpointSelector: {matchLabels: {app: echo}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
""",
)
CLIENT_EGRESS_LOCAL = cnp(
    "client-egress",
    """  endpointSelector: {matchLabels: {app: client}}
  egress:
  - toEntities: [cluster]
""",
)


@pytest.fixture(scope="module")
def mesh() -> Iterator[TestFleet]:
    f = TestFleet()
    try:
        f.up(3)
        for c in ("c1", "c2", "c3"):
            f.run("member", "update", c, "--labels", "network=blue")
        f.run("clustermeshprofile", "create", "blue", "--member-selector", "network=blue")
        f.json("clustermeshprofile", "apply", "blue")
        for c in ("c1", "c2", "c3"):
            f.apply(c, GLOBAL)
        for c in ("c1", "c2", "c3"):
            wait_for(lambda c=c: len(running(f, c)) == 3, timeout=30, what=f"pods of {c}")
        wait_for(lambda: len(f.json("cilium", "c1", "identity", "list")) == 6, timeout=10, what="identities")
        yield f
    finally:
        f.close()
        assert f.leftovers() == []


def running(f: TestFleet, member: str) -> dict[str, Any]:
    return {p["metadata"]["name"]: p for p in f.pods(member, "demo") if p.get("status", {}).get("phase") == "Running"}


def echo_ip(f: TestFleet, member: str) -> str:
    return str(next(p for n, p in sorted(running(f, member).items()) if n.startswith("echo-"))["status"]["podIP"])


def answered(f: TestFleet, member: str, url: str, count: int = 1) -> int:
    return int(f.probe(member, "client", url, count=count, namespace="demo")["answered"])


def reach(f: TestFleet, target_ip: str) -> dict[str, bool]:
    return {c: answered(f, c, f"http://{target_ip}:8080") == 1 for c in ("c1", "c2", "c3")}


def remove(f: TestFleet, *names: str) -> None:
    for n in names:
        f.run("kubectl", "c1", "delete", "cnp", n, "-n", "demo", check=False)


def remotes_ready(f: TestFleet, member: str) -> int:
    """Remote clusters the member's agent reports ready; 0 while the agent is down (the CLI says so)."""
    p = f.run("cilium", member, "status", "-o", "json", check=False)
    return int(json.loads(p.stdout)["clustermesh"]["ready"]) if p.returncode == 0 else 0


def drops(f: TestFleet, member: str) -> int:
    counters = f.json("cilium", member, "status")["features"]["Datapath"]["counters"]
    return sum(v for k, v in counters.items() if k.startswith("DROP_POLICY"))


def test_allow_only_from_one_cluster(mesh: TestFleet) -> None:
    ip = echo_ip(mesh, "c1")
    assert reach(mesh, ip) == {"c1": True, "c2": True, "c3": True}  # default allow
    before = drops(mesh, "c1")
    mesh.apply("c1", ONLY_C2)
    try:
        wait_for(lambda: reach(mesh, ip) == {"c1": False, "c2": True, "c3": False}, timeout=10, what="only c2")
        assert drops(mesh, "c1") > before  # drops are counted by reason
        pod = next(n for n in running(mesh, "c1") if n.startswith("echo-"))
        out = mesh.json(
            "cilium",
            "c1",
            "policy",
            "trace",
            "--src",
            "c3/demo/client",
            "--dst",
            f"c1/demo/{pod}",
            "--dport",
            "8080/TCP",
        )
        assert out["allowed"] is False and "default deny" in out["decidedBy"]
        out = mesh.json(
            "cilium",
            "c1",
            "policy",
            "trace",
            "--src",
            "c2/demo/client",
            "--dst",
            f"c1/demo/{pod}",
            "--dport",
            "8080/TCP",
        )
        assert out["allowed"] is True and "allow-only-from-c2" in out["decidedBy"]
        # what-if: a candidate deny, not applied, decides the trace but not the traffic
        cand = mesh.home / "cand.yaml"
        cand.write_text(DENY_C2)
        out = mesh.json(
            "cilium",
            "c1",
            "policy",
            "trace",
            "--src",
            "c2/demo/client",
            "--dst",
            f"c1/demo/{pod}",
            "--dport",
            "8080/TCP",
            "-f",
            str(cand),
        )
        assert out["allowed"] is False and "deny-c2" in out["decidedBy"]
        assert reach(mesh, ip)["c2"] is True
        # through the global service: c3's requests reach c2 and c3 backends only, c1's refuse it
        counts = mesh.probe("c3", "client", "http://echo.demo:80", count=40, namespace="demo")
        assert "c1" not in counts["byCluster"]
    finally:
        remove(mesh, "allow-only-from-c2")
    wait_for(lambda: all(reach(mesh, ip).values()), timeout=10, what="default allow again")


def test_deny_beats_allow(mesh: TestFleet) -> None:
    ip = echo_ip(mesh, "c1")
    mesh.apply("c1", ALLOW_ANY_CLUSTER)
    mesh.apply("c1", DENY_C2)
    try:
        wait_for(lambda: reach(mesh, ip) == {"c1": True, "c2": False, "c3": True}, timeout=10, what="deny c2")
    finally:
        remove(mesh, "allow-mesh", "deny-c2")
    wait_for(lambda: all(reach(mesh, ip).values()), timeout=10, what="default allow again")


def test_egress_policy_and_entity_cluster(mesh: TestFleet) -> None:
    local_ip, remote_ip = echo_ip(mesh, "c1"), echo_ip(mesh, "c2")
    mesh.apply("c1", CLIENT_EGRESS_LOCAL)
    try:
        wait_for(lambda: answered(mesh, "c1", f"http://{remote_ip}:8080") == 0, timeout=10, what="egress fenced")
        assert answered(mesh, "c1", f"http://{local_ip}:8080") == 1  # entity cluster = the local cluster
        assert answered(mesh, "c2", f"http://{remote_ip}:8080") == 1  # policies are per cluster
    finally:
        remove(mesh, "client-egress")


def test_policy_applied_while_a_connection_is_open(mesh: TestFleet) -> None:
    ip = echo_ip(mesh, "c1")
    netns = mesh.pod_netns("c3", "client", "demo")
    conn = netlink.call_in_netns(netns, lambda: socket.create_connection((ip, 8080), timeout=2))
    try:

        def ask() -> bool:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: e\r\n\r\n")
            data = conn.recv(65536)
            return data.startswith(b"HTTP/1.1 200")

        assert ask()
        mesh.apply("c1", ONLY_C2)
        wait_for(lambda: not reach(mesh, ip)["c3"], timeout=10, what="new connections from c3 dropped")
        # as in Cilium, a connection established before the policy is tracked and keeps working
        assert ask()
    finally:
        conn.close()
        remove(mesh, "allow-only-from-c2")


def test_agent_restart_keeps_enforcing(mesh: TestFleet) -> None:
    ip = echo_ip(mesh, "c1")
    mesh.apply("c1", ONLY_C2)
    try:
        wait_for(lambda: reach(mesh, ip) == {"c1": False, "c2": True, "c3": False}, timeout=10, what="policy on")
        state = json.loads((mesh.home / "state.json").read_text())
        agent = procs.ProcRecord.from_dict(state["processes"]["agent:c1"])
        os.kill(agent.pid, signal.SIGKILL)
        assert procs.wait_until_dead(agent, 5)
        assert reach(mesh, ip) == {"c1": False, "c2": True, "c3": False}  # no agent, same verdicts
        wait_for(
            lambda: remotes_ready(mesh, "c1") == 2,
            timeout=30,
            what="agent back and reconnected",
        )
        assert reach(mesh, ip) == {"c1": False, "c2": True, "c3": False}
    finally:
        remove(mesh, "allow-only-from-c2")


def test_bad_policy_refused(mesh: TestFleet) -> None:
    bad = cnp(
        "bad",
        "  endpointSelector: {matchLabels: {app: echo}}\n  ingress:\n  - fromEndpoints:\n"
        "    - matchExpressions: [{key: app, operator: Maybe}]\n",
    )
    p = mesh.run("kubectl", "c1", "apply", "-f", "-", input=bad, check=False)
    assert p.returncode != 0 and "operator" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert mesh.json("kubectl", "c1", "get", "cnp", "-n", "demo")["items"] == []


def test_default_local_cluster_is_switchable_per_network(mesh: TestFleet) -> None:
    ip = echo_ip(mesh, "c1")
    mesh.apply("c1", FROM_CLIENTS)
    try:
        # Cilium >= 1.19: a selector without a cluster label matches the local cluster only
        wait_for(lambda: reach(mesh, ip) == {"c1": True, "c2": False, "c3": False}, timeout=10, what="local only")
        mesh.run("clustermeshprofile", "create", "blue", "--member-selector", "network=blue", "--policy-any-cluster")
        mesh.json("clustermeshprofile", "apply", "blue")
        wait_for(lambda: all(reach(mesh, ip).values()), timeout=10, what="clients of every cluster")
    finally:
        mesh.run(
            "clustermeshprofile",
            "create",
            "blue",
            "--member-selector",
            "network=blue",
            "--policy-default-local-cluster",
        )
        mesh.json("clustermeshprofile", "apply", "blue")
        remove(mesh, "from-clients")


def test_leaving_member_identities_are_drained(mesh: TestFleet) -> None:
    mesh.apply("c1", ONLY_C2)
    try:
        mesh.run("member", "update", "c2", "--labels", "network=none")
        mesh.json("clustermeshprofile", "apply", "blue")
        wait_for(
            lambda: {i["cluster"] for i in mesh.json("cilium", "c1", "identity", "list")} == {"c1", "c3"},
            timeout=10,
            what="c2's identities drained",
        )
        entries = [e for ep in mesh.json("cilium", "c1", "policy", "get")["endpoints"] for e in ep["entries"]]
        assert not any("identity 13107" in e for e in entries)  # no entry for c2's identities (131072+)
    finally:
        remove(mesh, "allow-only-from-c2")
