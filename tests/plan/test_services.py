"""Global services: Cilium's annotations, export rule, the §5.2 matrix and the affinity rules."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetnet.model.cilium import ClusterService, L4Addr
from fleetnet.model.kube import Endpoint, EndpointPort, EndpointSlice, Namespace, ObjectMeta, Service, ServicePort
from fleetnet.plan.services import (
    Affinity,
    Backend,
    BackendChoice,
    BackendState,
    affinity,
    affinity_problem,
    cluster_service,
    is_global,
    is_global_namespace,
    is_shared,
    local_backends_from_slices,
    remote_backends,
    select_backends,
    should_export,
)

GLOBAL = "service.cilium.io/global"
SHARED = "service.cilium.io/shared"
AFFINITY = "service.cilium.io/affinity"


def svc(
    annotations: Mapping[str, str] | None = None,
    *,
    ports: tuple[ServicePort, ...] | None = None,
    cluster_ip: str | None = "10.96.0.10",
    name: str = "echo",
    namespace: str = "demo",
) -> Service:
    return Service(
        ObjectMeta(name, namespace, annotations=annotations or {}),
        selector={"app": "echo"},
        ports=ports if ports is not None else (ServicePort("http", 80, 8080),),
        cluster_ip=cluster_ip,
    )


def ns(annotations: Mapping[str, str] | None = None, name: str = "demo") -> Namespace:
    return Namespace(ObjectMeta(name, annotations=annotations or {}))


def remote(
    cluster: str,
    cluster_id: int,
    backends: Mapping[str, Mapping[str, L4Addr]],
    frontends: Mapping[str, Mapping[str, L4Addr]] | None = None,
    name: str = "echo",
) -> ClusterService:
    return ClusterService(
        cluster=cluster,
        namespace="demo",
        name=name,
        frontends=frontends or {},
        backends=backends,
        include_external=True,
        shared=True,
        cluster_id=cluster_id,
    )


HTTP = {"http": L4Addr("TCP", 8080)}


# -------------------------------------------------------------------------- annotations (§5.1)


@pytest.mark.parametrize(
    ("annotations", "glob", "shared"),
    [
        ({}, False, False),
        ({GLOBAL: "true"}, True, True),
        ({GLOBAL: "True"}, True, True),
        ({GLOBAL: "TRUE", SHARED: "TRUE"}, True, True),
        ({GLOBAL: "false"}, False, False),
        ({GLOBAL: ""}, False, False),
        ({GLOBAL: "yes"}, False, False),
        ({GLOBAL: "true", SHARED: "false"}, True, False),
        ({GLOBAL: "true", SHARED: "no"}, True, False),
        ({SHARED: "true"}, False, False),  # shared means nothing without global
        ({"io.cilium/global-service": "true"}, True, True),
        ({"io.cilium/global-service": "true", "io.cilium/shared-service": "false"}, True, False),
        # the current name wins over the legacy alias
        ({GLOBAL: "false", "io.cilium/global-service": "true"}, False, False),
        ({GLOBAL: "true", SHARED: "true", "io.cilium/shared-service": "false"}, True, True),
    ],
)
def test_global_and_shared(annotations: dict[str, str], glob: bool, shared: bool) -> None:
    assert is_global(svc(annotations)) is glob
    assert is_shared(svc(annotations)) is shared


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({GLOBAL: "true", AFFINITY: "local"}, Affinity.LOCAL),
        ({GLOBAL: "true", AFFINITY: "Remote"}, Affinity.REMOTE),
        ({GLOBAL: "true", AFFINITY: "none"}, Affinity.NONE),
        ({GLOBAL: "true", AFFINITY: ""}, Affinity.NONE),
        ({GLOBAL: "true"}, Affinity.NONE),
        ({GLOBAL: "true", AFFINITY: "nearest"}, Affinity.NONE),
        ({GLOBAL: "true", "io.cilium/service-affinity": "local"}, Affinity.LOCAL),
        ({AFFINITY: "remote"}, Affinity.NONE),  # ignored unless global
    ],
)
def test_affinity(annotations: dict[str, str], expected: Affinity) -> None:
    assert affinity(svc(annotations)) is expected


def test_affinity_problem_only_for_unknown_values_of_global_services() -> None:
    assert "'nearest'" in (affinity_problem(svc({GLOBAL: "true", AFFINITY: "nearest"})) or "")
    assert affinity_problem(svc({GLOBAL: "true", AFFINITY: "LOCAL"})) is None
    assert affinity_problem(svc({AFFINITY: "nearest"})) is None


# -------------------------------------------------------------------------- export (§3.3.1, §3.5)


@pytest.mark.parametrize(
    ("ns_annotations", "default_global", "expected"),
    [
        ({}, True, True),
        ({}, False, False),
        ({"clustermesh.cilium.io/global": "true"}, False, True),
        ({"clustermesh.cilium.io/global": "TRUE"}, False, True),
        ({"clustermesh.cilium.io/global": "false"}, True, False),
        ({"clustermesh.cilium.io/global": "yes"}, True, False),
    ],
)
def test_global_namespace(ns_annotations: dict[str, str], default_global: bool, expected: bool) -> None:
    assert is_global_namespace(ns(ns_annotations), default_global) is expected
    assert should_export(svc({GLOBAL: "true"}), ns(ns_annotations), default_global) is expected


def test_should_export_needs_global_shared_and_an_existing_namespace() -> None:
    assert not should_export(svc({GLOBAL: "true", SHARED: "false"}), ns(), True)
    assert not should_export(svc({}), ns(), True)
    assert not should_export(svc({GLOBAL: "true"}), None, True)


def _slice(
    endpoints: tuple[Endpoint, ...],
    ports: tuple[EndpointPort, ...] = (EndpointPort("http", 8080, "TCP"),),
    service: str = "echo",
    name: str = "echo-abcde",
    namespace: str = "demo",
) -> EndpointSlice:
    meta = ObjectMeta(name, namespace, labels={"kubernetes.io/service-name": service})
    return EndpointSlice(meta, endpoints=endpoints, ports=ports)


def test_cluster_service_reference_example() -> None:
    # reference §3.3.1: port 80 named http, targetPort 8080, one ready endpoint
    service = svc({GLOBAL: "true", SHARED: "true"})
    service = Service(
        ObjectMeta("echo-service", "ns-alpha", annotations=service.meta.annotations),
        selector={"app": "echo"},
        ports=(ServicePort("http", 80, 8080),),
        cluster_ip="10.96.0.10",
    )
    eps = _slice((Endpoint(("10.244.1.10",), node_name="worker1"),), service="echo-service", namespace="ns-alpha")
    cs = cluster_service("cluster3", 3, service, [eps])
    assert cs.to_json() == (
        b'{"cluster":"cluster3","namespace":"ns-alpha","name":"echo-service",'
        b'"frontends":{"10.96.0.10":{"http":{"Protocol":"TCP","Port":80}}},'
        b'"backends":{"10.244.1.10":{"http":{"Protocol":"TCP","Port":8080}}},'
        b'"labels":{},"selector":{"app":"echo"},"includeExternal":true,"shared":true,"clusterID":3}'
    )


def test_cluster_service_backends_are_ready_or_serving_endpoints_of_this_service() -> None:
    eps = _slice(
        (
            Endpoint(("10.244.1.1",)),
            Endpoint(("10.244.1.2",), ready=False, serving=True, terminating=True),
            Endpoint(("10.244.1.3",), ready=False, serving=False),
        )
    )
    other = _slice((Endpoint(("10.244.9.9",)),), service="other", name="other-x")
    other_ns = _slice((Endpoint(("10.244.8.8",)),), namespace="elsewhere")
    cs = cluster_service("c1", 1, svc({GLOBAL: "true"}), [eps, other, other_ns])
    assert set(cs.backends) == {"10.244.1.1", "10.244.1.2"}


def test_headless_and_unallocated_services_export_no_frontends() -> None:
    assert cluster_service("c1", 1, svc({GLOBAL: "true"}, cluster_ip="None"), []).frontends == {}
    assert cluster_service("c1", 1, svc({GLOBAL: "true"}, cluster_ip=None), []).frontends == {}


def test_local_backends_from_slices() -> None:
    eps = _slice(
        (
            Endpoint(("10.244.1.1",), node_name="n1"),
            Endpoint(("10.244.1.2",), ready=False, serving=True, terminating=True),
            Endpoint(("10.244.1.3",), ready=False, serving=False),
        ),
        ports=(EndpointPort("http", 8080, "TCP"), EndpointPort("alt", 8080, "TCP"), EndpointPort("dns", 53, "UDP")),
    )
    assert local_backends_from_slices(svc(), [eps]) == [
        Backend("10.244.1.1", 53, "UDP", ("dns",), node_name="n1"),
        Backend("10.244.1.1", 8080, "TCP", ("alt", "http"), node_name="n1"),
        Backend("10.244.1.2", 53, "UDP", ("dns",), BackendState.TERMINATING),
        Backend("10.244.1.2", 8080, "TCP", ("alt", "http"), BackendState.TERMINATING),
    ]


def test_remote_backends_merge_names_sharing_a_port() -> None:
    cs = remote("c2", 2, {"10.1.0.5": {"http": L4Addr("TCP", 8080), "web": L4Addr("TCP", 8080), "": L4Addr("UDP", 1)}})
    assert remote_backends(cs) == [
        Backend("10.1.0.5", 1, "UDP", ()),
        Backend("10.1.0.5", 8080, "TCP", ("http", "web")),
    ]


# -------------------------------------------------------------------------- selection (§5.2)


def _clusters(c1_annotations: dict[str, str], c2_annotations: dict[str, str]) -> tuple[set[str], set[str]]:
    """Two clusters with one backend each; which clusters' backends each one uses."""
    c1_svc, c2_svc = svc(c1_annotations), svc(c2_annotations)
    namespace = ns()
    c1_backend = Backend("10.1.0.1", 8080, port_names=("http",))
    c2_backend = Backend("10.2.0.1", 8080, port_names=("http",))
    exported = {
        1: cluster_service("c1", 1, c1_svc, [_slice((Endpoint(("10.1.0.1",)),))]),
        2: cluster_service("c2", 2, c2_svc, [_slice((Endpoint(("10.2.0.1",)),))]),
    }
    exports = {cid: cs for cid, cs in exported.items() if should_export((c1_svc, c2_svc)[cid - 1], namespace, True)}

    def uses(local: Service, backend: Backend, cluster: str, cluster_id: int) -> set[str]:
        others = {cid: cs for cid, cs in exports.items() if cid != cluster_id}
        (choice,) = select_backends(local, [backend], others, cluster=cluster, cluster_id=cluster_id)
        return {b.cluster for b in choice.backends}

    return uses(c1_svc, c1_backend, "c1", 1), uses(c2_svc, c2_backend, "c2", 2)


T, F = "true", "false"


@pytest.mark.parametrize(
    ("c1", "c2", "c1_uses", "c2_uses"),
    [
        # the docs' flowchart (global-services.rst), reference §5.2
        ({GLOBAL: T, SHARED: T}, {GLOBAL: T, SHARED: T}, {"c1", "c2"}, {"c1", "c2"}),
        ({GLOBAL: T, SHARED: T}, {GLOBAL: T, SHARED: F}, {"c1"}, {"c1", "c2"}),
        ({GLOBAL: T, SHARED: F}, {GLOBAL: T, SHARED: T}, {"c1", "c2"}, {"c2"}),
        ({GLOBAL: T, SHARED: F}, {GLOBAL: T, SHARED: F}, {"c1"}, {"c2"}),
        ({}, {GLOBAL: T}, {"c1"}, {"c2"}),
        ({GLOBAL: T}, {}, {"c1"}, {"c2"}),
        ({}, {}, {"c1"}, {"c2"}),
    ],
)
def test_global_service_matrix(c1: dict[str, str], c2: dict[str, str], c1_uses: set[str], c2_uses: set[str]) -> None:
    assert _clusters(c1, c2) == (c1_uses, c2_uses)


def _select(annotations: dict[str, str], locals_: list[Backend], remotes: Mapping[int, ClusterService]) -> set[str]:
    (choice,) = select_backends(svc(annotations), locals_, remotes, cluster="c1", cluster_id=1)
    return {b.ip for b in choice.backends}


LOCAL_ACTIVE = Backend("10.1.0.1", 8080, port_names=("http",))
LOCAL_TERMINATING = Backend("10.1.0.2", 8080, port_names=("http",), state=BackendState.TERMINATING)
LOCAL_UNHEALTHY = Backend("10.1.0.3", 8080, port_names=("http",), unhealthy=True)
REMOTE = {2: remote("c2", 2, {"10.2.0.1": HTTP})}
REMOTE_NONE = {2: remote("c2", 2, {})}


def test_affinity_local() -> None:
    aff = {GLOBAL: T, AFFINITY: "local"}
    assert _select(aff, [LOCAL_ACTIVE, LOCAL_UNHEALTHY], REMOTE) == {"10.1.0.1", "10.1.0.3"}
    # no active local backend (terminating ones do not count as active): remote ones join
    assert _select(aff, [LOCAL_TERMINATING, LOCAL_UNHEALTHY], REMOTE) == {"10.1.0.2", "10.1.0.3", "10.2.0.1"}
    assert _select(aff, [], REMOTE) == {"10.2.0.1"}
    # ... but only if some remote backend is healthy
    assert _select(aff, [LOCAL_UNHEALTHY], REMOTE_NONE) == {"10.1.0.3"}


def test_affinity_remote() -> None:
    aff = {GLOBAL: T, AFFINITY: "remote"}
    assert _select(aff, [LOCAL_ACTIVE], REMOTE) == {"10.2.0.1"}
    assert _select(aff, [LOCAL_ACTIVE, LOCAL_TERMINATING], REMOTE_NONE) == {"10.1.0.1", "10.1.0.2"}
    # local ones are used only if at least one of them is healthy
    assert _select(aff, [LOCAL_UNHEALTHY], REMOTE_NONE) == set()


def test_affinity_none_and_non_global() -> None:
    assert _select({GLOBAL: T}, [LOCAL_ACTIVE], REMOTE) == {"10.1.0.1", "10.2.0.1"}
    assert _select({GLOBAL: T, AFFINITY: "bogus"}, [LOCAL_ACTIVE], REMOTE) == {"10.1.0.1", "10.2.0.1"}
    assert _select({}, [LOCAL_ACTIVE], REMOTE) == {"10.1.0.1"}
    assert _select({GLOBAL: F, AFFINITY: "remote"}, [LOCAL_ACTIVE], REMOTE) == {"10.1.0.1"}


def test_remote_backends_join_by_port_name_and_keep_their_target_port() -> None:
    two_ports = (ServicePort("http", 80, 8080), ServicePort("metrics", 9090, 9090))
    service = svc({GLOBAL: T}, ports=two_ports)
    other = remote(
        "c2",
        2,
        {"10.2.0.1": {"http": L4Addr("TCP", 18080), "admin": L4Addr("TCP", 9090)}},
        frontends={"10.200.0.7": {"http": L4Addr("TCP", 80)}},
    )
    http, metrics = select_backends(service, [], {2: other}, cluster="c1", cluster_id=1)
    assert http.frontend == "10.96.0.10:80/TCP"
    assert [(b.ip, b.port, b.cluster, b.cluster_id) for b in http.backends] == [("10.2.0.1", 18080, "c2", 2)]
    assert metrics.backends == ()  # "admin" is not "metrics": names must match, not numbers
    # the remote frontend (its ClusterIP) never becomes a backend or a frontend here
    assert all(b.ip != "10.200.0.7" for c in (http, metrics) for b in c.backends)


def test_unnamed_ports_and_protocols() -> None:
    service = svc({GLOBAL: T}, ports=(ServicePort("", 53, 53, "UDP"),))
    other = remote("c2", 2, {"10.2.0.1": {"": L4Addr("UDP", 5353), "x": L4Addr("TCP", 53)}})
    (choice,) = select_backends(service, [], {2: other}, cluster="c1", cluster_id=1)
    assert [(b.port, b.protocol) for b in choice.backends] == [(5353, "UDP")]


def test_only_the_same_service_from_other_clusters_joins() -> None:
    others = {
        2: remote("c2", 2, {"10.2.0.1": HTTP}, name="other"),
        3: remote("c1", 3, {"10.3.0.1": HTTP}),  # claims to be us
        4: ClusterService("c4", "elsewhere", "echo", backends={"10.4.0.1": HTTP}, cluster_id=4),
    }
    assert _select({GLOBAL: T}, [], others) == set()


def test_service_only_in_remote_clusters_programs_nothing() -> None:
    assert select_backends(None, [], REMOTE, cluster="c1", cluster_id=1) == []
    assert select_backends(svc({GLOBAL: T}, cluster_ip="None"), [], REMOTE, cluster="c1", cluster_id=1) == []


def test_selected_backends_carry_cluster_state_and_preference() -> None:
    (choice,) = select_backends(
        svc({GLOBAL: T, AFFINITY: "remote"}),
        [LOCAL_TERMINATING],
        REMOTE_NONE | {3: remote("c3", 3, {})},
        cluster="c1",
        cluster_id=1,
    )
    (b,) = choice.backends
    assert (b.cluster, b.cluster_id, b.local, b.state, b.preferred) == ("c1", 1, True, BackendState.TERMINATING, False)
    (choice,) = select_backends(svc({GLOBAL: T, AFFINITY: "remote"}), [], REMOTE, cluster="c1", cluster_id=1)
    assert [(b.cluster, b.local, b.preferred) for b in choice.backends] == [("c2", False, True)]
    assert choice.affinity is Affinity.REMOTE and choice.global_service


# -------------------------------------------------------------------------- invariants (Hypothesis)

_names = st.sampled_from(["http", "web", "metrics", ""])
_protocols = st.sampled_from(["TCP", "UDP"])
_backends = st.builds(
    Backend,
    ip=st.integers(1, 250).map(lambda i: f"10.1.0.{i}"),
    port=st.integers(1, 3),
    protocol=_protocols,
    port_names=st.lists(_names.filter(bool), max_size=2, unique=True).map(lambda n: tuple(sorted(n))),
    state=st.sampled_from(list(BackendState)),
    unhealthy=st.booleans(),
)
_remote_ports = st.dictionaries(_names, st.builds(L4Addr, _protocols, st.integers(1, 3)), max_size=3)


@st.composite
def _remotes(draw: st.DrawFn) -> dict[int, ClusterService]:
    out = {}
    for cid in draw(st.lists(st.integers(2, 5), unique=True, max_size=3)):
        bes = draw(
            st.dictionaries(st.integers(1, 250).map(lambda i, c=cid: f"10.{c}.0.{i}"), _remote_ports, max_size=3)
        )
        out[cid] = remote(f"c{cid}", cid, bes)
    return out


@given(
    st.sampled_from(["", "local", "remote", "none", "other"]),
    st.booleans(),
    st.lists(_backends, max_size=6, unique_by=lambda b: (b.ip, b.port, b.protocol)),
    _remotes(),
    st.lists(st.tuples(_names, _protocols), min_size=1, max_size=3, unique=True),
)
def test_selection_invariants(
    aff: str, glob: bool, locals_: list[Backend], remotes: dict[int, ClusterService], fe: list[tuple[str, str]]
) -> None:
    ports = tuple(ServicePort(name or "", 80 + i, 8080, proto) for i, (name, proto) in enumerate(fe))
    annotations = {GLOBAL: "true" if glob else "false", AFFINITY: aff}
    service = svc(annotations, ports=ports)
    choices = select_backends(service, locals_, remotes, cluster="c1", cluster_id=1)
    assert [(c.port_name, c.protocol) for c in choices] == [(p.name, p.protocol) for p in ports]
    for choice in choices:

        def fits(names: tuple[str, ...], protocol: str, c: BackendChoice = choice) -> bool:
            return protocol == c.protocol and (not c.port_name or not names or c.port_name in names)

        local = {(b.ip, b.port, b.protocol) for b in locals_ if fits(b.port_names, b.protocol)}
        rem = {
            (ip, l4.port, l4.protocol)
            for cs in remotes.values()
            for ip, pc in cs.backends.items()
            for l4 in pc.values()
            if fits(tuple(sorted({n for n, x in pc.items() if x == l4 and n})), l4.protocol)
        }
        got_local = {(b.ip, b.port, b.protocol) for b in choice.backends if b.local}
        got_remote = {(b.ip, b.port, b.protocol) for b in choice.backends if not b.local}
        assert all(b.cluster == "c1" for b in choice.backends if b.local)
        assert all(b.cluster != "c1" and b.cluster == f"c{b.cluster_id}" for b in choice.backends if not b.local)
        healthy_local = [b for b in locals_ if (b.ip, b.port, b.protocol) in local and b.healthy]
        active_local = [b for b in healthy_local if b.state is BackendState.ACTIVE]
        healthy_remote = bool(rem)  # remote backends are always active and healthy
        mode = affinity(service)
        if not glob:
            assert (got_local, got_remote) == (local, set())
        elif mode is Affinity.NONE:
            assert (got_local, got_remote) == (local, rem)  # the union
        elif mode is Affinity.LOCAL:
            assert got_local == local  # always, even unhealthy ones
            assert got_remote == (rem if not active_local and healthy_remote else set())
        else:
            assert got_remote == rem
            assert got_local == (local if not healthy_remote and healthy_local else set())
        assert all(
            b.preferred == (b.local == (mode is Affinity.LOCAL)) for b in choice.backends if mode is not Affinity.NONE
        )
