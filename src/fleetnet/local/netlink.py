"""The one place that talks netlink: named network namespaces, links, addresses, routes, sysctls.

Everything the local clusters need from the kernel's network stack goes through here, so that
pyroute2 and its exceptions stay behind one door. The errors it raises::

    SystemFailure (fleetnet.errors)
    └── NetlinkFailure          a netlink request, a namespace mount or a sysctl write failed
        ├── NamespaceNotFound   the named network namespace does not exist
        └── LinkNotFound        the named link does not exist in that namespace

How a namespace is entered: every call runs its work on a fresh, short-lived thread that first
``setns(2)``s into the target namespace (a network-namespace switch affects only the calling
thread), opens its own pyroute2 socket there, does the job and exits. This is why

- nothing ever happens in the caller's (root) namespace by accident, and no fork is paid per call
  (pyroute2's own ``netns=`` support forks a helper process for every socket);
- ``/proc/sys/net`` opened on that thread is the target namespace's, so sysctls are set there and
  never in the root namespace;
- pyroute2's private event loop lives on that thread, so these functions can be called from code
  that is itself inside a running asyncio loop (which would otherwise break pyroute2's sync API).

The functions block for about a millisecond each; asyncio callers wrap them in ``asyncio.to_thread``.
Creation and deletion are idempotent where that makes sense, so a half-finished set-up can simply
be run again, and a teardown can be run on something already gone.
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from fleetnet.errors import InvalidInput, SystemFailure

T = TypeVar("T")

NETNS_DIR = "/run/netns"

_CLONE_NEWNET = 0x40000000
_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_SHARED = 1 << 20
_MNT_DETACH = 0x2
_RT_TABLE_MAIN = 254
_SCOPES = {"global": 0, "universe": 0, "site": 200, "link": 253, "host": 254}

_libc = ctypes.CDLL(None, use_errno=True)


class NetlinkFailure(SystemFailure):
    """A netlink request, a namespace mount or a sysctl write failed."""


class NamespaceNotFound(NetlinkFailure):
    """The named network namespace does not exist."""


class LinkNotFound(NetlinkFailure):
    """The named link does not exist in the namespace."""


@dataclass(frozen=True, slots=True)
class Route:
    """One IPv4 route of a namespace's main table: ``dst`` is a CIDR (``0.0.0.0/0`` for the default)."""

    dst: str
    via: str | None
    dev: str | None


# --- entering namespaces ---------------------------------------------------------------------------


def _check_netns_name(name: str) -> None:
    if not name or "/" in name or name in (".", "..") or len(name) > 255 or "\0" in name:
        raise InvalidInput(f"{name!r} is not a valid network namespace name; use a short name without '/'.")


def _netns_path(name: str) -> str:
    _check_netns_name(name)
    return os.path.join(NETNS_DIR, name)


def _is_mounted_netns(path: str) -> bool:
    # A named namespace is an nsfs bind mount on a file in NETNS_DIR; a plain file left behind by a
    # crash sits on the directory's own device.
    try:
        return os.stat(path).st_dev != os.stat(os.path.dirname(path)).st_dev
    except FileNotFoundError:
        return False


def _open_netns(name: str) -> int:
    path = _netns_path(name)
    if not _is_mounted_netns(path):
        raise NamespaceNotFound(f"Network namespace {name} does not exist; create it first.")
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise NetlinkFailure(f"Could not open network namespace {name}: {e.strerror}.") from e


def _libc_check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _setns(fd: int) -> None:
    _libc_check(_libc.setns(fd, _CLONE_NEWNET), "setns")


def _on_fresh_thread(name: str, fn: Callable[[], T]) -> T:
    outcome: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            outcome.append((True, fn()))
        except BaseException as e:  # handed back to the caller's thread below
            outcome.append((False, e))

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


def call_in_netns(ns: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` on a fresh thread that has entered network namespace ``ns``; return its result.

    The thread ends afterwards, so the caller's own namespace never changes. Sockets ``fn`` opens
    belong to ``ns`` for their whole life; a process ``fn`` starts is born in ``ns``.
    """
    fd = _open_netns(ns)
    try:

        def entered() -> T:
            try:
                _setns(fd)
            except OSError as e:
                raise NetlinkFailure(f"Could not enter network namespace {ns}: {e.strerror}.") from e
            return fn()

        return _on_fresh_thread(f"netns:{ns}", entered)
    finally:
        os.close(fd)


def enter_netns(ns: str) -> None:
    """Move the calling thread into network namespace ``ns`` for good (used right before an exec)."""
    fd = _open_netns(ns)
    try:
        _setns(fd)
    except OSError as e:
        raise NetlinkFailure(f"Could not enter network namespace {ns}: {e.strerror}.") from e
    finally:
        os.close(fd)


# --- namespaces ------------------------------------------------------------------------------------


def _ensure_shared_netns_dir() -> None:
    # As iproute2 does: NETNS_DIR must be a shared mount so that a namespace mounted after a
    # process made its own mount namespace (see procs.py) still shows up there.
    os.makedirs(NETNS_DIR, mode=0o755, exist_ok=True)
    path = NETNS_DIR.encode()
    if _libc.mount(b"none", path, None, _MS_SHARED | _MS_REC, None) == 0:
        return
    _libc_check(_libc.mount(path, path, b"none", _MS_BIND | _MS_REC, None), "bind")
    _libc_check(_libc.mount(b"none", path, None, _MS_SHARED | _MS_REC, None), "make-shared")


def create_netns(name: str) -> None:
    """Create the named network namespace ``name`` (``/run/netns/<name>``); nothing if it exists."""
    path = _netns_path(name)
    if _is_mounted_netns(path):
        return
    try:
        _ensure_shared_netns_dir()
        if os.path.lexists(path):  # a leftover mount point from a crash
            os.unlink(path)
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444))
    except OSError as e:
        raise NetlinkFailure(f"Could not create network namespace {name}: {e.strerror}.") from e

    def unshare_and_bind() -> None:
        _libc_check(_libc.unshare(_CLONE_NEWNET), "unshare")
        # /proc/thread-self, not /proc/self: only this thread is in the new namespace.
        _libc_check(_libc.mount(b"/proc/thread-self/ns/net", path.encode(), b"none", _MS_BIND, None), "mount")

    try:
        _on_fresh_thread(f"netns-create:{name}", unshare_and_bind)
    except OSError as e:
        try:
            os.unlink(path)
        except OSError:
            pass
        raise NetlinkFailure(f"Could not create network namespace {name}: {e.strerror}.") from e


def delete_netns(name: str) -> None:
    """Remove the named network namespace; nothing if it does not exist.

    The kernel frees the namespace (and its links and routes) once no process runs in it.
    """
    path = _netns_path(name)
    if not os.path.lexists(path):
        return
    _libc.umount2(path.encode(), _MNT_DETACH)  # EINVAL if a crash left it unmounted: fine
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise NetlinkFailure(f"Could not remove network namespace {name}: {e.strerror}.") from e


def list_netns(prefix: str = "") -> list[str]:
    """The named network namespaces on this host (those starting with ``prefix``), sorted."""
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(prefix))


def netns_exists(name: str) -> bool:
    return _is_mounted_netns(_netns_path(name))


# --- rtnetlink plumbing ----------------------------------------------------------------------------


def _rtnl(ns: str, what: str, fn: Callable[[Any], T], ok: tuple[int, ...] = ()) -> T | None:
    """Run ``fn(ipr)`` with an IPRoute socket opened inside ``ns``; errno in ``ok`` → ``None``."""

    def body() -> T:
        with IPRoute(groups=0) as ipr:
            return fn(ipr)

    try:
        return call_in_netns(ns, body)
    except NetlinkError as e:
        if e.code in ok:
            return None
        raise NetlinkFailure(f"Could not {what} in network namespace {ns}: {os.strerror(e.code)}.") from e
    except OSError as e:
        if e.errno in ok:
            return None
        raise NetlinkFailure(f"Could not {what} in network namespace {ns}: {e.strerror}.") from e


def _index(ipr: Any, ns: str, ifname: str) -> int:
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise LinkNotFound(f"Link {ifname} does not exist in network namespace {ns}.")
    return int(found[0])


def _link_msg(ipr: Any, ifname: str) -> Any | None:
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        return None
    return ipr.link("get", index=found[0])[0]


def _kind(msg: Any) -> str | None:
    info = msg.get("IFLA_LINKINFO")
    return info.get("IFLA_INFO_KIND") if info is not None else None


def _check_ifname(ifname: str) -> None:
    if not ifname or len(ifname) > 15 or "/" in ifname or any(c.isspace() for c in ifname):
        raise InvalidInput(f"{ifname!r} is not a valid link name; use 1 to 15 characters, no '/' or spaces.")


def _split_cidr(cidr: str) -> tuple[str, int]:
    try:
        iface = ipaddress.IPv4Interface(cidr)
    except ValueError as e:
        raise InvalidInput(f"{cidr!r} is not an IPv4 address with a prefix length (like 10.1.0.1/24).") from e
    return str(iface.ip), iface.network.prefixlen


def _normalize_dst(dst: str) -> str:
    if dst == "default":
        return "0.0.0.0/0"
    try:
        return str(ipaddress.IPv4Network(dst, strict=True))
    except ValueError as e:
        raise InvalidInput(f"{dst!r} is not an IPv4 network (like 10.2.0.0/24) or 'default'.") from e


# --- links -----------------------------------------------------------------------------------------


def link_ifindex(ns: str, ifname: str) -> int:
    """The ifindex of link ``ifname`` in ``ns``; ``LinkNotFound`` if there is none."""
    result = _rtnl(ns, f"look up link {ifname}", lambda ipr: _index(ipr, ns, ifname))
    assert result is not None
    return result


def list_links(ns: str) -> list[str]:
    """The names of the links in ``ns``, sorted."""
    result = _rtnl(ns, "list links", lambda ipr: sorted(m.get("IFLA_IFNAME") for m in ipr.link("dump")))
    assert result is not None
    return result


def set_link_up(ns: str, ifname: str) -> None:
    _check_ifname(ifname)
    _rtnl(ns, f"set link {ifname} up", lambda ipr: ipr.link("set", index=_index(ipr, ns, ifname), state="up"))


def delete_link(ns: str, ifname: str) -> None:
    """Delete link ``ifname`` (for a veth, both ends); nothing if it or the namespace is absent."""
    _check_ifname(ifname)
    if not netns_exists(ns):
        return

    def delete(ipr: Any) -> None:
        found = ipr.link_lookup(ifname=ifname)
        if found:
            ipr.link("del", index=found[0])

    _rtnl(ns, f"delete link {ifname}", delete, ok=(errno.ENODEV,))


def create_bridge(ns: str, name: str, cidr_addr: str | None = None) -> None:
    """A Linux bridge ``name`` in ``ns``, up, with address ``cidr_addr`` (like 172.30.0.1/16) if given."""
    _check_ifname(name)
    addr = _split_cidr(cidr_addr) if cidr_addr else None

    def make(ipr: Any) -> None:
        msg = _link_msg(ipr, name)
        if msg is None:
            ipr.link("add", ifname=name, kind="bridge")
        elif _kind(msg) != "bridge":
            raise NetlinkFailure(f"Link {name} in network namespace {ns} exists but is not a bridge.")
        index = _index(ipr, ns, name)
        if addr is not None:
            _add_addr(ipr, index, *addr)
        ipr.link("set", index=index, state="up")

    _rtnl(ns, f"create bridge {name}", make)


def create_veth(ns_a: str, name_a: str, ns_b: str, name_b: str, mtu: int = 1500) -> None:
    """A veth pair: ``name_a`` in ``ns_a`` and its peer ``name_b`` in ``ns_b`` (both left down).

    The pair is made in ``ns_a`` with the peer placed in ``ns_b`` by the same request, so no end
    ever appears in the caller's namespace. Nothing happens if the pair already exists.
    """
    _check_ifname(name_a)
    _check_ifname(name_b)
    if (ns_a, name_a) == (ns_b, name_b):
        raise InvalidInput(f"A veth pair needs two different ends; got {name_a} in {ns_a} twice.")
    peer_index = _peer_index_if_present(ns_b, name_b)
    fd_b = _open_netns(ns_b)
    try:

        def make(ipr: Any) -> None:
            msg = _link_msg(ipr, name_a)
            if msg is not None:
                if _kind(msg) == "veth" and peer_index is not None and msg.get("IFLA_LINK") == peer_index:
                    return
                raise NetlinkFailure(
                    f"Link {name_a} already exists in network namespace {ns_a} and is not paired with "
                    f"{name_b} in {ns_b}; delete it first."
                )
            if peer_index is not None:
                raise NetlinkFailure(
                    f"Link {name_b} already exists in network namespace {ns_b}; delete it before "
                    f"pairing it with {name_a} in {ns_a}."
                )
            peer: dict[str, Any] = {"ifname": name_b, "mtu": mtu}
            if ns_b != ns_a:
                peer["net_ns_fd"] = fd_b
            ipr.link("add", ifname=name_a, kind="veth", mtu=mtu, peer=peer)

        _rtnl(ns_a, f"create veth {name_a} (peer {name_b} in {ns_b})", make)
    finally:
        os.close(fd_b)


def _peer_index_if_present(ns: str, ifname: str) -> int | None:
    def look(ipr: Any) -> int | None:
        found = ipr.link_lookup(ifname=ifname)
        return int(found[0]) if found else None

    return _rtnl(ns, f"look up link {ifname}", look)


def attach_to_bridge(ns: str, ifname: str, bridge: str) -> None:
    """Make link ``ifname`` a port of ``bridge`` (both in ``ns``)."""
    _check_ifname(ifname)
    _check_ifname(bridge)
    _rtnl(
        ns,
        f"attach link {ifname} to bridge {bridge}",
        lambda ipr: ipr.link("set", index=_index(ipr, ns, ifname), master=_index(ipr, ns, bridge)),
    )


# --- addresses -------------------------------------------------------------------------------------


def _add_addr(ipr: Any, index: int, address: str, prefixlen: int) -> None:
    try:
        ipr.addr("add", index=index, address=address, prefixlen=prefixlen)
    except NetlinkError as e:
        if e.code != errno.EEXIST:
            raise


def add_address(ns: str, ifname: str, cidr: str) -> None:
    """Add ``cidr`` (like 10.1.0.1/32) to link ``ifname`` in ``ns``; nothing if it is already there."""
    _check_ifname(ifname)
    address, prefixlen = _split_cidr(cidr)
    _rtnl(
        ns,
        f"add address {cidr} to link {ifname}",
        lambda ipr: _add_addr(ipr, _index(ipr, ns, ifname), address, prefixlen),
    )


def list_addresses(ns: str, ifname: str) -> list[str]:
    """The IPv4 addresses of link ``ifname`` in ``ns`` as CIDRs, sorted."""
    _check_ifname(ifname)

    def dump(ipr: Any) -> list[str]:
        index = _index(ipr, ns, ifname)
        msgs = ipr.addr("dump", index=index, family=socket.AF_INET)
        return sorted(f"{m.get('IFA_ADDRESS')}/{m['prefixlen']}" for m in msgs)

    result = _rtnl(ns, f"list the addresses of link {ifname}", dump)
    assert result is not None
    return result


# --- routes ----------------------------------------------------------------------------------------


def _route_spec(
    ipr: Any, ns: str, dst: str, via: str | None, dev: str | None, src: str | None, scope: str | int | None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"dst": dst, "table": _RT_TABLE_MAIN, "family": socket.AF_INET}
    if via is not None:
        spec["gateway"] = via
    if dev is not None:
        spec["oif"] = _index(ipr, ns, dev)
    if src is not None:
        spec["prefsrc"] = src
    if scope is not None:
        spec["scope"] = _SCOPES[scope] if isinstance(scope, str) else scope
    return spec


def _check_route_args(via: str | None, dev: str | None, src: str | None, scope: str | int | None) -> None:
    for value, what in ((via, "gateway"), (src, "source")):
        if value is not None:
            try:
                ipaddress.IPv4Address(value)
            except ValueError as e:
                raise InvalidInput(f"{value!r} is not an IPv4 {what} address.") from e
    if dev is not None:
        _check_ifname(dev)
    if via is None and dev is None:
        raise InvalidInput("A route needs a gateway (via), a device (dev) or both.")
    if isinstance(scope, str) and scope not in _SCOPES:
        raise InvalidInput(f"{scope!r} is not a route scope; use one of {', '.join(sorted(_SCOPES))}.")


def _dump_routes(ipr: Any) -> list[Route]:
    names = {m["index"]: m.get("IFLA_IFNAME") for m in ipr.link("dump")}
    routes = []
    for m in ipr.route("dump", family=socket.AF_INET, table=_RT_TABLE_MAIN):
        if m.get("RTA_TABLE", m["table"]) != _RT_TABLE_MAIN:
            continue
        dst = m.get("RTA_DST") or "0.0.0.0"
        oif = m.get("RTA_OIF")
        routes.append(Route(f"{dst}/{m['dst_len']}", m.get("RTA_GATEWAY"), names.get(oif) if oif else None))
    return routes


def add_route(
    ns: str,
    dst_cidr: str,
    via: str | None = None,
    dev: str | None = None,
    src: str | None = None,
    scope: str | int | None = None,
) -> None:
    """Add a route to ``dst_cidr`` (or ``default``) in ``ns``'s main table.

    Nothing if the same route (destination, gateway, device) is there; a different route to the
    same destination is an error (use ``replace_route`` to overwrite).
    """
    dst = _normalize_dst(dst_cidr)
    _check_route_args(via, dev, src, scope)

    def add(ipr: Any) -> None:
        try:
            ipr.route("add", **_route_spec(ipr, ns, dst, via, dev, src, scope))
        except NetlinkError as e:
            if e.code != errno.EEXIST:
                raise
            for r in _dump_routes(ipr):
                if r.dst == dst and r.via == via and (dev is None or r.dev == dev):
                    return
            raise NetlinkFailure(
                f"A different route to {dst} already exists in network namespace {ns}; replace or delete it first."
            ) from e

    _rtnl(ns, f"add route to {dst}", add)


def replace_route(
    ns: str,
    dst_cidr: str,
    via: str | None = None,
    dev: str | None = None,
    src: str | None = None,
    scope: str | int | None = None,
) -> None:
    """Set the route to ``dst_cidr`` (or ``default``) in ``ns``, adding or overwriting it."""
    dst = _normalize_dst(dst_cidr)
    _check_route_args(via, dev, src, scope)
    _rtnl(
        ns,
        f"replace route to {dst}",
        lambda ipr: ipr.route("replace", **_route_spec(ipr, ns, dst, via, dev, src, scope)),
    )


def delete_route(ns: str, dst_cidr: str) -> None:
    """Delete the main-table route to ``dst_cidr`` in ``ns``; nothing if it or the namespace is absent."""
    dst = _normalize_dst(dst_cidr)
    if not netns_exists(ns):
        return
    _rtnl(
        ns,
        f"delete route to {dst}",
        lambda ipr: ipr.route("del", dst=dst, table=_RT_TABLE_MAIN, family=socket.AF_INET),
        ok=(errno.ESRCH, errno.ENOENT),
    )


def list_routes(ns: str) -> list[Route]:
    """The IPv4 routes of ``ns``'s main table."""
    result = _rtnl(ns, "list routes", _dump_routes)
    assert result is not None
    return result


# --- sysctls ---------------------------------------------------------------------------------------


def _sysctl_path(key: str) -> str:
    # Only net.* keys are per network namespace: anything else written from the entered thread
    # would change the whole host.
    parts = key.split(".")
    if parts[0] != "net" or len(parts) < 3 or any(not p or p in (".", "..") or "/" in p for p in parts):
        raise InvalidInput(f"{key!r} is not a per-namespace sysctl; use a net.* key (net.ipv4.ip_forward).")
    return "/proc/sys/" + "/".join(parts)


def set_sysctl(ns: str, key: str, value: str | int) -> None:
    """Set sysctl ``key`` (a ``net.*`` key, like net.ipv4.ip_forward) inside ``ns`` only."""
    path = _sysctl_path(key)

    def write() -> None:
        with open(path, "w") as f:
            f.write(f"{value}\n")

    try:
        call_in_netns(ns, write)
    except OSError as e:
        raise NetlinkFailure(f"Could not set {key}={value} in network namespace {ns}: {e.strerror}.") from e


def get_sysctl(ns: str, key: str) -> str:
    """The value of sysctl ``key`` (a ``net.*`` key) inside ``ns``."""
    path = _sysctl_path(key)

    def read() -> str:
        with open(path) as f:
            return f.read().strip()

    try:
        return call_in_netns(ns, read)
    except OSError as e:
        raise NetlinkFailure(f"Could not read {key} in network namespace {ns}: {e.strerror}.") from e
