"""ClusterIP allocation, as kube-apiserver's service IP allocator does it at Service create.

The first address of the range is the ``kubernetes`` Service's; others are handed out in order
(deterministic, so a re-created fleet gets the same VIPs). A requested address must be inside the
range and free. Pure: the caller passes the addresses in use.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from fleetnet.kube.apiserver.validate import invalid
from fleetnet.kube.status import Cause


class AllocationError(Exception):
    """``cause`` set: the requested address is refused (422); None: the range is full (500)."""

    def __init__(self, cause: Cause | None) -> None:
        super().__init__(cause.text() if cause else "failed to allocate a serviceIP: range is full")
        self.cause = cause


def first_ip(service_cidr: str) -> str:
    return str(next(ipaddress.IPv4Network(service_cidr).hosts()))


def allocate(service_cidr: str, used: Iterable[str], requested: str | None = None) -> str:
    """A free ClusterIP (or ``requested`` after checking it); raises ``AllocationError``."""
    net = ipaddress.IPv4Network(service_cidr)
    taken = set(used)
    if requested:
        try:
            ip = ipaddress.IPv4Address(requested)
        except ValueError:
            raise _invalid(requested, "must be a valid IP address") from None
        if ip not in net or ip in (net.network_address, net.broadcast_address):
            raise _invalid(
                requested,
                f"failed to allocate IP {requested}: the provided IP ({requested}) is not in the valid range. "
                f"The range of valid IPs is {service_cidr}",
            )
        if requested in taken:
            raise _invalid(requested, f"failed to allocate IP {requested}: provided IP is already allocated")
        return requested
    for i, host in enumerate(net.hosts()):
        if i == 0:
            continue  # the kubernetes Service's
        if str(host) not in taken:
            return str(host)
    raise AllocationError(None)


def _invalid(value: str, detail: str) -> AllocationError:
    return AllocationError(invalid("spec.clusterIPs[0]", value, detail))
