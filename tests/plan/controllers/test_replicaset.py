"""The ReplicaSet controller's decisions: how many pods, which go first, what the status says."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fleetnet.plan.controllers.replicaset import (
    calculate_status,
    next_available,
    plan_replicaset,
    pod_from_template,
    pods_to_delete,
)
from tests.plan.controllers.builders import T0, pod, replicaset

NOW = T0 + 3600


def names(pods: list[dict[str, object]]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]  # type: ignore[index]


def test_too_few_pods_are_created_and_too_many_deleted() -> None:
    rs = replicaset("web-abc", 3)
    assert plan_replicaset(rs, [pod("a")], [], NOW).create == 2
    many = [pod(n) for n in "abcde"]
    assert len(plan_replicaset(rs, many, many, NOW).delete) == 2
    deleting = replicaset("web-abc", 3)
    deleting["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    assert plan_replicaset(deleting, [], [], NOW).create == 0


def test_the_pod_template_becomes_a_pod_named_by_the_server() -> None:
    rs = replicaset("web-abc", 1)
    rs["spec"]["template"]["metadata"]["annotations"] = {"a": "b"}
    p = pod_from_template(rs)
    assert p["metadata"]["generateName"] == "web-abc-"
    assert "name" not in p["metadata"]
    assert p["metadata"]["labels"] == {"app": "web", "pod-template-hash": "abc"}
    assert p["metadata"]["annotations"] == {"a": "b"}
    assert p["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "web-abc",
            "uid": "web-abc-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert p["spec"] == rs["spec"]["template"]["spec"]


def test_scale_down_takes_unscheduled_then_pending_then_not_ready_then_newest() -> None:
    running = pod("running-old", created=T0)
    newest = pod("running-new", created=T0 + 1000, ready_since=T0 + 1000)
    not_ready = pod("not-ready", ready=False)
    pending = pod("pending", phase="Pending", ready=False)
    unscheduled = pod("unscheduled", node="", phase="Pending", ready=False)
    everyone = [running, newest, not_ready, pending, unscheduled]
    order = names(pods_to_delete(everyone, everyone, 4, NOW))
    assert order == ["unscheduled", "pending", "not-ready", "running-new"]


def test_scale_down_prefers_doubled_up_nodes_and_cheap_pods() -> None:
    a1, a2 = pod("a1", node="n1"), pod("a2", node="n1")
    b1 = pod("b1", node="n2")
    assert names(pods_to_delete([b1, a1, a2], [a1, a2, b1], 1, NOW))[0] in ("a1", "a2")
    cheap = pod("cheap", node="n2", annotations={"controller.kubernetes.io/pod-deletion-cost": "-5"})
    assert names(pods_to_delete([a1, a2, cheap], [a1, a2, cheap], 1, NOW)) == ["cheap"]
    crashy = pod("crashy", node="n3", restarts=7)
    calm = pod("calm", node="n4")
    assert names(pods_to_delete([calm, crashy], [calm, crashy], 1, NOW)) == ["crashy"]


@given(st.lists(st.sampled_from(["Pending", "Running"]), min_size=1, max_size=8), st.integers(0, 8))
def test_deletions_never_take_a_running_pod_before_a_pending_one(phases: list[str], n: int) -> None:
    ps = [pod(f"p{i}", phase=ph, ready=ph == "Running") for i, ph in enumerate(phases)]
    chosen = pods_to_delete(ps, ps, min(n, len(ps)), NOW)
    picked = {p["metadata"]["name"] for p in chosen}
    left = [p for p in ps if p["metadata"]["name"] not in picked]
    if any(p["status"]["phase"] == "Running" for p in chosen):
        assert all(p["status"]["phase"] == "Running" for p in left)


def test_status_counts_active_pods_and_min_ready_seconds() -> None:
    rs = replicaset("web-abc", 3)
    rs["spec"]["minReadySeconds"] = 30
    rs["metadata"]["generation"] = 4
    ps = [
        pod("old", ready_since=NOW - 60, labels={"app": "web", "pod-template-hash": "abc"}),
        pod("fresh", ready_since=NOW - 10, labels={"app": "web", "pod-template-hash": "abc"}),
        pod("unready", ready=False, labels={"app": "web"}),
    ]
    assert calculate_status(rs, ps, NOW) == {
        "replicas": 3,
        "fullyLabeledReplicas": 2,
        "readyReplicas": 2,
        "availableReplicas": 1,
        "observedGeneration": 4,
    }
    wait = next_available(rs, ps, NOW)
    assert wait is not None and 20 < wait < 20.1
    assert calculate_status(rs, [], NOW) == {"replicas": 0, "observedGeneration": 4}


def test_a_create_failure_is_a_replica_failure_condition_until_it_clears() -> None:
    rs = replicaset("web-abc", 3)
    failed = calculate_status(rs, [], NOW, "pods is forbidden: exceeded quota")
    (cond,) = failed["conditions"]
    assert (cond["type"], cond["status"], cond["reason"], cond["message"]) == (
        "ReplicaFailure",
        "True",
        "FailedCreate",
        "pods is forbidden: exceeded quota",
    )
    rs["status"] = failed
    assert "conditions" not in calculate_status(rs, [], NOW)
