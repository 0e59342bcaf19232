"""The shape of a local cluster on this host: underlay, nodes and pods as network namespaces.

Two halves. The pure half decides names, CIDRs, addresses and routes and returns frozen specs;
it touches nothing, so it is unit-tested without root. The effectful half (``ensure_underlay``,
``add_node``, ``add_pod``, the ``remove_*`` functions, ``write_hosts``) applies a spec through
``netlink`` and is idempotent: running it again after a crash finishes the job.

The layout it builds (native routing, no tunnels)::

    underlay netns <prefix>_u_<underlay>:  bridge br0 (first address of the subnet)
        │  ul<hash>  (one port per node)
        │
    node netns <prefix>_n_<cluster>_<node>:  eth0 = underlay address; ip_forward=1, rp_filter=0
        │   routes: <other node's pod CIDR> via <its underlay address>   (cluster_routes)
        │           <pod ip>/32 dev lxc<hash>                             (one per pod)
        │  lxc<hash> holds the node's gateway address (.1 of its pod CIDR, /32) — on every pod veth
        │
    pod netns <prefix>_p_<cluster>_<namespace>_<pod>:  eth0 = pod ip/32;
            routes: <gateway> dev eth0 scope link; default via <gateway>

Every packet a pod sends goes to its node first (also to a pod on the same node), as in Cilium,
so the node's veth end is where the datapath sees it. No proxy ARP is needed: the gateway is a
real address of the node on each pod veth, so the node answers the pod's ARP for it, and the
/32 routes send replies back out of the right veth. Namespace names join their parts with
``_``, which Kubernetes names cannot hold, so two different pods never share a name; every one
starts with the fleet's prefix so that ``fleetnet down`` finds all of them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from fleetnet.errors import Conflict, InvalidInput, SystemFailure
from fleetnet.local import netlink, procs

SEP = "_"
BRIDGE = "br0"
NODE_UPLINK = "eth0"  # the node's end of its veth into the underlay
POD_IFNAME = "eth0"
MAX_IFNAME = 15

_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$")
# Kubernetes object names (DNS subdomains) and fleet member names: no "_", no "/".
_PART = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")
_MAX_NETNS = 200  # well under NAME_MAX (255), leaves room for suffixes such as ".tmp"


# --- specs -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnderlaySpec:
    """The flat network (like a VNet) that the nodes of every local cluster on it share."""

    name: str
    netns: str
    bridge: str
    subnet: str

    @property
    def bridge_address(self) -> str:
        """The bridge's own address: the first host of the subnet, with its prefix length."""
        net = ipaddress.IPv4Network(self.subnet)
        return f"{net.network_address + 1}/{net.prefixlen}"


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """A node: a namespace on the underlay (address ``ip``) that routes for pods in ``pod_cidr``."""

    cluster: str
    name: str
    netns: str
    underlay: UnderlaySpec
    ip: str
    pod_cidr: str

    @property
    def uplink(self) -> str:
        """The name of this node's veth end in the underlay namespace (a bridge port)."""
        return uplink_name(self.cluster, self.name)

    @property
    def gateway(self) -> str:
        return pod_gateway(self.pod_cidr)

    @property
    def ip_cidr(self) -> str:
        return f"{self.ip}/{ipaddress.IPv4Network(self.underlay.subnet).prefixlen}"


@dataclass(frozen=True, slots=True)
class PodSpec:
    """A pod: a namespace with ``eth0`` = ``ip``/32, linked to its node by ``host_ifname``."""

    cluster: str
    namespace: str
    name: str
    node: NodeSpec
    netns: str
    ip: str
    host_ifname: str
    gateway: str


# --- names -----------------------------------------------------------------------------------------


def _check_prefix(prefix: str) -> None:
    if not _PREFIX.match(prefix):
        raise InvalidInput(f"{prefix!r} is not a fleet prefix; use up to 32 letters, digits or '-'.")


def _check_part(value: str, what: str) -> None:
    if not _PART.match(value):
        raise InvalidInput(
            f"{value!r} is not a valid {what} name; use lower-case letters, digits, '-' and '.', "
            "starting and ending with a letter or digit."
        )


def _netns(prefix: str, kind: str, *parts: str) -> str:
    name = SEP.join((prefix, kind, *parts))
    if len(name) > _MAX_NETNS:  # Kubernetes names can be long; keep the start readable
        digest = hashlib.sha256(name.encode()).hexdigest()[:16]
        name = f"{name[: _MAX_NETNS - 17]}-{digest}"
    return name


def _hashed_ifname(tag: str, *parts: str) -> str:
    digest = hashlib.sha256("/".join(parts).encode()).hexdigest()
    return tag + digest[: MAX_IFNAME - len(tag) - 1]


def underlay_netns(prefix: str, underlay: str) -> str:
    _check_prefix(prefix)
    _check_part(underlay, "underlay")
    return _netns(prefix, "u", underlay)


def node_netns(prefix: str, cluster: str, node: str) -> str:
    _check_prefix(prefix)
    _check_part(cluster, "cluster")
    _check_part(node, "node")
    return _netns(prefix, "n", cluster, node)


def pod_netns(prefix: str, cluster: str, namespace: str, pod: str) -> str:
    _check_prefix(prefix)
    _check_part(cluster, "cluster")
    _check_part(namespace, "namespace")
    _check_part(pod, "pod")
    return _netns(prefix, "p", cluster, namespace, pod)


def uplink_name(cluster: str, node: str) -> str:
    """The node's veth end in the underlay namespace: ``ul`` + a hash (many clusters share it)."""
    return _hashed_ifname("ul", cluster, node)


def pod_host_ifname(namespace: str, pod: str) -> str:
    """The pod's veth end in its node's namespace: ``lxc`` + a hash, as Cilium names them."""
    return _hashed_ifname("lxc", namespace, pod)


def owned_netns(prefix: str) -> list[str]:
    """Every network namespace on this host that belongs to the fleet with ``prefix``."""
    _check_prefix(prefix)
    return netlink.list_netns(prefix + SEP)


# --- addresses -------------------------------------------------------------------------------------


def _network(cidr: str, what: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(cidr, strict=True)
    except ValueError as e:
        raise InvalidInput(f"{cidr!r} is not a valid IPv4 {what} CIDR (like 10.1.0.0/16).") from e


def node_pod_cidrs(cluster_cidr: str, node_count: int, node_prefix: int = 24) -> list[str]:
    """The first ``node_count`` /24s (``node_prefix``) of ``cluster_cidr``, one per node, in order."""
    net = _network(cluster_cidr, "cluster pod")
    if not net.prefixlen <= node_prefix <= 30:
        raise InvalidInput(
            f"Cluster pod CIDR {cluster_cidr} cannot be split into /{node_prefix} node CIDRs; "
            f"use a prefix length of at most {node_prefix}."
        )
    available = 2 ** (node_prefix - net.prefixlen)
    if not 0 <= node_count <= available:
        raise InvalidInput(
            f"Cluster pod CIDR {cluster_cidr} has room for {available} nodes, not {node_count}; "
            "use a larger CIDR or fewer nodes."
        )
    first = int(net.network_address)
    size = 2 ** (32 - node_prefix)
    return [f"{ipaddress.IPv4Address(first + i * size)}/{node_prefix}" for i in range(node_count)]


def pod_gateway(pod_cidr: str) -> str:
    """The node's gateway address for its pods: the first host of the node's pod CIDR (``.1``)."""
    net = _network(pod_cidr, "node pod")
    if net.num_addresses < 4:
        raise InvalidInput(f"Node pod CIDR {pod_cidr} is too small; use a /30 or larger.")
    return str(net.network_address + 1)


def _allocate(cidr: str, used: Iterable[str], what: str) -> str:
    net = _network(cidr, what)
    used = tuple(used)
    try:
        taken = {int(ipaddress.IPv4Address(u)) for u in used}
    except ValueError as e:
        raise InvalidInput(f"Used addresses of {cidr} must be IPv4 addresses; got {list(used)}.") from e
    # Skip the network address and the first host (the gateway / the bridge); keep the broadcast.
    for value in range(int(net.network_address) + 2, int(net.broadcast_address)):
        if value not in taken:
            return str(ipaddress.IPv4Address(value))
    raise Conflict(f"{what.capitalize()} CIDR {cidr} has no free address left; remove something or use a larger CIDR.")


def allocate_pod_ip(pod_cidr: str, used: Iterable[str]) -> str:
    """The lowest free pod address of a node's CIDR, from ``.2`` (``.1`` is the node's gateway)."""
    return _allocate(pod_cidr, used, "node pod")


def allocate_underlay_ip(subnet: str, used: Iterable[str]) -> str:
    """The lowest free node address on an underlay, from ``.2`` (``.1`` is the bridge's)."""
    return _allocate(subnet, used, "underlay")


def _inside(ip: str, cidr: str, what: str) -> None:
    try:
        address = ipaddress.IPv4Address(ip)
    except ValueError as e:
        raise InvalidInput(f"{ip!r} is not an IPv4 {what} address.") from e
    net = ipaddress.IPv4Network(cidr)
    if address not in net or address in (net.network_address, net.network_address + 1, net.broadcast_address):
        raise InvalidInput(f"{what.capitalize()} address {ip} is not a usable address of {cidr} (from .2).")


# --- building specs --------------------------------------------------------------------------------


def underlay_spec(prefix: str, name: str, subnet: str) -> UnderlaySpec:
    net = _network(subnet, "underlay")
    if net.num_addresses < 4:
        raise InvalidInput(f"Underlay subnet {subnet} is too small; use a /30 or larger.")
    return UnderlaySpec(name=name, netns=underlay_netns(prefix, name), bridge=BRIDGE, subnet=str(net))


def node_spec(prefix: str, cluster: str, name: str, underlay: UnderlaySpec, ip: str, pod_cidr: str) -> NodeSpec:
    _inside(ip, underlay.subnet, "underlay")
    pod_gateway(pod_cidr)  # validates the CIDR
    return NodeSpec(
        cluster=cluster,
        name=name,
        netns=node_netns(prefix, cluster, name),
        underlay=underlay,
        ip=ip,
        pod_cidr=str(_network(pod_cidr, "node pod")),
    )


def pod_spec(prefix: str, node: NodeSpec, namespace: str, name: str, ip: str) -> PodSpec:
    _inside(ip, node.pod_cidr, "pod")
    return PodSpec(
        cluster=node.cluster,
        namespace=namespace,
        name=name,
        node=node,
        netns=pod_netns(prefix, node.cluster, namespace, name),
        ip=ip,
        host_ifname=pod_host_ifname(namespace, name),
        gateway=node.gateway,
    )


def plan_nodes(
    prefix: str,
    cluster: str,
    underlay: UnderlaySpec,
    cluster_cidr: str,
    node_names: Sequence[str],
    used_underlay_ips: Iterable[str] = (),
) -> list[NodeSpec]:
    """The nodes of a cluster: a /24 of ``cluster_cidr`` each and the lowest free underlay addresses."""
    if len(set(node_names)) != len(node_names):
        raise InvalidInput(f"Node names of cluster {cluster} must be unique; got {list(node_names)}.")
    used = set(used_underlay_ips)
    nodes = []
    for name, pod_cidr in zip(node_names, node_pod_cidrs(cluster_cidr, len(node_names)), strict=True):
        ip = allocate_underlay_ip(underlay.subnet, used)
        used.add(ip)
        nodes.append(node_spec(prefix, cluster, name, underlay, ip, pod_cidr))
    return nodes


# --- routes ----------------------------------------------------------------------------------------


def _check_same_underlay(nodes: Sequence[NodeSpec]) -> None:
    underlays = {n.underlay for n in nodes}
    if len(underlays) > 1:
        names = ", ".join(sorted(u.name for u in underlays))
        raise InvalidInput(f"Native routing needs one flat network, but these nodes sit on underlays {names}.")


def _check_disjoint(nodes: Sequence[NodeSpec]) -> None:
    seen: list[tuple[ipaddress.IPv4Network, NodeSpec]] = []
    for node in nodes:
        net = ipaddress.IPv4Network(node.pod_cidr)
        for other_net, other in seen:
            if net.overlaps(other_net):
                raise InvalidInput(
                    f"Pod CIDR {node.pod_cidr} of {node.cluster}/{node.name} overlaps {other.pod_cidr} "
                    f"of {other.cluster}/{other.name}; pod CIDRs must not overlap."
                )
        seen.append((net, node))


def remote_routes(local: Sequence[NodeSpec], remote: Sequence[NodeSpec]) -> dict[str, list[tuple[str, str]]]:
    """For each local node's namespace: (pod CIDR, via underlay address) of every remote node.

    The routes a node needs to reach pods on ``remote`` nodes directly over the underlay, as
    Cilium's auto-direct-node-routes installs them.
    """
    everyone = list({n.netns: n for n in (*local, *remote)}.values())
    _check_same_underlay(everyone)
    _check_disjoint(everyone)
    return {
        node.netns: sorted(
            ((r.pod_cidr, r.ip) for r in remote if r.netns != node.netns),
            key=lambda route: ipaddress.IPv4Network(route[0]),
        )
        for node in local
    }


def cluster_routes(nodes: Sequence[NodeSpec]) -> dict[str, list[tuple[str, str]]]:
    """For each node's namespace: (pod CIDR, via underlay address) of every other node of the cluster."""
    return remote_routes(nodes, nodes)


# --- effects ---------------------------------------------------------------------------------------


def ensure_underlay(spec: UnderlaySpec) -> None:
    """The underlay namespace with its bridge up and addressed."""
    netlink.create_netns(spec.netns)
    netlink.set_link_up(spec.netns, "lo")
    netlink.create_bridge(spec.netns, spec.bridge, spec.bridge_address)


def add_node(spec: NodeSpec) -> None:
    """The node namespace, routing for pods, wired to the underlay bridge with its address."""
    ns, ul = spec.netns, spec.underlay
    netlink.create_netns(ns)
    netlink.set_link_up(ns, "lo")
    netlink.set_sysctl(ns, "net.ipv4.ip_forward", 1)
    # Before any pod veth exists: new links copy "default". Strict reverse-path filtering would
    # drop replies from remote pods whose CIDR is routed only once the mesh is joined.
    netlink.set_sysctl(ns, "net.ipv4.conf.all.rp_filter", 0)
    netlink.set_sysctl(ns, "net.ipv4.conf.default.rp_filter", 0)
    netlink.create_veth(ul.netns, spec.uplink, ns, NODE_UPLINK)
    netlink.attach_to_bridge(ul.netns, spec.uplink, ul.bridge)
    netlink.set_link_up(ul.netns, spec.uplink)
    netlink.add_address(ns, NODE_UPLINK, spec.ip_cidr)
    netlink.set_link_up(ns, NODE_UPLINK)


def install_routes(routes: Mapping[str, Sequence[tuple[str, str]]]) -> None:
    """Apply ``cluster_routes``/``remote_routes`` output: each (CIDR, via) through the node's uplink."""
    for ns, pairs in routes.items():
        for dst, via in pairs:
            netlink.replace_route(ns, dst, via=via, dev=NODE_UPLINK)


def withdraw_routes(routes: Mapping[str, Sequence[tuple[str, str]]]) -> None:
    """Remove routes that ``install_routes`` added; those already gone are fine."""
    for ns, pairs in routes.items():
        for dst, _via in pairs:
            netlink.delete_route(ns, dst)


def add_pod(spec: PodSpec) -> None:
    """The pod namespace with ``eth0`` = ip/32, default route via the node, and the node's /32 route to it."""
    node_ns, pod_ns, gw = spec.node.netns, spec.netns, spec.gateway
    netlink.create_netns(pod_ns)
    netlink.set_link_up(pod_ns, "lo")
    netlink.create_veth(node_ns, spec.host_ifname, pod_ns, POD_IFNAME)
    netlink.add_address(node_ns, spec.host_ifname, f"{gw}/32")
    netlink.set_link_up(node_ns, spec.host_ifname)
    netlink.add_address(pod_ns, POD_IFNAME, f"{spec.ip}/32")
    netlink.set_link_up(pod_ns, POD_IFNAME)
    netlink.add_route(pod_ns, f"{gw}/32", dev=POD_IFNAME, scope="link")
    netlink.add_route(pod_ns, "default", via=gw, dev=POD_IFNAME)
    netlink.replace_route(node_ns, f"{spec.ip}/32", dev=spec.host_ifname, scope="link", src=gw)


def remove_pod(spec: PodSpec) -> None:
    """Undo ``add_pod``; whatever is already gone is skipped. Stop the pod's processes first."""
    netlink.delete_link(spec.node.netns, spec.host_ifname)  # takes the /32 route and the pod's eth0
    netlink.delete_netns(spec.netns)
    remove_hosts(spec.netns)


def remove_node(spec: NodeSpec) -> None:
    """Undo ``add_node`` (remove its pods first); whatever is already gone is skipped."""
    netlink.delete_link(spec.underlay.netns, spec.uplink)
    netlink.delete_netns(spec.netns)


def remove_underlay(spec: UnderlaySpec) -> None:
    netlink.delete_netns(spec.netns)


def remove_all(prefix: str) -> list[str]:
    """Remove every namespace and hosts file of the fleet with ``prefix``; return the namespaces.

    For ``fleetnet down`` and crash recovery, where no spec survived: end the fleet's processes
    first (from their records), or the kernel keeps their namespaces alive without a name.
    """
    names = owned_netns(prefix)
    for name in names:
        netlink.delete_netns(name)
    try:
        leftovers = os.listdir(procs.ETC_NETNS_DIR)
    except FileNotFoundError:
        leftovers = []
    for name in leftovers:
        if name.startswith(prefix + SEP):
            remove_hosts(name)
    return names


# --- names inside pods -----------------------------------------------------------------------------

_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")


def hosts_file_text(entries: Mapping[str, Sequence[str]]) -> str:
    """The text of a pod's /etc/hosts: localhost, then one line per address (sorted) with its names."""
    lines = ["# written by fleetnet", "127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    parsed = []
    for ip, names in entries.items():
        try:
            address = ipaddress.ip_address(ip)
        except ValueError as e:
            raise InvalidInput(f"{ip!r} is not an IP address; host entries map addresses to names.") from e
        for name in names:
            if not _HOSTNAME.match(name):
                raise InvalidInput(f"{name!r} is not a valid host name for /etc/hosts.")
        if names:
            parsed.append((address.version, int(address), f"{address}\t{' '.join(names)}"))
    lines.extend(line for _v, _i, line in sorted(parsed))
    return "\n".join(lines) + "\n"


def hosts_path(pod_netns: str) -> str:
    return os.path.join(procs.ETC_NETNS_DIR, pod_netns, "hosts")


def write_hosts(pod_netns: str, entries: Mapping[str, Sequence[str]]) -> None:
    """Write ``/etc/netns/<pod_netns>/hosts`` (address → names), which processes in the pod see as /etc/hosts.

    Rewritten in place, not replaced: running processes have the file bind-mounted by inode,
    so a new inode would never reach them. The new text is written before the old tail is cut,
    so a reader never finds the file empty.
    """
    data = hosts_file_text(entries).encode()
    path = hosts_path(pod_netns)
    try:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.ftruncate(fd, len(data))
        finally:
            os.close(fd)
    except OSError as e:
        raise SystemFailure(f"Could not write the hosts file of {pod_netns} at {path}: {e.strerror}.") from e


def remove_hosts(pod_netns: str) -> None:
    """Remove ``/etc/netns/<pod_netns>/hosts`` and its directory; nothing if they are gone."""
    path = hosts_path(pod_netns)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise SystemFailure(f"Could not remove the hosts file of {pod_netns} at {path}: {e.strerror}.") from e
    try:
        os.rmdir(os.path.dirname(path))
    except OSError:
        pass  # absent, or holds other files (resolv.conf) that are not ours to remove
