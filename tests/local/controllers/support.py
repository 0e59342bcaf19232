"""Objects and commands the controller tests share."""

from __future__ import annotations

import subprocess
from typing import Any

from fleetnet.kube.client import KubeClient
from fleetnet.kube.resources import REGISTRY, Resource
from tests.support.apiserver import KUBECTL, TestApiServer


def res(kind: str) -> Resource:
    r = REGISTRY.by_kind(kind)
    assert r is not None
    return r


def make_node(client: KubeClient, name: str, ready: bool = True, **spec: Any) -> dict[str, Any]:
    client.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {}}, "spec": spec})
    return set_node_ready(client, name, ready)


def set_node_ready(client: KubeClient, name: str, ready: bool) -> dict[str, Any]:
    node = client.get(res("Node"), name)
    node["status"] = {
        "conditions": [
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "reason": "KubeletReady" if ready else "KubeletNotReady",
                "lastHeartbeatTime": "2025-01-01T00:00:00Z",
                "lastTransitionTime": "2025-01-01T00:00:00Z",
            }
        ]
    }
    return client.replace(node, subresource="status")


def deployment(name: str, ns: str, replicas: int = 3, **spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": "echo", "image": "fleetnet/echo", "ports": [{"name": "http", "containerPort": 8080}]}
                    ]
                },
            },
            **spec,
        },
    }


def kubectl(api: TestApiServer, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    cache = api.root / "kubectl-cache"
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(api.kubeconfig), "--cache-dir", str(cache), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def edit(client: KubeClient, resource: Resource, name: str, ns: str | None, change: Any) -> dict[str, Any]:
    """Read, change, write back; again on a conflict (the controllers write too)."""
    from fleetnet.kube.status import ApiError

    for _ in range(20):
        obj = client.get(resource, name, ns)
        change(obj)
        try:
            return client.replace(obj)
        except ApiError as e:
            if e.code != 409:
                raise
    raise AssertionError(f"{name} kept changing under the test")
