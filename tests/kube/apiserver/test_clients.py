"""The unmodified Kubernetes clients against a local cluster's API server: the official `kubernetes`
client and `lightkube` list and watch pods, and a watch resumed from its last resourceVersion after
the server was killed with SIGKILL and restarted misses no event and repeats none."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleetnet.kube.client import KubeClient
from fleetnet.kube.resources import REGISTRY
from tests.support.apiserver import TestApiServer, running_apiserver

PODS = REGISTRY.by_kind("Pod")
assert PODS is not None


def pod(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": labels or {"app": "w"}},
        "spec": {"containers": [{"name": "c", "image": "fleetnet/echo"}]},
    }


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestApiServer]:
    with running_apiserver(tmp_path) as a:
        yield a


def k8s_api(api: TestApiServer) -> Any:
    from kubernetes import client, config

    return client.CoreV1Api(config.new_client_from_config(str(api.kubeconfig)))


def test_official_client_lists_creates_and_watches(api: TestApiServer) -> None:
    from kubernetes import client, watch

    core = k8s_api(api)
    core.create_namespaced_pod("default", pod("p1"))
    listed = core.list_namespaced_pod("default", label_selector="app=w")
    assert [p.metadata.name for p in listed.items] == ["p1"]
    assert listed.metadata.resource_version
    with pytest.raises(client.exceptions.ApiException) as e:
        core.read_namespaced_pod("nope", "default")
    assert e.value.status == 404 and '"message":"pods \\"nope\\" not found"' in e.value.body
    seen: list[tuple[str, str]] = []
    w = watch.Watch()

    def follow() -> None:
        for ev in w.stream(
            core.list_namespaced_pod, "default", resource_version=listed.metadata.resource_version, timeout_seconds=20
        ):
            seen.append((ev["type"], ev["object"].metadata.name))
            if len(seen) == 2:
                w.stop()

    t = threading.Thread(target=follow)
    t.start()
    core.create_namespaced_pod("default", pod("p2"))
    core.delete_namespaced_pod("p2", "default")
    t.join(30)
    assert seen == [("ADDED", "p2"), ("DELETED", "p2")]


def test_lightkube_lists_and_watches(api: TestApiServer) -> None:
    from lightkube import Client, KubeConfig
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import Pod

    lk = Client(KubeConfig.from_file(str(api.kubeconfig)), field_manager="test")
    lk.create(Pod.from_dict(pod("lk1")))
    names = [p.metadata.name for p in lk.list(Pod, namespace="default")]
    assert names == ["lk1"]
    got = lk.get(Pod, "lk1", namespace="default")
    assert got.metadata.uid and got.metadata.creationTimestamp is not None
    events: list[tuple[str, str]] = []

    def follow() -> None:
        for op, obj in lk.watch(Pod, namespace="default", resource_version=got.metadata.resourceVersion):
            events.append((op, obj.metadata.name))
            if len(events) == 2:
                return

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    lk.create(Pod(metadata=ObjectMeta(name="lk2", namespace="default"), spec=Pod.from_dict(pod("x")).spec))
    lk.delete(Pod, "lk2", namespace="default")
    t.join(30)
    assert events == [("ADDED", "lk2"), ("DELETED", "lk2")]


def test_watch_resumes_after_sigkill_without_gaps_or_repeats(api: TestApiServer) -> None:
    c = KubeClient.from_kubeconfig(api.kubeconfig)
    _, rv = c.list(PODS, "default")
    for i in range(5):
        c.create(pod(f"a{i}"))
    seen: list[tuple[str, str, str]] = []
    last = rv
    for typ, obj in c.watch(PODS, "default", resource_version=rv, timeout_seconds=2):
        seen.append((typ, obj["metadata"]["name"], obj["metadata"]["resourceVersion"]))
        last = obj["metadata"]["resourceVersion"]
        if len(seen) == 5:
            break
    api.kill()
    api.start()
    c2 = KubeClient.from_kubeconfig(api.kubeconfig)
    for i in range(5, 8):
        c2.create(pod(f"a{i}"))
    c2.delete(PODS, "a0", "default")
    for typ, obj in c2.watch(PODS, "default", resource_version=last, timeout_seconds=2):
        seen.append((typ, obj["metadata"]["name"], obj["metadata"]["resourceVersion"]))
        if len(seen) == 9:
            break
    names = [(t, n) for t, n, _ in seen]
    assert names == [("ADDED", f"a{i}") for i in range(8)] + [("DELETED", "a0")]
    rvs = [int(r) for _, _, r in seen]
    assert rvs == sorted(rvs) and len(set(rvs)) == len(rvs)


def test_a_watch_older_than_the_compacted_window_gets_410_expired(tmp_path: Path) -> None:
    from fleetnet.kube.status import ApiError

    with running_apiserver(tmp_path, extra={"compactWindow": 10}) as api:
        c = KubeClient.from_kubeconfig(api.kubeconfig)
        _, rv = c.list(PODS, "default")
        for i in range(25):
            c.create(pod(f"w{i}"))
        with pytest.raises(ApiError) as e:
            list(c.watch(PODS, "default", resource_version=rv, timeout_seconds=1))
        assert e.value.code == 410 and e.value.reason == "Expired"
        assert e.value.message.startswith(f"too old resource version: {rv} (")
        # what is still in the window resumes
        _, now = c.list(PODS, "default")
        c.create(pod("late"))
        events = c.watch(PODS, "default", resource_version=now, timeout_seconds=2)
        assert next(iter(events))[1]["metadata"]["name"] == "late"
