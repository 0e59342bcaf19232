"""Namespaces: a deleted namespace is emptied of every kind and then removed; every namespace gets
its ``default`` ServiceAccount."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fleetnet.kube.client import KubeClient
from fleetnet.local.controllers import ControllerManager
from tests.local.controllers.kubelet import FakeKubelet
from tests.local.controllers.support import deployment, make_node, res
from tests.support.wait import wait_for

NS, SA, POD, CM = res("Namespace"), res("ServiceAccount"), res("Pod"), res("ConfigMap")


@pytest.fixture(scope="module", autouse=True)
def nodes(client: KubeClient, manager: ControllerManager, kubelet: FakeKubelet) -> Iterator[None]:
    make_node(client, "node-a")
    yield


def test_every_namespace_gets_a_default_service_account(client: KubeClient, ns: str) -> None:
    sa = wait_for(lambda: client.get_or_none(SA, "default", ns), what="default SA")
    assert sa["metadata"]["name"] == "default"
    client.delete(SA, "default", ns)
    again = wait_for(lambda: client.get_or_none(SA, "default", ns), what="default SA made again")
    assert again["metadata"]["uid"] != sa["metadata"]["uid"]
    for system in ("default", "kube-system", "kube-public", "kube-node-lease"):
        wait_for(lambda s=system: client.get_or_none(SA, "default", s), what=f"default SA in {system}")


def test_deleting_a_namespace_empties_it_then_removes_it(client: KubeClient, kubelet: FakeKubelet, ns: str) -> None:
    client.create(deployment("web", ns, replicas=2))
    client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": ns}})
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
    }
    client.create(svc)

    def running() -> bool:
        ps = client.list(POD, ns)[0]
        return len(ps) == 2 and all(p.get("status", {}).get("phase") == "Running" for p in ps)

    wait_for(running, what="pods running (a pod not yet on a node would be deleted at once)")
    kubelet.hold_deletions = True
    client.delete(NS, ns)

    def terminating() -> dict[str, Any] | None:
        n = client.get_or_none(NS, ns)
        conds = {c["type"]: c for c in (n or {}).get("status", {}).get("conditions", [])}
        remaining = conds.get("NamespaceContentRemaining", {})
        return n if remaining.get("status") == "True" and "pods." in remaining.get("message", "") else None

    n = wait_for(terminating, what="terminating with pods remaining")
    assert n["status"]["phase"] == "Terminating"
    assert n["spec"]["finalizers"] == ["kubernetes"]
    conds = {c["type"]: c for c in n["status"]["conditions"]}
    assert list(conds) == [
        "NamespaceDeletionDiscoveryFailure",
        "NamespaceDeletionGroupVersionParsingFailure",
        "NamespaceDeletionContentFailure",
        "NamespaceContentRemaining",
        "NamespaceFinalizersRemaining",
    ]
    assert conds["NamespaceContentRemaining"]["reason"] == "SomeResourcesRemain"
    remaining = conds["NamespaceContentRemaining"]["message"]
    assert remaining == "Some resources are remaining: pods. has 2 resource instances"
    assert (conds["NamespaceDeletionContentFailure"]["status"], conds["NamespaceDeletionContentFailure"]["reason"]) == (
        "False",
        "ContentDeleted",
    )
    assert client.get_or_none(CM, "cfg", ns) is None
    assert client.list(res("Deployment"), ns)[0] == []
    kubelet.hold_deletions = False
    kubelet.poke()
    wait_for(lambda: client.get_or_none(NS, ns) is None, what="namespace gone")
