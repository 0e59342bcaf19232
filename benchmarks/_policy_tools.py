"""Helpers of the policy benchmark: synthetic remote endpoints, the writer that publishes them in a
cluster's clustermesh etcd, and a sequential latency client.

A remote cluster "adding 1,000 endpoints" is, on the wire, 1,000 identity keys and 1,000 ipcache keys
appearing in its clustermesh-apiserver's etcd; every connected agent watches those and recompiles its
policy. Creating 1,000 real pods takes far too long on this host, and writing CiliumIdentity /
CiliumEndpoint objects into the remote's object store does not work either: the remote's own agent
deletes, in its next reconcile (it runs one on every change to its store), every identity and endpoint
of a pod it does not run, so its exporter would publish and withdraw them at random. So the benchmark
writes the keys the exporter would have written (same key, same value, built with fleetnet's own
``model.keys`` / ``IPIdentityPair`` / ``LabelSet`` code) straight into the remote's etcd, as the
exporter does: one put at a time, with the cluster's own admin certificate, from inside the node
namespace where its etcd listens on 127.0.0.1. The exporter deletes only keys it wrote itself, so
these stay until the benchmark removes them.

The script half (``python _policy_tools.py latency|probe|etcd ...``) runs inside a namespace through
``procs.run_in_netns``; ``latency`` and ``probe`` use the standard library only.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPT = str(Path(__file__).resolve())
# synthetic identities sit in the upper half of the remote's range, far from the ones its agent allocates
# (lowest free id first, from the bottom of the range)
IDENTITY_OFFSET = 0x8000


def _fleetnet(name: str) -> Any:
    # by name: fleetnet ships no py.typed, and mypy checks this folder on its own
    import importlib

    return importlib.import_module(f"fleetnet.{name}")


class ToolError(RuntimeError):
    """A helper run inside a namespace failed (the message says which and how)."""


def run_in(netns: str, argv: Sequence[str], timeout: float, input: str | None = None) -> str:
    p = _fleetnet("local.procs").run_in_netns(netns, list(argv), timeout, input=input)
    if p.returncode != 0:
        raise ToolError(f"`{' '.join(argv)}` in {netns} exited {p.returncode}: {(p.stderr or p.stdout).strip()[-400:]}")
    return str(p.stdout)


# ---------------------------------------------------------------- synthetic endpoints of a remote cluster


@dataclass(frozen=True, slots=True)
class Synthetic:
    """One made-up pod of a remote cluster: its identity, security labels (as a Cilium key) and IP."""

    identity: int
    labels_key: str
    ip: str


def synthetic_endpoints(
    n: int,
    *,
    start: int,
    cluster: str,
    cluster_id: int,
    pod_labels: dict[str, str],
    namespace: str = "default",
    cidr: str,
) -> list[Synthetic]:
    """``n`` pods with distinct label sets (``pod_labels`` + ``bench-id=<i>``), i from ``start``.

    Identities come from the upper half of ``cluster_id``'s range; addresses from ``cidr`` (a part of
    the remote's pod CIDR that none of its nodes allocates from), one per pod.
    """
    labels_mod = _fleetnet("plan.labels")
    low, high = _fleetnet("plan.identity").identity_range(cluster_id)
    net = ipaddress.IPv4Network(cidr)
    out = []
    for i in range(start, start + n):
        identity = low + IDENTITY_OFFSET + i
        if identity > high or i + 1 >= net.num_addresses - 1:
            raise ValueError(f"{start + n} synthetic endpoints do not fit cluster id {cluster_id} or {cidr}.")
        labels = labels_mod.pod_security_labels({**pod_labels, "bench-id": str(i)}, namespace, cluster)
        out.append(Synthetic(identity, str(labels.to_cilium_key()), str(net.network_address + 1 + i)))
    return out


def etcd_records(endpoints: Sequence[Synthetic], namespace: str, host_ip: str) -> dict[str, str]:
    """The keys the clustermesh-apiserver would export for these pods, in its order: identities, then
    ipcache entries (``apiserver/identities.py``)."""
    keys = _fleetnet("model.keys")
    pair_cls = _fleetnet("model.cilium").IPIdentityPair
    out = {keys.identity_key(e.identity): e.labels_key for e in endpoints}
    for i, e in enumerate(endpoints):
        pair = pair_cls(
            ip=e.ip,
            identity=e.identity,
            host_ip=host_ip,
            k8s_namespace=namespace,
            k8s_pod_name=f"bench-synthetic-{i}",
            k8s_service_account="default",
        )
        out[keys.ip_key(e.ip)] = pair.to_json().decode()
    return out


@dataclass(frozen=True, slots=True)
class Written:
    """What the writer did: CLOCK_MONOTONIC (shared by every process) before its first write and after
    each write, in the order of the keys it was given (puts, then deletes)."""

    keys: tuple[str, ...]
    first: float
    done: tuple[float, ...]

    @property
    def last(self) -> float:
        return self.done[-1] if self.done else self.first

    def last_under(self, prefix: str) -> float:
        """When the last key under ``prefix`` was written (``first`` if none was)."""
        return max((t for k, t in zip(self.keys, self.done, strict=True) if k.startswith(prefix)), default=self.first)


def etcd_write(
    netns: str, cluster_dir: Path, puts: dict[str, str] | None = None, deletes: Sequence[str] = ()
) -> Written:
    """Put then delete keys in a cluster's clustermesh etcd, one request at a time, from ``netns``."""
    job = json.dumps({"put": puts or {}, "delete": list(deletes)})
    out = json.loads(run_in(netns, [sys.executable, SCRIPT, "etcd", str(cluster_dir)], timeout=300, input=job))
    keys = (*(puts or {}), *deletes)
    if len(out["done"]) != len(keys):
        raise ToolError(f"the etcd writer reports {len(out['done'])} writes for {len(keys)} keys.")
    return Written(keys, float(out["first"]), tuple(float(t) for t in out["done"]))


async def _etcd(cluster_dir: Path, job: dict[str, Any]) -> dict[str, Any]:
    cfg = _fleetnet("model.cluster").ClusterConfig.read(cluster_dir / "cluster.json")
    ap = cluster_dir / "apiserver"
    client = await _fleetnet("kvstore.client").EtcdClient.connect(
        [f"https://127.0.0.1:{cfg.apiserver_port}"],
        ca_file=ap / "ca.crt",
        cert_file=ap / "admin.crt",
        key_file=ap / "admin.key",
        timeout=10.0,
    )
    done: list[float] = []
    try:
        first = time.monotonic()
        for k, v in job["put"].items():
            await client.put(k, v.encode())
            done.append(time.monotonic())
        for k in job["delete"]:
            await client.delete(k)
            done.append(time.monotonic())
    finally:
        await client.close()
    return {"first": first, "done": done}


# ---------------------------------------------------------------- clients


@dataclass(frozen=True, slots=True)
class Latency:
    """Per-request latencies of one target (µs)."""

    requests: int
    mean_us: float
    p50_us: float
    p90_us: float
    p99_us: float


def latency(netns: str, targets: Sequence[tuple[str, int]], seconds: float) -> list[Latency]:
    """One client, one request at a time, a new connection each (connect, GET, read to close), taking
    the targets in turn request by request, so that they share whatever else the host is doing."""
    argv = [sys.executable, SCRIPT, "latency", f"{seconds:g}", *(f"{h}:{p}" for h, p in targets)]
    out = json.loads(run_in(netns, argv, seconds + 60))
    got = []
    for t in out:
        if t["errors"] or not t["requests"]:
            raise ToolError(
                f"latency client, {t['target']}: {t['requests']} requests, {t['errors']} errors ({t['error']})."
            )
        got.append(Latency(int(t["requests"]), t["mean_us"], t["p50_us"], t["p90_us"], t["p99_us"]))
    return got


def parse_ab(out: str) -> float:
    """Requests per second from ab's report (``_traffic.parse_ab``); ToolError if it completed none or
    more than 1 % failed."""
    from benchmarks import _traffic  # not at the top: this file also runs as a script in namespaces

    try:
        return _traffic.parse_ab(out)[0]
    except _traffic.TrafficError as e:
        raise ToolError(str(e)) from e


def ab_rate(netns: str, host: str, port: int, seconds: float, concurrency: int) -> float:
    """New-connection HTTP/1.0 requests per second (``ab -c``) from inside ``netns`` (``_traffic.ab_rate``)."""
    from benchmarks import _traffic

    try:
        return float(_traffic.ab_rate(netns, host, port, seconds, concurrency).value)
    except _traffic.TrafficError as e:
        raise ToolError(str(e)) from e


def probe(netns: str, host: str, port: int, timeout: float) -> bool:
    """Whether one GET from ``netns`` gets an answer within ``timeout`` seconds."""
    out = json.loads(run_in(netns, [sys.executable, SCRIPT, "probe", host, str(port), f"{timeout:g}"], timeout + 30))
    return bool(out["ok"])


def _request(host: str, port: int, timeout: float) -> None:
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        while s.recv(65536):
            pass


def _latency(targets: Sequence[tuple[str, int]], seconds: float) -> list[dict[str, Any]]:
    lat: list[list[float]] = [[] for _ in targets]
    errors = [0 for _ in targets]
    error: list[str | None] = [None for _ in targets]
    end = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < end:
        k = i % len(targets)
        i += 1
        t0 = time.perf_counter()
        try:
            _request(*targets[k], 2.0)
        except OSError as e:
            errors[k] += 1
            error[k] = repr(e)
            continue
        lat[k].append(time.perf_counter() - t0)
    out = []
    for k, (host, port) in enumerate(targets):
        xs = sorted(lat[k])

        def pct(q: float, xs: list[float] = xs) -> float:
            return round(xs[min(len(xs) - 1, int(len(xs) * q))] * 1e6, 1) if xs else 0.0

        out.append(
            {
                "target": f"{host}:{port}",
                "requests": len(xs),
                "mean_us": round(sum(xs) / len(xs) * 1e6, 1) if xs else 0.0,
                "p50_us": pct(0.50),
                "p90_us": pct(0.90),
                "p99_us": pct(0.99),
                "errors": errors[k],
                "error": error[k],
            }
        )
    return out


def _probe(host: str, port: int, timeout: float) -> dict[str, Any]:
    try:
        _request(host, port, timeout)
    except OSError as e:
        return {"ok": False, "error": repr(e)}
    return {"ok": True, "error": None}


def main(argv: Sequence[str]) -> int:
    """``_policy_tools.py latency SECONDS HOST:PORT...`` | ``probe HOST PORT TIMEOUT`` | ``etcd CLUSTER_DIR``
    (job as JSON on stdin: {"put": {key: value}, "delete": [key]}): JSON on stdout."""
    out: Any
    if len(argv) >= 3 and argv[0] == "latency":
        targets = [(t.rsplit(":", 1)[0], int(t.rsplit(":", 1)[1])) for t in argv[2:]]
        out = _latency(targets, float(argv[1]))
    elif len(argv) == 4 and argv[0] == "probe":
        out = _probe(argv[1], int(argv[2]), float(argv[3]))
    elif len(argv) == 2 and argv[0] == "etcd":
        import asyncio

        out = asyncio.run(_etcd(Path(argv[1]), json.load(sys.stdin)))
    else:
        print(main.__doc__, file=sys.stderr)
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
