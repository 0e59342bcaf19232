from __future__ import annotations

import shutil

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from fleetnet.kvstore import KvstoreUnavailable
from fleetnet.kvstore.client import EtcdClient
from fleetnet.pki import certs, clustermesh
from tests.kvstore.etcd_harness import Etcd, temp_dir

CA = certs.new_ca("mesh-ca")


def eku(pair: certs.CertKeyPair) -> set[x509.ObjectIdentifier]:
    return set(pair.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_server_cert_has_cilium_names_and_node_ips() -> None:
    server = clustermesh.server_cert(CA, ["10.0.1.2", "fd00::2"])
    san = server.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert server.common_name == "clustermesh-apiserver.cilium.io"
    assert san.get_values_for_type(x509.DNSName) == [
        "clustermesh-apiserver.cilium.io",
        "*.mesh.cilium.io",
        "clustermesh-apiserver.kube-system.svc",
    ]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == [
        "127.0.0.1",
        "::1",
        "10.0.1.2",
        "fd00::2",
    ]
    assert eku(server) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}


@pytest.mark.parametrize(
    ("make", "cn"),
    [
        (lambda: clustermesh.admin_cert(CA, "c1"), "admin-c1"),
        (lambda: clustermesh.remote_cert(CA, "c1"), "remote-c1"),
        (lambda: clustermesh.root_cert(CA), "root"),
    ],
)
def test_client_certs_are_named_as_cilium_names_them(make: object, cn: str) -> None:
    pair = make()  # type: ignore[operator]
    assert pair.common_name == cn
    assert eku(pair) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    pair.certificate.verify_directly_issued_by(CA.certificate)


async def test_etcd_rejects_a_client_certificate_from_another_ca(etcd: Etcd) -> None:
    directory = temp_dir()
    try:
        stranger = certs.issue(certs.new_ca("another-ca"), "root")  # the right CN from the wrong CA
        cert, key = certs.write_pair(directory, "stranger", stranger)
        with pytest.raises(KvstoreUnavailable, match="TLS handshake"):
            await EtcdClient.connect([etcd.url], ca_file=etcd.pki.ca_file, cert_file=cert, key_file=key, timeout=2)
        # The same server accepts a certificate from its own CA.
        async with await etcd.client("root") as ok:
            assert (await ok.status()).version.startswith("3.4")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
