"""Strategy and run-goal parsing (reference azure-fleet.md §3.2–3.5) and member placement."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetnet.errors import InvalidInput
from fleetnet.plan.updaterun import (
    Amount,
    GateSpec,
    GroupSpec,
    NodeImageSelection,
    StageSpec,
    Strategy,
    UpgradeSpec,
    UpgradeType,
    assign,
    new_run,
    parse_strategy,
    strategy_to_json,
)
from tests.plan.updaterun.sim import member, members_in

FULL_EXAMPLE: dict[str, Any] = {
    "stages": [
        {
            "name": "canary",
            "groups": [{"name": "canary-eu", "beforeGates": [{"type": "Approval", "displayName": "Looks fine?"}]}],
            "afterStageWaitInSeconds": 3600,
            "afterGates": [{"type": "Approval"}],
            "meshHealthCheck": True,
        },
        {
            "name": "rest",
            "maxConcurrency": "25%",
            "maxAllowedFailures": "10%",
            "groups": [
                {"name": "eu", "maxConcurrency": "2", "maxAllowedFailures": "1"},
                {"name": "us", "maxConcurrency": "50%", "afterGates": [{"type": "Approval"}]},
            ],
        },
    ]
}


def refused(data: object, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        parse_strategy(data)


def stage(**extra: Any) -> dict[str, Any]:
    return {"name": "s", "groups": [{"name": "g"}], **extra}


def group(**extra: Any) -> dict[str, Any]:
    return {"stages": [{"name": "s", "groups": [{"name": "g", **extra}]}]}


def test_full_example_parses_with_defaults_left_unset() -> None:
    strat = parse_strategy(FULL_EXAMPLE)
    canary, rest = strat.stages
    assert canary == StageSpec(
        name="canary",
        groups=(GroupSpec("canary-eu", before_gates=(GateSpec(display_name="Looks fine?"),)),),
        after_stage_wait_in_seconds=3600,
        after_gates=(GateSpec(),),
        mesh_health_check=True,
    )
    assert rest.max_concurrency == Amount(25, percent=True)
    assert rest.groups[0].max_allowed_failures == Amount(1)
    assert rest.mesh_health_check is False


def test_strategy_round_trips_through_json_text() -> None:
    strat = parse_strategy(json.dumps(FULL_EXAMPLE))
    assert strategy_to_json(strat) == FULL_EXAMPLE
    assert Strategy.from_json(strat.to_json()) == strat


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ("{not json", "not valid JSON"),
        ([], "must be a JSON object"),
        ({}, "non-empty list"),
        ({"stages": []}, "non-empty list"),
        ({"stages": [stage()], "extra": 1}, "unknown key 'extra'"),
        ({"stages": [stage(wait=1)]}, r"stages\[0\] has unknown key 'wait'"),
        (group(priority=1), r"stages\[0\].groups\[0\] has unknown key 'priority'"),
        ({"stages": [stage(memberSelector={"byLabel": "a=b"})]}, "memberSelector is not supported"),
        (group(memberSelector={"byLabel": "a=b"}), "memberSelector is not supported"),
        ({"stages": [{"name": "s"}]}, r"stages\[0\].groups must list at least one group"),
        ({"stages": [{"name": "s", "groups": []}]}, "at least one group"),
        ({"stages": [{"name": "Bad_Name", "groups": [{"name": "g"}]}]}, r"stages\[0\].name 'Bad_Name'"),
        ({"stages": [{"name": "a" * 51, "groups": [{"name": "g"}]}]}, "1 to 50"),
        ({"stages": [{"groups": [{"name": "g"}]}]}, r"stages\[0\].name None"),
        ({"stages": [{"name": "s", "groups": [{"name": "-g"}]}]}, r"groups\[0\].name"),
        ({"stages": [stage(), stage()]}, "stage name 's' is used twice"),
        ({"stages": [{"name": "s", "groups": [{"name": "g"}, {"name": "g"}]}]}, "twice in that stage"),
        (
            {"stages": [stage(), {"name": "t", "groups": [{"name": "g"}]}]},
            "group 'g' appears in stages 's' and 't'",
        ),
        ({"stages": [{"name": "s", "groups": [{"name": f"g{i}"} for i in range(51)]}]}, "more than 50"),
        ({"stages": [stage(afterStageWaitInSeconds=-1)]}, "afterStageWaitInSeconds"),
        ({"stages": [stage(afterStageWaitInSeconds="60")]}, "afterStageWaitInSeconds"),
        ({"stages": [stage(afterStageWaitInSeconds=True)]}, "afterStageWaitInSeconds"),
        ({"stages": [stage(maxConcurrency="0")]}, r"maxConcurrency '0' is not valid"),
        ({"stages": [stage(maxConcurrency="0%")]}, "maxConcurrency"),
        ({"stages": [stage(maxConcurrency="101%")]}, "maxConcurrency"),
        ({"stages": [stage(maxConcurrency="1.5")]}, "maxConcurrency"),
        ({"stages": [stage(maxConcurrency="51")]}, "above the limit of 50"),
        (group(maxConcurrency="01"), "maxConcurrency"),
        ({"stages": [stage(maxAllowedFailures="-1")]}, "maxAllowedFailures"),
        ({"stages": [stage(maxAllowedFailures="101%")]}, "maxAllowedFailures"),
        ({"stages": [stage(maxAllowedFailures=True)]}, "maxAllowedFailures"),
        (
            {"stages": [{"name": "s", "maxConcurrency": "2", "groups": [{"name": "g", "maxConcurrency": "3"}]}]},
            "above its stage's maxConcurrency 2",
        ),
        (group(beforeGates=[{"type": "ScheduledStart"}]), "only gate type"),
        (group(afterGates={"type": "Approval"}), "must be a list"),
        (group(beforeGates=[{"type": "Approval", "timeout": 5}]), "unknown key 'timeout'"),
        (group(beforeGates=[{"type": "Approval", "displayName": ""}]), "displayName"),
        (group(beforeGates=[{"type": "Approval", "displayName": "x" * 101}]), "displayName"),
        ({"stages": [stage(meshHealthCheck="yes")]}, "meshHealthCheck must be true or false"),
    ],
)
def test_invalid_strategies_are_refused_naming_the_field(data: object, match: str) -> None:
    refused(data, match)


@pytest.mark.parametrize("value", ["1", "50", "1%", "100%", 3])
def test_valid_concurrency_forms(value: object) -> None:
    parse_strategy({"stages": [stage(maxConcurrency=value)]})


@pytest.mark.parametrize("value", ["0", "7", "0%", "100%", 0])
def test_valid_failure_forms(value: object) -> None:
    parse_strategy({"stages": [stage(maxAllowedFailures=value)]})


def test_group_percent_under_a_count_stage_is_allowed() -> None:
    parse_strategy(
        {"stages": [{"name": "s", "maxConcurrency": "1", "groups": [{"name": "g", "maxConcurrency": "100%"}]}]}
    )


@pytest.mark.parametrize(("pct", "n", "expected"), [(25, 5, 2), (25, 7, 2), (25, 19, 5), (0, 9, 0), (100, 3, 3)])
def test_failure_percentages_round_up(pct: int, n: int, expected: int) -> None:
    assert Amount(pct, percent=True).ceil_of(n) == expected


@settings(max_examples=200)
@given(st.integers(1, 100), st.integers(0, 500))
def test_concurrency_percentages_round_down_with_a_minimum_of_one(pct: int, n: int) -> None:
    resolved = Amount(pct, percent=True).floor_of(n)
    assert resolved >= 1
    assert resolved == max(1, pct * n // 100)
    assert Amount(pct).floor_of(n) == pct  # a count is a count


# --- the run goal ---------------------------------------------------------------------------------------------


def test_upgrade_spec_rules() -> None:
    assert UpgradeSpec.parse("Full", "1.33.2").target is not None
    assert UpgradeSpec.parse("Full", "v1.33.2").kubernetes_version == "1.33.2"
    assert UpgradeSpec.parse("ControlPlaneOnly", "1.33.2").type is UpgradeType.CONTROL_PLANE_ONLY
    spec = UpgradeSpec.parse("NodeImageOnly", None, "Consistent")
    assert spec.node_image_selection is NodeImageSelection.CONSISTENT and spec.target is None
    with pytest.raises(InvalidInput, match="needs kubernetesVersion"):
        UpgradeSpec.parse("Full")
    with pytest.raises(InvalidInput, match="needs kubernetesVersion"):
        UpgradeSpec.parse("ControlPlaneOnly", "")
    with pytest.raises(InvalidInput, match="does not take kubernetesVersion"):
        UpgradeSpec.parse("NodeImageOnly", "1.33.2")
    with pytest.raises(InvalidInput, match=r"upgrade\.type 'Everything'"):
        UpgradeSpec.parse("Everything", "1.33.2")
    with pytest.raises(InvalidInput, match="Custom"):
        UpgradeSpec.parse("NodeImageOnly", None, "Custom")
    with pytest.raises(InvalidInput, match=r"major\.minor\.patch"):
        UpgradeSpec.parse("Full", "1.33")


def test_upgrade_spec_json_is_azures_managed_cluster_update() -> None:
    spec = UpgradeSpec.parse("Full", "1.33.2", "Consistent")
    data = {"upgrade": {"type": "Full", "kubernetesVersion": "1.33.2"}, "nodeImageSelection": {"type": "Consistent"}}
    assert spec.to_json() == data
    assert UpgradeSpec.from_json(data) == spec
    assert UpgradeSpec.from_json({"upgrade": {"type": "NodeImageOnly"}}) == UpgradeSpec(UpgradeType.NODE_IMAGE_ONLY)
    with pytest.raises(InvalidInput, match="unknown key"):
        UpgradeSpec.from_json({"upgrade": {"type": "Full", "kubernetesVersion": "1.33.2", "x": 1}})


# --- placing members ----------------------------------------------------------------------------------------


def test_assign_places_members_by_group_in_name_order_and_leaves_others_out() -> None:
    strat = parse_strategy({"stages": [{"name": "s", "groups": [{"name": "b"}, {"name": "a"}]}]})
    ms = [member("z", "a"), member("y", "b"), member("x", "a"), member("w", None), member("v", "other")]
    (planned,) = assign(strat, ms)
    assert [(g.spec.name, [m.name for m in g.members]) for g in planned.groups] == [("b", ["y"]), ("a", ["x", "z"])]


def test_assign_without_strategy_is_one_by_one() -> None:
    (planned,) = assign(None, [member("b", "g1"), member("a", None)])
    assert planned.spec.max_concurrency == Amount(1)
    (group_,) = planned.groups
    assert group_.spec.max_concurrency == Amount(1)
    assert [m.name for m in group_.members] == ["a", "b"]


def test_assign_refusals() -> None:
    strat = parse_strategy({"stages": [{"name": "s", "groups": [{"name": "g", "maxConcurrency": "3"}]}]})
    with pytest.raises(InvalidInput, match="group 'g' of stage 's' has no members"):
        assign(strat, [member("a", "other")])
    with pytest.raises(InvalidInput, match="maxConcurrency 3 but only 2"):
        assign(strat, members_in({"g": 2}))
    with pytest.raises(InvalidInput, match="listed twice"):
        assign(None, [member("a"), member("a")])
    with pytest.raises(InvalidInput, match="no members"):
        assign(None, [])


def test_new_run_snapshots_the_strategy_and_resolves_limits() -> None:
    strat = parse_strategy(FULL_EXAMPLE)
    ms = members_in({"canary-eu": 1, "eu": 5, "us": 4})
    run = new_run("run-1", UpgradeSpec.parse("Full", "1.33.2"), ms, strat, update_strategy_name="safe")
    assert run.strategy == strat and run.update_strategy_name == "safe"
    canary, rest = run.stages
    assert (canary.max_concurrency, canary.max_allowed_failures) == (50, 0)
    assert canary.mesh_health_check is not None and rest.mesh_health_check is None
    assert canary.after_stage_wait_status.wait_duration_in_seconds == 3600
    assert (rest.max_concurrency, rest.max_allowed_failures) == (2, 1)  # 25% of 9 → 2; 10% of 9 → 1
    eu, us = rest.groups
    assert (eu.max_concurrency, eu.max_allowed_failures, us.max_concurrency, us.max_allowed_failures) == (2, 1, 2, 0)
    assert [g.display_name for g in canary.groups[0].before_gates] == ["Looks fine?"]
    with pytest.raises(InvalidInput, match="update run name"):
        new_run("Run_1", UpgradeSpec.parse("Full", "1.33.2"), ms, strat)


def test_stage_concurrency_percent_is_capped_at_fifty() -> None:
    strat = parse_strategy({"stages": [{"name": "s", "maxConcurrency": "100%", "groups": [{"name": "g"}]}]})
    run = new_run("r", UpgradeSpec.parse("Full", "1.33.2"), members_in({"g": 60}), strat)
    assert run.stages[0].max_concurrency == 50
