"""The kinds a local cluster's API server serves, and how each maps to a REST path.

One table shared by the API server (routing, discovery, storage keys), the client adapter (kind →
URL) and the tools that print or validate objects. The names, short names, categories and verbs are
those kube-apiserver and Cilium's CRDs publish, so that `kubectl api-resources`, `kubectl get cnp`
and `kubectl get all` behave as on a real cluster.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True)
class Resource:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    # subresources beyond the object itself: status, scale, log, exec, binding, finalize, ...
    subresources: tuple[str, ...] = ()
    # metadata.generation is set at create and bumped when anything but metadata and status changes
    tracks_generation: bool = False
    custom: bool = False  # a CustomResourceDefinition on a real cluster (JSON merge patch, no SMP)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    def base_path(self) -> str:
        """``/api/v1`` or ``/apis/<group>/<version>``."""
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        """The URL path of the collection, one object, or one of its subresources."""
        out = self.base_path()
        if self.namespaced and namespace:
            out += f"/namespaces/{namespace}"
        out += f"/{self.plural}"
        if name is not None:
            out += f"/{name}"
            if subresource:
                out += f"/{subresource}"
        return out

    def storage_key(self, namespace: str | None, name: str) -> str:
        """Where the object lives in the store, kube-apiserver's etcd layout: /registry/<group/>plural/ns/name."""
        head = f"/registry/{self.group + '/' if self.group else ''}{self.plural}"
        return f"{head}/{namespace}/{name}" if self.namespaced else f"{head}/{name}"


def _core(kind: str, plural: str, namespaced: bool, **kw: object) -> Resource:
    return Resource("", "v1", kind, plural, kind.lower(), namespaced, **kw)  # type: ignore[arg-type]


RESOURCES: tuple[Resource, ...] = (
    _core("Namespace", "namespaces", False, short_names=("ns",), subresources=("status", "finalize")),
    _core(
        "Pod",
        "pods",
        True,
        short_names=("po",),
        categories=("all",),
        subresources=("status", "log", "exec", "binding", "eviction"),
        tracks_generation=True,
    ),
    _core("Service", "services", True, short_names=("svc",), categories=("all",), subresources=("status",)),
    _core("ConfigMap", "configmaps", True, short_names=("cm",)),
    _core("Secret", "secrets", True),
    _core("Node", "nodes", False, short_names=("no",), subresources=("status",)),
    _core("ServiceAccount", "serviceaccounts", True, short_names=("sa",), subresources=("token",)),
    _core("Event", "events", True, short_names=("ev",)),
    Resource(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        "deployment",
        True,
        short_names=("deploy",),
        categories=("all",),
        subresources=("status", "scale"),
        tracks_generation=True,
    ),
    Resource(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        "replicaset",
        True,
        short_names=("rs",),
        categories=("all",),
        subresources=("status", "scale"),
        tracks_generation=True,
    ),
    Resource(
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        "daemonset",
        True,
        short_names=("ds",),
        categories=("all",),
        subresources=("status",),
        tracks_generation=True,
    ),
    Resource("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", True),
    Resource("coordination.k8s.io", "v1", "Lease", "leases", "lease", True),
    Resource("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "clusterrole", False),
    Resource(
        "rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", "clusterrolebinding", False
    ),
    Resource("rbac.authorization.k8s.io", "v1", "Role", "roles", "role", True),
    Resource("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", "rolebinding", True),
    Resource(
        "cilium.io",
        "v2",
        "CiliumNetworkPolicy",
        "ciliumnetworkpolicies",
        "ciliumnetworkpolicy",
        True,
        short_names=("cnp", "ciliumnp"),
        categories=("cilium", "ciliumpolicy"),
        subresources=("status",),
        tracks_generation=True,
        custom=True,
    ),
    Resource(
        "cilium.io",
        "v2",
        "CiliumClusterwideNetworkPolicy",
        "ciliumclusterwidenetworkpolicies",
        "ciliumclusterwidenetworkpolicy",
        False,
        short_names=("ccnp",),
        categories=("cilium", "ciliumpolicy"),
        subresources=("status",),
        tracks_generation=True,
        custom=True,
    ),
    Resource(
        "cilium.io",
        "v2",
        "CiliumEndpoint",
        "ciliumendpoints",
        "ciliumendpoint",
        True,
        short_names=("cep", "ciliumep"),
        categories=("cilium",),
        tracks_generation=True,
        custom=True,
    ),
    Resource(
        "cilium.io",
        "v2",
        "CiliumIdentity",
        "ciliumidentities",
        "ciliumidentity",
        False,
        short_names=("ciliumid",),
        categories=("cilium",),
        tracks_generation=True,
        custom=True,
    ),
    Resource(
        "cilium.io",
        "v2",
        "CiliumNode",
        "ciliumnodes",
        "ciliumnode",
        False,
        short_names=("cn", "ciliumn"),
        categories=("cilium",),
        subresources=("status",),
        tracks_generation=True,
        custom=True,
    ),
)

# Kinds that exist only as subresources or request bodies (no storage of their own)
SCALE_API_VERSION = "autoscaling/v1"


class Registry:
    """Look resources up by kind, by plural, by any name kubectl accepts."""

    def __init__(self, resources: Iterable[Resource] = RESOURCES) -> None:
        self.resources = tuple(resources)
        self._by_kind = {(r.api_version, r.kind): r for r in self.resources}
        self._by_kind_only: dict[str, Resource] = {}
        for r in self.resources:
            self._by_kind_only.setdefault(r.kind, r)
        self._by_path = {(r.group, r.version, r.plural): r for r in self.resources}

    def by_kind(self, kind: str, api_version: str | None = None) -> Resource | None:
        if api_version is not None:
            return self._by_kind.get((api_version, kind))
        return self._by_kind_only.get(kind)

    def by_path(self, group: str, version: str, plural: str) -> Resource | None:
        return self._by_path.get((group, version, plural))

    def lookup(self, name: str) -> Resource | None:
        """A resource by any of its names: kind, plural, singular, short name, ``plural.group``."""
        n = name.lower()
        for r in self.resources:
            names = {r.kind.lower(), r.plural, r.singular, *r.short_names}
            if n in names or n in {f"{x}.{r.group}" for x in (r.plural, r.singular, r.kind.lower())}:
                return r
        return None

    def groups(self) -> list[str]:
        """API groups in the order discovery lists them (core first, then by first appearance)."""
        out: list[str] = []
        for r in self.resources:
            if r.group not in out:
                out.append(r.group)
        return out

    def in_group_version(self, group: str, version: str) -> list[Resource]:
        return [r for r in self.resources if r.group == group and r.version == version]


REGISTRY = Registry()
