"""What a live cluster's own objects say about its Cilium, read before it may join a network.

Pure functions over the objects as the Kubernetes API returns them (dicts): the ``cilium``
DaemonSet, the ``cilium-config`` ConfigMap, Nodes and CiliumNodes. Each fact is a typed value that
remembers the key and the value it came from, so that a failed prerequisite is one sentence naming
both, e.g. "c1 uses tunnel routing (cilium-config routing-mode: tunnel); cross-cluster networking
needs native routing." Absent keys mean Cilium's defaults (``pkg/option``, ``pkg/defaults``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fleetnet.errors import InvalidInput
from fleetnet.model.chart.meta import AGENT_DAEMONSET
from fleetnet.model.chart.versions import SUPPORTED_MINORS, ChartVersion

AGENT_CONTAINER = "cilium-agent"  # cilium-agent/daemonset.yaml
RoutingMode = Literal["native", "tunnel"]
PodCidrSource = Literal["CiliumNode", "Node", "none"]
# IPAM modes whose ENI datapath cannot carry cluster ids with bit 7 set (ValidateBuggyClusterID, GH-21330)
_ENI_IPAM = ("eni", "alibabacloud")


def _data(config_map: Mapping[str, Any] | None) -> Mapping[str, str]:
    data = (config_map or {}).get("data")
    return data if isinstance(data, Mapping) else {}


def _spec(obj: Mapping[str, Any], *path: str) -> Any:
    value: Any = obj
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


@dataclass(frozen=True, slots=True)
class VersionFact:
    version: ChartVersion | None
    image: str | None  # the cilium-agent image, digest included, as found
    problem: str | None


def _image_tag(image: str) -> str | None:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def read_cilium_version(cluster: str, daemonset: Mapping[str, Any] | None) -> VersionFact:
    """The Cilium version, from the ``cilium`` DaemonSet's cilium-agent image tag."""
    if daemonset is None:
        return VersionFact(None, None, f"{cluster} does not run Cilium: it has no {AGENT_DAEMONSET} DaemonSet.")
    containers = _spec(daemonset, "spec", "template", "spec", "containers") or []
    agent = next((c for c in containers if c.get("name") == AGENT_CONTAINER), containers[0] if containers else None)
    image = agent.get("image") if isinstance(agent, Mapping) else None
    if not isinstance(image, str) or not image:
        return VersionFact(None, None, f"{cluster}'s {AGENT_DAEMONSET} DaemonSet has no {AGENT_CONTAINER} image.")
    tag = _image_tag(image)
    try:
        version = ChartVersion.parse(tag or "")
    except InvalidInput:
        return VersionFact(
            None,
            image,
            f"{cluster} runs cilium image {image}, whose tag does not name a Cilium version (like v1.19.2).",
        )
    if version.major != 1 or version.minor not in SUPPORTED_MINORS:
        lo, hi = SUPPORTED_MINORS[0], SUPPORTED_MINORS[-1]
        return VersionFact(
            version,
            image,
            f"{cluster} runs Cilium {version} ({AGENT_DAEMONSET} DaemonSet image {image}); "
            f"fleetnet manages ClusterMesh for Cilium 1.{lo} to 1.{hi}.",
        )
    return VersionFact(version, image, None)


@dataclass(frozen=True, slots=True)
class RoutingFact:
    mode: RoutingMode
    tunnel_protocol: str | None  # vxlan or geneve in tunnel mode
    source: str  # "cilium-config routing-mode: tunnel", or the default that applied
    problem: str | None


def read_routing(cluster: str, config_map: Mapping[str, Any] | None) -> RoutingFact:
    """Native or tunnel: ``routing-mode`` (1.14+), else the older ``tunnel`` key, else Cilium's default, tunnel."""
    data = _data(config_map)
    protocol = data.get("tunnel-protocol") or "vxlan"
    if "routing-mode" in data:
        value = data["routing-mode"]
        source = f"cilium-config routing-mode: {value}"
        mode = value
    elif "tunnel" in data:
        value = data["tunnel"]
        source = f"cilium-config tunnel: {value}"
        mode = "native" if value == "disabled" else "tunnel" if value in ("vxlan", "geneve") else value
        if value in ("vxlan", "geneve"):
            protocol = value
    else:
        source = "cilium-config sets no routing-mode, so Cilium's default tunnel applies"
        mode = "tunnel"
    if mode == "native":
        return RoutingFact("native", None, source, None)
    if mode == "tunnel":
        return RoutingFact(
            "tunnel",
            protocol,
            source,
            f"{cluster} uses tunnel routing ({source}); cross-cluster networking needs native routing.",
        )
    return RoutingFact(
        "tunnel",
        protocol,
        source,
        f"{cluster} has a routing mode Cilium does not know ({source}); set routing-mode: native.",
    )


@dataclass(frozen=True, slots=True)
class IpamFact:
    mode: str  # cluster-pool, kubernetes, multi-pool, eni, azure, ...
    cni_chaining_mode: str  # "none" unless Cilium is chained behind another CNI (aws-cni, ...)
    source: str


def read_ipam(config_map: Mapping[str, Any] | None) -> IpamFact:
    data = _data(config_map)
    mode = data.get("ipam") or "cluster-pool"
    source = f"cilium-config ipam: {data['ipam']}" if data.get("ipam") else "cilium-config sets no ipam (cluster-pool)"
    return IpamFact(mode, data.get("cni-chaining-mode") or "none", source)


def cluster_id_ipam_problem(cluster: str, ipam: IpamFact, cluster_id: int) -> str | None:
    """Cilium refuses ids with bit 7 set (128-255, 384-511) on ENI datapaths (ValidateBuggyClusterID)."""
    eni = ipam.mode in _ENI_IPAM or ipam.cni_chaining_mode == "aws-cni"
    if eni and cluster_id & 0x80:
        what = f"ipam: {ipam.mode}" if ipam.mode in _ENI_IPAM else "cni-chaining-mode: aws-cni"
        return (
            f"{cluster} cannot take cluster id {cluster_id} (cilium-config {what}): Cilium refuses ids 128-255 "
            "and 384-511 on that datapath; give it an id below 128."
        )
    return None


@dataclass(frozen=True, slots=True)
class KubeProxyFact:
    kube_proxy_replacement: bool
    socket_lb: bool
    source: str
    note: str | None  # what global services cannot do without either


def read_kube_proxy(cluster: str, config_map: Mapping[str, Any] | None) -> KubeProxyFact:
    """kube-proxy replacement (``true``/``strict``; ``false``/``partial``/``probe``/``disabled``) and socket LB."""
    data = _data(config_map)
    kpr_value = data.get("kube-proxy-replacement", "false")
    kpr = kpr_value.lower() in ("true", "strict")
    sock_value = data.get("bpf-lb-sock", "false")
    socket_lb = kpr or sock_value.lower() == "true"
    source = f"cilium-config kube-proxy-replacement: {kpr_value}, bpf-lb-sock: {sock_value}"
    note = None
    if not socket_lb:
        note = (
            f"{cluster} has neither kube-proxy replacement nor socket load-balancing ({source}): global services "
            "reach remote backends from pods only, not through NodePorts or from host-network clients."
        )
    return KubeProxyFact(kpr, socket_lb, source, note)


@dataclass(frozen=True, slots=True)
class IdentityFact:
    name: str
    cluster_id: int | None  # None when cilium-config's value is not a number
    max_connected_clusters: int | None
    problem: str | None


def read_identity(cluster: str, config_map: Mapping[str, Any] | None) -> IdentityFact:
    """cluster-name, cluster-id and max-connected-clusters as the agents run them (absent = Cilium's defaults)."""
    data = _data(config_map)
    name = data.get("cluster-name") or "default"
    raw_id = data.get("cluster-id") or "0"
    raw_max = data.get("max-connected-clusters") or "255"
    cluster_id = int(raw_id) if raw_id.strip().isdigit() else None
    max_cc = int(raw_max) if raw_max.strip().isdigit() else None
    problem = None
    if cluster_id is None:
        problem = f"{cluster} has a cluster id that is not a number (cilium-config cluster-id: {raw_id})."
    elif max_cc not in (255, 511):
        problem = (
            f"{cluster} has max-connected-clusters {raw_max} (cilium-config max-connected-clusters: {raw_max}); "
            "Cilium supports 255 and 511."
        )
    return IdentityFact(name, cluster_id, max_cc, problem)


def max_connected_problem(cluster: str, identity: IdentityFact, network_value: int) -> str | None:
    """max-connected-clusters must be the same mesh-wide and cannot change on a running cluster (setup.rst)."""
    if identity.max_connected_clusters is not None and identity.max_connected_clusters != network_value:
        return (
            f"{cluster} runs max-connected-clusters {identity.max_connected_clusters} "
            f"(cilium-config max-connected-clusters: {identity.max_connected_clusters}) but the network uses "
            f"{network_value}; it cannot change on a running cluster."
        )
    return None


@dataclass(frozen=True, slots=True)
class PodCidrFact:
    cidrs: tuple[str, ...]  # sorted, unique, IPv4 then IPv6
    source: PodCidrSource
    problem: str | None


def _cidrs(values: Iterable[Any]) -> list[str]:
    out = []
    for v in values:
        try:
            out.append(str(ipaddress.ip_network(str(v), strict=False)))
        except ValueError:
            continue
    return out


def _sorted(cidrs: Iterable[str]) -> tuple[str, ...]:
    nets = {ipaddress.ip_network(c) for c in cidrs}
    return tuple(str(n) for n in sorted(nets, key=lambda n: (n.version, n.network_address, n.prefixlen)))


def read_pod_cidrs(
    cluster: str,
    ipam: IpamFact,
    nodes: Sequence[Mapping[str, Any]] = (),
    cilium_nodes: Sequence[Mapping[str, Any]] = (),
) -> PodCidrFact:
    """Pod CIDRs: CiliumNode ``spec.ipam.podCIDRs`` (Cilium's own IPAM), Node ``spec.podCIDRs`` (ipam: kubernetes)."""
    from_cilium = [c for n in cilium_nodes for c in _cidrs(_spec(n, "spec", "ipam", "podCIDRs") or [])]
    from_nodes = []
    for n in nodes:
        values = _spec(n, "spec", "podCIDRs") or ([_spec(n, "spec", "podCIDR")] if _spec(n, "spec", "podCIDR") else [])
        from_nodes += _cidrs(values)
    order: list[tuple[PodCidrSource, list[str]]] = [("CiliumNode", from_cilium), ("Node", from_nodes)]
    if ipam.mode == "kubernetes":
        order.reverse()
    for source, found in order:
        if found:
            return PodCidrFact(_sorted(found), source, None)
    return PodCidrFact(
        (),
        "none",
        f"{cluster} has no pod CIDRs: no CiliumNode spec.ipam.podCIDRs and no Node spec.podCIDRs ({ipam.source}).",
    )


@dataclass(frozen=True, slots=True)
class CiliumFacts:
    cluster: str
    version: VersionFact
    routing: RoutingFact
    ipam: IpamFact
    kube_proxy: KubeProxyFact
    identity: IdentityFact
    pod_cidrs: PodCidrFact

    @property
    def problems(self) -> tuple[str, ...]:
        """Every failed prerequisite, one sentence each (the first one is the member's reason)."""
        found = (self.version.problem, self.routing.problem, self.identity.problem, self.pod_cidrs.problem)
        return tuple(p for p in found if p is not None)


def read_cilium_facts(
    cluster: str,
    *,
    daemonset: Mapping[str, Any] | None,
    config_map: Mapping[str, Any] | None,
    nodes: Sequence[Mapping[str, Any]] = (),
    cilium_nodes: Sequence[Mapping[str, Any]] = (),
) -> CiliumFacts:
    ipam = read_ipam(config_map)
    return CiliumFacts(
        cluster=cluster,
        version=read_cilium_version(cluster, daemonset),
        routing=read_routing(cluster, config_map),
        ipam=ipam,
        kube_proxy=read_kube_proxy(cluster, config_map),
        identity=read_identity(cluster, config_map),
        pod_cidrs=read_pod_cidrs(cluster, ipam, nodes, cilium_nodes),
    )
