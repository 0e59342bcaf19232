"""A tiny TCP/UDP echo server for the datapath tests, run inside a pod's network namespace.

Every reply is one line, ``<name> <client ip>``: the test learns which backend answered and
that the backend saw the client's own address (no SNAT on the way). TCP answers each line
received on a connection, so one connection can be used again and again.

    python echo_server.py NAME READY_FILE --netns NS --tcp 80 8080 --udp 8080

With --netns it joins that network namespace itself (setns, as ``ip netns exec`` does, minus the
mount namespace work that can fail on a busy host) before it opens any socket.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import socketserver
import threading
from pathlib import Path


class _TCPHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for _line in self.rfile:
            self.wfile.write(f"{self.server.name} {self.client_address[0]}\n".encode())  # type: ignore[attr-defined]
            self.wfile.flush()


class _UDPHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        _data, sock = self.request
        sock.sendto(f"{self.server.name} {self.client_address[0]}\n".encode(), self.client_address)  # type: ignore[attr-defined]


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


class _UDPServer(socketserver.UDPServer):
    allow_reuse_address = True


def _join_netns(name: str) -> None:
    fd = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
            raise OSError(ctypes.get_errno(), f"setns into {name} failed")
    finally:
        os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("ready")
    parser.add_argument("--netns")
    parser.add_argument("--tcp", type=int, nargs="*", default=[])
    parser.add_argument("--udp", type=int, nargs="*", default=[])
    args = parser.parse_args()
    if args.netns:
        _join_netns(args.netns)
    servers: list[socketserver.BaseServer] = [_TCPServer(("0.0.0.0", p), _TCPHandler) for p in args.tcp]
    servers += [_UDPServer(("0.0.0.0", p), _UDPHandler) for p in args.udp]
    for server in servers:
        server.name = args.name  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
    Path(args.ready).write_text("ready\n")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()


if __name__ == "__main__":
    main()
