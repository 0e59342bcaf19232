from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path

from fleetnet.kvstore.server import ETCD_BINARY, EtcdServerSpec, argv, client_url

SPEC = EtcdServerSpec(
    name="c1",
    data_dir=Path("/run/fleetnet/c1/etcd"),
    listen_ip="10.0.0.2",
    client_port=32379,
    peer_port=32380,
    cert_file=Path("/p/server.crt"),
    key_file=Path("/p/server.key"),
    trusted_ca_file=Path("/p/ca.crt"),
)


def flags(args: list[str]) -> dict[str, str]:
    """``--flag value`` pairs; a flag followed by another flag has the value ''."""
    out: dict[str, str] = {}
    for i, arg in enumerate(args):
        if arg.startswith("--"):
            nxt = args[i + 1] if i + 1 < len(args) else ""
            out[arg] = "" if nxt.startswith("--") else nxt
    return out


@functools.cache
def known_flags() -> set[str]:
    help_text = subprocess.run([ETCD_BINARY, "--help"], capture_output=True, text=True, timeout=10)
    return set(re.findall(r"^\s+(--[a-z0-9-]+)", help_text.stdout + help_text.stderr, re.MULTILINE))


def test_client_side_is_mutual_tls_on_the_node_ip_and_loopback() -> None:
    f = flags(argv(SPEC))
    assert argv(SPEC)[0] == ETCD_BINARY
    assert f["--listen-client-urls"] == "https://10.0.0.2:32379,https://127.0.0.1:32379"
    assert f["--advertise-client-urls"] == "https://10.0.0.2:32379" == client_url(SPEC)
    assert f["--client-cert-auth"] == ""
    assert (f["--trusted-ca-file"], f["--cert-file"], f["--key-file"]) == (
        "/p/ca.crt",
        "/p/server.crt",
        "/p/server.key",
    )


def test_peer_side_is_a_single_member_on_loopback() -> None:
    f = flags(argv(SPEC))
    assert f["--listen-peer-urls"] == f["--initial-advertise-peer-urls"] == "http://127.0.0.1:32380"
    assert f["--initial-cluster"] == "c1=http://127.0.0.1:32380"
    assert (f["--name"], f["--initial-cluster-state"], f["--data-dir"]) == (
        "c1",
        "new",
        "/run/fleetnet/c1/etcd",
    )


def test_tuning() -> None:
    f = flags(argv(SPEC))
    assert (f["--heartbeat-interval"], f["--election-timeout"]) == ("100", "1000")
    assert (f["--logger"], f["--log-level"]) == ("zap", "warn")
    assert int(f["--quota-backend-bytes"]) <= 1 << 30
    assert int(f["--snapshot-count"]) <= 20_000
    assert f["--auto-compaction-retention"] != "0"


def test_loopback_listen_ip_is_listed_once() -> None:
    spec = EtcdServerSpec("c1", Path("/d"), "127.0.0.1", 1, 2, Path("/c"), Path("/k"), Path("/a"))
    assert flags(argv(spec))["--listen-client-urls"] == "https://127.0.0.1:1"


def test_ipv6_listen_ip_is_bracketed() -> None:
    spec = EtcdServerSpec("c1", Path("/d"), "fd00::2", 1, 2, Path("/c"), Path("/k"), Path("/a"))
    assert client_url(spec) == "https://[fd00::2]:1"


def test_every_flag_is_one_the_installed_etcd_knows() -> None:
    assert set(flags(argv(SPEC))) <= known_flags()
