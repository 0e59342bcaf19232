"""``fleetnet probe URL``: a small HTTP client that says which pod answered.

Usable inside pods (``fleetnet kubectl c1 exec client -- fleetnet probe http://...``). Each request
opens a new connection (so a load-balanced service spreads them), and a summary counts the answers
per cluster.

Exit status, so that scripts can check reachability and isolation with it: 0 only when every
request was answered, 1 when any was not (stderr says which and why). With ``expect_fail`` (a deny
or isolation check) it is the other way round: 0 only when every request failed, 1 when any was
answered (stderr says which and by whom).
"""

from __future__ import annotations

import json
import socket
import sys
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


def verdict(url: str, answers: list[Answer], expect_fail: bool = False) -> str | None:
    """None when the answers are what was expected, else the one sentence that says what was not."""
    count = len(answers)
    if expect_fail:
        got = [(i, a) for i, a in enumerate(answers, 1) if a.ok]
        if not got:
            return None
        which = "; ".join(f"#{i} by {_who(a)}" for i, a in got)
        return (
            f"{len(got)} of {_requests(count)} to {url} {'was' if len(got) == 1 else 'were'} answered ({which}), "
            "but every one was expected to fail."
        )
    lost = [(i, a) for i, a in enumerate(answers, 1) if not a.ok]
    if not lost:
        return None
    which = "; ".join(f"#{i}: {a.error}" for i, a in lost)
    return f"{len(lost)} of {_requests(count)} to {url} got no answer ({which})."


def _requests(n: int) -> str:
    return f"{n} request" if n == 1 else f"{n} requests"


def _who(a: Answer) -> str:
    if "pod" in a.who:
        return f"{a.who.get('cluster')}/{a.who.get('namespace')}/{a.who.get('pod')}"
    return "a server that does not say who it is"


def run(url: str, count: int, timeout: float, as_json: bool, quiet: bool, expect_fail: bool = False) -> int:
    """Send ``count`` requests, print them, and return the exit status (see the module docstring)."""
    answers = [request(url, timeout) for _ in range(count)]
    by_cluster = Counter(a.who.get("cluster", "?") for a in answers if a.ok)
    failed = sum(1 for a in answers if not a.ok)
    problem = verdict(url, answers, expect_fail)
    if as_json:
        print(
            json.dumps(
                {
                    "url": url,
                    "count": count,
                    "answered": count - failed,
                    "failed": failed,
                    "expectFail": expect_fail,
                    "ok": problem is None,
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
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    return 0
