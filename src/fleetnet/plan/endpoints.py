"""What the Deployment and EndpointSlice controllers of a local cluster decide, as pure functions.

A local cluster has no kube-controller-manager; its agent runs these decisions instead and writes
the results into the object store. They follow Kubernetes where users can see the difference:
pod names ``<deployment>-<template hash>-<5 chars>``, the ``pod-template-hash`` label, EndpointSlice
names ``<service>-<5 chars>`` with the ``kubernetes.io/service-name`` label, target ports resolved
by number or container port name, and pods spread evenly over nodes.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

from fleetnet.model.kube import (
    ENDPOINTSLICE_CONTROLLER,
    LABEL_HEADLESS,
    LABEL_MANAGED_BY,
    LABEL_POD_TEMPLATE_HASH,
    LABEL_SERVICE_NAME,
    Deployment,
    Endpoint,
    EndpointPort,
    EndpointSlice,
    ObjectMeta,
    Pod,
    PodTemplate,
    Service,
    ServicePort,
    matches,
)

# k8s.io/apimachinery/pkg/util/rand: no vowels (no words) and no look-alike characters
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
MAX_ENDPOINTS_PER_SLICE = 100
# generateName truncates the base so that base + 5 random characters fit a DNS label
_MAX_GENERATED_BASE = 63 - 5


def _safe_encode(data: bytes) -> str:
    return "".join(SAFE_ALPHABET[b % len(SAFE_ALPHABET)] for b in data)


def _generated_name(base: str, suffix: str) -> str:
    return base[:_MAX_GENERATED_BASE] + suffix


def pod_template_hash(template: PodTemplate) -> str:
    """The ``pod-template-hash`` of a template: FNV-32a of its JSON, then the decimal digits in the
    safe alphabet, as ``controller.ComputeHash`` does (up to 10 characters)."""
    data = json.dumps(template.to_dict(), sort_keys=True, separators=(",", ":")).encode()
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return _safe_encode(str(h).encode())


# ---------------------------------------------------------------------------------------------
# EndpointSlices


def _resolve_port(sp: ServicePort, pod: Pod) -> int | None:
    # podutil.FindPort: a number is used as is; a name must be a container port of the same protocol
    if isinstance(sp.target_port, int):
        return sp.target_port
    for container in pod.spec.containers:
        for cp in container.ports:
            if cp.name == sp.target_port and cp.protocol == sp.protocol:
                return cp.container_port
    return None


def _is_ipv4(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).version == 4
    except ValueError:
        return False


def endpoint_slices(svc: Service, pods: Sequence[Pod]) -> list[EndpointSlice]:
    """The EndpointSlices of ``svc``: its ready pods (same namespace, labels matching the selector,
    with an IPv4 address), grouped by their resolved ports, at most 100 endpoints per slice. A
    Service without a selector gets none (its slices are someone else's); a selector matching no
    ready pod gets one empty slice, as the EndpointSlice controller writes."""
    if not svc.selector:
        return []
    namespace = svc.meta.namespace or "default"
    groups: dict[tuple[EndpointPort, ...], list[Endpoint]] = {}
    for pod in sorted(pods, key=lambda p: p.meta.name):
        if (pod.meta.namespace or "default") != namespace or not matches(svc.selector, pod.meta.labels):
            continue
        if not pod.ready or not pod.ip or not _is_ipv4(pod.ip):
            continue
        ports: list[EndpointPort] = []
        for sp in svc.ports:
            port = _resolve_port(sp, pod)
            if port is not None:
                ports.append(EndpointPort(sp.name, port, sp.protocol))
        key = tuple(sorted(ports, key=lambda p: (p.name, p.protocol, p.port)))
        groups.setdefault(key, []).append(
            Endpoint(
                addresses=(pod.ip,),
                ready=True,
                serving=True,
                terminating=False,
                node_name=pod.spec.node_name,
                target_pod=pod.meta.name,
            )
        )
    if not groups:
        groups[()] = []
    labels = {k: v for k, v in svc.meta.labels.items() if k not in (LABEL_SERVICE_NAME, LABEL_MANAGED_BY)}
    labels[LABEL_SERVICE_NAME] = svc.meta.name
    labels[LABEL_MANAGED_BY] = ENDPOINTSLICE_CONTROLLER
    if svc.headless:
        labels[LABEL_HEADLESS] = ""
    out: list[EndpointSlice] = []
    for ports_key, endpoints in sorted(groups.items(), key=lambda kv: [(p.name, p.protocol, p.port) for p in kv[0]]):
        chunks = [endpoints[i : i + MAX_ENDPOINTS_PER_SLICE] for i in range(0, len(endpoints), MAX_ENDPOINTS_PER_SLICE)]
        for index, chunk in enumerate(chunks or [[]]):
            ident = json.dumps([namespace, svc.meta.name, [(p.name, p.protocol, p.port) for p in ports_key], index])
            suffix = _safe_encode(hashlib.sha256(ident.encode()).digest()[:5])
            meta = ObjectMeta(name=_generated_name(f"{svc.meta.name}-", suffix), namespace=namespace, labels=labels)
            out.append(EndpointSlice(meta=meta, endpoints=tuple(chunk), ports=ports_key))
    return out


# ---------------------------------------------------------------------------------------------
# Deployments


def _owned(deploy: Deployment, pod: Pod) -> bool:
    h = pod.meta.labels.get(LABEL_POD_TEMPLATE_HASH)
    return (
        h is not None
        and (pod.meta.namespace or "default") == (deploy.meta.namespace or "default")
        and matches(deploy.selector, pod.meta.labels)
        and pod.meta.name.startswith(f"{deploy.meta.name}-{h}-"[:_MAX_GENERATED_BASE])
    )


def deployment_pods(
    deploy: Deployment,
    nodes: Sequence[str],
    existing: Sequence[Pod],
    rng: random.Random | None = None,
) -> tuple[list[Pod], list[Pod]]:
    """(pods to create, pods to delete) to bring ``deploy`` to its desired state.

    ``existing`` are the cluster's pods in creation order (oldest first); only those this
    Deployment made are considered (same namespace, selector, and a name made from the Deployment
    name and their ``pod-template-hash``). Pods of an older template, or on a node not in
    ``nodes``, are replaced. Scaling up places each new pod on the least-loaded node (ties in
    ``nodes`` order); scaling down removes from the most-loaded node, newest first, so the pod
    counts of any two nodes never differ by more than one. ``rng`` makes pod names reproducible.
    """
    rng = rng or random.Random()
    template_hash = pod_template_hash(deploy.template)
    node_set = set(nodes)
    owned = [p for p in existing if _owned(deploy, p)]
    keep: list[Pod] = []
    delete: list[Pod] = []
    for pod in owned:
        current = pod.meta.labels.get(LABEL_POD_TEMPLATE_HASH) == template_hash
        if current and pod.spec.node_name in node_set:
            keep.append(pod)
        else:
            delete.append(pod)
    load = Counter({n: 0 for n in nodes})
    load.update(p.spec.node_name for p in keep if p.spec.node_name is not None)
    order = {n: i for i, n in enumerate(nodes)}
    while len(keep) > deploy.replicas:
        busiest = max(load[n] for n in nodes)
        victim = next(p for p in reversed(keep) if p.spec.node_name is not None and load[p.spec.node_name] == busiest)
        keep.remove(victim)
        delete.append(victim)
        load[victim.spec.node_name or ""] -= 1
    create: list[Pod] = []
    taken = {p.meta.name for p in existing}
    base = f"{deploy.meta.name}-{template_hash}-"
    labels = {**deploy.template.labels, LABEL_POD_TEMPLATE_HASH: template_hash}
    for _ in range(deploy.replicas - len(keep)):
        node: str | None = None
        if nodes:
            node = min(nodes, key=lambda n: (load[n], order[n]))
            load[node] += 1
        name = _generated_name(base, "".join(rng.choice(SAFE_ALPHABET) for _ in range(5)))
        while name in taken:
            name = _generated_name(base, "".join(rng.choice(SAFE_ALPHABET) for _ in range(5)))
        taken.add(name)
        meta = ObjectMeta(
            name=name,
            namespace=deploy.meta.namespace or "default",
            labels=labels,
            annotations=deploy.template.annotations,
        )
        create.append(Pod(meta=meta, spec=replace(deploy.template.spec, node_name=node)))
    return create, delete
