"""Discovery documents built from the resource registry: the legacy per-group-version lists and the
aggregated ``apidiscovery.k8s.io/v2`` form that kubectl asks for first. Pure; built once.
"""

from __future__ import annotations

from typing import Any

from fleetnet.kube.resources import Registry, Resource

AGGREGATED_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

# subresource → (group, version, kind of its body, verbs); None group/version: the parent's
_SUBRESOURCES: dict[str, tuple[str | None, str | None, str | None, tuple[str, ...]]] = {
    "status": (None, None, None, ("get", "patch", "update")),
    "scale": ("autoscaling", "v1", "Scale", ("get", "patch", "update")),
    "log": (None, None, "Pod", ("get",)),
    "exec": (None, None, "PodExecOptions", ("create", "get")),
    "binding": (None, None, "Binding", ("create",)),
    "eviction": ("policy", "v1", "Eviction", ("create",)),
    "finalize": (None, None, None, ("update",)),
    "token": ("authentication.k8s.io", "v1", "TokenRequest", ("create",)),
}


def _resource_entry(r: Resource) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": sorted(r.verbs),
    }
    if r.short_names:
        out["shortNames"] = list(r.short_names)
    if r.categories:
        out["categories"] = list(r.categories)
    return out


def _sub_entries(r: Resource) -> list[dict[str, Any]]:
    out = []
    for sub in r.subresources:
        group, version, kind, verbs = _SUBRESOURCES[sub]
        e: dict[str, Any] = {
            "name": f"{r.plural}/{sub}",
            "singularName": "",
            "namespaced": r.namespaced,
            "kind": kind or r.kind,
            "verbs": list(verbs),
        }
        if group is not None:
            e["group"], e["version"] = group, version
        out.append(e)
    return out


def resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    rs = registry.in_group_version(group, version)
    if not rs:
        return None
    resources: list[dict[str, Any]] = []
    for r in rs:
        resources.append(_resource_entry(r))
        resources.extend(_sub_entries(r))
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _versions(registry: Registry, group: str) -> list[str]:
    out: list[str] = []
    for r in registry.resources:
        if r.group == group and r.version not in out:
            out.append(r.version)
    return out


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    versions = _versions(registry, group)
    if not group or not versions:
        return None
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list(registry: Registry) -> dict[str, Any]:
    groups = [api_group(registry, g) for g in registry.groups() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [g for g in groups if g is not None]}


def _aggregated_resource(r: Resource) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": "Namespaced" if r.namespaced else "Cluster",
        "singularResource": r.singular,
        "verbs": sorted(r.verbs),
    }
    if r.short_names:
        out["shortNames"] = list(r.short_names)
    if r.categories:
        out["categories"] = list(r.categories)
    subs = []
    for sub in r.subresources:
        group, version, kind, verbs = _SUBRESOURCES[sub]
        subs.append(
            {
                "subresource": sub,
                "responseKind": {
                    "group": r.group if group is None else group,
                    "version": r.version if version is None else version,
                    "kind": kind or r.kind,
                },
                "verbs": list(verbs),
            }
        )
    if subs:
        out["subresources"] = subs
    return out


def aggregated(registry: Registry, legacy: bool) -> dict[str, Any]:
    """``/api`` (legacy=True: the core group) or ``/apis`` (every named group) in the aggregated form."""
    items = []
    for g in registry.groups():
        if (g == "") != legacy:
            continue
        versions = [
            {
                "version": v,
                "resources": [_aggregated_resource(r) for r in registry.in_group_version(g, v)],
                "freshness": "Current",
            }
            for v in _versions(registry, g)
        ]
        md: dict[str, Any] = {"creationTimestamp": None}
        if g:
            md["name"] = g
        items.append({"metadata": md, "versions": versions})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items}
