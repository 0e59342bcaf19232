"""Strict reading of Kubernetes manifests into the value types of ``kube_types``.

``kubectl apply -f`` on a local cluster must refuse what a real cluster would refuse, and refuse
what fleetnet cannot emulate, before anything is applied: so every document is checked field by
field and the first problem raises ``InvalidInput`` with one sentence naming the document and the
field path. Fields that ``kubectl get -o yaml`` adds (uid, resourceVersion, status, defaults) are
accepted and ignored so that a manifest taken from a real cluster applies unchanged.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NoReturn

import yaml

from fleetnet.errors import InvalidInput
from fleetnet.model.kube_types import (
    CCNP_KIND,
    CNP_KIND,
    SUPPORTED_IMAGES,
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

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_IANA_SVC_NAME = re.compile(r"^[-a-z0-9]+$")
_IMAGE = re.compile(r"^(?P<repo>[a-z0-9./-]+?)(:(?P<tag>[\w][\w.-]{0,127}))?$")
PROTOCOLS = ("TCP", "UDP", "SCTP")

_META_FIELDS = {"name", "namespace", "labels", "annotations"}
# written by the API server; meaningless in a manifest, so a manifest copied from a cluster still applies
_META_IGNORED = {"uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink"}


def is_dns1123_label(s: str) -> bool:
    return len(s) <= 63 and bool(_DNS1123_LABEL.match(s))


def is_dns1123_subdomain(s: str) -> bool:
    return len(s) <= 253 and bool(_DNS1123_SUBDOMAIN.match(s))


def is_dns1035_label(s: str) -> bool:
    return len(s) <= 63 and bool(_DNS1035_LABEL.match(s))


def is_iana_svc_name(s: str) -> bool:
    """A named port (``IANA_SVC_NAME``): ≤ 15 chars, lower-case alphanumerics and '-', with a letter."""
    return (
        0 < len(s) <= 15
        and bool(_IANA_SVC_NAME.match(s))
        and re.search(r"[a-z]", s) is not None
        and "--" not in s
        and not s.startswith("-")
        and not s.endswith("-")
    )


def label_key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid label or annotation key (``[prefix/]name``), or None."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and not prefix:
        return "has an empty prefix before '/'"
    if prefix and not is_dns1123_subdomain(prefix):
        return f"has prefix {prefix!r}, which is not a DNS-1123 subdomain"
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        return (
            "must be at most 63 characters of letters, digits, '-', '_' and '.', "
            "starting and ending with a letter or digit, after an optional DNS prefix and '/'"
        )
    return None


def label_value_problem(value: str) -> str | None:
    if value and (len(value) > 63 or not _QUALIFIED_NAME.match(value)):
        return (
            "must be empty or at most 63 characters of letters, digits, '-', '_' and '.', "
            "starting and ending with a letter or digit"
        )
    return None


class _Doc:
    """Where a document is, so that every error sentence can name it."""

    def __init__(self, source: str, index: int, item: int | None = None) -> None:
        self.source = source
        self.index = index
        self.item = item
        self.kind: str | None = None
        self.name: str | None = None
        self.namespace: str | None = None

    def where(self) -> str:
        out = f"{self.source}, document {self.index}"
        if self.item is not None:
            out += f" item {self.item}"
        if self.kind:
            what = self.kind
            if self.name:
                what += f" {self.namespace}/{self.name}" if self.namespace else f" {self.name}"
            out += f" ({what})"
        return out

    def fail(self, path: str, message: str) -> NoReturn:
        subject = f"{path} " if path else ""
        raise InvalidInput(f"{self.where()}: {subject}{message}.")


def _join(path: str, name: str | int) -> str:
    if isinstance(name, int):
        return f"{path}[{name}]"
    return f"{path}.{name}" if path else name


def _describe(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "a mapping"
    return type(v).__name__


def _mapping(
    d: _Doc, v: Any, path: str, allowed: set[str], ignored: set[str] | frozenset[str] = frozenset()
) -> dict[str, Any]:
    if not isinstance(v, dict):
        d.fail(path, f"must be a mapping, not {_describe(v)}")
    for k in v:
        if not isinstance(k, str):
            d.fail(path, f"has a key {k!r} that is not a string")
        if k not in allowed and k not in ignored:
            supported = ", ".join(sorted(allowed))
            d.fail(_join(path, k), f"is not a supported field (supported here: {supported})")
    return {k: v[k] for k in v if k in allowed}


def _str(d: _Doc, v: Any, path: str) -> str:
    if not isinstance(v, str):
        hint = " (quote it)" if isinstance(v, bool | int | float) else ""
        d.fail(path, f"must be a string, not {_describe(v)}{hint}")
    return v


def _int(d: _Doc, v: Any, path: str, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        d.fail(path, f"must be an integer, not {_describe(v)}")
    if not lo <= v <= hi:
        d.fail(path, f"must be an integer from {lo} to {hi}, got {v}")
    return v


def _bool(d: _Doc, v: Any, path: str) -> bool:
    if not isinstance(v, bool):
        d.fail(path, f"must be true or false, not {_describe(v)}")
    return v


def _list(d: _Doc, v: Any, path: str) -> list[Any]:
    if v is None:
        return []
    if not isinstance(v, list):
        d.fail(path, f"must be a list, not {_describe(v)}")
    return v


def _labels(d: _Doc, v: Any, path: str, *, values_are_labels: bool = True) -> dict[str, str]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        d.fail(path, f"must be a mapping of strings, not {_describe(v)}")
    out: dict[str, str] = {}
    for k, val in v.items():
        key = _str(d, k, path + " key")
        problem = label_key_problem(key)
        if problem:
            d.fail(f"{path} key {key!r}", problem)
        value = _str(d, val, _join(path, key))
        if values_are_labels:
            problem = label_value_problem(value)
            if problem:
                d.fail(_join(path, key), f"value {value!r} {problem}")
        out[key] = value
    return out


def _protocol(d: _Doc, v: Any, path: str) -> str:
    if v is None:
        return "TCP"
    p = _str(d, v, path)
    if p not in PROTOCOLS:
        d.fail(path, f"must be one of {', '.join(PROTOCOLS)}, got {p!r}")
    return p


def _fixed(d: _Doc, obj: Mapping[str, Any], path: str, name: str, accepted: tuple[Any, ...]) -> None:
    """A field accepted only at its default value: fleetnet emulates that value and no other."""
    if name in obj and obj[name] not in accepted:
        shown = " or ".join(repr(a) for a in accepted)
        d.fail(_join(path, name), f"is {obj[name]!r}, but fleetnet supports only {shown}")


def _metadata(d: _Doc, v: Any, *, namespaced: bool, name_rule: str, default_namespace: str | None) -> ObjectMeta:
    if v is None:
        d.fail("metadata.name", "is required")
    m = _mapping(d, v, "metadata", _META_FIELDS, _META_IGNORED)
    if m.get("name") in (None, ""):
        d.fail("metadata.name", "is required")
    name = _str(d, m["name"], "metadata.name")
    check, rule_text = _NAME_RULES[name_rule]
    if not check(name):
        d.fail("metadata.name", f"{name!r} is not a valid name: {rule_text}")
    d.name = name
    namespace: str | None = None
    if namespaced:
        if m.get("namespace") not in (None, ""):
            namespace = _str(d, m["namespace"], "metadata.namespace")
            if not is_dns1123_label(namespace):
                d.fail("metadata.namespace", f"{namespace!r} is not a valid namespace name: {_LABEL_RULE}")
            if default_namespace is not None and namespace != default_namespace:
                d.fail(
                    "metadata.namespace",
                    f"is {namespace!r}, which does not match the namespace {default_namespace!r} "
                    f"given for this apply; remove one of them",
                )
        else:
            namespace = default_namespace or "default"
        d.namespace = namespace
    elif m.get("namespace") not in (None, ""):
        d.fail("metadata.namespace", f"must not be set: {d.kind} is not namespaced")
    labels = _labels(d, m.get("labels"), "metadata.labels")
    annotations = _labels(d, m.get("annotations"), "metadata.annotations", values_are_labels=False)
    return ObjectMeta(name=name, namespace=namespace, labels=labels, annotations=annotations)


_LABEL_RULE = "use at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit"
_NAME_RULES: dict[str, tuple[Callable[[str], bool], str]] = {
    "label": (is_dns1123_label, _LABEL_RULE),
    "dns1035": (
        is_dns1035_label,
        "use at most 63 lower-case letters, digits and '-', starting with a letter and ending with a letter or digit",
    ),
    "subdomain": (
        is_dns1123_subdomain,
        "use at most 253 lower-case letters, digits, '-' and '.', each dot-separated part starting and ending "
        "with a letter or digit",
    ),
}


def _container_port(d: _Doc, v: Any, path: str) -> ContainerPort:
    m = _mapping(d, v, path, {"containerPort", "protocol", "name"})
    if "containerPort" not in m:
        d.fail(_join(path, "containerPort"), "is required")
    port = _int(d, m["containerPort"], _join(path, "containerPort"), 1, 65535)
    name: str | None = None
    if m.get("name") is not None:
        name = _str(d, m["name"], _join(path, "name"))
        if not is_iana_svc_name(name):
            d.fail(
                _join(path, "name"),
                f"{name!r} is not a valid port name: use at most 15 lower-case letters, digits and '-', "
                "with at least one letter",
            )
    return ContainerPort(port, _protocol(d, m.get("protocol"), _join(path, "protocol")), name)


def _container(d: _Doc, v: Any, path: str) -> Container:
    m = _mapping(
        d,
        v,
        path,
        {"name", "image", "args", "ports"},
        {"imagePullPolicy", "resources", "terminationMessagePath", "terminationMessagePolicy"},
    )
    if m.get("name") in (None, ""):
        d.fail(_join(path, "name"), "is required")
    name = _str(d, m["name"], _join(path, "name"))
    if not is_dns1123_label(name):
        d.fail(_join(path, "name"), f"{name!r} is not a valid container name: {_LABEL_RULE}")
    if m.get("image") in (None, ""):
        d.fail(_join(path, "image"), "is required")
    image = _str(d, m["image"], _join(path, "image"))
    match = _IMAGE.match(image)
    if not match or match.group("repo") not in SUPPORTED_IMAGES:
        d.fail(
            _join(path, "image"),
            f"{image!r} is not supported; use fleetnet/echo (an echo server on every containerPort) "
            "or fleetnet/client (an idle pod to exec and probe from)",
        )
    args = tuple(
        _str(d, a, _join(_join(path, "args"), i)) for i, a in enumerate(_list(d, m.get("args"), _join(path, "args")))
    )
    ports: list[ContainerPort] = []
    names: set[str] = set()
    for i, p in enumerate(_list(d, m.get("ports"), _join(path, "ports"))):
        port = _container_port(d, p, _join(_join(path, "ports"), i))
        if port.name:
            if port.name in names:
                d.fail(_join(_join(_join(path, "ports"), i), "name"), f"{port.name!r} is used twice")
            names.add(port.name)
        ports.append(port)
    return Container(name=name, image=image, args=args, ports=tuple(ports))


_POD_SPEC_IGNORED = {
    "restartPolicy",
    "terminationGracePeriodSeconds",
    "dnsPolicy",
    "schedulerName",
    "securityContext",
    "enableServiceLinks",
    "priority",
    "preemptionPolicy",
    "tolerations",
}


def _pod_spec(d: _Doc, v: Any, path: str, *, allow_node_name: bool) -> PodSpec:
    allowed = {"containers", "nodeName", "serviceAccountName", "serviceAccount"}
    m = _mapping(d, v, path, allowed, _POD_SPEC_IGNORED)
    # the service account is part of a pod's security identity; only the default one is emulated
    _fixed(d, m, path, "serviceAccountName", ("default",))
    _fixed(d, m, path, "serviceAccount", ("default",))
    containers_path = _join(path, "containers")
    items = _list(d, m.get("containers"), containers_path)
    if not items:
        d.fail(containers_path, "must list at least one container")
    containers: list[Container] = []
    seen: set[str] = set()
    for i, c in enumerate(items):
        container = _container(d, c, _join(containers_path, i))
        if container.name in seen:
            d.fail(_join(_join(containers_path, i), "name"), f"{container.name!r} is used twice")
        seen.add(container.name)
        containers.append(container)
    node_name: str | None = None
    if m.get("nodeName") not in (None, ""):
        if not allow_node_name:
            d.fail(
                _join(path, "nodeName"),
                "is not supported in a Deployment: fleetnet spreads a Deployment's pods over the nodes itself",
            )
        node_name = _str(d, m["nodeName"], _join(path, "nodeName"))
        if not is_dns1123_subdomain(node_name):
            d.fail(_join(path, "nodeName"), f"{node_name!r} is not a valid node name")
    return PodSpec(containers=tuple(containers), node_name=node_name)


def _pod_status(v: Any) -> PodStatus | None:
    # stored objects only: written by fleetnet's own controllers, read leniently
    if not isinstance(v, dict):
        return None
    ready = any(
        isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True"
        for c in v.get("conditions") or []
    )
    phase = v.get("phase")
    pod_ip = v.get("podIP")
    host_ip = v.get("hostIP")
    return PodStatus(
        phase=phase if isinstance(phase, str) else "Pending",
        pod_ip=pod_ip if isinstance(pod_ip, str) and pod_ip else None,
        host_ip=host_ip if isinstance(host_ip, str) and host_ip else None,
        ready=ready,
    )


_TOP = {"apiVersion", "kind", "metadata", "spec"}


def _parse_namespace(d: _Doc, doc: dict[str, Any], ns: str | None, stored: bool) -> KubeObject:
    meta = _metadata(d, doc.get("metadata"), namespaced=False, name_rule="label", default_namespace=None)
    _mapping(d, doc, "", _TOP, {"status"})
    if doc.get("spec") is not None:
        _mapping(d, doc["spec"], "spec", set(), {"finalizers"})
    return Namespace(meta)


def _parse_pod(d: _Doc, doc: dict[str, Any], ns: str | None, stored: bool) -> KubeObject:
    meta = _metadata(d, doc.get("metadata"), namespaced=True, name_rule="subdomain", default_namespace=ns)
    _mapping(d, doc, "", _TOP, {"status"})
    if doc.get("spec") is None:
        d.fail("spec", "is required")
    spec = _pod_spec(d, doc["spec"], "spec", allow_node_name=True)
    return Pod(meta, spec, _pod_status(doc.get("status")) if stored else None)


def _parse_deployment(d: _Doc, doc: dict[str, Any], ns: str | None, stored: bool) -> KubeObject:
    meta = _metadata(d, doc.get("metadata"), namespaced=True, name_rule="subdomain", default_namespace=ns)
    _mapping(d, doc, "", _TOP, {"status"})
    if doc.get("spec") is None:
        d.fail("spec", "is required")
    spec = _mapping(
        d,
        doc["spec"],
        "spec",
        {"replicas", "selector", "template"},
        {"strategy", "revisionHistoryLimit", "progressDeadlineSeconds", "minReadySeconds"},
    )
    replicas = 1 if spec.get("replicas") is None else _int(d, spec["replicas"], "spec.replicas", 0, 2**31 - 1)
    if spec.get("selector") is None:
        d.fail("spec.selector", "is required")
    sel = _mapping(d, spec["selector"], "spec.selector", {"matchLabels", "matchExpressions"})
    if sel.get("matchExpressions"):
        d.fail("spec.selector.matchExpressions", "is not supported; select pods with matchLabels")
    selector = _labels(d, sel.get("matchLabels"), "spec.selector.matchLabels")
    if not selector:
        d.fail("spec.selector.matchLabels", "must select at least one label")
    if spec.get("template") is None:
        d.fail("spec.template", "is required")
    tpl = _mapping(d, spec["template"], "spec.template", {"metadata", "spec"})
    tmeta = _mapping(
        d, tpl.get("metadata") or {}, "spec.template.metadata", {"labels", "annotations"}, {"creationTimestamp"}
    )
    labels = _labels(d, tmeta.get("labels"), "spec.template.metadata.labels")
    annotations = _labels(d, tmeta.get("annotations"), "spec.template.metadata.annotations", values_are_labels=False)
    missing = [f"{k}={v}" for k, v in sorted(selector.items()) if labels.get(k) != v]
    if missing:
        d.fail(
            "spec.selector.matchLabels",
            f"does not match spec.template.metadata.labels (missing {', '.join(missing)}); "
            "the template's labels must include every selector label",
        )
    if tpl.get("spec") is None:
        d.fail("spec.template.spec", "is required")
    pod_spec = _pod_spec(d, tpl["spec"], "spec.template.spec", allow_node_name=False)
    return Deployment(meta, replicas, selector, PodTemplate(labels=labels, annotations=annotations, spec=pod_spec))


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


def _parse_policy(d: _Doc, doc: dict[str, Any], ns: str | None, stored: bool) -> KubeObject:
    namespaced = d.kind == CNP_KIND
    meta = _metadata(d, doc.get("metadata"), namespaced=namespaced, name_rule="subdomain", default_namespace=ns)
    _mapping(d, doc, "", _TOP | {"specs"}, {"status"})
    assert d.kind is not None
    # plan/policy validates the rules; here they are carried as they are
    return PolicyObject(kind=d.kind, meta=meta, spec=doc.get("spec"), specs=doc.get("specs"))


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


_Parser = Callable[[_Doc, dict[str, Any], str | None, bool], KubeObject]
_KINDS: dict[str, tuple[str, _Parser]] = {
    "Namespace": ("v1", _parse_namespace),
    "Pod": ("v1", _parse_pod),
    "Deployment": ("apps/v1", _parse_deployment),
    "Service": ("v1", _parse_service),
    CNP_KIND: ("cilium.io/v2", _parse_policy),
    CCNP_KIND: ("cilium.io/v2", _parse_policy),
}
# kinds that only fleetnet's own controllers write
_STORED_KINDS: dict[str, tuple[str, _Parser]] = {"EndpointSlice": ("discovery.k8s.io/v1", _parse_endpointslice)}


def _supported_kinds() -> str:
    return ", ".join(f"{k} ({v[0]})" for k, v in _KINDS.items())


def parse_document(doc: Any, d: _Doc, *, namespace: str | None = None, stored: bool = False) -> Iterator[KubeObject]:
    """Objects of one document (a ``v1 List`` yields its items)."""
    if not isinstance(doc, dict):
        d.fail("", f"must be a mapping with apiVersion and kind, not {_describe(doc)}")
    kind = doc.get("kind")
    api_version = doc.get("apiVersion")
    if kind in (None, ""):
        d.fail("kind", "is required")
    if api_version in (None, ""):
        d.fail("apiVersion", "is required")
    kind = _str(d, kind, "kind")
    api_version = _str(d, api_version, "apiVersion")
    if kind == "List" and api_version == "v1" and d.item is None:
        _mapping(d, doc, "", {"apiVersion", "kind", "items"}, {"metadata"})
        for i, item in enumerate(_list(d, doc.get("items"), "items")):
            sub = _Doc(d.source, d.index, i)
            yield from parse_document(item, sub, namespace=namespace, stored=stored)
        return
    table = {**_KINDS, **_STORED_KINDS} if stored else _KINDS
    if kind not in table:
        d.fail("", f"kind {kind!r} is not supported; fleetnet accepts {_supported_kinds()}")
    d.kind = kind
    want, parser = table[kind]
    if api_version != want:
        d.fail("apiVersion", f"is {api_version!r}, but {kind} is served as {want}")
    yield parser(d, doc, namespace, stored)


def parse_manifests(text: str, source: str, *, namespace: str | None = None) -> list[KubeObject]:
    """Every object of a multi-document YAML stream, or ``InvalidInput`` at the first problem.

    ``namespace`` is ``kubectl -n``: the namespace for objects that name none, and the only one
    allowed for those that do. Empty documents are skipped, as kubectl does.
    """
    out: list[KubeObject] = []
    index = 0
    try:
        for doc in yaml.load_all(text, Loader=yaml.CSafeLoader):
            index += 1
            if doc is None:
                continue
            out.extend(parse_document(doc, _Doc(source, index), namespace=namespace))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = e.problem or e.context or "cannot be parsed"
        raise InvalidInput(f"{source}: malformed YAML{where}: {problem}.") from e
    except yaml.YAMLError as e:
        raise InvalidInput(f"{source}: malformed YAML: {e}.") from e
    return out


def object_from_dict(data: Mapping[str, Any]) -> KubeObject:
    """One object as the object store keeps it (``to_dict()`` form, with status and EndpointSlices)."""
    objs = list(parse_document(dict(data), _Doc("stored object", 1), stored=True))
    if len(objs) != 1:
        raise InvalidInput("a stored object must be a single object, not a List.")
    return objs[0]
