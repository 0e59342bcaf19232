"""The edges: the REST API (OpenAPI, TCP port), kubectl's refusals of bad manifests."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from tests.support.fleet import TestFleet
from tests.support.wait import wait_for

pytestmark = pytest.mark.root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_api_over_tcp_and_openapi(fleet: TestFleet) -> None:
    port = free_port()
    fleet.run("up", "--clusters", "1", "--port", str(port))
    spec = httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5).json()
    assert "/clusterMeshProfiles/{name}/apply" in spec["paths"]
    assert "/members" in spec["paths"]
    members = httpx.get(f"http://127.0.0.1:{port}/members", timeout=5).json()
    assert [m["name"] for m in members] == ["c1"]
    r = httpx.put(f"http://127.0.0.1:{port}/clusterMeshProfiles/blue", json={"memberSelector": {"byLabel": "a!=b"}})
    assert r.status_code == 400 and "key=value" in r.json()["error"]["message"]
    r = httpx.get(f"http://127.0.0.1:{port}/members/nope", timeout=5)
    assert r.status_code == 404 and r.json()["error"]["code"] == "NotFound"


# refused with kubectl's own words; none of them writes anything
BAD = [
    ("kind: Gadget\napiVersion: v1\nmetadata: {name: g}\n", 'no matches for kind "Gadget" in version "v1"'),
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: a\n", "error converting YAML to JSON"),
    # refused by the server under fieldValidation=Strict, kubectl's default
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containerz: []\n", 'unknown field "spec.containerz"'),
]


def test_kubectl_refuses_bad_manifests_and_applies_nothing(fleet: TestFleet) -> None:
    fleet.up(1)
    for manifest, needle in BAD:
        p = fleet.run("kubectl", "c1", "apply", "-f", "-", input=manifest, check=False)
        assert p.returncode != 0
        assert needle in p.stderr, p.stderr
        assert fleet.pods("c1") == []
    # an image the local cluster cannot run is accepted, as kube does, and the pod says why it waits
    bad_image = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers: [{name: c, image: example.com/app:1}]\n"
    )
    fleet.apply("c1", bad_image)

    def waiting_reason() -> str | None:
        statuses = fleet.json("kubectl", "c1", "get", "pod", "a")["status"].get("containerStatuses") or []
        return next((s["state"]["waiting"]["reason"] for s in statuses if "waiting" in s.get("state", {})), None)

    wait_for(lambda: waiting_reason() in ("ErrImagePull", "ImagePullBackOff"), timeout=30, what="ErrImagePull")
    fleet.run("kubectl", "c1", "delete", "pod", "a", "--wait=false")
    # a plain ClusterIP service works in a cluster that is in no network, by every name form
    fleet.apply("c1", (Path(__file__).parents[2] / "examples" / "echo-global.yaml").read_text())
    wait_for(lambda: len(fleet.pods("c1", "demo")) == 3, timeout=30, what="the demo's pods")
    # Ready, not only Running: an echo server counts as a backend once it listens, as on kube
    fleet.run("kubectl", "c1", "wait", "-n", "demo", "--for=condition=Ready", "pod", "--all", "--timeout=60s")
    for url in ("http://echo.demo.svc.cluster.local", "http://echo.demo", "http://echo"):
        out = fleet.probe("c1", "client", url, count=10, namespace="demo")
        assert out["byCluster"] == {"c1": 10}, (url, out)
    pods = {a["pod"] for a in fleet.probe("c1", "client", "http://echo", count=30, namespace="demo")["answers"]}
    assert len(pods) == 2  # both replicas take requests
    # a service range that is full refuses the Service that would get no ClusterIP, and only that one
    fleet.run("member", "create", "tiny", "--local", "--service-cidr", "172.17.0.0/29")
    svcs = "\n---\n".join(
        f"apiVersion: v1\nkind: Service\nmetadata: {{name: s{i}}}\nspec: {{selector: {{a: b}}, ports: [{{port: 80}}]}}"
        for i in range(8)
    )
    p = fleet.run("kubectl", "tiny", "apply", "-f", "-", input=svcs, check=False)
    assert p.returncode != 0 and "failed to allocate a serviceIP: range is full" in p.stderr, p.stderr
    names = [s["metadata"]["name"] for s in fleet.json("kubectl", "tiny", "get", "svc")["items"]]
    assert "s7" not in names and names
    for s in fleet.json("kubectl", "tiny", "get", "svc")["items"]:
        assert s["spec"]["clusterIP"].startswith("172.17.0.")


def test_apply_keeps_annotations_set_by_annotate(fleet: TestFleet) -> None:
    """kubectl's client-side apply: what `annotate` added survives a re-apply; what the last apply set
    and the new manifest drops goes."""
    fleet.up(1)
    manifest = (Path(__file__).parents[2] / "examples" / "echo-global.yaml").read_text()
    fleet.apply("c1", manifest)
    fleet.run("kubectl", "c1", "annotate", "service", "echo", "-n", "demo", "service.cilium.io/shared=false")
    fleet.apply("c1", manifest)
    ann = fleet.json("kubectl", "c1", "get", "svc", "echo", "-n", "demo")["metadata"]["annotations"]
    assert ann["service.cilium.io/shared"] == "false" and ann["service.cilium.io/global"] == "true"
    fleet.apply("c1", manifest.replace('service.cilium.io/global: "true"', 'example.com/x: "y"'))
    ann = fleet.json("kubectl", "c1", "get", "svc", "echo", "-n", "demo")["metadata"]["annotations"]
    assert "service.cilium.io/global" not in ann and ann["service.cilium.io/shared"] == "false"
    assert ann["example.com/x"] == "y"
