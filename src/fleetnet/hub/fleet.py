"""Members and cross-cluster networks: the hub's bookkeeping of the fleet.

Validation and decisions come from ``plan/``; this module keeps the store consistent and calls
the driver for the effects of creating and deleting clusters. Joining and leaving networks is the
mesh controller's job (``hub/mesh.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from fleetnet.errors import Conflict, InvalidInput, NotFound
from fleetnet.hub.driver import ClusterDriver
from fleetnet.model.member import LocalClusterSpec, Member
from fleetnet.model.names import check_member_name, check_resource_name
from fleetnet.model.profile import ClusterMeshProfile, ProfileOptions
from fleetnet.plan import cidr
from fleetnet.plan.selector import format_selector, matches, parse_selector
from fleetnet.store.sqlite import Store

log = logging.getLogger(__name__)

MEMBER = "member"
PROFILE = "profile"
FLEET = "fleet"
MAX_NODES = 16


class VersionCatalog(Protocol):
    def is_known(self, kubernetes_version: str) -> bool: ...

    def cilium_for(self, kubernetes_version: str) -> str: ...

    def default_kubernetes(self) -> str: ...


class Fleet:
    def __init__(self, store: Store, driver: ClusterDriver, catalog: VersionCatalog) -> None:
        self.store = store
        self.driver = driver
        self.catalog = catalog

    # ---------------------------------------------------------------- members
    def get_member(self, name: str) -> Member:
        d = self.store.get(MEMBER, name)
        if d is None:
            raise NotFound(f"member {name!r} does not exist; `fleetnet member list` shows the members.")
        return Member.from_dict(d)

    def list_members(self) -> list[Member]:
        return [Member.from_dict(d) for d in self.store.list(MEMBER)]

    def save_member(self, m: Member) -> None:
        with self.store.tx() as t:
            t.put(MEMBER, m.name, m.to_dict())

    def create_local_member(
        self,
        name: str,
        *,
        pod_cidr: str | None = None,
        service_cidr: str | None = None,
        nodes: int = 1,
        kubernetes_version: str | None = None,
        labels: dict[str, str] | None = None,
        underlay: str = "default",
        network_dataplane: str = "cilium",
        routing_mode: str = "native",
        group: str | None = None,
        self_managed_clustermesh: bool = False,
    ) -> Member:
        check_member_name(name)
        if not 1 <= nodes <= MAX_NODES:
            raise InvalidInput(f"--nodes must be between 1 and {MAX_NODES}, not {nodes}.")
        if network_dataplane not in ("cilium", "none"):
            raise InvalidInput(f"--network-dataplane must be 'cilium' or 'none', not {network_dataplane!r}.")
        if routing_mode not in ("native", "tunnel"):
            raise InvalidInput(f"--routing-mode must be 'native' or 'tunnel', not {routing_mode!r}.")
        check_resource_name("underlay", underlay, 12)
        if group is not None:
            check_resource_name("update group", group, 50)
        k8s = kubernetes_version or self.catalog.default_kubernetes()
        cilium = self.catalog.cilium_for(k8s) if self.catalog.is_known(k8s) else "unknown"
        with self.store.tx() as t:
            if t.get(MEMBER, name) is not None:
                raise Conflict(f"member {name!r} already exists.")
            fleet = t.get(FLEET, "config") or {"nextIndex": 1}
            used = {Member.from_dict(d).local.index for d in t.list(MEMBER) if d.get("local")}  # type: ignore[union-attr]
            index = int(fleet["nextIndex"])
            while index in used:
                index += 1
            fleet["nextIndex"] = index + 1
            t.put(FLEET, "config", fleet)
        spec = LocalClusterSpec(
            index=index,
            pod_cidr=cidr.check_cidr(pod_cidr, "--pod-cidr") if pod_cidr else cidr.default_pod_cidr(index),
            service_cidr=cidr.check_cidr(service_cidr, "--service-cidr")
            if service_cidr
            else cidr.default_service_cidr(index),
            nodes=nodes,
            underlay=underlay,
            network_dataplane=network_dataplane,  # type: ignore[arg-type]
            routing_mode=routing_mode,  # type: ignore[arg-type]
            self_managed_clustermesh=self_managed_clustermesh,
        )
        cidr.node_cidrs(spec.pod_cidr, nodes)  # refuse a pod CIDR too small before touching the host
        member = Member(
            name=name,
            kubernetes_version=k8s,
            cilium_version=cilium,
            labels=dict(labels or {}),
            group=group,
            local=spec,
        )
        try:
            self.driver.create_cluster(member)
        except Exception:
            log.exception("creating local cluster %s failed; removing what was made", name)
            try:
                self.driver.delete_cluster(member)
            finally:
                raise
        with self.store.tx() as t:
            if t.get(MEMBER, name) is not None:
                raise Conflict(f"member {name!r} already exists.")
            t.put(MEMBER, name, member.to_dict())
        return member

    def update_member(self, name: str, *, labels: dict[str, str] | None = None, group: str | None = None) -> Member:
        if group is not None and group != "":
            check_resource_name("update group", group, 50)
        with self.store.tx() as t:
            d = t.get(MEMBER, name)
            if d is None:
                raise NotFound(f"member {name!r} does not exist; `fleetnet member list` shows the members.")
            m = Member.from_dict(d)
            new = Member.from_dict(
                {
                    **m.to_dict(),
                    **({"labels": labels} if labels is not None else {}),
                    **({"group": group or None} if group is not None else {}),
                }
            )
            t.put(MEMBER, name, new.to_dict())
        return new

    def delete_member(self, name: str) -> None:
        m = self.get_member(name)
        if m.mesh is not None:
            raise Conflict(
                f"member {name} is in cross-cluster network {m.mesh.profile!r}: relabel it and apply the "
                "network so that it leaves, then delete it."
            )
        self.driver.delete_cluster(m)
        with self.store.tx() as t:
            t.delete(MEMBER, name)

    # ---------------------------------------------------------------- profiles
    def get_profile(self, name: str) -> ClusterMeshProfile:
        d = self.store.get(PROFILE, name)
        if d is None:
            raise NotFound(
                f"cross-cluster network {name!r} does not exist; `fleetnet clustermeshprofile list` shows them."
            )
        return ClusterMeshProfile.from_dict(d)

    def list_profiles(self) -> list[ClusterMeshProfile]:
        return [ClusterMeshProfile.from_dict(d) for d in self.store.list(PROFILE)]

    def create_profile(self, name: str, selector: str, options: dict[str, Any] | None = None) -> ClusterMeshProfile:
        """Create, or update the selector (and options) of an existing profile; never touches clusters."""
        check_resource_name("cross-cluster network", name, 63)
        parsed = parse_selector(selector)
        with self.store.tx() as t:
            d = t.get(PROFILE, name)
            if d is None:
                p = ClusterMeshProfile(
                    name=name, member_selector=format_selector(parsed), options=ProfileOptions.from_dict(options or {})
                )
            else:
                old = ClusterMeshProfile.from_dict(d)
                merged = {**old.options.to_dict(), **(options or {})}
                p = ClusterMeshProfile(
                    name=name,
                    member_selector=format_selector(parsed),
                    options=ProfileOptions.from_dict(merged),
                    status=old.status,
                )
            t.put(PROFILE, name, p.to_dict())
        return p

    def delete_profile(self, name: str) -> None:
        self.get_profile(name)
        applied = [m.name for m in self.list_members() if m.mesh is not None and m.mesh.profile == name]
        if applied:
            raise Conflict(
                f"cross-cluster network {name!r} still contains members ({', '.join(applied)}): change its "
                "selector to match none, apply it, then delete it."
            )
        with self.store.tx() as t:
            t.delete(PROFILE, name)
            t.delete("network-ca", name)  # a new network of the same name gets a new CA

    def profile_members(self, name: str, *, by_selector: bool = False) -> list[Member]:
        """Members applied to the profile now, or (``by_selector``) members its selector matches now."""
        p = self.get_profile(name)
        members = self.list_members()
        if by_selector:
            sel = parse_selector(p.member_selector)
            return [m for m in members if matches(sel, m.labels)]
        return [m for m in members if m.mesh is not None and m.mesh.profile == name]

    def network_members(self, profile: str, members: Sequence[Member] | None = None) -> list[Member]:
        return [m for m in (members or self.list_members()) if m.mesh is not None and m.mesh.profile == profile]
