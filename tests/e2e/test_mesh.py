"""Issue: join clusters into a network; pods reach pods across clusters directly, and only there.

Real namespaces, real etcd with mTLS, real agents and routes, real HTTP between pods.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.manifests import ECHO
from tests.support.fleet import TestFleet
from tests.support.wait import wait_for

pytestmark = pytest.mark.root


def running_pods(fleet: TestFleet, member: str) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p for p in fleet.pods(member) if p.get("status", {}).get("phase") == "Running"}


def echo_pod(pods: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return next(p for n, p in pods.items() if n.startswith("echo-"))


def mesh_state(fleet: TestFleet, member: str) -> str | None:
    m = fleet.json("member", "show", member)
    return (m.get("meshProperties") or {}).get("status", {}).get("state")


def test_join_reach_leave(fleet: TestFleet) -> None:
    fleet.up(3)
    for c in ("c1", "c2"):
        fleet.run("member", "update", c, "--labels", "network=blue")
    fleet.run("clustermeshprofile", "create", "blue", "--member-selector", "network=blue")
    rows = fleet.json("clustermeshprofile", "apply", "blue", "--what-if")
    assert [(r["action"], r["name"]) for r in rows] == [("Add", "c1"), ("Add", "c2")]
    assert fleet.json("clustermeshprofile", "list-members", "blue") == []  # what-if changed nothing
    out = fleet.json("clustermeshprofile", "apply", "blue")
    assert out["profile"]["properties"]["status"]["state"] == "Connected"
    ids = {m["name"]: m["meshProperties"]["ciliumProperties"]["id"] for m in out["members"]}
    assert sorted(ids.values()) == [1, 2]
    for c in ("c1", "c2", "c3"):
        fleet.apply(c, ECHO)
    pods = {
        c: wait_for(
            lambda c=c: (p := running_pods(fleet, c)) and len(p) == 2 and p, timeout=30, what=f"pods of {c} running"
        )
        for c in ("c1", "c2", "c3")
    }
    client_ip = pods["c1"]["client"]["status"]["podIP"]
    c2_echo = echo_pod(pods["c2"])
    c3_echo = echo_pod(pods["c3"])
    answer = fleet.probe("c1", "client", f"http://{c2_echo['status']['podIP']}:8080")
    assert answer["answered"] == 1
    who = answer["answers"][0]
    assert (who["cluster"], who["pod"]) == ("c2", c2_echo["metadata"]["name"])
    assert who["client"] == client_ip  # no NAT, no tunnel: the source pod IP arrives unchanged
    assert fleet.probe("c1", "client", f"http://{c3_echo['status']['podIP']}:8080")["answered"] == 0
    status = fleet.json("cilium", "c1", "clustermesh", "status")
    assert [(c["name"], c["ready"], c["num-nodes"]) for c in status["clusters"]] == [("c2", True, 1)]
    # leave: relabel and apply; c2 is dropped by c1 and can no longer be reached
    fleet.run("member", "update", "c2", "--labels", "network=none")
    rows = fleet.json("clustermeshprofile", "apply", "blue", "--what-if")
    assert [(r["action"], r["name"]) for r in rows] == [("-", "c1"), ("Remove", "c2")]
    fleet.json("clustermeshprofile", "apply", "blue")
    assert fleet.json("member", "show", "c2").get("meshProperties") is None
    assert fleet.json("cilium", "c1", "clustermesh", "status")["clusters"] == []
    assert fleet.probe("c1", "client", f"http://{c2_echo['status']['podIP']}:8080")["answered"] == 0
    # c2's id is free again: c3 joining takes the lowest free id
    fleet.run("member", "update", "c3", "--labels", "network=blue")
    out = fleet.json("clustermeshprofile", "apply", "blue")
    assert {m["name"]: m["meshProperties"]["ciliumProperties"]["id"] for m in out["members"]}["c3"] == 2
    answer = fleet.probe("c1", "client", f"http://{c3_echo['status']['podIP']}:8080")
    assert answer["answered"] == 1 and answer["answers"][0]["cluster"] == "c3"


def test_refusals_and_prerequisites(fleet: TestFleet) -> None:
    fleet.up(2)
    fleet.run("member", "create", "tun", "--local", "--routing-mode", "tunnel", "--labels", "net=x")
    fleet.run("member", "create", "nocil", "--local", "--network-dataplane", "none", "--labels", "net=x")
    fleet.run("member", "create", "dup", "--local", "--pod-cidr", "10.1.0.0/16", "--labels", "net=x")
    fleet.run("member", "create", "far", "--local", "--underlay", "other", "--labels", "net=x")
    fleet.run("member", "create", "old", "--local", "--kubernetes-version", "1.31.8", "--labels", "net=x")
    fleet.run("member", "create", "selfcm", "--local", "--self-managed-clustermesh", "--labels", "net=x")
    for c in ("c1", "c2"):
        fleet.run("member", "update", c, "--labels", "net=x")
    fleet.run("clustermeshprofile", "create", "x", "--member-selector", "net=x")
    p = fleet.run("clustermeshprofile", "apply", "x", "-o", "json", check=False)
    assert p.returncode != 0 and "not every member joined" in p.stderr
    members = {
        m["name"]: m["meshProperties"]["status"] for m in fleet.json("member", "list") if m.get("meshProperties")
    }
    assert members["c1"]["state"] == "Connected" and members["c2"]["state"] == "Connected"
    reasons = {n: (s.get("error") or {}).get("message", "") for n, s in members.items() if s["state"] == "Failed"}
    assert "native routing" in reasons["tun"]
    assert "Cilium dataplane" in reasons["nocil"]
    assert "overlaps" in reasons["dup"]
    assert "flat network" in reasons["far"]
    assert "1.32" in reasons["old"]
    assert "self-managed" in reasons["selfcm"]
    assert fleet.json("clustermeshprofile", "show", "x")["properties"]["status"]["state"] == "Degraded"
    # a member in a network cannot be deleted, nor a network with members, nor join a second network
    p = fleet.run("member", "delete", "c1", check=False)
    assert p.returncode == 1 and "cross-cluster network 'x'" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    p = fleet.run("clustermeshprofile", "delete", "x", "--yes", check=False)
    assert p.returncode == 1 and "still contains members" in p.stderr
    fleet.run("clustermeshprofile", "create", "y", "--member-selector", "net=x")
    rows = fleet.json("clustermeshprofile", "apply", "y", "--what-if")
    assert {r["action"] for r in rows} == {"Error"} and "'x'" in rows[0]["errorMessage"]
    # bad input: one sentence, non-zero, nothing changed
    for args, needle in [
        (("member", "create", "Bad_Name", "--local"), "not a valid Cilium cluster name"),
        (("member", "create", "default", "--local"), "reserved"),
        (("clustermeshprofile", "create", "z", "--member-selector", "a!=b"), "key=value"),
        (("cilium", "c1", "upgrade"), "refused"),
        (("cilium", "c1", "clustermesh", "connect"), "refused"),
    ]:
        p = fleet.run(*args, check=False)
        assert p.returncode != 0 and needle in p.stderr, (args, p.stderr)
    assert "Bad_Name" not in {m["name"] for m in fleet.json("member", "list")}


def test_cli_without_daemon_says_so(tmp_path: Any) -> None:
    f = TestFleet(tmp_path)
    p = f.run("member", "list", check=False)
    assert p.returncode != 0
    assert "no fleetnet daemon is running" in p.stderr and "fleetnet up" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
