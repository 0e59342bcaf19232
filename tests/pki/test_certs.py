from __future__ import annotations

import ipaddress
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetnet.errors import InvalidInput
from fleetnet.pki import CertKeyPair, issue, new_ca, write_ca, write_pair
from tests.kvstore.etcd_harness import temp_dir

CA = new_ca("test-ca")


@pytest.fixture
def directory() -> Iterator[Path]:
    d = temp_dir()
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def eku(pair: CertKeyPair) -> set[x509.ObjectIdentifier]:
    return set(pair.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def sans(pair: CertKeyPair) -> tuple[list[str], list[str]]:
    try:
        ext = pair.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return ext.get_values_for_type(x509.DNSName), [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)]


def test_new_ca_is_a_self_signed_ca() -> None:
    cert = CA.certificate
    assert CA.common_name == "test-ca"
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign is True
    cert.verify_directly_issued_by(cert)
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert CA.subject_key_id == ski.hex() and len(CA.subject_key_id) == 40
    assert CA.key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")


def test_cas_differ() -> None:
    assert new_ca("test-ca").subject_key_id != CA.subject_key_id


def test_client_certificate() -> None:
    leaf = issue(CA, "remote-c2")
    cert = leaf.certificate
    cert.verify_directly_issued_by(CA.certificate)
    assert leaf.common_name == "remote-c2"
    assert eku(leaf) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    assert sans(leaf) == ([], [])
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki is not None and aki.hex() == CA.subject_key_id
    assert cert.not_valid_after_utc <= CA.certificate.not_valid_after_utc


def test_server_certificate_is_also_a_client_certificate() -> None:
    leaf = issue(CA, "srv", dns=["a.example"], ips=["10.0.0.1", "fd00::1"], server=True, client=False)
    assert eku(leaf) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert sans(leaf) == (["a.example"], ["10.0.0.1", "fd00::1"])


def test_validity_in_days() -> None:
    cert = issue(CA, "short", days=2).certificate
    assert 2 * 86400 - 60 < (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds() < 2 * 86400 + 600


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"server": False, "client": False}, "server, a client or both"),
        ({"ips": ["not-an-ip"]}, "'not-an-ip' is not an IP address"),
        ({"days": 0}, "at least 1 day"),
    ],
)
def test_invalid_requests(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        issue(CA, "x", **kwargs)  # type: ignore[arg-type]


def test_only_a_ca_issues() -> None:
    leaf = issue(CA, "leaf")
    with pytest.raises(InvalidInput, match="'leaf' is not a CA certificate"):
        issue(leaf, "x")


def test_write_pair_modes_and_atomic_replace(directory: Path) -> None:
    first = issue(CA, "one")
    cert_path, key_path = write_pair(directory / "sub", "tls", first)
    assert (cert_path, key_path) == (directory / "sub" / "tls.crt", directory / "sub" / "tls.key")
    assert stat.S_IMODE(os.stat(cert_path).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    assert (cert_path.read_bytes(), key_path.read_bytes()) == (first.cert_pem, first.key_pem)

    second = issue(CA, "two")
    write_pair(directory / "sub", "tls", second)
    assert CertKeyPair(cert_path.read_bytes(), key_path.read_bytes()) == second
    assert sorted(p.name for p in (directory / "sub").iterdir()) == [
        "tls.crt",
        "tls.key",
    ]  # no temp files left


def test_write_ca_writes_only_the_certificate(directory: Path) -> None:
    path = write_ca(directory, "ca", CA)
    assert path == directory / "ca.crt" and path.read_bytes() == CA.cert_pem
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert [p.name for p in directory.iterdir()] == ["ca.crt"]


labels = st.from_regex(r"[a-z]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
dns_names = st.lists(labels, min_size=1, max_size=4).map(".".join)


@settings(max_examples=30, deadline=None)
@given(
    dns=st.lists(dns_names, max_size=4, unique=True),
    ips=st.lists(st.ip_addresses(), max_size=4, unique=True),
    server=st.booleans(),
)
def test_sans_round_trip(
    dns: list[str], ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address], server: bool
) -> None:
    leaf = issue(CA, "x", dns=dns, ips=[str(ip) for ip in ips], server=server)
    assert sans(leaf) == (dns, [str(ip) for ip in ips])
    assert (ExtendedKeyUsageOID.SERVER_AUTH in eku(leaf)) is server
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku(leaf)
