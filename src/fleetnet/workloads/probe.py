"""``fleetnet probe URL``: a small HTTP client that says which pod answered.

Usable inside pods (``fleetnet kubectl c1 exec client -- fleetnet probe http://...``). Each request
opens a new connection (so a load-balanced service spreads them), and a summary counts the answers
per cluster. Exit status: 0 when at least one request was answered, 1 when none was.
"""

from __future__ import annotations

import json
import socket
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Answer:
    ok: bool
    who: dict[str, Any]
    error: str | None
    seconds: float


def resolve(host: str) -> str:
    return socket.gethostbyname(host)  # /etc/hosts of the pod (service names) first


def request(url: str, timeout: float = 2.0) -> Answer:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return Answer(False, {}, f"{url!r} is not an http:// URL", 0.0)
    port = parts.port or 80
    path = parts.path or "/"
    start = time.monotonic()
    try:
        ip = resolve(parts.hostname)
        with socket.create_connection((ip, port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: {parts.hostname}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].decode(errors="replace")
        if " 200 " not in status + " ":
            return Answer(False, {}, f"answered {status!r}", time.monotonic() - start)
        try:
            who = json.loads(body)
        except ValueError:
            who = {"body": body[:200].decode(errors="replace")}
        return Answer(True, who, None, time.monotonic() - start)
    except (OSError, TimeoutError) as e:
        return Answer(False, {}, f"{type(e).__name__}: {e}", time.monotonic() - start)


def run(url: str, count: int, timeout: float, as_json: bool, quiet: bool) -> int:
    answers = [request(url, timeout) for _ in range(count)]
    by_cluster = Counter(a.who.get("cluster", "?") for a in answers if a.ok)
    failed = sum(1 for a in answers if not a.ok)
    if as_json:
        print(
            json.dumps(
                {
                    "url": url,
                    "count": count,
                    "answered": count - failed,
                    "failed": failed,
                    "byCluster": dict(by_cluster),
                    "byPod": dict(Counter(f"{a.who.get('cluster')}/{a.who.get('pod')}" for a in answers if a.ok)),
                    "answers": [
                        {"ok": a.ok, **a.who, "error": a.error, "seconds": round(a.seconds, 6)} for a in answers
                    ],
                }
            )
        )
    else:
        if not quiet:
            for a in answers:
                if a.ok:
                    print(
                        f"answered by {a.who.get('cluster')}/{a.who.get('namespace')}/{a.who.get('pod')} "
                        f"on {a.who.get('node')} (client {a.who.get('client')}) in {a.seconds * 1000:.1f} ms"
                    )
                else:
                    print(f"failed: {a.error}")
        if count > 1 or quiet:
            summary = ", ".join(f"{c}: {n}" for c, n in sorted(by_cluster.items())) or "none"
            print(f"{count - failed}/{count} answered ({summary}); {failed} failed")
    return 0 if failed < count else 1
