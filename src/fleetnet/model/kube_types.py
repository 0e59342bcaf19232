"""Kubernetes objects of a local cluster as frozen values, and their ordinary Kubernetes JSON.

A local cluster keeps the few kinds fleetnet emulates (Namespace, Pod, Deployment, Service,
EndpointSlice, Cilium policies). They are values, not live objects: controllers compute new
values from old ones and the object store keeps their ``to_dict()`` form, which is the JSON that
``kubectl get -o yaml`` shows for the same object on a real cluster. Parsing and validation live
in ``kube_parse``; the public entry point is ``fleetnet.model.kube``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

LABEL_SERVICE_NAME = "kubernetes.io/service-name"
LABEL_MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
LABEL_HEADLESS = "service.kubernetes.io/headless"
LABEL_POD_TEMPLATE_HASH = "pod-template-hash"
ENDPOINTSLICE_CONTROLLER = "endpointslice-controller.k8s.io"

IMAGE_ECHO = "fleetnet/echo"
IMAGE_CLIENT = "fleetnet/client"
SUPPORTED_IMAGES = (IMAGE_ECHO, IMAGE_CLIENT)

CNP_KIND = "CiliumNetworkPolicy"
CCNP_KIND = "CiliumClusterwideNetworkPolicy"


class FrozenMap(Mapping[K, V], Generic[K, V]):
    """An immutable, hashable mapping, so that value types holding labels stay hashable."""

    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[K, V] | Iterable[tuple[K, V]] = ()) -> None:
        self._data: dict[K, V] = dict(data)
        self._hash: int | None = None

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenMap):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == dict(other.items())
        return NotImplemented

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


EMPTY: FrozenMap[Any, Any] = FrozenMap()


def freeze(value: Mapping[K, V] | None) -> FrozenMap[K, V]:
    """The mapping as a FrozenMap (no copy when it already is one)."""
    if isinstance(value, FrozenMap):
        return value
    return FrozenMap(value or {})


def _set(obj: object, name: str, value: object) -> None:
    # frozen dataclasses normalise their inputs once, in __post_init__
    object.__setattr__(obj, name, value)


def _sorted(m: Mapping[str, str]) -> dict[str, str]:
    return {k: m[k] for k in sorted(m)}


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    name: str
    namespace: str | None = None
    labels: Mapping[str, str] = EMPTY
    annotations: Mapping[str, str] = EMPTY

    def __post_init__(self) -> None:
        _set(self, "labels", freeze(self.labels))
        _set(self, "annotations", freeze(self.annotations))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.namespace is not None:
            out["namespace"] = self.namespace
        if self.labels:
            out["labels"] = _sorted(self.labels)
        if self.annotations:
            out["annotations"] = _sorted(self.annotations)
        return out


@dataclass(frozen=True, slots=True)
class Namespace:
    meta: ObjectMeta
    kind: ClassVar[str] = "Namespace"
    api_version: ClassVar[str] = "v1"

    def to_dict(self) -> dict[str, Any]:
        return {"apiVersion": self.api_version, "kind": self.kind, "metadata": self.meta.to_dict()}


@dataclass(frozen=True, slots=True)
class ContainerPort:
    container_port: int
    protocol: str = "TCP"
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"containerPort": self.container_port, "protocol": self.protocol}
        if self.name:
            out["name"] = self.name
        return out


@dataclass(frozen=True, slots=True)
class Container:
    name: str
    image: str
    args: tuple[str, ...] = ()
    ports: tuple[ContainerPort, ...] = ()

    def __post_init__(self) -> None:
        _set(self, "args", tuple(self.args))
        _set(self, "ports", tuple(self.ports))

    @property
    def program(self) -> str:
        """Which built-in workload runs: ``echo`` or ``client`` (the image without registry or tag)."""
        return self.image.split(":", 1)[0].rsplit("/", 1)[-1]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "image": self.image}
        if self.args:
            out["args"] = list(self.args)
        if self.ports:
            out["ports"] = [p.to_dict() for p in self.ports]
        return out


@dataclass(frozen=True, slots=True)
class PodSpec:
    containers: tuple[Container, ...]
    node_name: str | None = None

    def __post_init__(self) -> None:
        _set(self, "containers", tuple(self.containers))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"containers": [c.to_dict() for c in self.containers]}
        if self.node_name:
            out["nodeName"] = self.node_name
        return out


@dataclass(frozen=True, slots=True)
class PodStatus:
    """What the cluster observed about a pod; user manifests never carry it."""

    phase: str = "Pending"
    pod_ip: str | None = None
    host_ip: str | None = None
    ready: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"phase": self.phase}
        if self.host_ip:
            out["hostIP"] = self.host_ip
            out["hostIPs"] = [{"ip": self.host_ip}]
        if self.pod_ip:
            out["podIP"] = self.pod_ip
            out["podIPs"] = [{"ip": self.pod_ip}]
        out["conditions"] = [{"type": "Ready", "status": "True" if self.ready else "False"}]
        return out


@dataclass(frozen=True, slots=True)
class Pod:
    meta: ObjectMeta
    spec: PodSpec
    # None: unknown (a user manifest); the cluster's controllers set it
    status: PodStatus | None = None
    kind: ClassVar[str] = "Pod"
    api_version: ClassVar[str] = "v1"

    @property
    def ip(self) -> str | None:
        return self.status.pod_ip if self.status else None

    @property
    def ready(self) -> bool:
        return bool(self.status and self.status.ready)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": self.meta.to_dict(),
            "spec": self.spec.to_dict(),
        }
        if self.status is not None:
            out["status"] = self.status.to_dict()
        return out


@dataclass(frozen=True, slots=True)
class PodTemplate:
    labels: Mapping[str, str] = EMPTY
    annotations: Mapping[str, str] = EMPTY
    spec: PodSpec = field(default_factory=lambda: PodSpec(containers=()))

    def __post_init__(self) -> None:
        _set(self, "labels", freeze(self.labels))
        _set(self, "annotations", freeze(self.annotations))

    def to_dict(self) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        if self.labels:
            meta["labels"] = _sorted(self.labels)
        if self.annotations:
            meta["annotations"] = _sorted(self.annotations)
        return {"metadata": meta, "spec": self.spec.to_dict()}


@dataclass(frozen=True, slots=True)
class Deployment:
    meta: ObjectMeta
    replicas: int
    selector: Mapping[str, str]
    template: PodTemplate
    kind: ClassVar[str] = "Deployment"
    api_version: ClassVar[str] = "apps/v1"

    def __post_init__(self) -> None:
        _set(self, "selector", freeze(self.selector))

    def to_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": self.meta.to_dict(),
            "spec": {
                "replicas": self.replicas,
                "selector": {"matchLabels": _sorted(self.selector)},
                "template": self.template.to_dict(),
            },
        }


@dataclass(frozen=True, slots=True)
class ServicePort:
    name: str
    port: int
    target_port: int | str
    protocol: str = "TCP"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.name:
            out["name"] = self.name
        out.update(port=self.port, protocol=self.protocol, targetPort=self.target_port)
        return out


@dataclass(frozen=True, slots=True)
class Service:
    meta: ObjectMeta
    selector: Mapping[str, str] = EMPTY
    ports: tuple[ServicePort, ...] = ()
    # None: not allocated yet; "None": headless; otherwise the ClusterIP
    cluster_ip: str | None = None
    type: str = "ClusterIP"
    kind: ClassVar[str] = "Service"
    api_version: ClassVar[str] = "v1"

    def __post_init__(self) -> None:
        _set(self, "selector", freeze(self.selector))
        _set(self, "ports", tuple(self.ports))

    @property
    def headless(self) -> bool:
        # Cilium's isHeadless: clusterIP "None" (any case) or the headless label
        return (self.cluster_ip or "").lower() == "none" or LABEL_HEADLESS in self.meta.labels

    def to_dict(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"type": self.type}
        if self.cluster_ip:
            spec["clusterIP"] = self.cluster_ip
            spec["clusterIPs"] = [self.cluster_ip]
        spec["ports"] = [p.to_dict() for p in self.ports]
        if self.selector:
            spec["selector"] = _sorted(self.selector)
        return {"apiVersion": self.api_version, "kind": self.kind, "metadata": self.meta.to_dict(), "spec": spec}


@dataclass(frozen=True, slots=True)
class Endpoint:
    addresses: tuple[str, ...]
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    node_name: str | None = None
    target_pod: str | None = None
    hostname: str | None = None

    def __post_init__(self) -> None:
        _set(self, "addresses", tuple(self.addresses))

    def to_dict(self, namespace: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "addresses": list(self.addresses),
            "conditions": {"ready": self.ready, "serving": self.serving, "terminating": self.terminating},
        }
        if self.hostname:
            out["hostname"] = self.hostname
        if self.node_name:
            out["nodeName"] = self.node_name
        if self.target_pod:
            ref: dict[str, Any] = {"kind": "Pod", "name": self.target_pod}
            if namespace:
                ref["namespace"] = namespace
            out["targetRef"] = ref
        return out


@dataclass(frozen=True, slots=True)
class EndpointPort:
    name: str
    port: int
    protocol: str = "TCP"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "port": self.port, "protocol": self.protocol}


@dataclass(frozen=True, slots=True)
class EndpointSlice:
    meta: ObjectMeta
    endpoints: tuple[Endpoint, ...] = ()
    ports: tuple[EndpointPort, ...] = ()
    address_type: str = "IPv4"
    kind: ClassVar[str] = "EndpointSlice"
    api_version: ClassVar[str] = "discovery.k8s.io/v1"

    def __post_init__(self) -> None:
        _set(self, "endpoints", tuple(self.endpoints))
        _set(self, "ports", tuple(self.ports))

    @property
    def service_name(self) -> str | None:
        return self.meta.labels.get(LABEL_SERVICE_NAME)

    def to_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": self.meta.to_dict(),
            "addressType": self.address_type,
            "endpoints": [e.to_dict(self.meta.namespace) for e in self.endpoints],
            # the EndpointSlice controller writes null ports for a slice with no endpoints
            "ports": [p.to_dict() for p in self.ports] if self.ports else None,
        }


@dataclass(frozen=True, slots=True)
class PolicyObject:
    """A CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy, its rules kept raw.

    ``plan/policy`` validates and compiles the rules; here they are only carried. ``spec`` and
    ``specs`` are plain JSON values (deep-copied in and out), so this type is comparable but not
    hashable.
    """

    kind: str
    meta: ObjectMeta
    spec: Any = None
    specs: Any = None
    api_version: ClassVar[str] = "cilium.io/v2"

    @property
    def rules(self) -> list[Any]:
        """Every rule of the policy: ``spec`` followed by the items of ``specs``."""
        out: list[Any] = []
        if self.spec is not None:
            out.append(copy.deepcopy(self.spec))
        if isinstance(self.specs, list):
            out.extend(copy.deepcopy(self.specs))
        return out

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"apiVersion": self.api_version, "kind": self.kind, "metadata": self.meta.to_dict()}
        if self.spec is not None:
            out["spec"] = copy.deepcopy(self.spec)
        if self.specs is not None:
            out["specs"] = copy.deepcopy(self.specs)
        return out


KubeObject = Namespace | Pod | Deployment | Service | EndpointSlice | PolicyObject

NAMESPACED_KINDS = frozenset({"Pod", "Deployment", "Service", "EndpointSlice", CNP_KIND})
CLUSTER_SCOPED_KINDS = frozenset({"Namespace", CCNP_KIND})


def object_key(obj: KubeObject) -> tuple[str, str, str]:
    """(kind, namespace, name); the namespace is "" for cluster-scoped kinds, like the object store's key."""
    return (obj.kind, obj.meta.namespace or "", obj.meta.name)
