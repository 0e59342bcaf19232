"""Issue 17: the what-if shows, before anything changes, the member the apply will then fail, with
the same sentence (two members with one pod CIDR in one network)."""

from __future__ import annotations

import pytest

from tests.support.fleet import TestFleet

pytestmark = pytest.mark.root

OVERLAP = "member x pod CIDR 10.1.0.0/16 overlaps c1 pod CIDR 10.1.0.0/16; pod CIDRs must be unique across a network."


def test_whatif_shows_the_pod_cidr_overlap_apply_then_fails(fleet: TestFleet) -> None:
    fleet.up(1)  # c1 has 10.1.0.0/16
    fleet.run("member", "create", "x", "--local", "--pod-cidr", "10.1.0.0/16", "--labels", "net=o")
    fleet.run("member", "update", "c1", "--labels", "net=o")
    fleet.run("clustermeshprofile", "create", "o", "--member-selector", "net=o")

    rows = fleet.json("clustermeshprofile", "apply", "o", "--what-if")
    assert [(r["action"], r["name"], r["errorMessage"]) for r in rows] == [("Add", "c1", None), ("Error", "x", OVERLAP)]
    table = fleet.run("clustermeshprofile", "apply", "o", "--what-if").stdout
    assert "Error" in table and "overlaps c1 pod CIDR" in table
    assert fleet.json("clustermeshprofile", "list-members", "o") == []  # the what-if changed nothing

    p = fleet.run("clustermeshprofile", "apply", "o", "-o", "json", check=False)
    assert p.returncode != 0 and "not every member joined" in p.stderr
    status = {m["name"]: m["meshProperties"]["status"] for m in fleet.json("member", "list") if m["meshProperties"]}
    assert status["c1"]["state"] == "Connected"
    assert status["x"]["state"] == "Failed" and status["x"]["error"]["message"] == OVERLAP
