"""EndpointSlices and the pod-template-hash over the typed values."""

from __future__ import annotations

import re

from fleetnet.model.kube import (
    Container,
    ContainerPort,
    Endpoint,
    EndpointPort,
    ObjectMeta,
    Pod,
    PodSpec,
    PodStatus,
    PodTemplate,
    Service,
    ServicePort,
)
from fleetnet.plan.endpoints import SAFE_ALPHABET, endpoint_slices, pod_template_hash
from fleetnet.plan.services import cluster_service

SAFE = f"[{SAFE_ALPHABET}]"


def pod(
    name: str,
    ip: str | None,
    *,
    ready: bool = True,
    labels: dict[str, str] | None = None,
    ports: tuple[ContainerPort, ...] = (ContainerPort(8080, "TCP", "http"),),
    namespace: str = "demo",
    node: str = "n1",
) -> Pod:
    return Pod(
        ObjectMeta(name, namespace, labels=labels if labels is not None else {"app": "echo"}),
        PodSpec((Container("echo", "fleetnet/echo", ports=ports),), node_name=node),
        PodStatus("Running", pod_ip=ip, ready=ready),
    )


def service(
    ports: tuple[ServicePort, ...] = (ServicePort("http", 80, "http"),),
    selector: dict[str, str] | None = None,
    cluster_ip: str = "10.96.0.10",
) -> Service:
    return Service(
        ObjectMeta("echo", "demo", labels={"team": "a"}),
        selector={"app": "echo"} if selector is None else selector,
        ports=ports,
        cluster_ip=cluster_ip,
    )


# -------------------------------------------------------------------------- EndpointSlices


def test_slices_hold_ready_matching_pods_with_resolved_target_ports() -> None:
    pods = [
        pod("b", "10.244.1.2", node="n2"),
        pod("a", "10.244.1.1"),
        pod("not-ready", "10.244.1.3", ready=False),
        pod("no-ip", None),
        pod("other-app", "10.244.1.4", labels={"app": "other"}),
        pod("other-ns", "10.244.1.5", namespace="elsewhere"),
    ]
    (eps,) = endpoint_slices(service(), pods)
    assert eps.ports == (EndpointPort("http", 8080, "TCP"),)
    assert eps.endpoints == (
        Endpoint(("10.244.1.1",), node_name="n1", target_pod="a"),
        Endpoint(("10.244.1.2",), node_name="n2", target_pod="b"),
    )
    assert eps.meta.namespace == "demo" and eps.service_name == "echo"
    assert eps.meta.labels == {
        "team": "a",
        "kubernetes.io/service-name": "echo",
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
    }
    assert re.fullmatch(f"echo-{SAFE}{{5}}", eps.meta.name)
    assert endpoint_slices(service(), list(reversed(pods))) == [eps]  # stable names and order


def test_numeric_target_ports_and_pods_missing_a_named_port() -> None:
    ports = (ServicePort("http", 80, "http"), ServicePort("raw", 9000, 9001), ServicePort("dns", 53, "dns", "UDP"))
    pods = [
        pod("a", "10.244.1.1", ports=(ContainerPort(8080, "TCP", "http"), ContainerPort(5353, "UDP", "dns"))),
        # "dns" is a TCP port here, so the UDP service port does not resolve on this pod
        pod("b", "10.244.1.2", ports=(ContainerPort(8081, "TCP", "http"), ContainerPort(53, "TCP", "dns"))),
    ]
    slices = endpoint_slices(service(ports), pods)
    assert len(slices) == 2 and len({s.meta.name for s in slices}) == 2
    by_pod = {s.endpoints[0].target_pod: s.ports for s in slices}
    assert set(by_pod["a"]) == {EndpointPort("http", 8080), EndpointPort("raw", 9001), EndpointPort("dns", 5353, "UDP")}
    assert set(by_pod["b"]) == {EndpointPort("http", 8081), EndpointPort("raw", 9001)}


def test_service_without_selector_gets_no_slices_and_no_match_gets_an_empty_one() -> None:
    assert endpoint_slices(service(selector={}), [pod("a", "10.244.1.1")]) == []
    (empty,) = endpoint_slices(service(), [pod("a", "10.244.1.1", ready=False)])
    assert empty.endpoints == () and empty.ports == () and empty.to_dict()["ports"] is None


def test_large_services_are_split_into_slices_of_100() -> None:
    pods = [pod(f"p{i:03}", f"10.244.{i // 200}.{i % 200 + 1}") for i in range(250)]
    slices = endpoint_slices(service(), pods)
    assert [len(s.endpoints) for s in slices] == [100, 100, 50]
    assert len({s.meta.name for s in slices}) == 3


def test_headless_service_slices_carry_the_headless_label() -> None:
    (eps,) = endpoint_slices(service(cluster_ip="None"), [pod("a", "10.244.1.1")])
    assert eps.meta.labels["service.kubernetes.io/headless"] == ""


def test_slices_feed_the_exported_cluster_service() -> None:
    svc = service((ServicePort("http", 80, "http"),))
    cs = cluster_service("c1", 1, svc, endpoint_slices(svc, [pod("a", "10.244.1.1"), pod("b", "10.244.1.2")]))
    assert {ip: dict(p) for ip, p in cs.backends.items()} == {
        "10.244.1.1": {"http": cs.backends["10.244.1.1"]["http"]},
        "10.244.1.2": {"http": cs.backends["10.244.1.2"]["http"]},
    }
    assert cs.backends["10.244.1.1"]["http"].port == 8080


def test_long_service_names_are_truncated_like_generate_name() -> None:
    long = "s" + "x" * 62
    svc = Service(
        ObjectMeta(long, "demo"), selector={"app": "echo"}, ports=(ServicePort("", 80, 80),), cluster_ip="10.96.0.1"
    )
    (eps,) = endpoint_slices(svc, [])
    assert len(eps.meta.name) == 63 and eps.meta.name.startswith(long[:58])


def test_pod_template_hash_is_safe_stable_and_follows_the_template() -> None:
    def template(args: tuple[str, ...] = ()) -> PodTemplate:
        return PodTemplate(labels={"app": "echo"}, spec=PodSpec((Container("echo", "fleetnet/echo", args=args),)))

    h = pod_template_hash(template())
    assert re.fullmatch(f"{SAFE}{{1,10}}", h)
    assert pod_template_hash(template()) == h
    assert pod_template_hash(template(("--v2",))) != h
