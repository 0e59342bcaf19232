"""EndpointSlices follow a Service's pods — ready, not ready, terminating — with target ports
resolved by name, and never touch a slice someone else manages."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from fleetnet.kube.client import KubeClient
from fleetnet.local.controllers import ControllerManager
from tests.local.controllers.kubelet import FakeKubelet
from tests.local.controllers.support import deployment, make_node, res
from tests.support.wait import wait_for

EPS, SVC, POD = res("EndpointSlice"), res("Service"), res("Pod")


@pytest.fixture(scope="module", autouse=True)
def nodes(client: KubeClient, manager: ControllerManager, kubelet: FakeKubelet) -> Iterator[None]:
    make_node(client, "node-a")
    yield


def service(ns: str, name: str = "web", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": {"team": "a"}},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": "http"}], **spec},
    }


def slices(client: KubeClient, ns: str, svc: str = "web") -> list[dict[str, Any]]:
    return client.list(EPS, ns, label_selector=f"kubernetes.io/service-name={svc}")[0]


def endpoints(client: KubeClient, ns: str) -> list[tuple[str, bool, bool, bool]]:
    out = []
    for s in slices(client, ns):
        for e in s.get("endpoints") or []:
            c = e["conditions"]
            out.append((e["targetRef"]["name"], c["ready"], c["serving"], c["terminating"]))
    return sorted(out)


def test_slices_follow_ready_pods_with_ports_by_name(client: KubeClient, kubelet: FakeKubelet, ns: str) -> None:
    svc = client.create(service(ns, selector={"app": "web"}))
    (empty,) = wait_for(lambda: slices(client, ns), what="placeholder slice")
    assert empty["endpoints"] == [] and empty.get("ports") is None
    client.create(deployment("web", ns, replicas=2))
    wait_for(lambda: [e[1] for e in endpoints(client, ns)] == [True, True], what="two ready endpoints")
    (s,) = slices(client, ns)
    assert s["metadata"]["name"].startswith("web-") and len(s["metadata"]["name"]) == len("web-") + 5
    assert s["metadata"]["labels"] == {
        "team": "a",
        "kubernetes.io/service-name": "web",
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
    }
    assert s["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "name": "web",
            "uid": svc["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert s["addressType"] == "IPv4"
    assert s["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    pod_ips = {p["metadata"]["name"]: p["status"]["podIP"] for p in client.list(POD, ns)[0]}
    for e in s["endpoints"]:
        assert e["addresses"] == [pod_ips[e["targetRef"]["name"]]]
        assert e["nodeName"] == "node-a"
        assert e["targetRef"]["kind"] == "Pod" and e["targetRef"]["namespace"] == ns

    kubelet.ready = lambda pod: False
    kubelet.poke()
    wait_for(lambda: [e[1:] for e in endpoints(client, ns)] == [(False, False, False)] * 2, what="not ready")
    kubelet.ready = lambda pod: True
    kubelet.hold_deletions = True
    kubelet.poke()
    wait_for(lambda: [e[1] for e in endpoints(client, ns)] == [True, True], what="ready again")
    victim = sorted(pod_ips)[0]
    client.delete(POD, victim, ns)
    wait_for(lambda: (victim, False, True, True) in endpoints(client, ns), what="terminating endpoint")
    kubelet.hold_deletions = False
    kubelet.poke()

    def replaced() -> bool:
        eps = endpoints(client, ns)
        return victim not in [e[0] for e in eps] and len(eps) == 2

    wait_for(replaced, what="replaced")


def test_a_users_selectorless_slice_and_the_apiservers_are_left_alone(client: KubeClient, ns: str) -> None:
    client.create(service(ns, name="external"))
    mine = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "external-1", "namespace": ns, "labels": {"kubernetes.io/service-name": "external"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["192.0.2.10"], "conditions": {"ready": True}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }
    written = client.create(mine)
    # a Service with a selector in the same namespace is reconciled meanwhile
    client.create(service(ns, selector={"app": "web"}))
    wait_for(lambda: slices(client, ns), what="the selector Service's slice")
    kube = client.get(EPS, "kubernetes", "default")
    assert "endpointslice.kubernetes.io/managed-by" not in kube["metadata"].get("labels", {})
    deadline_rv = client.get(EPS, "external-1", ns)["metadata"]["resourceVersion"]
    assert deadline_rv == written["metadata"]["resourceVersion"]
    assert slices(client, ns, "external")[0]["endpoints"] == mine["endpoints"]


def test_deleting_the_service_deletes_its_slices(client: KubeClient, ns: str) -> None:
    client.create(service(ns, selector={"app": "web"}))
    wait_for(lambda: slices(client, ns), what="slice")
    client.delete(SVC, "web", ns)
    wait_for(lambda: not slices(client, ns), what="slices collected")


def test_a_ready_pod_reaches_its_slice_within_milliseconds(client: KubeClient, kubelet: FakeKubelet, ns: str) -> None:
    client.create(service(ns, selector={"app": "web"}))
    kubelet.ready = lambda pod: False
    client.create(deployment("web", ns, replicas=1))
    wait_for(lambda: len(endpoints(client, ns)) == 1, what="not-ready endpoint")
    t0 = time.monotonic()
    kubelet.ready = lambda pod: True
    kubelet.poke()
    wait_for(lambda: [e[1] for e in endpoints(client, ns)] == [True], interval=0.002, what="ready endpoint")
    assert time.monotonic() - t0 < 1.0
