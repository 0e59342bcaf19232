"""Prerequisites a member must meet before it is configured into a cross-cluster network.

Pure: each check looks at the member and the other members of the network and returns the one
sentence that explains a failure (reference azure-fleet.md §2.2 and cilium-clustermesh.md §2.4).
``plan/whatif.py`` runs these checks for both the what-if and the apply, so the what-if shows a
failing member as an ``Error`` row with the very sentence the apply records when the member ends
``Failed`` (the rest of the apply proceeds).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fleetnet.model.member import Member
from fleetnet.plan.cidr import overlaps
from fleetnet.plan.versions import MESH_MINIMUM_KUBERNETES

MIN_KUBERNETES = tuple(int(x) for x in MESH_MINIMUM_KUBERNETES.split("."))


def _minor(version: str) -> tuple[int, int] | None:
    try:
        major, minor = version.lstrip("v").split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        return None


def check_prerequisites(member: Member, peers: Sequence[Member], known_version: Callable[[str], bool]) -> str | None:
    """The first unmet prerequisite of ``member`` joining a network with ``peers``, or None.

    ``peers`` are the members it would be connected to: the network's members that stay, and the
    newcomers accepted before it.
    """
    loc = member.local
    if loc is not None:
        if loc.network_dataplane != "cilium":
            return (
                f"member {member.name} does not run the Cilium dataplane (network dataplane "
                f"{loc.network_dataplane!r}); cross-cluster networking needs Cilium."
            )
        if loc.routing_mode != "native":
            return (
                f"member {member.name} uses {loc.routing_mode} routing (an overlay with tunnels); "
                "cross-cluster networking needs native routing."
            )
        if loc.self_managed_clustermesh:
            return (
                f"member {member.name} already runs a self-managed Cilium ClusterMesh; "
                "remove it before the fleet can manage the mesh."
            )
        for p in peers:
            if p.local is not None and p.local.underlay != loc.underlay:
                return (
                    f"member {member.name} is on flat network {loc.underlay!r} but {p.name} is on "
                    f"{p.local.underlay!r}; all members of a network must share one flat network."
                )
        for p in peers:
            if p.local is not None and overlaps(loc.pod_cidr, p.local.pod_cidr):
                return (
                    f"member {member.name} pod CIDR {loc.pod_cidr} overlaps {p.name} pod CIDR "
                    f"{p.local.pod_cidr}; pod CIDRs must be unique across a network."
                )
    if not known_version(member.kubernetes_version):
        return (
            f"member {member.name} runs Kubernetes {member.kubernetes_version}, which is not in the "
            "version catalog (see `fleetnet versions`)."
        )
    minor = _minor(member.kubernetes_version)
    if minor is None or minor < MIN_KUBERNETES:
        return (
            f"member {member.name} runs Kubernetes {member.kubernetes_version}; cross-cluster networking "
            f"needs {MIN_KUBERNETES[0]}.{MIN_KUBERNETES[1]} or newer."
        )
    return None
