"""Pre-validation: the catalog's rules and the cross-cluster Cilium skew rule, along the run's order."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fleetnet.errors import InvalidInput
from fleetnet.plan.updaterun import (
    GateApproved,
    MemberInfo,
    MemberStatus,
    Strategy,
    UpdateState,
    UpgradeSpec,
    parse_strategy,
    prevalidate,
    require_valid,
)
from fleetnet.plan.versions import CiliumVersion, load_catalog
from tests.plan.updaterun.sim import Sim

CATALOG = load_catalog()


def full(version: str) -> UpgradeSpec:
    return UpgradeSpec.parse("Full", version)


def m(name: str, group: str | None, k8s: str, network: str | None = "mesh", cilium: str | None = None) -> MemberInfo:
    return MemberInfo(name=name, group=group, kubernetes_version=k8s, cilium_version=cilium, network=network)


def stages(*groups_per_stage: list[str], **stage_extra: Any) -> Strategy:
    return parse_strategy(
        {
            "stages": [
                {"name": f"s{i + 1}", "groups": [{"name": g} for g in groups], **stage_extra}
                for i, groups in enumerate(groups_per_stage)
            ]
        }
    )


def test_a_plain_upgrade_passes() -> None:
    ms = [m("a", "g1", "1.32.3"), m("b", "g2", "1.32.9"), m("c", "g2", "1.33.2")]
    assert prevalidate(full("1.33.2"), stages(["g1"], ["g2"]), ms, CATALOG) == []
    assert prevalidate(full("1.33.2"), None, ms, CATALOG) == []


def test_a_target_outside_the_catalog_is_named_per_member_and_stage() -> None:
    ms = [m("a", "g1", "1.32.3"), m("b", "g2", "1.32.3")]
    problems = prevalidate(full("1.36.0"), stages(["g1"], ["g2"]), ms, CATALOG)
    assert len(problems) == 2
    assert problems[0].startswith("member a in stage s1: Kubernetes 1.36.0 is not in the version catalog")
    assert problems[1].startswith("member b in stage s2:")


def test_downgrades_skipped_minors_and_unknown_current_versions_are_refused() -> None:
    ms = [m("down", "g", "1.34.0"), m("skip", "g", "1.31.8", network=None), m("old", "g", "1.30.4", network=None)]
    problems = prevalidate(full("1.33.2"), stages(["g"]), ms, CATALOG)
    assert any(p.startswith("member down in stage s1:") and "downgrade" in p for p in problems)
    assert any(p.startswith("member skip in stage s1:") and "skips minor 1.32" in p for p in problems)
    assert any(
        p.startswith("member old in stage s1:") and "1.30.4 is not in the version catalog" in p for p in problems
    )


def test_members_already_at_the_target_are_fine() -> None:
    assert prevalidate(full("1.33.2"), None, [m("a", None, "1.33.2")], CATALOG) == []


def test_node_image_runs_change_no_versions() -> None:
    ms = [m("a", None, "1.30.0", cilium=None), m("b", None, "1.35.2")]
    assert prevalidate(UpgradeSpec.parse("NodeImageOnly"), None, ms, CATALOG) == []


def test_structural_faults_raise() -> None:
    with pytest.raises(InvalidInput, match="has no members"):
        prevalidate(full("1.33.2"), stages(["g1"], ["empty"]), [m("a", "g1", "1.32.3")], CATALOG)


# --- the cross-cluster rule ------------------------------------------------------------------------------------


def test_a_peer_left_out_of_the_run_blocks_a_two_minor_cilium_gap() -> None:
    # lagging stays on 1.32 (Cilium 1.17); leader goes 1.34 → 1.35 (Cilium 1.18 → 1.19).
    ms = [m("lagging", None, "1.32.3"), m("leader", "g", "1.34.1")]
    problems = prevalidate(full("1.35.0"), stages(["g"]), ms, CATALOG)
    assert problems == [
        "network mesh, stage s1: member lagging could run Cilium 1.17.1 while member leader runs Cilium 1.19.0, "
        "2 minor versions apart (ClusterMesh peers may differ by at most 1); upgrade lagging first, "
        "in an earlier stage or run."
    ]
    with pytest.raises(InvalidInput, match="network mesh, stage s1: member lagging"):
        require_valid(full("1.35.0"), stages(["g"]), ms, CATALOG)


def test_other_networks_and_unnetworked_members_do_not_count() -> None:
    ms = [m("lagging", None, "1.32.3", network="other"), m("leader", "g", "1.34.1"), m("solo", None, "1.32.0", None)]
    assert prevalidate(full("1.35.0"), stages(["g"]), ms, CATALOG) == []


def test_the_stage_order_decides() -> None:
    # 'custom' runs Kubernetes 1.34 with an older Cilium 1.17 it reports itself; target brings Cilium 1.19.
    ms = [m("custom", "early", "1.34.0", cilium="1.17.9"), m("plain", "late", "1.34.0")]
    # custom first: while it upgrades, plain is on 1.18 (one apart either way); then plain follows.
    assert prevalidate(full("1.35.0"), stages(["early"], ["late"]), ms, CATALOG) == []
    # plain first: plain on 1.19 while custom is still on 1.17.
    problems = prevalidate(full("1.35.0"), stages(["late"], ["early"]), ms, CATALOG)
    assert len(problems) == 1
    assert problems[0].startswith("network mesh, stage s1: member custom could run Cilium 1.17.9 while member plain")
    assert "upgrade custom first" in problems[0]


def test_within_a_stage_any_subset_may_be_upgraded() -> None:
    ms = [m("custom", "g", "1.34.0", cilium="1.17.9"), m("plain", "g", "1.34.0")]
    problems = prevalidate(full("1.35.0"), stages(["g"]), ms, CATALOG)
    assert len(problems) == 1 and "stage s1" in problems[0]


def test_tolerated_failures_may_leave_an_earlier_member_behind() -> None:
    ms = [m("custom", "early", "1.34.0", cilium="1.17.9"), m("plain", "late", "1.34.0")]
    tolerant = parse_strategy(
        {
            "stages": [
                {"name": "s1", "maxAllowedFailures": "1", "groups": [{"name": "early", "maxAllowedFailures": "1"}]},
                {"name": "s2", "groups": [{"name": "late"}]},
            ]
        }
    )
    problems = prevalidate(full("1.35.0"), tolerant, ms, CATALOG)
    assert len(problems) == 1 and problems[0].startswith("network mesh, stage s2:")
    # a group that tolerates a failure inside a fail-fast stage still stops the run: no gap possible
    group_only = parse_strategy(
        {
            "stages": [
                {"name": "s1", "groups": [{"name": "early", "maxAllowedFailures": "1"}]},
                {"name": "s2", "groups": [{"name": "late"}]},
            ]
        }
    )
    assert prevalidate(full("1.35.0"), group_only, ms, CATALOG) == []


def test_a_gap_that_exists_before_the_run_and_that_it_does_not_widen_is_not_refused() -> None:
    ms = [m("old", None, "1.32.3"), m("new", None, "1.35.0"), m("moving", "g", "1.32.3", network=None)]
    assert prevalidate(full("1.33.2"), stages(["g"]), ms, CATALOG) == []


def test_a_networked_member_with_no_known_cilium_is_reported() -> None:
    ms = [m("mystery", None, "1.29.0"), m("a", "g", "1.34.0")]
    problems = prevalidate(full("1.35.0"), stages(["g"]), ms, CATALOG)
    assert len(problems) == 1 and problems[0].startswith("member mystery of network mesh runs Kubernetes 1.29.0")
    ms = [m("mystery", None, "1.29.0", cilium="1.18.2"), m("a", "g", "1.34.0")]
    assert prevalidate(full("1.35.0"), stages(["g"]), ms, CATALOG) == []


def test_each_pair_is_reported_once() -> None:
    ms = [m("lagging", None, "1.32.3"), m("x", "g1", "1.34.1"), m("y", "g2", "1.34.1")]
    problems = prevalidate(full("1.35.0"), stages(["g1"], ["g2"]), ms, CATALOG)
    assert len(problems) == 2
    assert "stage s1: member lagging" in problems[0] and "member x" in problems[0]
    assert "stage s2: member lagging" in problems[1] and "member y" in problems[1]
    with pytest.raises(InvalidInput, match=r"\(1 more problem\(s\) not shown\)"):
        require_valid(full("1.35.0"), stages(["g1"], ["g2"]), ms, CATALOG)


# --- the rule holds along every way the run can go -----------------------------------------------------------

MESH_VERSIONS = [str(e.kubernetes) for e in CATALOG.entries if e.mesh_supported]


@st.composite
def meshed_fleets(draw: st.DrawFn) -> tuple[UpgradeSpec, Strategy, list[MemberInfo]]:
    """Fleets whose members in the run can all reach the target, so only the Cilium rule can refuse."""
    target = draw(st.sampled_from(MESH_VERSIONS[1:]))
    sources = [v for v in MESH_VERSIONS if v == target or CATALOG.can_upgrade(v, target) is None]
    n_stages = draw(st.integers(1, 3))
    groups = [f"g{i}" for i in range(draw(st.integers(n_stages, 4)))]
    layout = [groups[i::n_stages] for i in range(n_stages)]
    members = []
    for i in range(draw(st.integers(len(groups), len(groups) + 4))):
        group = groups[i] if i < len(groups) else draw(st.sampled_from([*groups, None]))
        members.append(
            MemberInfo(
                name=f"m{i}",
                group=group,
                kubernetes_version=draw(st.sampled_from(sources if group else MESH_VERSIONS)),
                cilium_version=draw(st.sampled_from([None, None, None, "1.17.9", "1.18.0"])),
                network=draw(st.sampled_from(["blue", "red", None])),
            )
        )
    return full(target), stages(*layout), members


def _skew(run_members: dict[str, MemberStatus], info: dict[str, MemberInfo], target: str) -> str | None:
    """A gap of more than one Cilium minor in a network that involves an upgraded (or upgrading) member."""
    choices: dict[str, list[tuple[CiliumVersion, bool]]] = {}
    for name, mi in info.items():
        if mi.network is None:
            continue
        before = (
            CiliumVersion.parse(mi.cilium_version) if mi.cilium_version else CATALOG.cilium_for(mi.kubernetes_version)
        )
        after = (CATALOG.cilium_for(target), True)
        state = run_members[name].status.state if name in run_members else UpdateState.NOT_STARTED
        if state is UpdateState.COMPLETED:
            choices[name] = [after]
        elif state is UpdateState.RUNNING:
            choices[name] = [(before, False), after]
        else:
            choices[name] = [(before, False)]
    names = sorted(choices)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if info[a].network != info[b].network:
                continue
            for ca, ua in choices[a]:
                for cb, ub in choices[b]:
                    if (ua or ub) and ca.minors_apart(cb) > 1:
                        return f"{a} on {ca} and {b} on {cb}"
    return None


@settings(max_examples=80, deadline=None)
@given(meshed_fleets(), st.data())
def test_a_run_that_passes_never_splits_a_network(
    fleet: tuple[UpgradeSpec, Strategy, list[MemberInfo]], data: st.DataObject
) -> None:
    spec, strat, members = fleet
    problems = prevalidate(spec, strat, members, CATALOG)
    assume(not problems)
    target = spec.kubernetes_version
    assert target is not None
    info = {m.name: m for m in members}
    sim = Sim(members, strat, spec=spec)
    for _ in range(200):
        current = {m.name: m for _, _, m in sim.run.members()}
        assert _skew(current, info, target) is None
        if sim.state is not UpdateState.RUNNING and sim.state is not UpdateState.PENDING:
            break
        if running := sim.running():
            sim.succeed([data.draw(st.sampled_from(running), label="finishes")])
        elif sim.pending_gates():
            sim.do(GateApproved(sim.pending_gates()[0]))
        else:
            sim.tick(3600)
    assert sim.state in (UpdateState.COMPLETED, UpdateState.SKIPPED)
