"""The what-if predicts apply's refusals: for generated fleets, the members apply fails before it
touches a cluster are exactly the what-if's ``Error`` rows, with the same sentences.

Two levels: the pure decision (``plan_network``: Error rows are the failed and refused members, the
network it leaves is coherent), and the hub's mesh controller against a recording driver (what the
apply records, and what it never asks the driver to do, against what the what-if said before it).
"""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fleetnet.hub.catalog import HubCatalog
from fleetnet.hub.fleet import MEMBER, Fleet
from fleetnet.hub.mesh import MeshController
from fleetnet.model.member import KubeconfigSpec, LocalClusterSpec, Member, MeshProperties
from fleetnet.plan import cidr
from fleetnet.plan.prereq import check_prerequisites
from fleetnet.plan.selector import parse_selector
from fleetnet.plan.whatif import plan_network
from fleetnet.store.sqlite import Store
from tests.hub.test_mesh import FakeDriver
from tests.support.wait import wait_for

PROFILE = "p"
SELECTOR = "net=x"
CATALOG = HubCatalog()
# few enough that overlaps and conflicts are common, varied enough to cover nesting
POD_CIDRS = ["10.1.0.0/16", "10.2.0.0/16", "10.1.128.0/17", "10.0.0.0/8", "10.3.7.0/24", "192.168.0.0/16"]
VERSIONS = ["1.33.6", "1.32.0", "1.35.2", "1.31.8", "1.99.0"]  # the last two: too old, not in the catalog


@dataclass(frozen=True)
class MemberSpec:
    kubeconfig: bool
    pod_cidr: str
    dataplane: str
    routing: str
    underlay: str
    self_managed: bool
    version: str
    selected: bool
    network: str | None  # None, PROFILE or another network
    state: str  # in PROFILE: Connected, or Failed (with or without an id)
    keeps_id: bool


member_specs = st.builds(
    MemberSpec,
    kubeconfig=st.sampled_from([False, False, False, True]),
    pod_cidr=st.sampled_from(POD_CIDRS),
    dataplane=st.sampled_from(["cilium", "cilium", "none"]),
    routing=st.sampled_from(["native", "native", "tunnel"]),
    underlay=st.sampled_from(["default", "default", "other"]),
    self_managed=st.sampled_from([False, False, False, True]),
    version=st.sampled_from(VERSIONS),
    selected=st.booleans(),
    network=st.sampled_from([None, None, PROFILE, "q"]),
    state=st.sampled_from(["Connected", "Failed"]),
    keeps_id=st.booleans(),
)


def build(specs: list[MemberSpec]) -> list[Member]:
    ids = itertools.count(1)
    out = []
    for i, s in enumerate(specs):
        mesh = None
        if s.network == PROFILE:
            cid = next(ids) if s.state == "Connected" or s.keeps_id else 0
            mesh = MeshProperties(PROFILE, cid, f"m{i}", s.state, 0.0, "failed before" if s.state == "Failed" else None)  # type: ignore[arg-type]
        elif s.network is not None:
            mesh = MeshProperties(s.network, 1, f"m{i}", "Connected", 0.0)
        local = (
            None
            if s.kubeconfig
            else LocalClusterSpec(
                index=i + 1,
                pod_cidr=s.pod_cidr,
                service_cidr=cidr.default_service_cidr(i + 1),
                nodes=1,
                underlay=s.underlay,
                network_dataplane=s.dataplane,  # type: ignore[arg-type]
                routing_mode=s.routing,  # type: ignore[arg-type]
                self_managed_clustermesh=s.self_managed,
            )
        )
        out.append(
            Member(
                name=f"m{i}",
                kubernetes_version=s.version,
                cilium_version="1.18.3",
                labels={"net": "x"} if s.selected else {"net": "y"},
                local=local,
                kubeconfig=KubeconfigSpec(f"/nonexistent/m{i}.kubeconfig") if s.kubeconfig else None,
                mesh=mesh,
            )
        )
    return out


fleets = st.lists(member_specs, min_size=1, max_size=8)


# ---------------------------------------------------------------- the pure decision


@given(fleets, st.integers(1, 6))
def test_error_rows_are_the_failed_and_refused_and_the_network_stays_coherent(
    specs: list[MemberSpec], max_members: int
) -> None:
    members = build(specs)
    # a fleet that can exist: the network holds no more ids than it allows
    assume(all(m.mesh.cilium_id <= max_members for m in members if m.mesh is not None and m.mesh.profile == PROFILE))
    by = {m.name: m for m in members}
    plan = plan_network(PROFILE, parse_selector(SELECTOR), members, CATALOG.is_known, max_members=max_members)
    errors = {r.name: r.error for r in plan.rows if r.action == "Error"}
    assert errors == {**plan.refused, **plan.failed}
    assert not set(plan.refused) & set(plan.failed)
    assert {r.name for r in plan.rows if r.action == "Add"} == {n for n in plan.joining if by[n].mesh is None}
    # ids: unique, in range, and a member that had one keeps it
    final = {
        m.name: m.mesh.cilium_id
        for m in members
        if m.mesh is not None and m.mesh.profile == PROFILE and m.name not in plan.leaving and m.mesh.cilium_id
    }
    final.update(plan.joining)
    assert len(set(final.values())) == len(final)
    assert all(1 <= i <= max_members for i in final.values())
    for n, cid in plan.joining.items():
        mesh = by[n].mesh
        if mesh is not None and mesh.profile == PROFILE and mesh.cilium_id:
            assert cid == mesh.cilium_id
    # every member configured into the network meets every prerequisite against all the others
    connected = [
        m
        for m in members
        if m.name in plan.joining
        or (
            m.mesh is not None and m.mesh.profile == PROFILE and m.mesh.state != "Failed" and m.name not in plan.leaving
        )
    ]
    for m in connected:
        if m.name in plan.joining:
            others = [p for p in connected if p.name != m.name]
            assert check_prerequisites(m, others, CATALOG.is_known) is None, m.name


def test_two_newcomers_with_one_pod_cidr_cannot_both_join() -> None:
    a, b = build(
        [MemberSpec(False, "10.9.0.0/16", "cilium", "native", "default", False, "1.33.6", True, None, "", False)] * 2
    )
    rows = plan_network(PROFILE, parse_selector(SELECTOR), [a, b], CATALOG.is_known).rows
    assert [(r.action, r.name) for r in rows] == [("Add", "m0"), ("Error", "m1")]
    assert rows[1].error == (
        "member m1 pod CIDR 10.9.0.0/16 overlaps m0 pod CIDR 10.9.0.0/16; pod CIDRs must be unique across a network."
    )


def test_what_the_hub_observed_keeps_a_member_out() -> None:
    (a,) = build(
        [MemberSpec(False, "10.9.0.0/16", "cilium", "native", "default", False, "1.33.6", True, None, "", False)]
    )
    plan = plan_network(
        PROFILE, parse_selector(SELECTOR), [a], CATALOG.is_known, observed={"m0": "member m0 cannot be reached."}
    )
    assert plan.failed == {"m0": "member m0 cannot be reached."} and not plan.joining


# ---------------------------------------------------------------- apply against the what-if


def run_apply(fleet: Fleet, mesh: MeshController) -> dict[str, Any]:
    op = mesh.start_apply(PROFILE)
    return dict(wait_for(lambda: (o := mesh.get_operation(op["id"]))["status"] != "Running" and o, timeout=20))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets)
def test_apply_fails_before_touching_anything_exactly_what_the_whatif_marks_error(specs: list[MemberSpec]) -> None:
    with tempfile.TemporaryDirectory(prefix="fleetnet-whatif-") as tmp:
        driver = FakeDriver()
        fleet = Fleet(Store(Path(tmp) / "fleet.db"), driver, CATALOG)
        mesh = MeshController(fleet, driver, connect_timeout=10.0)
        try:
            members = build(specs)
            with fleet.store.tx() as t:
                for m in members:
                    t.put(MEMBER, m.name, m.to_dict())
            fleet.create_profile(PROFILE, SELECTOR)
            before = {m.name: m.to_dict() for m in fleet.list_members()}
            rows = mesh.what_if(PROFILE)
            predicted = {r.name: r.error for r in rows if r.action == "Error"}

            op = run_apply(fleet, mesh)

            assert op["status"] == "Succeeded", op
            after = {m.name: m for m in fleet.list_members()}
            # what apply failed: members it recorded Failed in this operation, and members it refused
            # (left exactly as they were, their sentence in the operation's rows)
            failed = {
                n: m.mesh.error
                for n, m in after.items()
                if m.mesh is not None and m.mesh.state == "Failed" and m.mesh.last_operation_id == op["id"]
            }
            refused = {
                r["name"]: r["error"]
                for r in op["rows"]
                if r["error"] is not None and after[r["name"]].to_dict() == before[r["name"]]
            }
            assert {**refused, **failed} == predicted
            assert not set(predicted) & set(driver.joined)  # refused before touching anything
            # and everything the what-if let in got in
            admitted = {r.name for r in rows if r.action in ("Add", "-")}
            joined = {n for n, m in after.items() if m.mesh is not None and m.mesh.profile == PROFILE}
            assert {n for n in joined if after[n].mesh.state == "Connected"} == admitted  # type: ignore[union-attr]
            assert {r.name for r in rows if r.action == "Remove"} <= {n for n, m in after.items() if m.mesh is None}
        finally:
            mesh._pool.shutdown(wait=True)
