"""ClusterService, a global service as its cluster exports it, with its ports and backend zones.

Key: ``cilium/state/services/v1/<cluster>/<namespace>/<name>``. Source:
``pkg/clustermesh/store/store.go`` (ClusterService), ``pkg/loadbalancer`` (L4Addr).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fleetnet.model import keys
from fleetnet.model.cilium_ids import DEFAULT_MAX_CONNECTED_CLUSTERS, _check_cluster, _parse_key, cluster_id_problem
from fleetnet.model.gojson import _Decoder, _parse_ip, _sorted_map, go_json
from fleetnet.model.kube_types import EMPTY, FrozenMap, freeze

# Go field names (json tags where Cilium has them), in struct order
_SERVICE_FIELDS = (
    "cluster",
    "namespace",
    "name",
    "frontends",
    "backends",
    "hostnames",
    "zones",
    "labels",
    "selector",
    "includeExternal",
    "shared",
    "clusterID",
)


@dataclass(frozen=True, slots=True)
class L4Addr:
    """``loadbalancer.L4Addr``: ``{"Protocol": "TCP", "Port": 80}``."""

    protocol: str
    port: int

    def to_go(self) -> dict[str, Any]:
        return {"Protocol": self.protocol, "Port": self.port}


@dataclass(frozen=True, slots=True)
class BackendZone:
    zone: str
    for_zones: tuple[str, ...] = ()

    def to_go(self) -> dict[str, Any]:
        return {"zone": self.zone, "forZones": [{"name": z} for z in self.for_zones]}


def _freeze_ports(m: Mapping[str, Mapping[str, L4Addr]]) -> FrozenMap[str, FrozenMap[str, L4Addr]]:
    return FrozenMap({ip: freeze(ports) for ip, ports in m.items()})


@dataclass(frozen=True, slots=True)
class ClusterService:
    """A global service as its cluster exports it: frontends and backends keyed by IP, each with
    a ``PortConfiguration`` (port name → L4Addr). Backend ports are target ports."""

    cluster: str
    namespace: str
    name: str
    frontends: Mapping[str, Mapping[str, L4Addr]] = EMPTY
    backends: Mapping[str, Mapping[str, L4Addr]] = EMPTY
    hostnames: Mapping[str, str] = EMPTY
    zones: Mapping[str, BackendZone] = EMPTY
    labels: Mapping[str, str] = EMPTY
    selector: Mapping[str, str] = EMPTY
    include_external: bool = False
    shared: bool = False
    cluster_id: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "frontends", _freeze_ports(self.frontends))
        object.__setattr__(self, "backends", _freeze_ports(self.backends))
        for name in ("hostnames", "zones", "labels", "selector"):
            object.__setattr__(self, name, freeze(getattr(self, name)))

    @property
    def key(self) -> str:
        return keys.service_key(self.cluster, self.namespace, self.name)

    def to_go(self) -> dict[str, Any]:
        ports = lambda pc: _sorted_map(pc, L4Addr.to_go)  # noqa: E731
        out: dict[str, Any] = {
            "cluster": self.cluster,
            "namespace": self.namespace,
            "name": self.name,
            "frontends": _sorted_map(self.frontends, ports),
            "backends": _sorted_map(self.backends, ports),
        }
        if self.hostnames:
            out["hostnames"] = _sorted_map(self.hostnames)
        if self.zones:
            out["zones"] = _sorted_map(self.zones, BackendZone.to_go)
        out.update(
            labels=_sorted_map(self.labels),
            selector=_sorted_map(self.selector),
            includeExternal=self.include_external,
            shared=self.shared,
            clusterID=self.cluster_id,
        )
        return out

    def to_json(self) -> bytes:
        return go_json(self.to_go())

    @classmethod
    def from_json(
        cls,
        data: bytes | str,
        key: str,
        *,
        cluster: str | None = None,
        cluster_id: int | None = None,
        local_cluster_id: int | None = None,
        max_connected_clusters: int = DEFAULT_MAX_CONNECTED_CLUSTERS,
    ) -> ClusterService:
        """Decode and validate the value of ``key`` (a full kvstore key, state or cache form).

        ``cluster`` and ``cluster_id`` are the remote this key was read from (Cilium's
        ``ClusterNameValidator`` and ``ClusterIDValidator``); the cluster id is not range-checked
        when it equals ``local_cluster_id``, as in Cilium (which compares with its own, always
        non-zero, id; None here means "check always").
        """
        dec = _Decoder("ClusterService", key)
        top = dec.struct(dec.load(data), "", _SERVICE_FIELDS)

        def port_config(v: Any, path: str) -> dict[str, L4Addr]:
            out: dict[str, L4Addr] = {}
            for pname, l4 in dec.mapping(v, path).items():
                if l4 is None:
                    dec.fail(f"{path}[{pname!r}]", "the port is null")
                f = dec.struct(l4, f"{path}[{pname!r}]", ("Protocol", "Port"))
                out[pname] = L4Addr(
                    dec.string(f.get("Protocol"), f"{path}[{pname!r}].Protocol"),
                    dec.uint(f.get("Port"), f"{path}[{pname!r}].Port", 16),
                )
            return out

        def addr_map(name: str) -> dict[str, dict[str, L4Addr]]:
            m = dec.mapping(top.get(name), name)
            for address in m:
                parsed = _parse_ip(address)
                if parsed is None:
                    zoned = "%" in address and _parse_ip(address.split("%", 1)[0]) is not None
                    reason = "unsupported IPv6 zone in address" if zoned else "invalid IP address"
                    dec.fail(name, f"{reason} {address!r}")
            return {a: port_config(v, f"{name}[{a!r}]") for a, v in m.items()}

        zones: dict[str, BackendZone] = {}
        for ip, z in dec.mapping(top.get("zones"), "zones").items():
            zf = dec.struct(z, f"zones[{ip!r}]", ("zone", "forZones"))
            for_zones = tuple(
                dec.string(dec.struct(fz, f"zones[{ip!r}].forZones", ("name",)).get("name"), "forZones.name")
                for fz in dec.array(zf.get("forZones"), f"zones[{ip!r}].forZones")
            )
            zones[ip] = BackendZone(dec.string(zf.get("zone"), f"zones[{ip!r}].zone"), for_zones)

        svc_cluster = dec.string(top.get("cluster"), "cluster")
        namespace = dec.string(top.get("namespace"), "namespace")
        name = dec.string(top.get("name"), "name")
        svc_cluster_id = dec.uint(top.get("clusterID"), "clusterID", 32)
        # ClusterService.validate()
        for what, value in (("cluster", svc_cluster), ("namespace", namespace), ("name", name)):
            if not value:
                dec.fail("", f"{what} is unset")
        if svc_cluster_id != local_cluster_id:
            problem = cluster_id_problem(svc_cluster_id, max_connected_clusters)
            if problem:
                dec.fail("clusterID", problem)
        svc = cls(
            cluster=svc_cluster,
            namespace=namespace,
            name=name,
            frontends=addr_map("frontends"),
            backends=addr_map("backends"),
            hostnames=dec.string_map(top.get("hostnames"), "hostnames"),
            zones=zones,
            labels=dec.string_map(top.get("labels"), "labels"),
            selector=dec.string_map(top.get("selector"), "selector"),
            include_external=dec.boolean(top.get("includeExternal"), "includeExternal"),
            shared=dec.boolean(top.get("shared"), "shared"),
            cluster_id=svc_cluster_id,
        )
        parsed = _parse_key(dec, key, keys.KeyKind.SERVICE)
        if (parsed.namespace, parsed.name) != (namespace, name):
            dec.fail(
                "",
                f"namespaced name does not match key: got {namespace}/{name}, expected "
                f"{parsed.namespace}/{parsed.name}",
            )
        _check_cluster(dec, svc_cluster, parsed.cluster, cluster)
        if cluster_id is not None and svc_cluster_id != cluster_id:
            dec.fail("clusterID", f"unexpected cluster ID: got {svc_cluster_id}, expected {cluster_id}")
        return svc
