"""The pure half of the datapath benchmarks' traffic helpers: kube-proxy rules, dummy services, ab's
report, and the keep-alive client against a server on 127.0.0.1 (no root, no namespaces)."""

from __future__ import annotations

import asyncio
import ipaddress
import os

import pytest

from benchmarks import _traffic as traffic
from benchmarks import bench_services


def test_dummy_services_are_distinct_and_clear_of_real_addresses() -> None:
    svcs = traffic.dummy_services(10_000)
    vips = [s.vip for s in svcs]
    assert len(set(vips)) == 10_000
    assert bench_services.BASELINE_VIP not in vips
    fleet_service_cidrs = ipaddress.IPv4Network("172.16.0.0/12")
    assert not any(ipaddress.IPv4Address(v) in fleet_service_cidrs for v in vips)
    assert all(len(s.backends) == 2 for s in svcs)


def test_kube_proxy_rules_put_the_target_last_before_nodeports() -> None:
    target = traffic.Svc("10.97.0.10", 80, (("10.202.0.2", 8080),), "bench-echo")
    text = traffic.kube_proxy_rules([*traffic.dummy_services(3), target], "10.200.0.0/14")
    lines = text.splitlines()
    assert lines[0] == "*nat" and lines[-1] == "COMMIT"
    services = [ln for ln in lines if ln.startswith("-A KUBE-SERVICES ")]
    assert len(services) == 4 + 1
    assert "-d 10.97.0.10/32" in services[-2]
    assert "KUBE-NODEPORTS" in services[-1]
    declared = [ln[1:].split()[0] for ln in lines if ln.startswith(":")]
    assert len(declared) == len(set(declared))
    jumped = {ln.split(" -j ")[-1].split()[0] for ln in lines if ln.startswith("-A ") and " -j KUBE-" in ln}
    assert jumped <= set(declared)
    # two endpoints: the first is taken with probability 1/2, the second always
    svc = services[0].split(" -j ")[-1]
    jumps = [ln for ln in lines if ln.startswith(f"-A {svc} ") and "KUBE-SEP-" in ln]
    assert "--probability 0.5000000000" in jumps[0] and "statistic" not in jumps[1]
    assert "DNAT --to-destination 10.202.0.2:8080" in text


def test_chain_names_look_like_kube_proxys() -> None:
    text = traffic.kube_proxy_rules(traffic.dummy_services(1), "10.0.0.0/8")
    names = [ln[1:].split()[0] for ln in text.splitlines() if ln.startswith((":KUBE-SVC-", ":KUBE-SEP-"))]
    assert len(names) == 3 and all(len(n) == len("KUBE-SVC-") + 16 for n in names)


AB_OUT = """Concurrency Level:      16
Time taken for tests:   3.000 seconds
Complete requests:      12000
Failed requests:        {failed}
Requests per second:    4000.12 [#/sec] (mean)
"""


def test_parse_ab() -> None:
    assert traffic.parse_ab(AB_OUT.format(failed=0)) == (pytest.approx(4000.12), 12000)
    with pytest.raises(traffic.TrafficError, match="failed"):
        traffic.parse_ab(AB_OUT.format(failed=500))
    with pytest.raises(traffic.TrafficError, match="no request"):
        traffic.parse_ab("apr_socket_connect(): Connection refused (111)")


def test_content_length_is_case_insensitive() -> None:
    assert traffic._content_length(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n") == 12
    assert traffic._content_length(b"HTTP/1.1 200 OK\r\ncontent-length:3\r\n\r\n") == 3
    assert traffic._content_length(b"HTTP/1.1 204 No Content\r\n\r\n") == 0


def test_run_reports_cpu_per_unit_of_work() -> None:
    assert traffic.Run(4000.0, 8000.0, 1.2).cpu_us_per_unit == pytest.approx(150.0)
    assert traffic.task_cpu([os.getpid()]) > 0
    assert traffic.task_cpu([2**22 + 1]) == 0  # no such process


async def test_keepalive_client_reuses_connections() -> None:
    accepted = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        out = await traffic._keepalive("127.0.0.1", port, 0.3, 3)
    finally:
        server.close()
        await server.wait_closed()
    assert out["errors"] == 0
    assert out["requests"] > 3
    assert accepted == 3
