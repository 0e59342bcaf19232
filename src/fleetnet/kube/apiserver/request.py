"""What a request asks for: the resource, namespace, name, subresource and verb of a URL, and the
representation it accepts — kube-apiserver's RequestInfo and content negotiation, as pure functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fleetnet.kube.resources import REGISTRY, Registry, Resource


@dataclass(frozen=True, slots=True)
class RequestInfo:
    resource: Resource
    namespace: str | None  # None: cluster-scoped, or a namespaced resource across all namespaces
    name: str | None
    subresource: str | None
    verb: str  # get list watch create update patch delete deletecollection

    @property
    def is_collection(self) -> bool:
        return self.name is None


class PathError(Exception):
    """The URL names no resource this server has (404 with kube's generic message)."""


def parse_path(path: str, method: str, query: Mapping[str, str], registry: Registry = REGISTRY) -> RequestInfo:
    """Split ``/api/v1/namespaces/ns/pods/x/status`` into its parts (k8s.io/apiserver RequestInfoFactory)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise PathError(path)
    if rest and rest[0] == "watch":  # the deprecated /watch/ prefix still used by some clients
        rest = rest[1:]
        query = {**query, "watch": "true"}
    namespace: str | None = None
    if (
        len(rest) >= 3
        and rest[0] == "namespaces"
        and registry.by_path(group, version, rest[2]) is not None
        and rest[2] not in ("status", "finalize")
    ):
        namespace, rest = rest[1], rest[2:]
    if not rest:
        raise PathError(path)
    resource = registry.by_path(group, version, rest[0])
    if resource is None:
        raise PathError(path)
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if len(rest) > 3 or (sub is not None and sub not in resource.subresources):
        raise PathError(path)
    if resource.namespaced and namespace is None and name is not None:
        raise PathError(path)  # a namespaced object needs its namespace in the path
    if not resource.namespaced and namespace is not None:
        raise PathError(path)
    watch = query.get("watch", "").lower() in ("1", "true")
    m = method.upper()
    if m == "GET":
        verb = "get" if name is not None else ("watch" if watch else "list")
    elif m == "POST":
        verb = "create"
    elif m == "PUT":
        verb = "update"
    elif m == "PATCH":
        verb = "patch"
    elif m == "DELETE":
        verb = "delete" if name is not None else "deletecollection"
    else:
        verb = m.lower()
    return RequestInfo(resource, namespace, name, sub, verb)


# --- content negotiation -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MediaType:
    type: str  # application/json
    params: Mapping[str, str]

    @property
    def as_(self) -> str | None:
        return self.params.get("as")


def parse_accept(header: str | None) -> list[MediaType]:
    if not header:
        return [MediaType("*/*", {})]
    out: list[MediaType] = []
    for item in header.split(","):
        bits = [b.strip() for b in item.split(";")]
        params: dict[str, str] = {}
        for b in bits[1:]:
            if "=" in b:
                k, v = b.split("=", 1)
                params[k.strip()] = v.strip()
        out.append(MediaType(bits[0].lower(), params))
    return out


JSON_TYPES = ("application/json", "*/*", "application/*")


def wants(header: str | None, as_: str, group: str = "meta.k8s.io") -> MediaType | None:
    """The first acceptable media type asking for ``as=<as_>`` (Table, PartialObjectMetadataList, ...),
    unless a plain JSON type comes before it."""
    for mt in parse_accept(header):
        if mt.type not in JSON_TYPES:
            continue
        if mt.as_ is None:
            return None
        if mt.as_ == as_ and mt.params.get("g", group) == group:
            return mt
    return None


def accepts_json(header: str | None) -> bool:
    return any(mt.type in JSON_TYPES and mt.as_ is None for mt in parse_accept(header)) or not header
