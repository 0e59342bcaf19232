"""The Table a ``kubectl get`` asks for (``Accept: application/json;as=Table;g=meta.k8s.io;v=v1``):
the columns kube's printers give each kind, so kubectl's output reads as against any cluster.
Columns of priority 1 are shown only with ``-o wide``.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]
Cell = str | int
Column = tuple[str, str, int]  # name, type, priority

NONE = "<none>"


def human_duration(seconds: float) -> str:
    """kube's duration.HumanDuration: coarser as the age grows."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"  # a creation time ahead of ours by more than clock jitter
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m" if s % 60 == 0 else f"{m}m{s % 60}s"
    if m < 180:
        return f"{m}m"
    h = s // 3600
    if h < 8:
        return f"{h}h" if m % 60 == 0 else f"{h}h{m % 60}m"
    if h < 48:
        return f"{h}h"
    if h < 192:
        return f"{h // 24}d" if h % 24 == 0 else f"{h // 24}d{h % 24}h"
    d = h // 24
    if d < 365 * 2:
        return f"{d}d"
    y = d // 365
    if y < 8:
        return f"{y}y" if d % 365 == 0 else f"{y}y{d % 365}d"
    return f"{y}y"


def _time(ts: str | None) -> float | None:
    if not ts:
        return None
    try:
        return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def age(obj: Obj, now: float) -> str:
    t = _time((obj.get("metadata") or {}).get("creationTimestamp"))
    return "<unknown>" if t is None else human_duration(now - t)


def _md(o: Obj) -> Obj:
    return o.get("metadata") or {}


def _spec(o: Obj) -> Obj:
    return o.get("spec") or {}


def _status(o: Obj) -> Obj:
    return o.get("status") or {}


def _pod_status(o: Obj) -> str:
    st = _status(o)
    reason = st.get("reason") or st.get("phase") or "Unknown"
    for cs in st.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif (state.get("terminated") or {}).get("reason"):
            reason = state["terminated"]["reason"]
    if _md(o).get("deletionTimestamp"):
        reason = "Terminating"
    return str(reason)


def _pod(o: Obj, now: float) -> list[Cell]:
    st = _status(o)
    css = st.get("containerStatuses") or []
    ready = sum(1 for c in css if c.get("ready"))
    total = len(_spec(o).get("containers") or [])
    restarts = sum(int(c.get("restartCount") or 0) for c in css)
    gates = {g.get("conditionType") for g in _spec(o).get("readinessGates") or []}
    gates_true = sum(1 for c in st.get("conditions") or [] if c.get("type") in gates and c.get("status") == "True")
    return [
        _md(o).get("name", ""),
        f"{ready}/{total}",
        _pod_status(o),
        restarts,
        age(o, now),
        st.get("podIP") or NONE,
        _spec(o).get("nodeName") or NONE,
        st.get("nominatedNodeName") or NONE,
        NONE if not gates else f"{gates_true}/{len(gates)}",
    ]


def _node(o: Obj, now: float) -> list[Cell]:
    st, labels = _status(o), _md(o).get("labels") or {}
    ready = next((c for c in st.get("conditions") or [] if c.get("type") == "Ready"), None)
    status = "Ready" if ready and ready.get("status") == "True" else ("NotReady" if ready else "Unknown")
    if _spec(o).get("unschedulable"):
        status += ",SchedulingDisabled"
    roles = {k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/")}
    roles |= {v for k, v in labels.items() if k == "kubernetes.io/role" and v}  # the older label kube still reads
    roles.discard("")
    addrs = {a.get("type"): a.get("address") for a in st.get("addresses") or []}
    info = st.get("nodeInfo") or {}
    return [
        _md(o).get("name", ""),
        status,
        ",".join(sorted(roles)) or NONE,
        age(o, now),
        info.get("kubeletVersion", ""),
        addrs.get("InternalIP") or NONE,
        addrs.get("ExternalIP") or NONE,
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


def _ports(spec: Obj) -> str:
    out = []
    for p in spec.get("ports") or []:
        s = str(p.get("port"))
        if p.get("nodePort"):
            s += f":{p['nodePort']}"
        out.append(f"{s}/{p.get('protocol', 'TCP')}")
    return ",".join(out) or NONE


def _selector(sel: Any) -> str:
    if not isinstance(sel, dict) or not sel:
        return NONE
    labels = sel.get("matchLabels") if "matchLabels" in sel or "matchExpressions" in sel else sel
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items())) or NONE


def _service(o: Obj, now: float) -> list[Cell]:
    spec = _spec(o)
    ext = spec.get("externalIPs") or [i.get("ip") for i in (_status(o).get("loadBalancer") or {}).get("ingress") or []]
    ext_ip = ",".join(x for x in ext if x) or ("<pending>" if spec.get("type") == "LoadBalancer" else NONE)
    return [
        _md(o).get("name", ""),
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP") or NONE,
        ext_ip,
        _ports(spec),
        age(o, now),
        _selector(spec.get("selector")),
    ]


def _containers(o: Obj) -> tuple[str, str]:
    cs = ((_spec(o).get("template") or {}).get("spec") or {}).get("containers") or []
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


def _deployment(o: Obj, now: float) -> list[Cell]:
    st, names_images = _status(o), _containers(o)
    return [
        _md(o).get("name", ""),
        f"{st.get('readyReplicas', 0)}/{_spec(o).get('replicas', 1)}",
        st.get("updatedReplicas", 0),
        st.get("availableReplicas", 0),
        age(o, now),
        *names_images,
        _selector(_spec(o).get("selector")),
    ]


def _replicaset(o: Obj, now: float) -> list[Cell]:
    st = _status(o)
    return [
        _md(o).get("name", ""),
        _spec(o).get("replicas", 1),
        st.get("replicas", 0),
        st.get("readyReplicas", 0),
        age(o, now),
        *_containers(o),
        _selector(_spec(o).get("selector")),
    ]


def _daemonset(o: Obj, now: float) -> list[Cell]:
    st = _status(o)
    node_sel = ((_spec(o).get("template") or {}).get("spec") or {}).get("nodeSelector")
    return [
        _md(o).get("name", ""),
        st.get("desiredNumberScheduled", 0),
        st.get("currentNumberScheduled", 0),
        st.get("numberReady", 0),
        st.get("updatedNumberScheduled", 0),
        st.get("numberAvailable", 0),
        _selector(node_sel),
        age(o, now),
        *_containers(o),
        _selector(_spec(o).get("selector")),
    ]


def _event(o: Obj, now: float) -> list[Cell]:
    last = o.get("lastTimestamp") or o.get("eventTime") or _md(o).get("creationTimestamp")
    t = _time(last)
    inv = o.get("involvedObject") or o.get("regarding") or {}
    return [
        "<unknown>" if t is None else human_duration(now - t),
        o.get("type", ""),
        o.get("reason", ""),
        f"{str(inv.get('kind', '')).lower()}/{inv.get('name', '')}",
        o.get("message", ""),
    ]


def _endpointslice(o: Obj, now: float) -> list[Cell]:
    ports = ",".join(str(p.get("port")) for p in o.get("ports") or []) or NONE
    addrs = [a for e in o.get("endpoints") or [] for a in e.get("addresses") or []]
    shown = ",".join(addrs[:3]) + (f" + {len(addrs) - 3} more..." if len(addrs) > 3 else "")
    return [_md(o).get("name", ""), o.get("addressType", ""), ports, shown or NONE, age(o, now)]


def _simple(extra: Callable[[Obj], list[Cell]]) -> Callable[[Obj, float], list[Cell]]:
    def row(o: Obj, now: float) -> list[Cell]:
        return [_md(o).get("name", ""), *extra(o), age(o, now)]

    return row


def _name_age(o: Obj, now: float) -> list[Cell]:
    return [_md(o).get("name", ""), age(o, now)]


def cols(spec: str) -> list[Column]:
    """Columns from ``"Name|Restarts:i|IP:w"``: ``:i`` an integer column, ``:w`` shown with -o wide."""
    out: list[Column] = []
    for c in spec.split("|"):
        name, _, flags = c.partition(":")
        out.append((name, "integer" if "i" in flags else "string", 1 if "w" in flags else 0))
    return out


PRINTERS: dict[str, tuple[list[Column], Callable[[Obj, float], list[Cell]]]] = {
    "Pod": (cols("Name|Ready|Status|Restarts:i|Age|IP:w|Node:w|Nominated Node:w|Readiness Gates:w"), _pod),
    "Node": (
        cols(
            "Name|Status|Roles|Age|Version|Internal-IP:w|External-IP:w|OS-Image:w|Kernel-Version:w|Container-Runtime:w"
        ),
        _node,
    ),
    "Namespace": (cols("Name|Status|Age"), _simple(lambda o: [_status(o).get("phase", "Active")])),
    "Service": (cols("Name|Type|Cluster-IP|External-IP|Port(s)|Age|Selector:w"), _service),
    "ConfigMap": (
        cols("Name|Data:i|Age"),
        _simple(lambda o: [len(o.get("data") or {}) + len(o.get("binaryData") or {})]),
    ),
    "Secret": (cols("Name|Type|Data:i|Age"), _simple(lambda o: [o.get("type", "Opaque"), len(o.get("data") or {})])),
    "ServiceAccount": (cols("Name|Secrets:i|Age"), _simple(lambda o: [len(o.get("secrets") or [])])),
    "Event": (cols("Last Seen|Type|Reason|Object|Message"), _event),
    "Deployment": (cols("Name|Ready|Up-to-date:i|Available:i|Age|Containers:w|Images:w|Selector:w"), _deployment),
    "ReplicaSet": (cols("Name|Desired:i|Current:i|Ready:i|Age|Containers:w|Images:w|Selector:w"), _replicaset),
    "DaemonSet": (
        cols(
            "Name|Desired:i|Current:i|Ready:i|Up-to-date:i|Available:i|Node Selector|Age|Containers:w|Images:w"
            "|Selector:w"
        ),
        _daemonset,
    ),
    "EndpointSlice": (cols("Name|AddressType|Ports|Endpoints|Age"), _endpointslice),
    "Lease": (cols("Name|Holder|Age"), _simple(lambda o: [_spec(o).get("holderIdentity") or ""])),
}
DEFAULT: tuple[list[Column], Callable[[Obj, float], list[Cell]]] = (cols("Name|Age"), _name_age)


def table(kind: str, objs: list[Obj], now: float, include_object: str = "Metadata") -> dict[str, Any]:
    columns, row = PRINTERS.get(kind, DEFAULT)
    defs = [
        {
            "name": name,
            "type": t,
            "format": "name" if name == "Name" else "",
            "description": "Name must be unique within a namespace." if name == "Name" else "",
            "priority": prio,
        }
        for name, t, prio in columns
    ]
    rows = []
    for o in objs:
        r: dict[str, Any] = {"cells": row(o, now)}
        if include_object == "Object":
            r["object"] = o
        elif include_object != "None":
            r["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": _md(o),
            }
        rows.append(r)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": defs, "rows": rows}
