"""The EndpointSlices of a Service as kube's EndpointSlice controller writes them."""

from __future__ import annotations

from typing import Any

from fleetnet.plan.controllers.endpointslices import desired_slices, find_port, managed_by_us
from tests.plan.controllers.builders import pod


def service(selector: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid", "labels": {"team": "a"}},
        "spec": {
            "selector": {"app": "web"} if selector is None else selector,
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
            **spec,
        },
    }


def eps(slices: list[dict[str, Any]]) -> list[tuple[str, bool, bool, bool]]:
    return sorted(
        (e["targetRef"]["name"], e["conditions"]["ready"], e["conditions"]["serving"], e["conditions"]["terminating"])
        for s in slices
        for e in s["endpoints"]
    )


def test_conditions_of_ready_not_ready_and_terminating_pods() -> None:
    pods = [
        pod("ready", ip="10.0.0.1"),
        pod("unready", ip="10.0.0.2", ready=False),
        pod("going", ip="10.0.0.3", deleting=True),
        pod("done", ip="10.0.0.4", phase="Succeeded"),
        pod("no-ip", ip=None),
        pod("other", ip="10.0.0.5", labels={"app": "db"}),
    ]
    (s,) = desired_slices(service(), pods)
    assert eps([s]) == [
        ("going", False, True, True),
        ("ready", True, True, False),
        ("unready", False, False, False),
    ]
    (published,) = desired_slices(service(publishNotReadyAddresses=True), pods)
    assert all(e[1] for e in eps([published]))
    e = next(e for e in s["endpoints"] if e["targetRef"]["name"] == "ready")
    assert e == {
        "addresses": ["10.0.0.1"],
        "conditions": {"ready": True, "serving": True, "terminating": False},
        "nodeName": "n1",
        "targetRef": {"kind": "Pod", "namespace": "ns", "name": "ready", "uid": "ready-uid"},
    }


def test_metadata_labels_and_owner() -> None:
    (s,) = desired_slices(service(clusterIP="None"), [pod("a")])
    md = s["metadata"]
    assert md["name"].startswith("web-") and len(md["name"]) == 9
    assert md["labels"] == {
        "team": "a",
        "service.kubernetes.io/headless": "",
        "kubernetes.io/service-name": "web",
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
    }
    assert md["ownerReferences"] == [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "name": "web",
            "uid": "svc-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert managed_by_us(s, "web") and not managed_by_us(s, "other")
    assert desired_slices(service(), [pod("a")]) == desired_slices(service(), [pod("a")])  # stable names


def test_ports_by_name_group_pods_and_a_missing_name_leaves_the_port_out() -> None:
    a = pod("a", ip="10.0.0.1")
    b = pod("b", ip="10.0.0.2")
    b["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": 9090}]
    c = pod("c", ip="10.0.0.3")
    c["spec"]["containers"][0]["ports"] = []
    slices = desired_slices(service(), [a, b, c])
    by_port = {
        tuple(p["port"] for p in (s["ports"] or [])): [e["targetRef"]["name"] for e in s["endpoints"]] for s in slices
    }
    assert by_port == {(8080,): ["a"], (9090,): ["b"], (): ["c"]}
    assert find_port(a, {"port": 80, "targetPort": 7000}) == 7000
    assert find_port(a, {"port": 80}) == 80
    assert find_port(a, {"port": 80, "targetPort": "http", "protocol": "UDP"}) is None


def test_no_selector_or_external_name_gets_nothing_and_no_match_one_empty_slice() -> None:
    assert desired_slices(service(selector={}), [pod("a")]) == []
    assert desired_slices(service(type="ExternalName", externalName="x.example"), [pod("a")]) == []
    (empty,) = desired_slices(service(), [])
    assert empty["endpoints"] == [] and empty["ports"] is None and empty["addressType"] == "IPv4"


def test_at_most_one_hundred_endpoints_to_a_slice() -> None:
    pods = [pod(f"p{i:03}", ip=f"10.0.{i // 200}.{i % 200 + 1}") for i in range(250)]
    slices = desired_slices(service(), pods)
    assert sorted(len(s["endpoints"]) for s in slices) == [50, 100, 100]
    assert len({s["metadata"]["name"] for s in slices}) == 3


def test_ipv6_slices_for_an_ipv6_service() -> None:
    (s,) = desired_slices(service(ipFamilies=["IPv6"]), [pod("a", ip="fd00::5"), pod("b", ip="10.0.0.1")])
    assert s["addressType"] == "IPv6"
    assert [e["addresses"] for e in s["endpoints"]] == [["fd00::5"]]
