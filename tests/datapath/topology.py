"""A one-node, three-pod topology for the datapath tests, made and removed with pyroute2.

    client 10.201.1.2 ─ eth0 ══ lxc… ┐
    srv1   10.201.2.2 ─ eth0 ══ lxc… ├─ node namespace (routes /32s, forwards)
    srv2   10.201.2.3 ─ eth0 ══ lxc… ┘

Each pod has a /32 address and a default route via an on-link gateway address that its host-side
veth holds, as Cilium sets pods up. Every pod runs ``echo_server.py``; client code runs in a
thread that joined the pod's namespace (:meth:`Pod.run`), so the test process never changes its
own namespace. Every name comes from ``tests.support.names.unique`` and :meth:`Topology.close`
removes processes, namespaces and the bpffs mount even after a failure half-way.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pyroute2 import IPRoute, netns

from fleetnet.datapath.loader import ClusterDatapath, mount_bpffs, umount_bpffs
from fleetnet.datapath.maps import EndpointInfo
from tests.support.names import unique
from tests.support.wait import wait_for

T = TypeVar("T")
ECHO_SERVER = Path(__file__).with_name("echo_server.py")
_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000


def _join_netns(name: str) -> None:
    fd = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {name} failed")
    finally:
        os.close(fd)


def run_in_netns(name: str, fn: Callable[[], T]) -> T:
    with ThreadPoolExecutor(1, initializer=_join_netns, initargs=(name,)) as ex:
        return ex.submit(fn).result()


@dataclass
class Pod:
    label: str
    netns: str
    ip: str
    gateway: str
    host_if: str
    identity: int
    endpoint_id: int
    tcp_ports: tuple[int, ...]
    udp_ports: tuple[int, ...]
    server: subprocess.Popen[bytes] | None = None
    _thread: ThreadPoolExecutor | None = field(default=None, repr=False)

    def info(self, *, ingress: bool = False, egress: bool = False) -> EndpointInfo:
        return EndpointInfo(self.endpoint_id, self.identity, self.ip, ingress, egress)

    def run(self, fn: Callable[..., T], *args: object) -> T:
        """Runs fn in this pod's network namespace (sockets it makes belong to the pod)."""
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, initializer=_join_netns, initargs=(self.netns,))
        return self._thread.submit(fn, *args).result()

    def connect(self, ip: str, port: int, timeout: float = 5.0) -> socket.socket:
        return self.run(socket.create_connection, (ip, port), timeout)

    def tcp_ask(self, ip: str, port: int, timeout: float = 5.0) -> str:
        """One request on a new TCP connection; the answer is '<server> <client ip as seen>'."""
        return self.run(_tcp_ask, ip, port, timeout)

    def tcp_try(self, ip: str, port: int, timeout: float = 0.3) -> str | None:
        """Like tcp_ask, None when the connection fails or times out: for flows expected to be
        dropped, so the timeout is short (a slow answer still proves a flow was let through)."""
        return self.run(_tcp_try, ip, port, timeout)

    def udp_ask(self, ip: str, port: int, timeout: float = 3.0) -> str | None:
        """One datagram from a new socket (so a new flow); None without an answer."""
        return self.run(_udp_ask, ip, port, timeout)

    def many(self, fn: Callable[..., T], count: int, *args: object) -> list[T]:
        """Runs fn(*args) count times in the pod, in one hop to its thread."""
        return self.run(lambda: [fn(*args) for _ in range(count)])


def ask(sock: socket.socket) -> str:
    """A request on an existing connection."""
    sock.sendall(b"?\n")
    return _readline(sock)


def _readline(sock: socket.socket) -> str:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(256)
        if not chunk:
            raise ConnectionError(f"connection closed after {data!r}")
        data += chunk
    return data.decode().strip()


def _tcp_ask(ip: str, port: int, timeout: float) -> str:
    with socket.create_connection((ip, port), timeout) as s:
        return ask(s)


def _tcp_try(ip: str, port: int, timeout: float) -> str | None:
    try:
        return _tcp_ask(ip, port, timeout)
    except OSError:
        return None


def _udp_ask(ip: str, port: int, timeout: float) -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(b"?", (ip, port))
        try:
            return s.recv(256).decode().strip()
        except OSError:
            return None


def tcp_ask_fn(ip: str, port: int, timeout: float = 5.0) -> str:
    return _tcp_ask(ip, port, timeout)


def udp_ask_fn(ip: str, port: int, timeout: float = 3.0) -> str | None:
    return _udp_ask(ip, port, timeout)


@dataclass
class Topology:
    node: str
    pods: dict[str, Pod]
    bpffs: Path
    cluster: str
    datapath: ClusterDatapath
    workdir: Path

    @property
    def client(self) -> Pod:
        return self.pods["client"]

    @property
    def srv1(self) -> Pod:
        return self.pods["srv1"]

    @property
    def srv2(self) -> Pod:
        return self.pods["srv2"]

    def close(self) -> None:
        errors: list[BaseException] = []
        for pod in self.pods.values():
            with _collect(errors):
                _stop(pod.server)
            if pod._thread is not None:
                pod._thread.shutdown(wait=True)
        with _collect(errors):
            self.datapath.close()
        for name in [p.netns for p in self.pods.values()] + [self.node]:
            with _collect(errors):
                if os.path.exists(f"/var/run/netns/{name}"):
                    netns.remove(name)
        with _collect(errors):
            umount_bpffs(self.bpffs)
        if errors:
            raise errors[0]


@contextlib.contextmanager
def _collect(errors: list[BaseException]):  # type: ignore[no-untyped-def]
    try:
        yield
    except Exception as e:  # teardown goes on; the first error is raised at the end
        errors.append(e)


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _wait_ready(pod: Pod, workdir: Path) -> None:
    ready = workdir / f"{pod.label}.ready"
    assert pod.server is not None
    server = pod.server
    wait_for(lambda: ready.exists() or server.poll() is not None, timeout=30, what=f"echo server of {pod.label}")
    if not ready.exists():
        log = (workdir / f"{pod.label}.log").read_text(errors="replace").strip()
        raise RuntimeError(f"echo server of {pod.label} exited with {server.returncode}: {log[-500:]}")


def _pods() -> dict[str, Pod]:
    def pod(label: str, ip: str, gw: str, identity: int, endpoint_id: int, port: int) -> Pod:
        return Pod(label, unique("fnp"), ip, gw, unique("lxc"), identity, endpoint_id, (80, port), (80, port))

    return {
        "client": pod("client", "10.201.1.2", "10.201.1.1", 1001, 11, 7070),
        "srv1": pod("srv1", "10.201.2.2", "10.201.2.1", 1003, 12, 8080),
        "srv2": pod("srv2", "10.201.2.3", "10.201.2.1", 1002, 13, 9090),
    }


def make_topology(workdir: Path) -> Topology:
    """Creates the namespaces, veths, routes, servers and the loaded, attached datapath."""
    bpffs = workdir / "bpffs"
    node = unique("fnn")
    pods = _pods()
    cluster = unique("c")
    mount_bpffs(bpffs)
    topo = Topology(node, pods, bpffs, cluster, ClusterDatapath(bpffs, cluster), workdir)
    try:
        netns.create(node)
        for p in pods.values():
            netns.create(p.netns)
        with IPRoute(netns=node, flags=0) as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
            for p in pods.values():
                ipr.link("add", ifname=p.host_if, kind="veth", peer={"ifname": "eth0", "net_ns_fd": p.netns})
                idx = ipr.link_lookup(ifname=p.host_if)[0]
                ipr.addr("add", index=idx, address=p.gateway, prefixlen=32)
                ipr.link("set", index=idx, state="up")
                ipr.route("add", dst=f"{p.ip}/32", oif=idx)
        for p in pods.values():
            with IPRoute(netns=p.netns, flags=0) as ipr:
                ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
                idx = ipr.link_lookup(ifname="eth0")[0]
                ipr.addr("add", index=idx, address=p.ip, prefixlen=32)
                ipr.link("set", index=idx, state="up")
                ipr.route("add", dst=f"{p.gateway}/32", oif=idx, scope=253)
                ipr.route("add", dst="0.0.0.0/0", gateway=p.gateway, oif=idx)
        run_in_netns(node, lambda: Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n"))
        for p in pods.values():
            ready = workdir / f"{p.label}.ready"
            log = open(workdir / f"{p.label}.log", "wb")  # noqa: SIM115 (the child keeps it)
            p.server = subprocess.Popen(
                [
                    *(sys.executable, str(ECHO_SERVER), p.label, str(ready), "--netns", p.netns),
                    *("--tcp", *map(str, p.tcp_ports), "--udp", *map(str, p.udp_ports)),
                ],
                stdout=log,
                stderr=log,
            )
            log.close()
        dp = topo.datapath
        dp.load()
        for p in pods.values():
            dp.ipcache.upsert(p.ip, p.identity)
            dp.attach(node, p.host_if, p.info())
        for p in pods.values():
            _wait_ready(p, workdir)
    except BaseException:
        topo.close()
        raise
    return topo
