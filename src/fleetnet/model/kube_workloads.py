"""Strict reading of the workload kinds: Pod and Deployment, with their pod specs and containers.

Pods run one of the built-in images only (``SUPPORTED_IMAGES``); a Pod's status is read back
(leniently) only for stored objects, which fleetnet's own controllers write.
"""

from __future__ import annotations

import re
from typing import Any

from fleetnet.model.kube_fields import (
    _TOP,
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
from fleetnet.model.kube_names import _LABEL_RULE, is_dns1123_label, is_dns1123_subdomain, is_iana_svc_name
from fleetnet.model.kube_types import (
    SUPPORTED_IMAGES,
    Container,
    ContainerPort,
    Deployment,
    KubeObject,
    Pod,
    PodSpec,
    PodStatus,
    PodTemplate,
)

_IMAGE = re.compile(r"^(?P<repo>[a-z0-9./-]+?)(:(?P<tag>[\w][\w.-]{0,127}))?$")


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
