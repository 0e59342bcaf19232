"""Tests of the chart rendering, and the fixed inputs they render.

The certificates are real ones made once with ``fleetnet.pki`` and kept as PEM files under
``golden/pki/`` so that the golden YAML stays byte-for-byte stable; ``FLEETNET_UPDATE_GOLDEN=1``
(re)creates missing PEMs and rewrites the golden files, nothing else does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fleetnet.model.chart import ChartValues, ChartVersion, MemberCerts, Peer, PeerTLS

GOLDEN = Path(__file__).parent / "golden"
PKI = GOLDEN / "pki"
UPDATE_ENV = "FLEETNET_UPDATE_GOLDEN"


def updating() -> bool:
    return os.environ.get(UPDATE_ENV) == "1"


@dataclass(frozen=True, slots=True)
class Pem:
    cert_pem: bytes
    key_pem: bytes


def _make_pki() -> None:
    from fleetnet.pki import certs, clustermesh

    ca = certs.new_ca("fleetnet network blue")
    other = certs.new_ca("c3 own CA")
    pairs = {
        "ca": ca,
        "server": clustermesh.server_cert(ca, ["10.0.0.11"]),
        "admin": clustermesh.admin_cert(ca, "c1"),
        "remote": clustermesh.remote_cert(ca, "c1"),
        "local": certs.issue(ca, "local-c1"),
        "c3-ca": other,
        "c3-client": certs.issue(other, "remote-c1"),
    }
    PKI.mkdir(parents=True, exist_ok=True)
    for stem, pair in pairs.items():
        (PKI / f"{stem}.crt").write_bytes(pair.cert_pem)
        (PKI / f"{stem}.key").write_bytes(pair.key_pem)


def pem(stem: str) -> Pem:
    """A fixed certificate pair from golden/pki (made on demand only while updating goldens)."""
    cert, key = PKI / f"{stem}.crt", PKI / f"{stem}.key"
    if not cert.exists():
        if not updating():
            raise AssertionError(f"{cert} is missing; run the tests once with {UPDATE_ENV}=1 to create it.")
        _make_pki()
    return Pem(cert.read_bytes(), key.read_bytes())


def member_certs() -> MemberCerts:
    return MemberCerts(server=pem("server"), admin=pem("admin"), remote=pem("remote"), local=pem("local"))


def peers() -> tuple[Peer, ...]:
    c3 = pem("c3-client")
    return (
        Peer("c2", 2, ("https://10.0.0.12:32001",)),
        Peer(
            "c3",
            3,
            ("https://10.0.0.13:32002", "https://[fd00::13]:32002"),
            tls=PeerTLS(cert_pem=c3.cert_pem, key_pem=c3.key_pem, ca_pem=pem("c3-ca").cert_pem),
        ),
    )


def values(version: str = "1.19.2", **overrides: Any) -> ChartValues:
    """Member c1 (id 1) of network blue, with peers c2 and c3, KVStoreMesh on: the reference case."""
    base: dict[str, Any] = {
        "cluster_name": "c1",
        "cluster_id": 1,
        "network": "blue",
        "cilium_version": ChartVersion.parse(version),
        "ca": pem("ca"),
        "certs": member_certs(),
        "peers": peers(),
        "cache_ttl_seconds": 30.0,
    }
    base.update(overrides)
    return ChartValues(**base)


def dump(objects: tuple[dict[str, Any], ...]) -> str:
    """The objects as one YAML stream, in apply order, as ``helm template`` prints them."""
    return yaml.safe_dump_all(objects, sort_keys=False, default_flow_style=False, explicit_start=True, width=1000)
