"""Objects as an API server returns them, read into the value types of ``kube_types``.

The API server has already validated what it stores; a reader only takes the fields fleetnet's
decisions look at and ignores the rest (uid, managedFields, defaults, fields of features fleetnet
does not emulate), so an object written by any client — kubectl, Helm, an operator — reads.
Structurally broken input (a missing name) raises ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fleetnet.model.kube_types import (
    CCNP_KIND,
    CNP_KIND,
    Container,
    ContainerPort,
    Deployment,
    Endpoint,
    EndpointPort,
    EndpointSlice,
    KubeObject,
    Namespace,
    ObjectMeta,
    Pod,
    PodSpec,
    PodStatus,
    PodTemplate,
    PolicyObject,
    Service,
    ServicePort,
)


def _map(v: Any) -> dict[str, str]:
    return {str(k): str(x) for k, x in v.items()} if isinstance(v, Mapping) else {}


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def meta(v: Any, namespaced: bool) -> ObjectMeta:
    if not isinstance(v, Mapping) or not v.get("name"):
        raise ValueError("an object needs metadata.name")
    return ObjectMeta(
        name=str(v["name"]),
        namespace=(str(v.get("namespace") or "default") if namespaced else None),
        labels=_map(v.get("labels")),
        annotations=_map(v.get("annotations")),
    )


def _ports(c: Mapping[str, Any]) -> tuple[ContainerPort, ...]:
    out = []
    for p in _list(c.get("ports")):
        if isinstance(p, Mapping) and isinstance(p.get("containerPort"), int):
            out.append(ContainerPort(int(p["containerPort"]), str(p.get("protocol") or "TCP"), p.get("name") or None))
    return tuple(out)


def pod_spec(v: Any) -> PodSpec:
    spec = v if isinstance(v, Mapping) else {}
    containers = tuple(
        Container(
            name=str(c.get("name", "")),
            image=str(c.get("image", "")),
            args=tuple(str(a) for a in _list(c.get("args"))),
            ports=_ports(c),
        )
        for c in _list(spec.get("containers"))
        if isinstance(c, Mapping)
    )
    return PodSpec(containers=containers, node_name=spec.get("nodeName") or None)


def pod_status(v: Any) -> PodStatus | None:
    if not isinstance(v, Mapping):
        return None
    ready = any(
        isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "True"
        for c in _list(v.get("conditions"))
    )
    return PodStatus(
        phase=str(v.get("phase") or "Pending"),
        pod_ip=v.get("podIP") or None,
        host_ip=v.get("hostIP") or None,
        ready=ready,
    )


def _pod(d: Mapping[str, Any]) -> Pod:
    return Pod(meta(d.get("metadata"), True), pod_spec(d.get("spec")), pod_status(d.get("status")))


def _obj(v: Any) -> Mapping[str, Any]:
    return v if isinstance(v, Mapping) else {}


def _deployment(d: Mapping[str, Any]) -> Deployment:
    spec = _obj(d.get("spec"))
    tpl = _obj(spec.get("template"))
    tmeta = _obj(tpl.get("metadata"))
    sel = _obj(spec.get("selector"))
    replicas = spec.get("replicas")
    return Deployment(
        meta(d.get("metadata"), True),
        int(replicas) if isinstance(replicas, int) else 1,
        _map(sel.get("matchLabels")),
        PodTemplate(
            labels=_map(tmeta.get("labels")), annotations=_map(tmeta.get("annotations")), spec=pod_spec(tpl.get("spec"))
        ),
    )


def _service(d: Mapping[str, Any]) -> Service:
    spec = _obj(d.get("spec"))
    ports = []
    for p in _list(spec.get("ports")):
        if not isinstance(p, Mapping) or not isinstance(p.get("port"), int):
            continue
        tp = p.get("targetPort", p["port"])
        ports.append(
            ServicePort(
                str(p.get("name") or ""),
                int(p["port"]),
                tp if isinstance(tp, int | str) else p["port"],
                str(p.get("protocol") or "TCP"),
            )
        )
    return Service(
        meta(d.get("metadata"), True),
        selector=_map(spec.get("selector")),
        ports=tuple(ports),
        cluster_ip=spec.get("clusterIP") or None,
        type=str(spec.get("type") or "ClusterIP"),
    )


def _endpointslice(d: Mapping[str, Any]) -> EndpointSlice:
    endpoints = []
    for e in _list(d.get("endpoints")):
        if not isinstance(e, Mapping):
            continue
        cond = _obj(e.get("conditions"))
        # discovery/v1: an unknown (null) ready condition reads as ready, serving follows ready
        ready = cond.get("ready") is not False
        serving = ready if cond.get("serving") is None else bool(cond.get("serving"))
        ref = _obj(e.get("targetRef"))
        endpoints.append(
            Endpoint(
                addresses=tuple(str(a) for a in _list(e.get("addresses"))),
                ready=ready,
                serving=serving,
                terminating=bool(cond.get("terminating")),
                node_name=e.get("nodeName") or None,
                target_pod=ref.get("name") or None,
                hostname=e.get("hostname") or None,
            )
        )
    ports = tuple(
        EndpointPort(str(p.get("name") or ""), int(p["port"]), str(p.get("protocol") or "TCP"))
        for p in _list(d.get("ports"))
        if isinstance(p, Mapping) and isinstance(p.get("port"), int)
    )
    return EndpointSlice(
        meta(d.get("metadata"), True),
        endpoints=tuple(endpoints),
        ports=ports,
        address_type=str(d.get("addressType") or "IPv4"),
    )


def _policy(d: Mapping[str, Any]) -> PolicyObject:
    kind = str(d["kind"])
    return PolicyObject(
        kind=kind, meta=meta(d.get("metadata"), kind == CNP_KIND), spec=d.get("spec"), specs=d.get("specs")
    )


_READERS: dict[str, Callable[[Mapping[str, Any]], KubeObject]] = {
    "Namespace": lambda d: Namespace(meta(d.get("metadata"), False)),
    "Pod": _pod,
    "Deployment": _deployment,
    "Service": _service,
    "EndpointSlice": _endpointslice,
    CNP_KIND: _policy,
    CCNP_KIND: _policy,
}


def read(d: Mapping[str, Any]) -> KubeObject:
    """The typed value of one object (Namespace, Pod, Deployment, Service, EndpointSlice, Cilium policies)."""
    reader = _READERS.get(str(d.get("kind")))
    if reader is None:
        raise ValueError(f"kind {d.get('kind')!r} has no typed reader")
    return reader(d)
