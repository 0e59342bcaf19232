"""A real etcd with real TLS for the kvstore and pki tests: a CA, certificates and one etcd process.

The process is started from ``fleetnet.kvstore.server.argv`` on 127.0.0.1 with free ports, is ready
when ``EtcdClient.status()`` answers, and is killed by its pid; its directory is removed afterwards.
"""

from __future__ import annotations

import asyncio
import functools
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from fleetnet.errors import FleetnetError
from fleetnet.kvstore.client import EtcdClient
from fleetnet.kvstore.server import EtcdServerSpec, argv, client_url
from fleetnet.pki import certs, clustermesh
from tests.support.names import unique
from tests.support.wait import wait_for

CLUSTER = "c1"
PEER = "c2"


@dataclass
class Pki:
    directory: Path
    ca: certs.CertKeyPair
    ca_file: Path
    pairs: dict[str, tuple[Path, Path]] = field(default_factory=dict)

    def add(self, stem: str, pair: certs.CertKeyPair) -> tuple[Path, Path]:
        self.pairs[stem] = certs.write_pair(self.directory, stem, pair)
        return self.pairs[stem]


def make_pki(directory: Path, node_ips: tuple[str, ...] = ()) -> Pki:
    ca = certs.new_ca(unique("ca-"))
    pki = Pki(directory, ca, certs.write_ca(directory, "ca", ca))
    pki.add("server", clustermesh.server_cert(ca, node_ips))
    pki.add("root", clustermesh.root_cert(ca))
    pki.add("admin", clustermesh.admin_cert(ca, CLUSTER))
    pki.add("remote", clustermesh.remote_cert(ca, PEER))
    return pki


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Etcd:
    directory: Path
    pki: Pki
    spec: EtcdServerSpec
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return client_url(self.spec)

    async def client(self, stem: str = "root", timeout: float = 5.0) -> EtcdClient:
        cert, key = self.pki.pairs[stem]
        return await EtcdClient.connect(
            [self.url], ca_file=self.pki.ca_file, cert_file=cert, key_file=key, timeout=timeout
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""


def _answers(etcd: Etcd) -> bool:
    if etcd.proc.poll() is not None:
        raise AssertionError(f"etcd exited with {etcd.proc.returncode}: {etcd.log_tail()}")

    async def probe() -> bool:
        try:
            client = await etcd.client(timeout=0.5)
        except FleetnetError:
            return False
        await client.close()
        return True

    return asyncio.run(probe())


def launch_etcd(pki: Pki) -> Etcd:
    """Start etcd in a fresh temp dir without waiting for it."""
    directory = Path(tempfile.mkdtemp(prefix=f"{unique('fn-etcd-')}-"))
    spec = EtcdServerSpec(
        name=unique("etcd"),
        data_dir=directory / "data",
        listen_ip="127.0.0.1",
        client_port=free_port(),
        peer_port=free_port(),
        cert_file=pki.pairs["server"][0],
        key_file=pki.pairs["server"][1],
        trusted_ca_file=pki.ca_file,
    )
    log = directory / "etcd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv(spec), stdout=out, stderr=out, stdin=subprocess.DEVNULL)
    return Etcd(directory, pki, spec, proc, log)


def start_etcd(pki: Pki) -> Etcd:
    """Start etcd and wait until it answers; retries with new ports if another process took them meanwhile."""
    last = ""
    for _ in range(3):
        etcd = launch_etcd(pki)
        try:
            wait_for(functools.partial(_answers, etcd), timeout=10, interval=0.05, what=f"etcd {etcd.spec.name}")
            return etcd
        except AssertionError:
            last = etcd.log_tail()
            stop_etcd(etcd)
            if "address already in use" not in last:
                raise
    raise AssertionError(f"etcd did not start: {last}")


def stop_etcd(etcd: Etcd) -> None:
    try:
        etcd.kill()
    finally:
        shutil.rmtree(etcd.directory, ignore_errors=True)


def temp_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{unique('fn-pki-')}-"))
