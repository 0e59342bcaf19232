"""What a clustermesh-apiserver exports: global ∧ shared services of global namespaces, identities
and ipcache entries of global namespaces (reference §3.3–3.5), with the per-network opt-in switch."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fleetnet.agent.identity import endpoint_object, identity_object
from fleetnet.apiserver.identities import identities_projection, ipcache_projection
from fleetnet.apiserver.projections import services_projection
from fleetnet.model.cluster import ClusterConfig, MeshConfig, NodeConfig
from fleetnet.plan.labels import pod_security_labels


def config(require_global_namespace: bool) -> ClusterConfig:
    return ClusterConfig(
        name="c3",
        fleet_prefix="fnx",
        pod_cidr="10.3.0.0/16",
        service_cidr="172.16.3.0/24",
        kubernetes_version="1.33.6",
        cilium_version="1.18.3",
        nodes=(NodeConfig("c3-node1", "ns", "100.64.0.4", "10.3.0.0/24"),),
        bpffs="/x",
        cluster_id=3,
        mesh=MeshConfig(profile="blue", require_global_namespace=require_global_namespace),
    )


def namespace(name: str, annotation: str | None) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name}
    if annotation is not None:
        md["annotations"] = {"clustermesh.cilium.io/global": annotation}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": md}


def service(ns: str, name: str, annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations},
        "spec": {
            "selector": {"app": name},
            "clusterIP": "172.16.3.9",
            "clusterIPs": ["172.16.3.9"],
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
        },
    }


def endpoint_slice(ns: str, svc: str, ip: str) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": f"{svc}-x", "namespace": ns, "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }


class Objects:
    """What the exporter reads: lists of objects by kind, as its informers hold them."""

    def __init__(self) -> None:
        self.by_kind: dict[str, list[dict[str, Any]]] = {}

    def apply(self, objs: list[dict[str, Any]]) -> None:
        for o in objs:
            self.by_kind.setdefault(o["kind"], []).append(o)

    def list(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return [
            o for o in self.by_kind.get(kind, []) if namespace is None or o["metadata"].get("namespace") == namespace
        ]


@pytest.fixture
def store() -> Objects:
    objs = Objects()
    objs.apply([namespace("plain", None), namespace("optin", "true"), namespace("optout", "false")])
    for ns in ("plain", "optin", "optout"):
        objs.apply([service(ns, "web", {"service.cilium.io/global": "true"}), endpoint_slice(ns, "web", "10.3.0.5")])
    objs.apply(
        [
            service("plain", "local", {}),
            service("plain", "private", {"service.cilium.io/global": "true", "service.cilium.io/shared": "false"}),
            service("plain", "legacy", {"io.cilium/global-service": "true"}),
        ]
    )
    return objs


def test_services_exported_by_default_everywhere_but_opted_out(store: Objects) -> None:
    keys = set(services_projection(config(False), store))
    assert keys == {
        "cilium/state/services/v1/c3/plain/web",
        "cilium/state/services/v1/c3/optin/web",
        "cilium/state/services/v1/c3/plain/legacy",
    }


def test_services_with_per_namespace_opt_in(store: Objects) -> None:
    out = services_projection(config(True), store)
    assert set(out) == {"cilium/state/services/v1/c3/optin/web"}
    cs = json.loads(out["cilium/state/services/v1/c3/optin/web"])
    assert cs["cluster"] == "c3" and cs["clusterID"] == 3 and cs["shared"] is True
    assert cs["frontends"] == {"172.16.3.9": {"http": {"Protocol": "TCP", "Port": 80}}}
    assert cs["backends"] == {"10.3.0.5": {"http": {"Protocol": "TCP", "Port": 8080}}}


def test_identities_and_ipcache_follow_global_namespaces(store: Objects) -> None:
    for i, ns in enumerate(("optin", "optout"), start=1):
        labels = pod_security_labels({"app": "web"}, ns, "c3")
        identity = (3 << 16) + i
        pod = {
            "metadata": {"name": "web-0", "namespace": ns},
            "status": {"podIP": f"10.3.0.{i}", "hostIP": "100.64.0.4"},
        }
        store.apply([identity_object(identity, labels), endpoint_object(pod, i, identity, labels)])
    ids = identities_projection(config(True), store)
    assert list(ids) == ["cilium/state/identities/v1/id/196609"]
    assert ids["cilium/state/identities/v1/id/196609"].decode().startswith("k8s:app=web;")
    ips = ipcache_projection(config(True), store)
    assert list(ips) == ["cilium/state/ip/v1/default/10.3.0.1"]
    pair = json.loads(ips["cilium/state/ip/v1/default/10.3.0.1"])
    assert (pair["ID"], pair["HostIP"], pair["K8sNamespace"]) == (196609, "100.64.0.4", "optin")
