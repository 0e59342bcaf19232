"""Default address plan of local clusters, and the overlap rule of ClusterMesh.

Pod CIDRs must be unique and non-overlapping across a mesh (Cilium setup.rst); each local cluster
gets a /16 split into per-node /24s by default. The underlay (the flat network) uses 100.64.0.0/10
space so it can never collide with pod or service ranges.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

from fleetnet.errors import InvalidInput

MAX_LOCAL_CLUSTERS = 250


def default_pod_cidr(index: int) -> str:
    _check_index(index)
    return f"10.{index}.0.0/16"


def default_service_cidr(index: int) -> str:
    _check_index(index)
    return f"172.16.{index}.0/24"


def underlay_subnet(underlay_index: int) -> str:
    if not 0 <= underlay_index < 60:
        raise InvalidInput("at most 60 underlays can exist in one fleet.")
    return f"100.{64 + underlay_index}.0.0/16"


def _check_index(index: int) -> None:
    if not 1 <= index <= MAX_LOCAL_CLUSTERS:
        raise InvalidInput(f"a fleet holds at most {MAX_LOCAL_CLUSTERS} local clusters with default address ranges.")


def check_cidr(text: str, what: str) -> str:
    try:
        net = ipaddress.IPv4Network(text, strict=True)
    except ValueError as e:
        raise InvalidInput(f"{what} {text!r} is not an IPv4 network in CIDR form (for example 10.1.0.0/16).") from e
    return str(net)


def node_cidrs(pod_cidr: str, nodes: int) -> list[str]:
    """Split a cluster's pod CIDR into equal per-node blocks (/24 when the cluster range allows it)."""
    net = ipaddress.IPv4Network(pod_cidr)
    new_prefix = max(net.prefixlen, 24)
    while 2 ** (new_prefix - net.prefixlen) < nodes:
        new_prefix += 1
    if new_prefix > 28:
        raise InvalidInput(f"pod CIDR {pod_cidr} is too small for {nodes} nodes: give each node at least a /28.")
    subnets = net.subnets(new_prefix=new_prefix)
    return [str(next(subnets)) for _ in range(nodes)]


def overlaps(a: str, b: str) -> bool:
    return ipaddress.IPv4Network(a).overlaps(ipaddress.IPv4Network(b))


def overlapping(cidr: str, others: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[str]:
    """Names (from name → cidr pairs) whose CIDR overlaps ``cidr``."""
    items = others.items() if isinstance(others, Mapping) else others
    return sorted(name for name, other in items if overlaps(cidr, other))
