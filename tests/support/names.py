"""Names no other test run uses: every namespace, link, pin and home carries a per-run token."""

from __future__ import annotations

import os
import secrets

RUN = secrets.token_hex(2) + format(os.getpid() % 256, "02x")


def unique(prefix: str) -> str:
    """A short name (≤ 15 chars for link names when prefix ≤ 6) unique to this test run and call."""
    return f"{prefix}{RUN}{secrets.token_hex(1)}"
