"""The built-in echo workload (image ``fleetnet/echo``): says who answered.

HTTP on every TCP container port: a JSON body with the cluster, node, namespace and pod that
answered and the client address it saw (so tests can check that the source pod IP crossed
clusters unchanged). UDP ports echo one datagram with the same JSON. Standard library only, so a
pod starts fast.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import signal
from typing import Any


def identity(args: argparse.Namespace) -> dict[str, Any]:
    return {"cluster": args.cluster, "node": args.node, "namespace": args.namespace, "pod": args.pod}


async def serve_tcp(port: int, who: dict[str, Any]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await reader.readuntil(b"\r\n\r\n")
                line = request.split(b"\r\n", 1)[0].decode(errors="replace")
                peer = writer.get_extra_info("peername")
                body = json.dumps({**who, "port": port, "client": peer[0] if peer else None, "request": line}).encode()
                keep = b"connection: close" not in request.lower() and b"HTTP/1.1" in request
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                    + str(len(body)).encode()
                    + (b"\r\n\r\n" if keep else b"\r\nconnection: close\r\n\r\n")
                    + body
                )
                await writer.drain()
                if not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host="0.0.0.0", port=port, backlog=512)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, port: int, who: dict[str, Any]) -> None:
        self.port = port
        self.who = who
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        body = json.dumps({**self.who, "port": self.port, "client": addr[0], "proto": "UDP"}).encode()
        self.transport.sendto(body, addr)


async def main_async(args: argparse.Namespace) -> None:
    who = identity(args)
    servers = [await serve_tcp(p, who) for p in args.tcp]
    loop = asyncio.get_running_loop()
    for p in args.udp:
        await loop.create_datagram_endpoint(functools.partial(_Udp, p, who), local_addr=("0.0.0.0", p))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for s in servers:
        s.close()


def main() -> None:
    ap = argparse.ArgumentParser(prog="fleetnet-echo")
    ap.add_argument("--cluster", required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--namespace", required=True)
    ap.add_argument("--pod", required=True)
    ap.add_argument("--tcp", type=int, action="append", default=[])
    ap.add_argument("--udp", type=int, action="append", default=[])
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
