"""Loads a cluster's datapath once, keeps it across agent restarts, and attaches it to pod veths.

Everything of a cluster lives under ``<bpffs_root>/<cluster>/`` on a bpffs that fleetnet mounts
in a directory it owns (never /sys/fs/bpf)::

    progs/  from_container, to_container       (pinned programs)
    maps/   fn_lb4_svc, fn_ct4, fn_policy, ...   (pinned maps: the state)
    links/  <netns>/<ifname>/ingress|egress      (pinned tcx links: the attachments)

bpffs refuses names with a dot, so dots (and percent signs) in namespace and interface names are
%-escaped in link paths.

Pins outlive the agent, so a restarted agent calls :meth:`ClusterDatapath.load` again and gets the
same maps and attachments back: traffic, conntrack and services are never flushed. Programs are
loaded by ``bpftool prog loadall`` once per cluster (not per veth). The map ``fn_build`` records
the SHA-256 of the object the pinned programs came from; when an agent starts with another
object, ``load`` loads its programs against the same maps and swaps every attachment atomically
(BPF_LINK_UPDATE), which is how an agent upgrade keeps established connections.

Attachment uses tcx links (kernel >= 6.6) created from a thread that has joined the node's
network namespace; older kernels fall back to a clsact qdisc with two ``bpf`` filters through
pyroute2. The objects are built once by ``make build`` (see :mod:`fleetnet.datapath.build`).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import hashlib
import os
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Literal, TypeVar

from fleetnet.datapath import bpf
from fleetnet.datapath.bpf import BpfError, BpfMap
from fleetnet.datapath.build import BPF_DIR
from fleetnet.datapath.maps import (
    ConntrackMap,
    EndpointInfo,
    EndpointMap,
    IpcacheMap,
    Metrics,
    PolicyMap,
    ServiceMaps,
)
from fleetnet.errors import InvalidInput, NotFound, SystemFailure

__all__ = [
    "MAP_NAMES",
    "OBJECT",
    "PROGRAMS",
    "AttachMode",
    "ClusterDatapath",
    "is_bpffs",
    "mount_bpffs",
    "umount_bpffs",
]

T = TypeVar("T")
AttachMode = Literal["tcx", "tc"]

OBJECT = BPF_DIR / "bpf_lxc.o"
PROGRAMS = ("from_container", "to_container")
MAP_NAMES = (
    "fn_lb4_svc",
    "fn_lb4_slots",
    "fn_lb4_be",
    "fn_lb4_revnat",
    "fn_ct4",
    "fn_ipcache4",
    "fn_policy",
    "fn_endpoints",
    "fn_metrics",
    "fn_build",
)
NETNS_DIR = Path("/var/run/netns")
_CLUSTER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")  # network namespace names
_IFNAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")
_CLONE_NEWNET = 0x40000000
_MNT_DETACH = 2
_TC_HANDLE = 1
_TC_PRIO = 1
_libc = ctypes.CDLL(None, use_errno=True)


# --------------------------------------------------------------------------- bpffs


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _mounts() -> list[tuple[str, str]]:
    """(mount point, fs type) of every mount of this process, in mount order."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            out.append((_unescape(fields[4]), right.split()[0]))
    return out


def is_bpffs(path: str | os.PathLike[str]) -> bool:
    """True when a bpffs is mounted exactly at path (the topmost mount there)."""
    target = os.path.realpath(path)
    types = [fstype for point, fstype in _mounts() if point == target]
    return bool(types) and types[-1] == "bpf"


def _on_bpffs(path: Path) -> bool:
    """True when path lies inside a bpffs (the mount holding it is one)."""
    target = os.path.realpath(path)
    best, best_type = "", ""
    for point, fstype in _mounts():
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, best_type = point, fstype
    return best_type == "bpf"


def mount_bpffs(path: str | os.PathLike[str]) -> None:
    """Mounts a private bpffs at path (made if missing); nothing happens when one is there."""
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    if is_bpffs(p):
        return
    if _libc.mount(b"bpf", os.fsencode(p), b"bpf", 0, b"mode=0700") != 0:
        err = ctypes.get_errno()
        raise SystemFailure(f"mounting a bpffs at {p} failed: {os.strerror(err)}; fleetnet needs root for this.")


def umount_bpffs(path: str | os.PathLike[str]) -> None:
    """Unmounts the bpffs at path, which drops every pin in it; nothing happens when none is there."""
    p = os.fsencode(os.path.realpath(path))
    if not is_bpffs(path):
        return
    if _libc.umount2(p, 0) != 0:
        err = ctypes.get_errno()
        if err != errno.EBUSY or _libc.umount2(p, _MNT_DETACH) != 0:
            err = ctypes.get_errno()
            raise SystemFailure(f"unmounting the bpffs at {os.fsdecode(p)} failed: {os.strerror(err)}.")


# --------------------------------------------------------------------------- helpers


def _in_netns(netns: str, fn: Callable[[], T]) -> T:
    """Runs fn in a short-lived thread that joined the network namespace netns: setns(2) moves
    only the calling thread, so the rest of the process never changes namespace."""
    box: list[tuple[bool, object]] = []

    def run() -> None:
        try:
            fd = os.open(NETNS_DIR / netns, os.O_RDONLY)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise SystemFailure(f"joining network namespace {netns} failed: {os.strerror(err)}.")
            finally:
                os.close(fd)
            box.append((True, fn()))
        except BaseException as e:
            box.append((False, e))

    t = threading.Thread(target=run, name=f"netns:{netns}")
    t.start()
    t.join()
    ok, value = box[0]
    if not ok:
        assert isinstance(value, BaseException)
        raise value
    return value  # type: ignore[return-value]


def _bpftool(*args: str) -> None:
    exe = shutil.which("bpftool") or ("/usr/sbin/bpftool" if os.path.exists("/usr/sbin/bpftool") else None)
    if exe is None:
        raise SystemFailure("bpftool is not installed; install the Debian package bpftool.")
    proc = subprocess.run([exe, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [line.strip() for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
        why = [line for line in lines if "failed" in line or line.startswith("Error")]
        detail = "; ".join(dict.fromkeys(why[:2] or lines[-1:] or ["no output"]))
        raise SystemFailure(f"bpftool {args[0]} {args[1]} failed: {detail}")


def _remove_tree(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _detach_pin(pin: Path) -> None:
    """Detaches a pinned link at once, then removes its pin."""
    try:
        fd = bpf.obj_get(pin)
    except BpfError:
        fd = -1
    try:
        if fd >= 0:
            try:
                bpf.link_detach(fd)
            except BpfError as e:
                if e.errno not in (errno.ENOLINK, errno.EINVAL, errno.ENOENT):
                    raise
    finally:
        if fd >= 0:
            os.close(fd)
    pin.unlink()


def _kernel_has_tcx() -> bool:
    m = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return m is not None and (int(m.group(1)), int(m.group(2))) >= (6, 6)


def _check_name(what: str, name: str, pattern: re.Pattern[str]) -> None:
    if not pattern.match(name):
        raise InvalidInput(f"{what} {name!r} is not a valid name; use letters, digits, '-' and '_'.")


def _pin_name(name: str) -> str:
    return name.replace("%", "%25").replace(".", "%2E")


def _unpin_name(name: str) -> str:
    return re.sub("%(25|2E)", lambda m: "%" if m.group(1) == "25" else ".", name)


# --------------------------------------------------------------------------- the cluster datapath


class ClusterDatapath:
    """The datapath of one cluster: its pinned programs and maps, and its attachments."""

    def __init__(
        self,
        bpffs_root: str | os.PathLike[str],
        cluster: str,
        *,
        obj: Path = OBJECT,
        attach_mode: AttachMode | None = None,
    ) -> None:
        _check_name("cluster", cluster, _CLUSTER)
        self.bpffs_root = Path(bpffs_root)
        self.cluster = cluster
        self.root = self.bpffs_root / cluster
        self.progs_dir = self.root / "progs"
        self.maps_dir = self.root / "maps"
        self.links_dir = self.root / "links"
        self.obj = obj
        self.attach_mode: AttachMode = attach_mode or ("tcx" if _kernel_has_tcx() else "tc")
        self._maps: dict[str, BpfMap] = {}
        self._services: ServiceMaps | None = None
        self._policy: PolicyMap | None = None

    def __repr__(self) -> str:
        return f"ClusterDatapath({str(self.bpffs_root)!r}, {self.cluster!r})"

    def __enter__(self) -> ClusterDatapath:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- loading
    def is_loaded(self) -> bool:
        return all((self.progs_dir / p).exists() for p in PROGRAMS) and all(
            (self.maps_dir / m).exists() for m in MAP_NAMES
        )

    def load(self) -> bool:
        """Makes the programs and maps exist. Pins already there are reused as they are (an agent
        restart: False); pins made from another object are upgraded in place, keeping the maps
        (True); with no pins, everything is loaded (True)."""
        if self.is_loaded() and self.loaded_digest() == self._object_digest():
            return False
        self.upgrade()
        return True

    def upgrade(self) -> None:
        """Loads the programs of the current object against the existing maps and points every
        attachment at them without a gap: an agent upgrade keeps connections and state."""
        self._load_programs()
        for pin in sorted(self.links_dir.glob("*/*/*")):
            self._update_link(pin, PROGRAMS[0] if pin.name == "ingress" else PROGRAMS[1])

    def loaded_digest(self) -> bytes | None:
        """SHA-256 of the object the pinned programs came from (None if unknown)."""
        raw = self.map("fn_build").lookup(b"\0\0\0\0")
        return None if raw is None or raw == bytes(32) else raw

    def _object_digest(self) -> bytes:
        if not self.obj.exists():
            raise SystemFailure(
                f"the datapath object {self.obj} is missing; run `make build` to compile it (done once)."
            )
        return hashlib.sha256(self.obj.read_bytes()).digest()

    def _load_programs(self) -> None:
        digest = self._object_digest()
        if not _on_bpffs(self.bpffs_root):
            raise SystemFailure(f"{self.bpffs_root} is not on a bpffs; mount one there with mount_bpffs() first.")
        self.maps_dir.mkdir(parents=True, exist_ok=True)
        new_progs, new_maps, old_progs = (self.root / n for n in ("progs_new", "maps_new", "progs_old"))
        for leftover in (new_progs, new_maps, old_progs):
            _remove_tree(leftover)
        args = ["prog", "loadall", str(self.obj), str(new_progs), "type", "classifier"]
        for name in MAP_NAMES:
            if (self.maps_dir / name).exists():  # reuse: the state survives a reload
                args += ["map", "name", name, "pinned", str(self.maps_dir / name)]
        args += ["pinmaps", str(new_maps)]
        try:
            _bpftool(*args)
            for pin in new_maps.iterdir():
                if not (self.maps_dir / pin.name).exists():
                    pin.rename(self.maps_dir / pin.name)
            if self.progs_dir.exists():
                self.progs_dir.rename(old_progs)
            new_progs.rename(self.progs_dir)
        finally:
            for leftover in (new_progs, new_maps, old_progs):
                _remove_tree(leftover)
        self.map("fn_build").update(b"\0\0\0\0", digest)

    def unload(self) -> None:
        """Removes every pin of the cluster: tcx attachments detach, maps and programs go away
        once nothing else holds them. tc-mode filters stay until their veth is deleted."""
        self.close()
        for pin in list(self.links_dir.glob("*/*/*")):
            _detach_pin(pin)
        _remove_tree(self.root)

    def close(self) -> None:
        """Closes the map file descriptors this object holds; the pins stay."""
        for m in self._maps.values():
            m.close()
        self._maps.clear()
        self._services = None
        self._policy = None

    # -- attaching
    def attach(self, netns: str, ifname: str, info: EndpointInfo) -> int:
        """Attaches both programs to the host-side veth ifname in namespace netns and records the
        endpoint; idempotent. Returns the veth's ifindex."""
        self._require_loaded()
        inode = self._netns_inode(netns)
        _check_name("interface", ifname, _IFNAME)
        ifindex = self._ifindex(netns, ifname)
        for rec in self.endpoints.items().values():
            if rec.netns_inode == inode and rec.ifindex == ifindex and rec.info.ip != info.ip:
                self.endpoints.delete(rec.info.ip)  # the veth now serves another address
        # The endpoint entry comes first: from_container drops sources it does not know.
        self.endpoints.upsert(ifindex, info, inode)
        if self.attach_mode == "tcx":
            self._attach_tcx(netns, ifname, ifindex)
        else:
            self._attach_tc(netns, ifindex)
        return ifindex

    def detach(self, netns: str, ifname: str) -> None:
        """Removes the programs from the veth and forgets its endpoint; idempotent, and fine when
        the veth or the whole namespace is already gone."""
        _check_name("network namespace", netns, _NAME)
        _check_name("interface", ifname, _IFNAME)
        link_dir = self._link_dir(netns, ifname)
        for side in ("ingress", "egress"):
            pin = link_dir / side
            if pin.exists():
                _detach_pin(pin)
        for d in (link_dir, link_dir.parent):
            try:
                d.rmdir()
            except OSError:
                pass
        if not (NETNS_DIR / netns).exists():
            return
        inode = self._netns_inode(netns)

        def probe() -> tuple[int | None, set[int]]:
            live = {index for index, _name in socket.if_nameindex()}
            try:
                return socket.if_nametoindex(ifname), live
            except OSError:
                return None, live

        ifindex, live = _in_netns(netns, probe)
        if ifindex is not None and self.attach_mode == "tc":
            self._detach_tc(netns, ifindex)
        if self.is_loaded():
            for rec in self.endpoints.items().values():
                if rec.netns_inode == inode and (rec.ifindex == ifindex or rec.ifindex not in live):
                    self.endpoints.delete(rec.info.ip)

    def attachments(self) -> list[tuple[str, str]]:
        """(netns, ifname) of every tcx attachment this cluster has pinned."""
        return sorted(
            {
                (_unpin_name(pin.parent.parent.name), _unpin_name(pin.parent.name))
                for pin in self.links_dir.glob("*/*/*")
            }
        )

    def prune(self) -> int:
        """Drops what deleted namespaces and veths left behind: endpoint entries whose node
        namespace is gone and links whose device is gone. Returns how many it removed."""
        removed = 0
        live = {os.stat(p).st_ino for p in NETNS_DIR.iterdir()} if NETNS_DIR.is_dir() else set()
        if self.is_loaded():
            for rec in self.endpoints.items().values():
                if rec.netns_inode and rec.netns_inode not in live:
                    removed += self.endpoints.delete(rec.info.ip)
        for pin in list(self.links_dir.glob("*/*/*")):
            try:
                fd = bpf.obj_get(pin)
            except BpfError:
                continue
            try:
                gone = not (NETNS_DIR / _unpin_name(pin.parent.parent.name)).exists()
                dead = gone or bpf.link_info(fd).ifindex == 0
            finally:
                os.close(fd)
            if dead:
                pin.unlink()
                removed += 1
        for d in list(self.links_dir.glob("*/*")) + list(self.links_dir.glob("*")):
            try:
                d.rmdir()
            except OSError:
                pass
        return removed

    def _require_loaded(self) -> None:
        if not self.is_loaded():
            raise SystemFailure(f"the datapath of cluster {self.cluster} is not loaded; call load() first.")

    def _netns_inode(self, netns: str) -> int:
        _check_name("network namespace", netns, _NAME)
        try:
            return os.stat(NETNS_DIR / netns).st_ino
        except FileNotFoundError as e:
            raise NotFound(f"network namespace {netns} does not exist; create the node first.") from e

    def _ifindex(self, netns: str, ifname: str) -> int:
        try:
            return _in_netns(netns, lambda: socket.if_nametoindex(ifname))
        except OSError as e:
            raise NotFound(f"interface {ifname} does not exist in network namespace {netns}.") from e

    def _link_dir(self, netns: str, ifname: str) -> Path:
        if len(_pin_name(netns)) > 255:
            raise InvalidInput(f"network namespace name {netns!r} is too long to name its pins; shorten it.")
        return self.links_dir / _pin_name(netns) / _pin_name(ifname)

    def _attach_tcx(self, netns: str, ifname: str, ifindex: int) -> None:
        link_dir = self._link_dir(netns, ifname)
        link_dir.mkdir(parents=True, exist_ok=True)
        for prog, ingress in ((PROGRAMS[0], True), (PROGRAMS[1], False)):
            pin = link_dir / ("ingress" if ingress else "egress")
            if pin.exists():
                if self._update_link(pin, prog, ifindex):
                    continue
                pin.unlink()  # its veth was deleted or recreated: that link is dead
            prog_fd = bpf.obj_get(self.progs_dir / prog)
            try:
                link_fd = _in_netns(netns, functools.partial(bpf.link_create_tcx, prog_fd, ifindex, ingress=ingress))
                try:
                    bpf.obj_pin(link_fd, pin)
                finally:
                    os.close(link_fd)
            finally:
                os.close(prog_fd)

    def _update_link(self, pin: Path, prog: str, ifindex: int | None = None) -> bool:
        """Points a pinned link at the current program; False when the link is dead (or, given
        ifindex, attached elsewhere)."""
        link_fd = bpf.obj_get(pin)
        prog_fd = bpf.obj_get(self.progs_dir / prog)
        try:
            link = bpf.link_info(link_fd)
            if link.ifindex == 0 or (ifindex is not None and link.ifindex != ifindex):
                return False
            if link.prog_id != bpf.prog_info(prog_fd).id:
                bpf.link_update(link_fd, prog_fd)
            return True
        finally:
            os.close(prog_fd)
            os.close(link_fd)

    def _attach_tc(self, netns: str, ifindex: int) -> None:
        from pyroute2 import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            with IPRoute(netns=netns, flags=0) as ipr:
                try:
                    ipr.tc("add", "clsact", ifindex)
                except NetlinkError as e:
                    if e.code != errno.EEXIST:
                        raise
                for prog, parent in ((PROGRAMS[0], 0xFFFFFFF2), (PROGRAMS[1], 0xFFFFFFF3)):
                    fd = bpf.obj_get(self.progs_dir / prog)
                    try:
                        ipr.tc(
                            "replace-filter",
                            "bpf",
                            ifindex,
                            _TC_HANDLE,
                            fd=fd,
                            name=prog,
                            parent=parent,
                            prio=_TC_PRIO,
                            protocol=0x0003,  # ETH_P_ALL
                            direct_action=True,
                        )
                    finally:
                        os.close(fd)
        except NetlinkError as e:
            raise SystemFailure(
                f"attaching tc filters to ifindex {ifindex} in {netns} failed: {os.strerror(e.code)}."
            ) from e

    def _detach_tc(self, netns: str, ifindex: int) -> None:
        from pyroute2 import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError

        with IPRoute(netns=netns, flags=0) as ipr:
            for parent in (0xFFFFFFF2, 0xFFFFFFF3):
                try:
                    ipr.tc("del-filter", "bpf", ifindex, _TC_HANDLE, parent=parent, prio=_TC_PRIO, protocol=0x0003)
                except NetlinkError as e:
                    if e.code not in (errno.ENOENT, errno.EINVAL):
                        raise SystemFailure(
                            f"removing tc filters from ifindex {ifindex} in {netns} failed: {os.strerror(e.code)}."
                        ) from e

    # -- maps
    def map(self, name: str) -> BpfMap:
        """One pinned map by name (see MAP_NAMES), opened once and kept open."""
        if name not in MAP_NAMES:
            raise InvalidInput(f"{name} is not a datapath map; use one of {', '.join(MAP_NAMES)}.")
        m = self._maps.get(name)
        if m is None:
            self._require_loaded()
            m = self._maps[name] = BpfMap(self.maps_dir / name)
        return m

    @property
    def services(self) -> ServiceMaps:
        if self._services is None:
            self._services = ServiceMaps(
                self.map("fn_lb4_svc"), self.map("fn_lb4_slots"), self.map("fn_lb4_be"), self.map("fn_lb4_revnat")
            )
        return self._services

    @property
    def ipcache(self) -> IpcacheMap:
        return IpcacheMap(self.map("fn_ipcache4"))

    @property
    def policy(self) -> PolicyMap:
        if self._policy is None:
            self._policy = PolicyMap(self.map("fn_policy"))
        return self._policy

    @property
    def endpoints(self) -> EndpointMap:
        return EndpointMap(self.map("fn_endpoints"))

    @property
    def metrics(self) -> Metrics:
        return Metrics(self.map("fn_metrics"))

    @property
    def conntrack(self) -> ConntrackMap:
        return ConntrackMap(self.map("fn_ct4"))
