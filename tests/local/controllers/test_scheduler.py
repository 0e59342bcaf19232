"""The scheduler binds pods to Ready, schedulable nodes that match them, fewest pods first; a pod
with nowhere to go stays Pending with kube's Unschedulable condition until a node can take it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fleetnet.kube.client import KubeClient
from fleetnet.local.controllers import ControllerManager
from tests.local.controllers.support import edit, make_node, res, set_node_ready
from tests.support.wait import wait_for

POD, NODE, EV = res("Pod"), res("Node"), res("Event")


@pytest.fixture(scope="module", autouse=True)
def running(manager: ControllerManager) -> Iterator[None]:
    yield


def pod(ns: str, name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"containers": [{"name": "c", "image": "fleetnet/client"}], **spec},
    }


def bound(client: KubeClient, ns: str, name: str) -> str | None:
    return client.get(POD, name, ns)["spec"].get("nodeName")


def scheduled_condition(client: KubeClient, ns: str, name: str) -> dict[str, Any] | None:
    st = client.get(POD, name, ns).get("status") or {}
    return next((c for c in st.get("conditions", []) if c["type"] == "PodScheduled"), None)


def test_no_ready_node_leaves_the_pod_pending_then_a_ready_node_takes_it(client: KubeClient, ns: str) -> None:
    client.create(pod(ns, "p"))
    cond = wait_for(lambda: scheduled_condition(client, ns, "p"), what="PodScheduled")
    assert {k: v for k, v in cond.items() if k != "lastTransitionTime"} == {
        "type": "PodScheduled",
        "status": "False",
        "lastProbeTime": None,
        "reason": "Unschedulable",
        "message": "no nodes available to schedule pods",
    }
    assert client.get(POD, "p", ns)["status"]["phase"] == "Pending"
    make_node(client, "sick", ready=False)

    def message() -> str:
        return (scheduled_condition(client, ns, "p") or {}).get("message", "")

    wait_for(lambda: message().startswith("0/1"), what="the not-ready node counted")
    assert message() == (
        "0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }. "
        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    )
    assert bound(client, ns, "p") is None
    failed = wait_for(
        lambda: [e for e in client.list(EV, ns)[0] if e["reason"] == "FailedScheduling"], what="FailedScheduling"
    )
    assert failed[0]["type"] == "Warning"
    set_node_ready(client, "sick", True)
    assert wait_for(lambda: bound(client, ns, "p"), what="bound") == "sick"
    wait_for(lambda: (scheduled_condition(client, ns, "p") or {}).get("status") == "True", what="scheduled")
    events = wait_for(lambda: [e for e in client.list(EV, ns)[0] if e["reason"] == "Scheduled"], what="event")
    assert events[0]["message"] == f"Successfully assigned {ns}/p to sick"
    client.delete(NODE, "sick")


def test_selectors_taints_and_unschedulable_nodes_are_respected(client: KubeClient, ns: str) -> None:
    make_node(client, "n-plain")
    make_node(client, "n-gpu")
    edit(client, NODE, "n-gpu", None, lambda n: n["metadata"].update(labels={"gpu": "yes"}))
    make_node(client, "n-cordoned", unschedulable=True)
    make_node(client, "n-tainted", taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}])
    client.create(pod(ns, "wants-gpu", nodeSelector={"gpu": "yes"}))
    assert wait_for(lambda: bound(client, ns, "wants-gpu"), what="gpu pod bound") == "n-gpu"
    tolerant = pod(ns, "db", tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db"}])
    tolerant["spec"]["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n-tainted"]}]}
                ]
            }
        }
    }
    client.create(tolerant)
    assert wait_for(lambda: bound(client, ns, "db"), what="db pod bound") == "n-tainted"
    client.create(pod(ns, "nowhere", nodeSelector={"gpu": "no"}))
    wait_for(lambda: scheduled_condition(client, ns, "nowhere"), what="unschedulable")
    assert scheduled_condition(client, ns, "nowhere")["message"] == (  # type: ignore[index]
        "0/4 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, "
        "1 node(s) were unschedulable, 2 node(s) didn't match Pod's node affinity/selector. "
        "preemption: 0/4 nodes are available: 4 Preemption is not helpful for scheduling."
    )


def test_pods_go_to_the_node_with_fewest_pods(client: KubeClient, ns: str) -> None:
    for i in range(6):
        client.create(pod(ns, f"spread-{i}"))
    placed = [wait_for(lambda i=i: bound(client, ns, f"spread-{i}"), what=f"spread-{i}") for i in range(6)]
    counts = {n: placed.count(n) for n in set(placed)}
    # n-plain and n-gpu take them (the cordoned and tainted nodes do not), balanced by count
    assert set(counts) == {"n-plain", "n-gpu"}
    load = {n: 0 for n in counts}
    for p in client.list(POD)[0]:
        if p["spec"].get("nodeName") in load:
            load[p["spec"]["nodeName"]] += 1
    assert abs(load["n-plain"] - load["n-gpu"]) <= 1


def test_pods_for_another_scheduler_are_left_alone(client: KubeClient, ns: str) -> None:
    client.create(pod(ns, "other", schedulerName="my-scheduler"))
    client.create(pod(ns, "mine"))
    wait_for(lambda: bound(client, ns, "mine"), what="mine bound")
    assert bound(client, ns, "other") is None and scheduled_condition(client, ns, "other") is None
