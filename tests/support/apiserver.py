"""A real API server for tests: its own PKI, a SQLite store in a temporary folder, HTTPS on a free
loopback port, run as a child process exactly as a local cluster runs it (no namespaces needed).

    with running_apiserver(tmp_path) as api:
        client = KubeClient.from_kubeconfig(api.kubeconfig)
        subprocess.run([KUBECTL, "--kubeconfig", str(api.kubeconfig), "get", "ns"])
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fleetnet.kube import kubeconfig
from fleetnet.local import kubeinit
from fleetnet.pki import certs, tokens

KUBECTL = str(Path(sys.executable).with_name("kubectl"))


@dataclass
class TestApiServer:
    __test__ = False
    root: Path
    port: int
    kubeconfig: Path
    config: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        log = open(self.root / "apiserver.log", "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fleetnet.kube.apiserver", "--config", str(self.config)], stdout=log, stderr=log
        )
        log.close()
        import ssl
        import urllib.request

        ctx = ssl.create_default_context(cafile=str(self.root / "ca.crt"))
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/readyz", context=ctx, timeout=1).read()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        "the test API server did not start:\n" + (self.root / "apiserver.log").read_text()[-3000:]
                    ) from None
                time.sleep(0.05)  # a poll interval under a deadline

    def kill(self) -> None:
        """SIGKILL, as a crash would end it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def user_kubeconfig(self, name: str, user: str, groups: list[str] = ()) -> Path:  # type: ignore[assignment]
        """A kubeconfig for another user (client certificate from the cluster CA)."""
        ca = certs.CertKeyPair((self.root / "ca.crt").read_bytes(), (self.root / "ca.key").read_bytes())
        pair = certs.issue(ca, user, organizations=list(groups))
        path = self.root / f"{name}.kubeconfig"
        kubeconfig.write(
            path,
            kubeconfig.build("test", self.url, ca.cert_pem, cert_pem=pair.cert_pem, key_pem=pair.key_pem, user=name),
        )
        return path

    def token_kubeconfig(self, name: str, namespace: str, sa: str) -> Path:
        token = tokens.mint((self.root / "sa.key").read_bytes(), namespace, sa, "")
        path = self.root / f"{name}.kubeconfig"
        kubeconfig.write(
            path, kubeconfig.build("test", self.url, (self.root / "ca.crt").read_bytes(), token=token, user=name)
        )
        return path


def make_apiserver(
    root: Path, *, service_cidr: str = "10.96.0.0/16", version: str = "1.33.2", extra: dict[str, object] | None = None
) -> TestApiServer:
    cfg = kubeinit.standalone(root, service_cidr=service_cidr, version=version, extra=extra)
    return TestApiServer(root, cfg.secure_port, root / "admin.kubeconfig", root / "apiserver.json")


@contextmanager
def running_apiserver(root: Path, **kw: object) -> Iterator[TestApiServer]:
    api = make_apiserver(root, **kw)  # type: ignore[arg-type]
    api.start()
    try:
        yield api
    finally:
        api.stop()
