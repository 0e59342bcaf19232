"""Traffic for the datapath benchmarks: load generators run inside a pod's network namespace, the
kube-proxy iptables rules that serve as baseline, and a small topology of our own to run them in.

Load generators, each bounded in time and aimed only at addresses inside namespaces the benchmark
made (run through ``procs.run_in_netns``, so the client is born inside the pod's namespace):

- ``ab`` (Debian apache2-utils): a new TCP connection per request (HTTP/1.0), ``-c`` at once → req/s;
- this file run as a script: an asyncio HTTP/1.1 keep-alive client (the echo server keeps a
  connection open only for HTTP/1.1, which ab does not speak) → req/s, and a one-shot GET;
- ``iperf3`` (Debian iperf3): one TCP stream → Gbit/s.

The baseline is kube-proxy's iptables mode, generated here as kube-proxy lays it out
(``KUBE-SERVICES`` → ``KUBE-SVC-*`` → ``KUBE-SEP-*``) and installed with ``iptables-restore`` in a
node namespace of :func:`baseline_topology`: the same shape as a fleet (pod → node → underlay bridge
→ node → pod, built by fleetnet's own ``local/topology.py``) with no agent and no eBPF, under a
prefix of its own, removed in a ``finally``.

The script half (``python _traffic.py keepalive|get ...``) uses the standard library only.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import resource
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ECHO_PORT = 8080
IPERF_PORT = 5201
CLIENT_SYSCTLS = {
    # a new connection per request at thousands per second: enough source ports, and TIME_WAIT reuse
    "net.ipv4.ip_local_port_range": "1024 65000",
    "net.ipv4.tcp_tw_reuse": "1",
}
# Source ports of a client that reaches one backend both directly and through a VIP: one range each.
# The server closes first and keeps TIME_WAIT sockets per (client ip:port, server ip:port), and Linux
# derives a connection's TCP timestamp offset from the destination the client's socket sees (the
# VIP or the pod IP). A SYN that reuses a port whose TIME_WAIT came from the other kind carries
# timestamps from another offset, fails PAWS half the time, and waits for a retransmission: seen
# here as a third of the SYNs retransmitted and the rate cut by half in whichever kind runs second.
PORT_RANGES = {"direct": "1024 32999", "vip": "33000 65000"}


class TrafficError(RuntimeError):
    """A load generator failed or is missing (the message says which and what to do)."""


def _fleetnet(name: str) -> Any:
    # by name: fleetnet ships no py.typed, and mypy checks this folder on its own
    import importlib

    return importlib.import_module(f"fleetnet.{name}")


def require_tools(*tools: str) -> None:
    packages = {"ab": "apache2-utils", "iperf3": "iperf3", "iptables-restore": "iptables"}
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        debs = " ".join(sorted({packages.get(t, t) for t in missing}))
        raise TrafficError(
            f"{', '.join(missing)} not found; install it with `apt-get install {debs}` (make bench does)."
        )


# ---------------------------------------------------------------- running clients in a namespace


def run_in(netns: str, argv: Sequence[str], timeout: float, input: str | None = None) -> str:
    """Run ``argv`` inside ``netns`` to completion; its stdout, or TrafficError with its stderr."""
    p = _fleetnet("local.procs").run_in_netns(netns, list(argv), timeout, input=input)
    if p.returncode != 0:
        raise TrafficError(
            f"`{' '.join(argv)}` in {netns} exited {p.returncode}: {(p.stderr or p.stdout).strip()[-400:]}"
        )
    return str(p.stdout)


def tune_client(netns: str) -> None:
    netlink = _fleetnet("local.netlink")
    for key, value in CLIENT_SYSCTLS.items():
        netlink.set_sysctl(netns, key, value)


@dataclass(frozen=True, slots=True)
class Run:
    """One run of a load generator: its rate, the work it did, and the CPU time that work took.

    ``cpu_s`` is the CPU time of the client process plus the server's processes during the run
    (``getrusage`` of the reaped client, ``/proc/<pid>/task/*/schedstat`` of the servers). Packet
    processing on veths — the eBPF programs, netfilter — mostly runs in softirq in the context of the
    process that sent the packet, so it lands in these figures too. Unlike a rate, CPU time per unit
    of work barely moves when other work competes for the CPUs."""

    value: float  # requests/s, or Gbit/s
    work: float  # requests, or MiB received
    cpu_s: float

    @property
    def cpu_us_per_unit(self) -> float:
        return 1e6 * self.cpu_s / self.work if self.work else float("nan")


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def task_cpu(pids: Sequence[int]) -> float:
    """CPU seconds used so far by every thread of ``pids`` (those that have exited count 0)."""
    total = 0
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    return total / 1e9


def _metered(server_pids: Sequence[int], fn: Callable[[], tuple[float, float]]) -> Run:
    """Run ``fn`` (→ value, work) and add up the CPU time of its client and the servers."""
    c0, s0 = _children_cpu(), task_cpu(server_pids)
    value, work = fn()
    return Run(value, work, (_children_cpu() - c0) + (task_cpu(server_pids) - s0))


def parse_ab(out: str) -> tuple[float, int]:
    """(requests per second, requests completed) from ab's report; TrafficError if none or many failed."""
    rate = re.search(r"Requests per second:\s+([\d.]+)", out)
    done = re.search(r"Complete requests:\s+(\d+)", out)
    failed = re.search(r"Failed requests:\s+(\d+)", out)
    if rate is None or done is None or int(done.group(1)) == 0:
        raise TrafficError(f"ab completed no request: {out.strip()[-300:]}")
    if failed is not None and int(failed.group(1)) > int(done.group(1)) // 100:
        raise TrafficError(f"ab: {failed.group(1)} of {done.group(1)} requests failed.")
    return float(rate.group(1)), int(done.group(1))


def ab_rate(
    netns: str,
    host: str,
    port: int,
    seconds: float,
    concurrency: int = 16,
    server_pids: Sequence[int] = (),
    source_ports: str | None = None,
) -> Run:
    """New-connection HTTP/1.0 requests per second (``ab -c``), from inside ``netns``; ``source_ports``
    (one of PORT_RANGES) sets the namespace's ephemeral port range first."""
    if source_ports is not None:
        _fleetnet("local.netlink").set_sysctl(netns, "net.ipv4.ip_local_port_range", source_ports)
    url = f"http://{host}:{port}/"
    # -t before -n: -t sets a 50,000 request cap that the later -n lifts; ab takes whole seconds
    argv = ["ab", "-q", "-r", "-s", "5", "-t", str(max(1, round(seconds))), "-n", "10000000"]
    argv += ["-c", str(concurrency), url]
    return _metered(server_pids, lambda: parse_ab(run_in(netns, argv, timeout=seconds + 60)))


def keepalive_rate(
    netns: str, host: str, port: int, seconds: float, connections: int = 16, server_pids: Sequence[int] = ()
) -> Run:
    """HTTP/1.1 keep-alive requests per second over ``connections`` connections (this file as a script)."""
    argv = [sys.executable, str(Path(__file__).resolve()), "keepalive", host, str(port), f"{seconds:g}"]

    def once() -> tuple[float, float]:
        out = json.loads(run_in(netns, [*argv, str(connections)], timeout=seconds + 60))
        if out["errors"] or not out["requests"]:
            raise TrafficError(
                f"keep-alive client: {out['requests']} requests, {out['errors']} errors ({out['error']})."
            )
        return float(out["requests"]) / float(out["seconds"]), float(out["requests"])

    return _metered(server_pids, once)


def iperf3_gbps(netns: str, host: str, port: int, seconds: float, server_pids: Sequence[int] = ()) -> Run:
    """One TCP stream for ``seconds``: received Gbit/s (work in MiB)."""
    argv = ["iperf3", "-c", host, "-p", str(port), "-t", f"{seconds:g}", "-J", "--connect-timeout", "3000"]

    def once() -> tuple[float, float]:
        out = json.loads(run_in(netns, argv, timeout=seconds + 60))
        if "error" in out:
            raise TrafficError(f"iperf3 to {host}:{port}: {out['error']}")
        got = out["end"]["sum_received"]
        return float(got["bits_per_second"]) / 1e9, float(got["bytes"]) / 2**20

    return _metered(server_pids, once)


def http_get(netns: str, host: str, port: int) -> dict[str, Any]:
    """One GET from inside ``netns``: the echo server's JSON (who answered)."""
    argv = [sys.executable, str(Path(__file__).resolve()), "get", host, str(port)]
    return dict(json.loads(run_in(netns, argv, timeout=30)))


# ---------------------------------------------------------------- processes we start


def spawn(netns: str, argv: Sequence[str], logdir: Path, name: str) -> Any:
    """Start ``argv`` detached inside ``netns``; the ProcRecord to end it with :func:`stop`."""
    procs = _fleetnet("local.procs")
    return procs.spawn(
        list(argv), netns=netns, log_path=str(logdir / f"{name}.log"), pid_path=str(logdir / f"{name}.pid")
    )


def stop(rec: Any) -> None:
    """End a process :func:`spawn` started (by its record: pid and start time, never by name)."""
    _fleetnet("local.procs").terminate(rec, timeout=3.0)


def listening(pid: int, port: int) -> bool:
    """Whether a TCP socket listens on ``port`` in the network namespace of ``pid`` (IPv4 or dual-stack)."""
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        return True
        except (OSError, StopIteration, IndexError, ValueError):
            pass
    return False


def wait_listening(rec: Any, port: int, timeout: float = 30.0) -> None:
    procs = _fleetnet("local.procs")
    deadline = time.monotonic() + timeout
    while not listening(rec.pid, port):
        if not procs.is_alive(rec):
            raise TrafficError(f"{rec.argv[0]} (pid {rec.pid}) exited before listening on {port}.")
        if time.monotonic() > deadline:
            raise TrafficError(f"{rec.argv[0]} (pid {rec.pid}) is not listening on {port} after {timeout:.0f} s.")
        time.sleep(0.05)  # a poll interval; the deadline bounds the wait


def start_iperf3(netns: str, logdir: Path) -> Any:
    rec = spawn(netns, ["iperf3", "-s", "-p", str(IPERF_PORT)], logdir, "iperf3-" + secrets.token_hex(2))
    try:
        wait_listening(rec, IPERF_PORT)
    except BaseException:
        stop(rec)
        raise
    return rec


def start_echo(netns: str, logdir: Path, cluster: str, pod: str) -> Any:
    """The fleetnet echo server (the ``fleetnet/echo`` workload) on ECHO_PORT inside ``netns``."""
    argv = [sys.executable, "-m", "fleetnet.workloads.echo", "--cluster", cluster, "--node", "node1"]
    argv += ["--namespace", "default", "--pod", pod, "--tcp", str(ECHO_PORT)]
    rec = spawn(netns, argv, logdir, "echo-" + pod)
    try:
        wait_listening(rec, ECHO_PORT)
    except BaseException:
        stop(rec)
        raise
    return rec


# ---------------------------------------------------------------- services to install


@dataclass(frozen=True, slots=True)
class Svc:
    """One ClusterIP service: VIP:port/TCP → backends (ip, port)."""

    vip: str
    port: int
    backends: tuple[tuple[str, int], ...]
    name: str = "svc"


def dummy_services(n: int) -> list[Svc]:
    """``n`` services with two backends each that no test traffic ever reaches (10.96.0.0/16 VIPs;
    backends in 10.250/16 and 10.251/16, routed nowhere)."""
    out = []
    for i in range(n):
        a, b = 1 + i // 250, 1 + i % 250
        out.append(Svc(f"10.96.{a}.{b}", 80, ((f"10.250.{a}.{b}", 8080), (f"10.251.{a}.{b}", 8080)), f"dummy-{i}"))
    return out


def _chain(kind: str, *parts: str) -> str:
    # kube-proxy's names: KUBE-SVC-/KUBE-SEP- + the first 16 chars of base32(sha256(...))
    digest = base64.b32encode(hashlib.sha256("".join(parts).encode()).digest()).decode()
    return f"KUBE-{kind}-{digest[:16]}"


def kube_proxy_rules(services: Sequence[Svc], cluster_cidr: str) -> str:
    """The nat table kube-proxy (iptables mode) writes for ``services``, as iptables-restore input.

    Every new connection walks ``KUBE-SERVICES`` rule by rule until its VIP matches: the cost grows
    with the services before it (the target goes last). Per service: a masquerade mark for clients
    outside the cluster, one ``statistic`` jump per endpoint, and a DNAT per endpoint chain.
    """
    chains = [":KUBE-SERVICES - [0:0]", ":KUBE-NODEPORTS - [0:0]", ":KUBE-POSTROUTING - [0:0]"]
    chains.append(":KUBE-MARK-MASQ - [0:0]")
    rules = [
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
        "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000",
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE',
    ]
    for s in services:
        svc = _chain("SVC", s.name, "tcp", str(s.port))
        tag = f"default/{s.name}:http"
        chains.append(f":{svc} - [0:0]")
        rules.append(
            f'-A KUBE-SERVICES -d {s.vip}/32 -p tcp -m comment --comment "{tag} cluster IP" '
            f"-m tcp --dport {s.port} -j {svc}"
        )
        rules.append(
            f'-A {svc} ! -s {cluster_cidr} -d {s.vip}/32 -p tcp -m comment --comment "{tag} cluster IP" '
            f"-m tcp --dport {s.port} -j KUBE-MARK-MASQ"
        )
        for j, (ip, port) in enumerate(s.backends):
            sep = _chain("SEP", s.name, ip, str(port))
            chains.append(f":{sep} - [0:0]")
            left = len(s.backends) - j
            prob = f"-m statistic --mode random --probability {1 / left:.10f} " if left > 1 else ""
            rules.append(f'-A {svc} -m comment --comment "{tag} -> {ip}:{port}" {prob}-j {sep}')
            rules.append(f'-A {sep} -s {ip}/32 -m comment --comment "{tag}" -j KUBE-MARK-MASQ')
            rules.append(f'-A {sep} -p tcp -m comment --comment "{tag}" -m tcp -j DNAT --to-destination {ip}:{port}')
    rules.append(
        '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports" '
        "-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"
    )
    return "\n".join(["*nat", *chains, *rules, "COMMIT", ""])


def install_iptables(netns: str, services: Sequence[Svc], cluster_cidr: str) -> float:
    """Replace the nat table of ``netns`` (never the host's) with kube-proxy's rules; seconds it took."""
    text = kube_proxy_rules(services, cluster_cidr)
    start = time.monotonic()
    run_in(netns, ["iptables-restore", "-w", "30"], timeout=300, input=text)
    return time.monotonic() - start


def remove_nat(netns: str) -> None:
    """No nat table at all in ``netns`` (so no netfilter NAT hook runs there): the topology's ceiling."""
    procs = _fleetnet("local.procs")
    if shutil.which("nft") is not None:
        procs.run_in_netns(netns, ["nft", "delete", "table", "ip", "nat"], 60)  # absent already: fine
    else:  # iptables-legacy: the table stays registered, only emptied
        for args in (["-F"], ["-X"]):
            procs.run_in_netns(netns, ["iptables", "-w", "30", "-t", "nat", *args], 60)


# ---------------------------------------------------------------- the baseline's own topology


@dataclass(frozen=True, slots=True)
class BaselineNet:
    prefix: str
    client_netns: str
    node_netns: str  # the client's node: where kube-proxy's rules go
    server_netns: str
    client_ip: str
    server_ip: str
    cluster_cidr: str  # every pod address of the topology (kube-proxy's --cluster-cidr)
    server_pid: int  # the echo server's process


@contextmanager
def baseline_topology() -> Iterator[BaselineNet]:
    """Two one-node "clusters" and two pods, built as fleetnet builds them, with no agent and no eBPF.

    client pod (10.201.0.2) → node k1 → underlay bridge → node k2 → echo pod (10.202.0.2, the
    fleetnet echo server on 8080). Namespaces carry a random prefix ``fnbsvc<hex>``; everything is
    removed on the way out, even after a failure.
    """
    topo = _fleetnet("local.topology")
    prefix = "fnbsvc" + secrets.token_hex(3)
    logdir = Path(tempfile.mkdtemp(prefix=f"{prefix}-logs-"))
    ul = topo.underlay_spec(prefix, "ul", "192.168.240.0/24")
    n1 = topo.node_spec(prefix, "k1", "node1", ul, "192.168.240.2", "10.201.0.0/24")
    n2 = topo.node_spec(prefix, "k2", "node1", ul, "192.168.240.3", "10.202.0.0/24")
    client = topo.pod_spec(prefix, n1, "default", "client", "10.201.0.2")
    server = topo.pod_spec(prefix, n2, "default", "echo", "10.202.0.2")
    echo = None
    try:
        topo.ensure_underlay(ul)
        topo.add_node(n1)
        topo.add_node(n2)
        topo.install_routes(topo.remote_routes([n1], [n2]))
        topo.install_routes(topo.remote_routes([n2], [n1]))
        topo.add_pod(client)
        topo.add_pod(server)
        tune_client(client.netns)
        echo = start_echo(server.netns, logdir, "k2", "echo")
        yield BaselineNet(prefix, client.netns, n1.netns, server.netns, client.ip, server.ip, "10.200.0.0/14", echo.pid)
    finally:
        if echo is not None:
            stop(echo)
        topo.remove_all(prefix)
        shutil.rmtree(logdir, ignore_errors=True)


# ---------------------------------------------------------------- the script half (stdlib only)


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            return int(v.strip())
    return 0


async def _keepalive(host: str, port: int, seconds: float, connections: int) -> dict[str, Any]:
    request = f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    start = time.monotonic()
    deadline = start + seconds

    async def worker() -> int:
        n = 0
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5.0)
        try:
            while time.monotonic() < deadline:
                writer.write(request)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
                await reader.readexactly(_content_length(head))
                n += 1
        finally:
            writer.close()
        return n

    got = await asyncio.gather(*(worker() for _ in range(connections)), return_exceptions=True)
    errors = [g for g in got if isinstance(g, BaseException)]
    return {
        "requests": sum(g for g in got if isinstance(g, int)),
        "seconds": time.monotonic() - start,
        "errors": len(errors),
        "error": repr(errors[0]) if errors else None,
    }


def _get(host: str, port: int) -> dict[str, Any]:
    import socket

    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return dict(json.loads(data.partition(b"\r\n\r\n")[2]))


def main(argv: Sequence[str]) -> int:
    """``_traffic.py keepalive HOST PORT SECONDS CONNECTIONS`` | ``_traffic.py get HOST PORT``: JSON on stdout."""
    if len(argv) == 5 and argv[0] == "keepalive":
        out = asyncio.run(_keepalive(argv[1], int(argv[2]), float(argv[3]), int(argv[4])))
    elif len(argv) == 3 and argv[0] == "get":
        out = _get(argv[1], int(argv[2]))
    else:
        print(main.__doc__, file=sys.stderr)
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
