"""Strict reading of the service kinds: Service (ClusterIP or headless) and EndpointSlice.

EndpointSlices are written by fleetnet's own controllers only and read back as stored objects.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from fleetnet.model.kube_fields import (
    _TOP,
    _bool,
    _Doc,
    _fixed,
    _int,
    _join,
    _labels,
    _list,
    _mapping,
    _metadata,
    _protocol,
    _str,
)
from fleetnet.model.kube_names import _LABEL_RULE, is_dns1123_label, is_iana_svc_name
from fleetnet.model.kube_types import Endpoint, EndpointPort, EndpointSlice, KubeObject, Service, ServicePort


def _service_port(d: _Doc, v: Any, path: str) -> ServicePort:
    m = _mapping(d, v, path, {"name", "port", "targetPort", "protocol", "nodePort"}, {"appProtocol"})
    if m.get("nodePort") is not None:
        d.fail(_join(path, "nodePort"), "is not supported: only ClusterIP Services are emulated")
    name = ""
    if m.get("name") not in (None, ""):
        name = _str(d, m["name"], _join(path, "name"))
        if not is_dns1123_label(name):
            d.fail(_join(path, "name"), f"{name!r} is not a valid port name: {_LABEL_RULE}")
    if m.get("port") is None:
        d.fail(_join(path, "port"), "is required")
    port = _int(d, m["port"], _join(path, "port"), 1, 65535)
    target: int | str = port
    tp = m.get("targetPort")
    if tp is not None:
        if isinstance(tp, str):
            if not is_iana_svc_name(tp):
                d.fail(
                    _join(path, "targetPort"),
                    f"{tp!r} is neither a port number nor a valid container port name "
                    "(at most 15 lower-case letters, digits and '-', with at least one letter)",
                )
            target = tp
        else:
            target = _int(d, tp, _join(path, "targetPort"), 1, 65535)
    return ServicePort(name, port, target, _protocol(d, m.get("protocol"), _join(path, "protocol")))


def _parse_service(d: _Doc, doc: dict[str, Any], ns: str | None, stored: bool) -> KubeObject:
    meta = _metadata(d, doc.get("metadata"), namespaced=True, name_rule="dns1035", default_namespace=ns)
    _mapping(d, doc, "", _TOP, {"status"})
    spec = _mapping(
        d,
        doc.get("spec") or {},
        "spec",
        {
            "type",
            "clusterIP",
            "clusterIPs",
            "ports",
            "selector",
            "sessionAffinity",
            "ipFamilies",
            "ipFamilyPolicy",
            "internalTrafficPolicy",
        },
    )
    _fixed(d, spec, "spec", "sessionAffinity", ("None",))
    _fixed(d, spec, "spec", "ipFamilies", (["IPv4"],))
    _fixed(d, spec, "spec", "ipFamilyPolicy", ("SingleStack",))
    _fixed(d, spec, "spec", "internalTrafficPolicy", ("Cluster",))
    svc_type = "ClusterIP" if spec.get("type") is None else _str(d, spec["type"], "spec.type")
    if svc_type != "ClusterIP":
        d.fail("spec.type", f"is {svc_type!r}, but only ClusterIP Services (and headless ones) are supported")
    cluster_ip = _cluster_ip(d, spec)
    ports: list[ServicePort] = []
    for i, p in enumerate(_list(d, spec.get("ports"), "spec.ports")):
        ports.append(_service_port(d, p, f"spec.ports[{i}]"))
    if not ports and cluster_ip != "None":
        d.fail("spec.ports", "must list at least one port (only a headless Service may have none)")
    if len(ports) > 1:
        for i, p in enumerate(ports):
            if not p.name:
                d.fail(f"spec.ports[{i}].name", "is required when a Service has more than one port")
    names: set[str] = set()
    addrs: set[tuple[int, str]] = set()
    for i, p in enumerate(ports):
        if p.name in names:
            d.fail(f"spec.ports[{i}].name", f"{p.name!r} is used twice")
        if (p.port, p.protocol) in addrs:
            d.fail(f"spec.ports[{i}].port", f"{p.port}/{p.protocol} is used twice")
        names.add(p.name)
        addrs.add((p.port, p.protocol))
    selector = _labels(d, spec.get("selector"), "spec.selector")
    return Service(meta, selector=selector, ports=tuple(ports), cluster_ip=cluster_ip, type=svc_type)


def _cluster_ip(d: _Doc, spec: Mapping[str, Any]) -> str | None:
    ip: str | None = None
    if spec.get("clusterIP") not in (None, ""):
        ip = _str(d, spec["clusterIP"], "spec.clusterIP")
    ips = [
        _str(d, x, f"spec.clusterIPs[{i}]") for i, x in enumerate(_list(d, spec.get("clusterIPs"), "spec.clusterIPs"))
    ]
    if len(ips) > 1:
        d.fail("spec.clusterIPs", "may hold one address only: Services are single-stack IPv4")
    if ips:
        if ip is not None and ips[0] != ip:
            d.fail("spec.clusterIPs[0]", f"is {ips[0]!r} but spec.clusterIP is {ip!r}; they must be equal")
        ip = ips[0]
    if ip is None or ip == "None":
        return ip
    try:
        parsed = ipaddress.ip_address(ip)
    except ValueError:
        d.fail("spec.clusterIP", f'{ip!r} is neither an IPv4 address nor "None" (headless)')
    if parsed.version != 4:
        d.fail("spec.clusterIP", f"{ip!r} is not an IPv4 address: Services are single-stack IPv4")
    return ip


def _parse_endpointslice(d: _Doc, doc: dict[str, Any], ns: str | None, stored: bool) -> KubeObject:
    meta = _metadata(d, doc.get("metadata"), namespaced=True, name_rule="subdomain", default_namespace=ns)
    _mapping(d, doc, "", {"apiVersion", "kind", "metadata", "addressType", "endpoints", "ports"})
    address_type = _str(d, doc.get("addressType", "IPv4"), "addressType")
    endpoints: list[Endpoint] = []
    for i, e in enumerate(_list(d, doc.get("endpoints"), "endpoints")):
        path = f"endpoints[{i}]"
        m = _mapping(d, e, path, {"addresses", "conditions", "nodeName", "targetRef", "hostname", "zone"})
        cond = _mapping(d, m.get("conditions") or {}, path + ".conditions", {"ready", "serving", "terminating"})
        ref = m.get("targetRef") if isinstance(m.get("targetRef"), dict) else {}
        # discovery/v1: an unknown (null) condition is read as ready, and serving follows ready
        ready = True if cond.get("ready") is None else _bool(d, cond["ready"], path + ".conditions.ready")
        serving = ready if cond.get("serving") is None else _bool(d, cond["serving"], path + ".conditions.serving")
        terminating = False
        if cond.get("terminating") is not None:
            terminating = _bool(d, cond["terminating"], path + ".conditions.terminating")
        endpoints.append(
            Endpoint(
                addresses=tuple(_str(d, a, f"{path}.addresses") for a in _list(d, m.get("addresses"), path)),
                ready=ready,
                serving=serving,
                terminating=terminating,
                node_name=m.get("nodeName") or None,
                target_pod=(ref or {}).get("name") or None,
                hostname=m.get("hostname") or None,
            )
        )
    ports: list[EndpointPort] = []
    for i, p in enumerate(_list(d, doc.get("ports"), "ports")):
        m = _mapping(d, p, f"ports[{i}]", {"name", "port", "protocol", "appProtocol"})
        ports.append(
            EndpointPort(
                name=_str(d, m.get("name") or "", f"ports[{i}].name"),
                port=_int(d, m.get("port"), f"ports[{i}].port", 1, 65535),
                protocol=_protocol(d, m.get("protocol"), f"ports[{i}].protocol"),
            )
        )
    return EndpointSlice(meta, endpoints=tuple(endpoints), ports=tuple(ports), address_type=address_type)
