"""Global services: what a cluster shares with its mesh, and which backends each frontend uses.

These are Cilium's rules exactly (reference cilium-clustermesh.md §5.1–5.2), because a fleetnet
cluster must behave like a Cilium cluster towards the rest of the mesh and users read Cilium's
docs: the annotations and their legacy aliases (``pkg/annotation``), what the clustermesh-apiserver
exports (``service_sync.go``), and how an agent merges remote backends into a local Service and
applies ``service.cilium.io/affinity`` per frontend (``service_merger.go``, ``selectbackends.go``,
``writer.DefaultSelectBackends``). Everything here is a pure function of values.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from fleetnet.model.cilium import ClusterService, L4Addr
from fleetnet.model.kube import EndpointSlice, Namespace, Service

ANNOTATION_GLOBAL = "service.cilium.io/global"
ANNOTATION_GLOBAL_ALIAS = "io.cilium/global-service"
ANNOTATION_SHARED = "service.cilium.io/shared"
ANNOTATION_SHARED_ALIAS = "io.cilium/shared-service"
ANNOTATION_AFFINITY = "service.cilium.io/affinity"
ANNOTATION_AFFINITY_ALIAS = "io.cilium/service-affinity"
ANNOTATION_GLOBAL_NAMESPACE = "clustermesh.cilium.io/global"


def _annotation(svc: Service, key: str, alias: str) -> str | None:
    # Cilium's annotation.Get: the current name wins over the legacy alias
    annotations = svc.meta.annotations
    if key in annotations:
        return annotations[key]
    return annotations.get(alias)


def is_global(svc: Service) -> bool:
    """``service.cilium.io/global: "true"`` (any case), i.e. Cilium's ``IncludeExternal``."""
    value = _annotation(svc, ANNOTATION_GLOBAL, ANNOTATION_GLOBAL_ALIAS)
    return value is not None and value.lower() == "true"


def is_shared(svc: Service) -> bool:
    """Global, and ``service.cilium.io/shared`` absent or "true" (any case): local backends are exported."""
    if not is_global(svc):
        return False
    value = _annotation(svc, ANNOTATION_SHARED, ANNOTATION_SHARED_ALIAS)
    return value is None or value.lower() == "true"


class Affinity(StrEnum):
    NONE = "none"
    LOCAL = "local"
    REMOTE = "remote"


_AFFINITIES = {"": Affinity.NONE, "none": Affinity.NONE, "local": Affinity.LOCAL, "remote": Affinity.REMOTE}


def affinity(svc: Service) -> Affinity:
    """``service.cilium.io/affinity`` of a global service; ignored (none) unless global, and an
    unrecognised value counts as none (Cilium logs a warning, see ``affinity_problem``)."""
    if not is_global(svc):
        return Affinity.NONE
    value = _annotation(svc, ANNOTATION_AFFINITY, ANNOTATION_AFFINITY_ALIAS)
    return _AFFINITIES.get((value or "").lower(), Affinity.NONE)


def affinity_problem(svc: Service) -> str | None:
    """The warning Cilium logs for an unrecognised affinity value of a global service, or None."""
    if not is_global(svc):
        return None
    value = _annotation(svc, ANNOTATION_AFFINITY, ANNOTATION_AFFINITY_ALIAS)
    if value is None or value.lower() in _AFFINITIES:
        return None
    return (
        f"Service {svc.meta.namespace}/{svc.meta.name} has {ANNOTATION_AFFINITY} {value!r}, which is not "
        "local, remote or none; it is treated as none"
    )


def is_global_namespace(namespace: Namespace | None, default_global_namespace: bool) -> bool:
    """Cilium's ``IsGlobalNamespaceByObject``: the namespace annotation (``"true"``, any case) overrides
    the cluster default; a namespace that does not exist is not global."""
    if namespace is None:
        return False
    value = namespace.meta.annotations.get(ANNOTATION_GLOBAL_NAMESPACE)
    if value is not None:
        return value.lower() == "true"
    return default_global_namespace


def should_export(svc: Service, namespace: Namespace | None, default_global_namespace: bool) -> bool:
    """Whether the clustermesh-apiserver writes ``cilium/state/services/v1/<cluster>/<ns>/<name>``:
    global ∧ shared ∧ the Service's namespace is global. Otherwise the key must be deleted."""
    return is_shared(svc) and is_global_namespace(namespace, default_global_namespace)


def cluster_service(
    cluster: str, cluster_id: int, svc: Service, endpoint_slices: Iterable[EndpointSlice]
) -> ClusterService:
    """The exported form of ``svc`` (``DefaultClusterServiceConverter.Convert``): frontends are the
    ClusterIP with every service port by name (none for a headless Service); backends are the
    addresses of ready or serving endpoints of the Service's EndpointSlices, with the slices' ports,
    which are the target ports. Call it only when ``should_export`` says so."""
    frontends: dict[str, dict[str, L4Addr]] = {}
    if not svc.headless and svc.cluster_ip:
        frontends[svc.cluster_ip] = {p.name: L4Addr(p.protocol, p.port) for p in svc.ports}
    backends: dict[str, dict[str, L4Addr]] = {}
    hostnames: dict[str, str] = {}
    for eps in _slices_of(svc, endpoint_slices):
        ports = {p.name: L4Addr(p.protocol, p.port) for p in eps.ports}
        for ep in eps.endpoints:
            if not (ep.ready or ep.serving):
                continue
            for address in ep.addresses:
                addr = _canonical(address)
                if addr is None:
                    continue
                backends.setdefault(addr, {}).update(ports)
                if ep.hostname:
                    hostnames[addr] = ep.hostname
    return ClusterService(
        cluster=cluster,
        namespace=svc.meta.namespace or "default",
        name=svc.meta.name,
        frontends=frontends,
        backends=backends,
        hostnames=hostnames,
        labels=svc.meta.labels,
        selector=svc.selector,
        include_external=True,
        shared=True,
        cluster_id=cluster_id,
    )


def _slices_of(svc: Service, endpoint_slices: Iterable[EndpointSlice]) -> list[EndpointSlice]:
    ns = svc.meta.namespace or "default"
    return [s for s in endpoint_slices if (s.meta.namespace or "default") == ns and s.service_name == svc.meta.name]


def _canonical(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# backend selection


class BackendState(StrEnum):
    """Cilium's ``loadbalancer.BackendState``."""

    ACTIVE = "active"
    TERMINATING = "terminating"
    QUARANTINED = "quarantined"
    MAINTENANCE = "maintenance"


@dataclass(frozen=True, slots=True)
class Backend:
    """A local backend of a Service: one address and target port, with the service port names that
    map to it (several names can share one target port)."""

    ip: str
    port: int
    protocol: str = "TCP"
    port_names: tuple[str, ...] = ()
    state: BackendState = BackendState.ACTIVE
    unhealthy: bool = False
    node_name: str = ""

    @property
    def healthy(self) -> bool:
        # selectbackends.go: terminating backends count, so that they are not withdrawn
        return self.state in (BackendState.ACTIVE, BackendState.TERMINATING) and not self.unhealthy


def local_backends_from_slices(svc: Service, endpoint_slices: Iterable[EndpointSlice]) -> list[Backend]:
    """A Service's local backends from its EndpointSlices, as Cilium's reflector reads them: ready
    endpoints are active, serving-and-terminating ones terminating, the rest left out."""
    found: dict[tuple[str, str, int], tuple[set[str], BackendState, str]] = {}
    for eps in _slices_of(svc, endpoint_slices):
        for ep in eps.endpoints:
            if ep.ready:
                state = BackendState.ACTIVE
            elif ep.serving and ep.terminating:
                state = BackendState.TERMINATING
            else:
                continue
            for address in ep.addresses:
                addr = _canonical(address)
                if addr is None:
                    continue
                for p in eps.ports:
                    names, _, _ = found.setdefault((addr, p.protocol, p.port), (set(), state, ep.node_name or ""))
                    if p.name:
                        names.add(p.name)
    return [
        Backend(ip, port, proto, tuple(sorted(names)), state, node_name=node)
        for (ip, proto, port), (names, state, node) in sorted(found.items(), key=lambda kv: _addr_sort(kv[0]))
    ]


def remote_backends(cs: ClusterService) -> list[Backend]:
    """The backends an agent derives from a remote ClusterService (``ClusterServiceToBackendParams``):
    one per address and L4 port, carrying every port name that maps to it, all active."""
    found: dict[tuple[str, str, int], set[str]] = {}
    for ip, ports in cs.backends.items():
        addr = _canonical(ip)
        if addr is None:
            continue
        for name, l4 in ports.items():
            names = found.setdefault((addr, l4.protocol, l4.port), set())
            if name:
                names.add(name)
    return [
        Backend(ip, port, proto, tuple(sorted(names)))
        for (ip, proto, port), names in sorted(found.items(), key=lambda kv: _addr_sort(kv[0]))
    ]


def _addr_sort(k: tuple[str, str, int]) -> tuple[int, int, int, str]:
    # (ip, protocol, port) keys, listed by address, then port, then protocol
    addr = ipaddress.ip_address(k[0])
    return (addr.version, int(addr), k[2], k[1])


@dataclass(frozen=True, slots=True)
class SelectedBackend:
    """A backend a frontend balances to, with the cluster it lives in. ``preferred`` marks the side
    the affinity favours (what ``cilium service list`` shows as ``(preferred)``)."""

    ip: str
    port: int
    protocol: str
    port_names: tuple[str, ...]
    cluster: str
    cluster_id: int
    state: BackendState
    unhealthy: bool
    local: bool
    preferred: bool


@dataclass(frozen=True, slots=True)
class BackendChoice:
    """One frontend (ClusterIP, port, protocol) of a local Service and the backends it uses."""

    namespace: str
    name: str
    frontend_ip: str
    port: int
    protocol: str
    port_name: str
    global_service: bool
    affinity: Affinity
    backends: tuple[SelectedBackend, ...]

    @property
    def frontend(self) -> str:
        return f"{self.frontend_ip}:{self.port}/{self.protocol}"


def _matches_frontend(be: Backend, port_name: str, protocol: str, ipv6: bool) -> bool:
    # writer.DefaultSelectBackends: same protocol and family; a named frontend takes only backends
    # carrying that name, unless the backend has no names at all
    if be.protocol != protocol or (":" in be.ip) != ipv6:
        return False
    return not (port_name and be.port_names and port_name not in be.port_names)


def select_backends(
    local_svc: Service | None,
    local_backends: Sequence[Backend],
    remote: Mapping[int, ClusterService],
    *,
    cluster: str,
    cluster_id: int,
) -> list[BackendChoice]:
    """The backends of every frontend of ``local_svc`` in cluster ``cluster``/``cluster_id``.

    ``remote`` holds the ClusterServices read from the other clusters of the mesh, by cluster id;
    only those with the local Service's namespace and name take part, matched by port name, and
    their frontends are ignored (ClusterIPs are per cluster). Per frontend: a non-global Service
    uses local backends only; affinity none uses both; affinity local uses the local backends
    (even unhealthy ones) and the remote ones only when no local backend is active and some
    remote one is healthy; affinity remote is the mirror image. A Service that exists only in
    other clusters has no frontend here, so nothing is programmed (``local_svc`` None).
    """
    if local_svc is None or local_svc.headless or not local_svc.cluster_ip:
        return []
    namespace = local_svc.meta.namespace or "default"
    glob = is_global(local_svc)
    aff = affinity(local_svc)
    remotes: list[tuple[ClusterService, list[Backend]]] = [
        (cs, remote_backends(cs))
        for _, cs in sorted(remote.items())
        if cs.namespace == namespace and cs.name == local_svc.meta.name and cs.cluster != cluster
    ]
    ipv6 = ":" in local_svc.cluster_ip
    out: list[BackendChoice] = []
    for sp in local_svc.ports:
        locals_ = [b for b in local_backends if _matches_frontend(b, sp.name, sp.protocol, ipv6)]
        remotes_ = [(cs, b) for cs, bes in remotes for b in bes if _matches_frontend(b, sp.name, sp.protocol, ipv6)]
        use_local, use_remote = _sides(glob, aff, locals_, [b for _, b in remotes_])
        chosen: list[SelectedBackend] = []
        if use_local:
            chosen += [_selected(b, cluster, cluster_id, True, aff is Affinity.LOCAL) for b in locals_]
        if use_remote:
            chosen += [_selected(b, cs.cluster, cs.cluster_id, False, aff is Affinity.REMOTE) for cs, b in remotes_]
        out.append(
            BackendChoice(
                namespace=namespace,
                name=local_svc.meta.name,
                frontend_ip=local_svc.cluster_ip,
                port=sp.port,
                protocol=sp.protocol,
                port_name=sp.name,
                global_service=glob,
                affinity=aff,
                backends=tuple(chosen),
            )
        )
    return out


def _selected(b: Backend, cluster: str, cluster_id: int, local: bool, preferred: bool) -> SelectedBackend:
    return SelectedBackend(
        b.ip, b.port, b.protocol, b.port_names, cluster, cluster_id, b.state, b.unhealthy, local, preferred
    )


def _sides(glob: bool, aff: Affinity, local: Sequence[Backend], remote: Sequence[Backend]) -> tuple[bool, bool]:
    """(use local, use remote) for one frontend: ``ClusterMeshSelectBackends.SelectBackends``."""
    if not glob:
        return True, False
    if aff is Affinity.NONE:
        return True, True
    local_healthy = sum(1 for b in local if b.healthy)
    local_active = sum(1 for b in local if b.healthy and b.state is BackendState.ACTIVE)
    remote_healthy = sum(1 for b in remote if b.healthy)
    if aff is Affinity.LOCAL:
        return True, local_active == 0 and remote_healthy > 0
    return remote_healthy == 0 and local_healthy > 0, True
