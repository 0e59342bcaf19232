"""Where the scheduler puts a pod, and what it says when it cannot."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from fleetnet.plan.controllers.scheduling import fit_failure, place, tolerates, wants_scheduling
from tests.plan.controllers.builders import pod


def node(name: str, ready: str | None = "True", labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    status = {"conditions": [{"type": "Ready", "status": ready}]} if ready else {}
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec, "status": status}


def unbound(**spec: Any) -> dict[str, Any]:
    p = pod("p", node="", phase="Pending", ready=False)
    p["spec"].update(spec)
    return p


def test_fewest_pods_first_ties_by_name() -> None:
    nodes = [node("b"), node("a"), node("c")]
    assert place(unbound(), nodes, {}).node == "a"
    assert place(unbound(), nodes, {"a": 2, "b": 1, "c": 1}).node == "b"


def test_not_ready_and_unreachable_nodes_carry_kubes_taints() -> None:
    assert (
        fit_failure(unbound(), node("n", "False")) == "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
    )
    assert fit_failure(unbound(), node("n", None)) == "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
    assert fit_failure(unbound(), node("n", "Unknown")) == (
        "node(s) had untolerated taint {node.kubernetes.io/unreachable: }"
    )
    tolerant = unbound(tolerations=[{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}])
    assert fit_failure(tolerant, node("n", "False")) is None


def test_the_unschedulable_message_is_kubes() -> None:
    nodes = [node("a", "False"), node("b", unschedulable=True), node("c", labels={"disk": "hdd"})]
    placement = place(unbound(nodeSelector={"disk": "ssd"}), nodes, {})
    assert placement.node is None
    assert placement.message == (
        "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, 1 node(s) were unschedulable. "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    )
    assert place(unbound(), [], {}).message == "no nodes available to schedule pods"


def test_required_node_affinity() -> None:
    def affinity(*exprs: dict[str, Any]) -> dict[str, Any]:
        terms = [{"matchExpressions": list(exprs)}]
        return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}

    big = node("big", labels={"cores": "16", "zone": "a"})
    small = node("small", labels={"cores": "2"})
    p = unbound(affinity=affinity({"key": "cores", "operator": "Gt", "values": ["4"]}))
    assert place(p, [small, big], {}).node == "big"
    p = unbound(affinity=affinity({"key": "zone", "operator": "DoesNotExist"}))
    assert place(p, [small, big], {}).node == "small"
    p = unbound(affinity=affinity({"key": "zone", "operator": "NotIn", "values": ["a"]}))
    assert place(p, [big], {}).node is None


def test_toleration_matching() -> None:
    taint = {"key": "k", "value": "v", "effect": "NoSchedule"}
    assert tolerates([{"key": "k", "operator": "Equal", "value": "v"}], taint)
    assert tolerates([{"operator": "Exists"}], taint)
    assert tolerates([{"key": "k", "operator": "Exists", "effect": "NoSchedule"}], taint)
    assert not tolerates([{"key": "k", "value": "w"}], taint)
    assert not tolerates([{"key": "k", "operator": "Exists", "effect": "NoExecute"}], taint)
    prefer = node("n", taints=[{"key": "soft", "effect": "PreferNoSchedule"}])
    assert fit_failure(unbound(), prefer) is None


def test_who_needs_scheduling() -> None:
    assert wants_scheduling(unbound())
    assert not wants_scheduling(pod("bound"))
    assert not wants_scheduling(unbound(schedulerName="other"))
    assert not wants_scheduling(pod("done", node="", phase="Succeeded"))


@given(st.lists(st.integers(0, 5), min_size=1, max_size=6))
def test_placement_always_picks_a_least_loaded_fitting_node(loads: list[int]) -> None:
    nodes = [node(f"n{i}") for i in range(len(loads))]
    load = {f"n{i}": x for i, x in enumerate(loads)}
    chosen = place(unbound(), nodes, load).node
    assert chosen is not None and load[chosen] == min(loads)
