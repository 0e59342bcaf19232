"""The rollout arithmetic of kube's deployment util: int-or-percent rounding, fenceposts, the
pod-template-hash, annotations and conditions."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetnet.plan.controllers import rollout as ro
from tests.plan.controllers.builders import deployment, replicaset, template


@pytest.mark.parametrize(
    ("value", "total", "up", "expected"),
    [
        (3, 10, True, 3),
        ("25%", 10, True, 3),
        ("25%", 10, False, 2),
        ("25%", 1, True, 1),
        ("25%", 1, False, 0),
        ("100%", 7, False, 7),
        ("0%", 7, True, 0),
        ("33%", 3, True, 1),
        ("33%", 3, False, 0),
    ],
)
def test_int_or_percent_rounds_surge_up_and_unavailable_down(
    value: int | str, total: int, up: bool, expected: int
) -> None:
    assert ro.scaled_value(value, total, up) == expected


@pytest.mark.parametrize("bad", ["5", "x%", "%", True])
def test_a_string_that_is_no_percentage_is_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        ro.scaled_value(bad, 10, True)  # type: ignore[arg-type]


def test_fenceposts_never_both_zero() -> None:
    assert ro.resolve_fenceposts(0, 0, 5) == (0, 1)
    assert ro.resolve_fenceposts("10%", "10%", 3) == (1, 0)  # surge 0.3 rounds up, unavailable down
    assert ro.resolve_fenceposts("1%", "1%", 3) == (1, 0)
    assert ro.resolve_fenceposts(0, "10%", 5) == (0, 1)  # 0.5 rounds down to 0, then bumped to 1


def test_max_unavailable_is_capped_by_replicas_and_zero_for_recreate() -> None:
    d = deployment(2)
    d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] = 5
    assert ro.max_unavailable(d) == 2
    assert ro.max_unavailable(deployment(0)) == 0
    assert ro.max_surge(deployment(10)) == 3
    assert ro.max_unavailable(deployment(10)) == 2
    recreate = deployment(4, strategy={"type": "Recreate"})
    assert (ro.max_surge(recreate), ro.max_unavailable(recreate)) == (0, 0)
    defaults = deployment(8)
    defaults["spec"]["strategy"] = {"type": "RollingUpdate"}
    assert (ro.max_surge(defaults), ro.max_unavailable(defaults)) == (2, 2)


def test_the_template_hash_is_safe_stable_and_moves_with_collisions() -> None:
    h = ro.template_hash(template())
    assert re.fullmatch(f"[{ro.SAFE_ALPHABET}]{{1,10}}", h)
    assert ro.template_hash(template()) == h
    assert ro.template_hash(template("other")) != h
    assert ro.template_hash(template(), 1) != h != ro.template_hash(template(), 0)
    nulls = template()
    nulls["metadata"]["creationTimestamp"] = None
    nulls["spec"]["volumes"] = []
    assert ro.template_hash(nulls) == h  # null and empty are absent, as kube's semantic equality has it


def test_templates_compare_without_the_hash_label() -> None:
    a = template()
    b = template()
    b["metadata"]["labels"]["pod-template-hash"] = "abc"
    assert ro.equal_ignore_hash(a, b)
    assert not ro.equal_ignore_hash(a, template("other"))


def test_new_replicas_of_a_rolling_update() -> None:
    d = deployment(10)  # surge 3
    new = replicaset("web-new", 0)
    assert ro.new_rs_replicas(d, [new], new) == 10
    old = replicaset("web-old", 10)
    assert ro.new_rs_replicas(d, [old, new], new) == 3
    new3 = replicaset("web-new", 3)
    assert ro.new_rs_replicas(d, [old, new3], new3) == 3  # at replicas + surge already
    assert ro.new_rs_replicas(deployment(10, strategy={"type": "Recreate"}), [old, new], new) == 10


def test_revisions_and_their_history_on_a_rolled_back_replicaset() -> None:
    d = deployment(3)
    d["metadata"]["annotations"] = {
        "kubernetes.io/change-cause": "v2",
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
        "deployment.kubernetes.io/revision": "9",
    }
    rs = replicaset("web-a", 3, revision=2)
    assert ro.set_new_rs_annotations(d, rs, 5, exists=True)
    ann = rs["metadata"]["annotations"]
    assert ann["deployment.kubernetes.io/revision"] == "5"
    assert ann["deployment.kubernetes.io/revision-history"] == "2"
    assert ann["kubernetes.io/change-cause"] == "v2"
    assert "kubectl.kubernetes.io/last-applied-configuration" not in ann
    assert ro.set_new_rs_annotations(d, rs, 7, exists=True)
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "2,5"
    assert not ro.set_new_rs_annotations(d, rs, 7, exists=True)
    fresh = replicaset("web-b", 0)
    del fresh["metadata"]["annotations"]
    ro.set_new_rs_annotations(d, fresh, 1, exists=False)
    assert fresh["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "3"
    assert fresh["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "4"


def test_a_condition_keeps_its_transition_time_while_its_status_stays() -> None:
    status: dict[str, object] = {}
    ro.set_condition(status, ro.new_condition("Progressing", "True", "A", "a", 100))
    ro.set_condition(status, ro.new_condition("Available", "False", "B", "b", 100))
    ro.set_condition(status, ro.new_condition("Progressing", "True", "C", "c", 200))
    conds = status["conditions"]
    assert [c["type"] for c in conds] == ["Available", "Progressing"]  # type: ignore[attr-defined]
    prog = conds[1]  # type: ignore[index]
    assert (prog["reason"], prog["lastTransitionTime"], prog["lastUpdateTime"]) == (
        "C",
        ro.format_time(100),
        ro.format_time(200),
    )
    before = list(conds)  # type: ignore[call-overload]
    ro.set_condition(status, ro.new_condition("Progressing", "True", "C", "again", 300))
    assert status["conditions"] == before  # same status and reason: no change


@given(st.integers(0, 50), st.integers(0, 50), st.integers(0, 100), st.integers(0, 100))
def test_status_counts_come_from_the_replicasets(r1: int, a1: int, r2: int, a2: int) -> None:
    old = replicaset("web-old", r1, available=min(a1, r1))
    new = replicaset("web-new", r2, available=min(a2, r2))
    d = deployment(r2)
    st_ = ro.calculate_status([old, new], new, d, 0)
    assert st_["replicas"] == r1 + r2
    assert st_["updatedReplicas"] == r2
    assert st_["availableReplicas"] == min(a1, r1) + min(a2, r2)
    assert st_["unavailableReplicas"] == max(0, r1 + r2 - st_["availableReplicas"])
    avail = ro.get_condition(st_, "Available")
    assert avail is not None
    assert (avail["status"] == "True") == (st_["availableReplicas"] >= r2 - ro.max_unavailable(d))
    packed = ro.packed(st_)
    assert all(v != 0 for v in packed.values())
