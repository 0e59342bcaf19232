"""The EndpointSlices of a Service, as kube's EndpointSlice controller writes them.

Every pod of the Service's namespace that its selector matches, that has an address of the
slice's family and has not finished, is an endpoint: ``serving`` is the pod's readiness,
``terminating`` its deletion mark, ``ready`` serving and not terminating (always true with
``publishNotReadyAddresses``), with the pod as ``targetRef``, its node and zone. Endpoints are
grouped by their resolved ports (a target port by number, or by the name of a container port of
the same protocol), at most 100 to a slice; a selector that matches nothing still gets one empty
slice. Slices carry the Service's labels, ``kubernetes.io/service-name``,
``endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`` and an owner
reference to the Service. Names are ``<service>-<5 chars>`` and stable: the same inputs name the
same slices, so a restart rewrites nothing. Services without a selector get none.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Mapping, Sequence
from typing import Any

from fleetnet.plan.controllers.meta import (
    Obj,
    deleting,
    labels,
    name,
    namespace,
    new_controller_ref,
    node_name,
    pod_ready,
    pod_terminal,
    uid,
)

SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER = "endpointslice-controller.k8s.io"
HEADLESS = "service.kubernetes.io/headless"
ZONE = "topology.kubernetes.io/zone"
MAX_ENDPOINTS = 100
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def managed_by_us(slice_: Mapping[str, Any], service: str | None = None) -> bool:
    lbl = labels(slice_)
    return lbl.get(MANAGED_BY) == CONTROLLER and (service is None or lbl.get(SERVICE_NAME) == service)


def selector_of(svc: Mapping[str, Any]) -> dict[str, str] | None:
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return None
    sel = spec.get("selector")
    return {str(k): str(v) for k, v in sel.items()} if isinstance(sel, Mapping) and sel else None


def _family(address: str) -> str | None:
    try:
        return "IPv4" if ipaddress.ip_address(address).version == 4 else "IPv6"
    except ValueError:
        return None


def _address(pod: Mapping[str, Any], family: str) -> str | None:
    st = pod.get("status") or {}
    ips = [str(p.get("ip")) for p in st.get("podIPs") or [] if isinstance(p, Mapping) and p.get("ip")]
    if not ips and st.get("podIP"):
        ips = [str(st["podIP"])]
    return next((ip for ip in ips if _family(ip) == family), None)


def find_port(pod: Mapping[str, Any], port: Mapping[str, Any]) -> int | None:
    """``podutil.FindPort``: a number as it is, a name among the containers' ports of that protocol."""
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    proto = port.get("protocol") or "TCP"
    for c in (pod.get("spec") or {}).get("containers") or []:
        for cp in c.get("ports") or []:
            if cp.get("name") == target and (cp.get("protocol") or "TCP") == proto:
                return int(cp["containerPort"])
    return None


_Ports = tuple[tuple[str, int, str, str | None], ...]


def _ports(svc: Mapping[str, Any], pod: Mapping[str, Any]) -> _Ports:
    out = []
    for sp in (svc.get("spec") or {}).get("ports") or []:
        n = find_port(pod, sp)
        if n is not None:
            out.append((str(sp.get("name") or ""), n, str(sp.get("protocol") or "TCP"), sp.get("appProtocol")))
    return tuple(out)


def _endpoint(svc: Mapping[str, Any], pod: Mapping[str, Any], address: str, zones: Mapping[str, str]) -> Obj:
    spec = svc.get("spec") or {}
    serving = pod_ready(pod)
    terminating = deleting(pod)
    ready = bool(spec.get("publishNotReadyAddresses")) or (serving and not terminating)
    ep: Obj = {
        "addresses": [address],
        "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
    }
    pspec = pod.get("spec") or {}
    if pspec.get("hostname") and pspec.get("subdomain") == name(svc):
        ep["hostname"] = pspec["hostname"]
    if node_name(pod):
        ep["nodeName"] = node_name(pod)
        if zones.get(node_name(pod)):
            ep["zone"] = zones[node_name(pod)]
    ep["targetRef"] = {"kind": "Pod", "namespace": namespace(pod), "name": name(pod), "uid": uid(pod)}
    return ep


def _suffix(ident: Any) -> str:
    digest = hashlib.sha256(json.dumps(ident).encode()).digest()[:5]
    return "".join(SAFE_ALPHABET[b % len(SAFE_ALPHABET)] for b in digest)


def desired_slices(svc: Obj, pods: Sequence[Obj], zones: Mapping[str, str] | None = None) -> list[Obj]:
    """The slices ``svc`` should have (empty without a selector); ``zones``: node name → zone."""
    sel = selector_of(svc)
    if sel is None:
        return []
    zones = zones or {}
    spec = svc.get("spec") or {}
    ns, svc_name = namespace(svc), name(svc)
    slice_labels = {k: v for k, v in labels(svc).items() if k not in (SERVICE_NAME, MANAGED_BY)}
    if spec.get("clusterIP") == "None":
        slice_labels[HEADLESS] = ""
    slice_labels[SERVICE_NAME] = svc_name
    slice_labels[MANAGED_BY] = CONTROLLER
    owner = new_controller_ref(svc, "Service", "v1")
    out: list[Obj] = []
    for family in spec.get("ipFamilies") or ["IPv4"]:
        groups: dict[str, tuple[_Ports, list[Obj]]] = {}
        for pod in sorted(pods, key=name):
            if namespace(pod) != ns or pod_terminal(pod) or any(labels(pod).get(k) != v for k, v in sel.items()):
                continue
            address = _address(pod, family)
            if address is None:
                continue
            ports = _ports(svc, pod)
            key = json.dumps(sorted(ports, key=lambda p: (p[0], p[2], p[1])))
            groups.setdefault(key, (ports, []))[1].append(_endpoint(svc, pod, address, zones))
        if not groups:
            groups["[]"] = ((), [])
        for _, (ports, endpoints) in sorted(groups.items()):
            chunks = [endpoints[i : i + MAX_ENDPOINTS] for i in range(0, len(endpoints), MAX_ENDPOINTS)] or [[]]
            for index, chunk in enumerate(chunks):
                suffix = _suffix([ns, svc_name, family, sorted(list(p[:3]) for p in ports), index])
                port_list = []
                for pname, number, proto, app in ports:
                    p: Obj = {"name": pname, "port": number, "protocol": proto}
                    if app:
                        p["appProtocol"] = app
                    port_list.append(p)
                out.append(
                    {
                        "apiVersion": "discovery.k8s.io/v1",
                        "kind": "EndpointSlice",
                        "metadata": {
                            "name": f"{svc_name[:58]}-{suffix}",
                            "namespace": ns,
                            "labels": dict(slice_labels),
                            "ownerReferences": [dict(owner)],
                        },
                        "addressType": family,
                        "endpoints": chunk,
                        # the controller writes null ports for a slice whose endpoints have none
                        "ports": port_list or None,
                    }
                )
    return out


def zones_of(nodes: Sequence[Obj]) -> dict[str, str]:
    return {name(n): labels(n)[ZONE] for n in nodes if labels(n).get(ZONE)}
