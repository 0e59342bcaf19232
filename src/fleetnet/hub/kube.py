"""`fleetnet kubectl` for local clusters: apply, get, delete, annotate on a member's object store.

Manifests are parsed and validated whole before anything is written (one bad document, nothing
applied), then written in one transaction. The cluster's agent does the rest.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fleetnet.errors import InvalidInput, NotFound
from fleetnet.kube.objstore import ObjectStore, key_of

KINDS: dict[str, str] = {}
for kind, aliases in {
    "Namespace": ("namespace", "namespaces", "ns"),
    "Pod": ("pod", "pods", "po"),
    "Deployment": ("deployment", "deployments", "deploy"),
    "Service": ("service", "services", "svc"),
    "EndpointSlice": ("endpointslice", "endpointslices"),
    "CiliumNetworkPolicy": ("ciliumnetworkpolicy", "ciliumnetworkpolicies", "cnp"),
    "CiliumClusterwideNetworkPolicy": ("ciliumclusterwidenetworkpolicy", "ciliumclusterwidenetworkpolicies", "ccnp"),
    "CiliumEndpoint": ("ciliumendpoint", "ciliumendpoints", "cep"),
    "CiliumIdentity": ("ciliumidentity", "ciliumidentities"),
}.items():
    for a in (kind.lower(), *aliases):
        KINDS[a] = kind
CLUSTER_SCOPED = {"Namespace", "CiliumClusterwideNetworkPolicy", "CiliumIdentity"}


def kind_of(text: str) -> str:
    k = KINDS.get(text.lower())
    if k is None:
        raise InvalidInput(
            f"the server doesn't have a resource type {text!r}; local clusters know: "
            + ", ".join(sorted({v for v in KINDS.values()}))
            + "."
        )
    return k


def parse(manifest: str, source: str) -> list[dict[str, Any]]:
    """Validate every document (kube kinds and Cilium policies) and return plain Kubernetes JSON."""
    from fleetnet.model.kube import parse_manifests

    objs = parse_manifests(manifest, source)
    out: list[dict[str, Any]] = []
    for i, o in enumerate(objs):
        d = o.to_dict()
        if d["kind"] in ("CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"):
            from fleetnet.plan.policy.parse import parse_policy

            try:
                parse_policy(d)
            except InvalidInput as e:
                raise InvalidInput(f"{source}: document {i + 1}: {e}") from e
        out.append(d)
    return out


def apply(objects: ObjectStore, manifest: str, source: str, service_cidr: str | None = None) -> list[dict[str, str]]:
    docs = parse(manifest, source)
    if service_cidr is not None:
        _check_service_room(objects, docs, service_cidr)
    namespaces = {d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"}
    namespaces |= {n["metadata"]["name"] for n in objects.list("Namespace")}
    for d in docs:
        if d["kind"] in CLUSTER_SCOPED:
            continue
        ns = d["metadata"].get("namespace") or "default"
        d["metadata"]["namespace"] = ns
        if ns not in namespaces:
            raise InvalidInput(
                f"{source}: {d['kind']} {d['metadata']['name']}: namespace {ns!r} not found; "
                "create it first (or in the same file)."
            )
    for d in docs:
        md = d["metadata"]
        old = objects.get(d["kind"], "" if d["kind"] in CLUSTER_SCOPED else md["namespace"], md["name"])
        merge_metadata(d, old)
        if d["kind"] == "Service" and not (d.get("spec") or {}).get("clusterIP"):
            # the allocated ClusterIP stays, as with kubectl apply's merge
            ip = ((old or {}).get("spec") or {}).get("clusterIP")
            if ip:
                d["spec"] = {**d.get("spec", {}), "clusterIP": ip, "clusterIPs": [ip]}
    results = objects.apply(docs)
    return [{"kind": k[0], "namespace": k[1], "name": k[2], "result": r} for k, r in results]


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def merge_metadata(new: dict[str, Any], live: dict[str, Any] | None) -> None:
    """kubectl's client-side apply for labels and annotations: a key the live object has, that this
    manifest does not name and that the previous apply did not set either, was put there by someone
    else (``kubectl annotate``) and stays; the manifest is recorded for the next apply."""
    md = new["metadata"]
    given = json.dumps({k: v for k, v in new.items() if k != "status"}, sort_keys=True, separators=(",", ":"))
    if live is not None:
        live_md = live.get("metadata") or {}
        live_ann = live_md.get("annotations") or {}
        try:
            last_md = (json.loads(live_ann.get(LAST_APPLIED, "null")) or {}).get("metadata") or {}
        except ValueError:
            last_md = {}
        for field in ("labels", "annotations"):
            mine = dict(md.get(field) or {})
            previous = last_md.get(field) or {}
            for k, v in (live_md.get(field) or {}).items():
                if k != LAST_APPLIED and k not in mine and k not in previous:
                    mine[k] = v
            if mine:
                md[field] = mine
    md.setdefault("annotations", {})[LAST_APPLIED] = given


def _check_service_room(objects: ObjectStore, docs: list[dict[str, Any]], service_cidr: str) -> None:
    """Refuse, as kube-apiserver does, Services that would get no ClusterIP: nothing is applied."""
    import ipaddress

    existing = {(s["metadata"].get("namespace"), s["metadata"]["name"]) for s in objects.list("Service")}
    new = [
        d
        for d in docs
        if d["kind"] == "Service"
        and (d["metadata"].get("namespace") or "default", d["metadata"]["name"]) not in existing
        and (d.get("spec") or {}).get("clusterIP") != "None"
    ]
    room = ipaddress.IPv4Network(service_cidr).num_addresses - 3  # network, broadcast and the reserved .1
    if new and len(existing) + len(new) > room:
        raise InvalidInput(
            f"Service {new[0]['metadata']['name']}: failed to allocate a ClusterIP: the service range "
            f"{service_cidr} holds {room} services and {len(existing)} exist; delete some, or create the member "
            "with a larger --service-cidr."
        )


def get(objects: ObjectStore, kind: str, name: str | None, namespace: str | None) -> list[dict[str, Any]]:
    k = kind_of(kind)
    ns = None if k in CLUSTER_SCOPED else namespace
    items = objects.list(k, ns if ns != "*" else None)
    if name is not None:
        items = [o for o in items if o["metadata"]["name"] == name]
        if not items:
            where = "" if k in CLUSTER_SCOPED else f" in namespace {namespace or 'default'!r}"
            raise NotFound(f"{k} {name!r} not found{where}.")
    return items


def delete(
    objects: ObjectStore, kind: str | None, name: str | None, namespace: str | None, manifest: str | None
) -> list[dict[str, str]]:
    if manifest is not None:
        keys = [
            key_of(d)
            if d["kind"] in CLUSTER_SCOPED
            else (d["kind"], d["metadata"].get("namespace") or "default", d["metadata"]["name"])
            for d in parse(manifest, "-f")
        ]
    else:
        if kind is None or name is None:
            raise InvalidInput("kubectl delete needs KIND NAME, or -f FILE.")
        k = kind_of(kind)
        keys = [(k, "" if k in CLUSTER_SCOPED else (namespace or "default"), name)]
    deleted = objects.delete(keys)
    missing = [k for k in keys if k not in deleted]
    if missing and manifest is None:
        raise NotFound(f"{missing[0][0]} {missing[0][2]!r} not found.")
    if any(k[0] == "Namespace" for k in deleted):
        # deleting a namespace deletes what is in it, as in Kubernetes
        gone = {k[2] for k in deleted if k[0] == "Namespace"}
        inner = [
            key_of(o)
            for kind_ in set(KINDS.values()) - CLUSTER_SCOPED
            for o in objects.list(kind_)
            if (o["metadata"].get("namespace") or "") in gone
        ]
        objects.delete(inner)
    return [{"kind": k[0], "namespace": k[1], "name": k[2], "result": "deleted"} for k in deleted]


def annotate(
    objects: ObjectStore,
    kind: str,
    name: str,
    namespace: str | None,
    annotations: dict[str, str | None],
    overwrite: bool,
    validate: Callable[[list[dict[str, Any]]], None] | None = None,
) -> dict[str, Any]:
    k = kind_of(kind)
    ns = "" if k in CLUSTER_SCOPED else (namespace or "default")
    obj = objects.get(k, ns, name)
    if obj is None:
        raise NotFound(f"{k} {name!r} not found" + ("" if not ns else f" in namespace {ns!r}") + ".")
    current = dict(obj["metadata"].get("annotations") or {})
    for key, value in annotations.items():
        if value is None:
            current.pop(key, None)
        else:
            if key in current and current[key] != value and not overwrite:
                raise InvalidInput(
                    f"{k} {name} already has a value ({current[key]}) for annotation {key}; "
                    "use --overwrite to change it."
                )
            current[key] = value
    obj["metadata"]["annotations"] = current
    objects.apply([obj])
    return obj
