"""The local cluster's EndpointSlice and Deployment controllers."""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from fleetnet.model.kube import (
    Container,
    ContainerPort,
    Deployment,
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
from fleetnet.plan.endpoints import SAFE_ALPHABET, deployment_pods, endpoint_slices, pod_template_hash
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


# -------------------------------------------------------------------------- Deployments


def deployment(replicas: int, *, args: tuple[str, ...] = (), name: str = "echo") -> Deployment:
    template = PodTemplate(
        labels={"app": "echo"},
        spec=PodSpec((Container("echo", "fleetnet/echo", args=args, ports=(ContainerPort(8080, "TCP", "http"),)),)),
    )
    return Deployment(ObjectMeta(name, "demo"), replicas, {"app": "echo"}, template)


def apply(existing: list[Pod], create: list[Pod], delete: list[Pod]) -> list[Pod]:
    gone = {p.meta.name for p in delete}
    return [p for p in existing if p.meta.name not in gone] + create


def test_pods_are_named_labelled_and_spread() -> None:
    d = deployment(5)
    create, delete = deployment_pods(d, ["n1", "n2", "n3"], [], random.Random(1))
    h = pod_template_hash(d.template)
    assert delete == [] and len(create) == 5 and 1 <= len(h) <= 10
    for p in create:
        assert re.fullmatch(f"echo-{h}-{SAFE}{{5}}", p.meta.name)
        assert p.meta.labels == {"app": "echo", "pod-template-hash": h} and p.meta.namespace == "demo"
        assert p.status is None and p.spec.containers == d.template.spec.containers
    assert [p.spec.node_name for p in create] == ["n1", "n2", "n3", "n1", "n2"]
    # the same rng gives the same names
    assert deployment_pods(d, ["n1", "n2", "n3"], [], random.Random(1)) == (create, delete)


def test_steady_state_changes_nothing() -> None:
    d = deployment(3)
    create, _ = deployment_pods(d, ["n1", "n2"], [], random.Random(2))
    assert deployment_pods(d, ["n1", "n2"], create, random.Random(3)) == ([], [])


def test_scale_down_deletes_newest_first_from_the_busiest_node() -> None:
    nodes = ["n1", "n2"]
    create, _ = deployment_pods(deployment(3), nodes, [], random.Random(4))  # n1, n2, n1
    create2, _ = deployment_pods(deployment(4), nodes, create, random.Random(5))  # + n2
    pods = create + create2
    _, delete = deployment_pods(deployment(2), nodes, pods, random.Random(6))
    assert [p.meta.name for p in delete] == [pods[3].meta.name, pods[2].meta.name]
    _, delete = deployment_pods(deployment(0), nodes, pods, random.Random(6))
    assert sorted(p.meta.name for p in delete) == sorted(p.meta.name for p in pods)


def test_template_change_replaces_every_pod() -> None:
    old, _ = deployment_pods(deployment(2), ["n1"], [], random.Random(7))
    new_d = deployment(2, args=("--v2",))
    create, delete = deployment_pods(new_d, ["n1"], old, random.Random(8))
    assert delete == old and len(create) == 2
    assert all(p.meta.labels["pod-template-hash"] == pod_template_hash(new_d.template) for p in create)
    assert pod_template_hash(new_d.template) != pod_template_hash(deployment(2).template)


def test_pods_on_removed_nodes_are_replaced() -> None:
    pods, _ = deployment_pods(deployment(4), ["n1", "n2"], [], random.Random(9))
    create, delete = deployment_pods(deployment(4), ["n1", "n3"], pods, random.Random(10))
    assert {p.spec.node_name for p in delete} == {"n2"}
    assert sorted(p.spec.node_name or "" for p in create) == ["n3", "n3"]


def test_other_pods_are_left_alone() -> None:
    mine, _ = deployment_pods(deployment(1), ["n1"], [], random.Random(11))
    theirs, _ = deployment_pods(deployment(1, name="echo-canary"), ["n1"], [], random.Random(12))
    hand_made = pod("echo-by-hand", "10.244.1.9")
    # same labels and selector, but not made by this Deployment
    assert deployment_pods(deployment(1), ["n1"], [*mine, *theirs, hand_made], random.Random(13)) == ([], [])


def test_without_nodes_pods_stay_unscheduled() -> None:
    create, _ = deployment_pods(deployment(2), [], [], random.Random(14))
    assert [p.spec.node_name for p in create] == [None, None]
    replaced, delete = deployment_pods(deployment(2), ["n1"], create, random.Random(15))
    assert delete == create and [p.spec.node_name for p in replaced] == ["n1", "n1"]


def test_names_never_collide() -> None:
    class Stuck(random.Random):
        calls = 0

        def choice(self, seq):  # type: ignore[no-untyped-def,override]
            self.calls += 1
            return seq[0] if self.calls <= 10 else seq[self.calls % len(seq)]

    create, _ = deployment_pods(deployment(2), ["n1"], [], Stuck())
    assert len({p.meta.name for p in create}) == 2


@given(
    st.integers(1, 5).map(lambda n: [f"n{i}" for i in range(n)]),
    st.lists(st.tuples(st.integers(0, 12), st.booleans()), min_size=1, max_size=8),
    st.integers(0, 2**32 - 1),
)
def test_spreading_invariant(nodes: list[str], steps: list[tuple[int, bool]], seed: int) -> None:
    rng = random.Random(seed)
    pods: list[Pod] = []
    version = 0
    for replicas, new_template in steps:
        version += new_template
        d = deployment(replicas, args=(f"v{version}",))
        create, delete = deployment_pods(d, nodes, pods, rng)
        names = {p.meta.name for p in pods}
        assert all(p.meta.name in names for p in delete) and not names & {p.meta.name for p in create}
        pods = apply(pods, create, delete)
        assert len(pods) == replicas and len({p.meta.name for p in pods}) == replicas
        assert {p.meta.labels["pod-template-hash"] for p in pods} <= {pod_template_hash(d.template)}
        counts = Counter(p.spec.node_name for p in pods)
        per_node = [counts[n] for n in nodes]
        assert max(per_node) - min(per_node) <= 1
        assert deployment_pods(d, nodes, pods, rng) == ([], [])


def test_replace_keeps_template_values() -> None:
    d = deployment(1)
    (p,), _ = deployment_pods(d, ["n1"], [], random.Random(16))
    assert replace(p.spec, node_name=None) == d.template.spec
