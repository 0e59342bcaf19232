"""EndpointSlices and the pod-template-hash over fleetnet's typed values (``model/kube``).

The controllers of a local cluster (``fleetnet.local.controllers``) decide over the API's objects
in ``fleetnet.plan.controllers``: ``endpointslices.desired_slices`` is the EndpointSlice
controller (ready, serving and terminating endpoints), ``deployment`` and ``replicaset`` the
workload controllers. What stays here is the typed form used where only ready endpoints matter:
EndpointSlice names ``<service>-<5 chars>`` with the ``kubernetes.io/service-name`` label, target
ports resolved by number or container port name, and the ``pod-template-hash`` of a template.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Sequence

from fleetnet.model.kube import (
    ENDPOINTSLICE_CONTROLLER,
    LABEL_HEADLESS,
    LABEL_MANAGED_BY,
    LABEL_SERVICE_NAME,
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
