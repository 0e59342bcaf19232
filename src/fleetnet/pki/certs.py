"""A certificate authority and the certificates it signs, as PEM bytes.

Every cross-cluster network has one CA (Cilium's "shared CA" setup, reference §4.3); the hub keeps its
PEM in its store and issues the etcd server and client certificates of each member from it. Keys are
ECDSA P-256 because they are fast to make and every TLS stack on the path (Go's for etcd, BoringSSL
for grpc) accepts them. Apart from ``write_pair``/``write_ca`` this module does no I/O.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fleetnet.errors import InvalidInput

# Certificates start a few minutes in the past so that a peer whose clock is slightly behind ours
# does not reject a certificate issued a moment ago.
_BACKDATE = dt.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class CertKeyPair:
    """A certificate and its private key, both PEM (the key is unencrypted PKCS#8)."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    @property
    def subject_key_id(self) -> str:
        """The SubjectKeyIdentifier in hex: Cilium's CA fingerprint (reference §10)."""
        ski = self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        return ski.value.digest.hex()

    @property
    def common_name(self) -> str:
        attrs = self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(attrs[0].value) if attrs else ""


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str, organizations: Sequence[str] = ()) -> x509.Name:
    if not common_name:
        raise InvalidInput("a certificate needs a non-empty common name.")
    # Kubernetes reads a client certificate's O fields as the user's groups (system:masters, ...)
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _validity(days: int) -> tuple[dt.datetime, dt.datetime]:
    if days < 1:
        raise InvalidInput(f"certificate validity must be at least 1 day, not {days}.")
    now = dt.datetime.now(dt.UTC)
    return now - _BACKDATE, now + dt.timedelta(days=days)


def new_ca(common_name: str, days: int = 1095) -> CertKeyPair:
    """A self-signed CA (1095 days = Cilium's ``certValidityDuration`` default)."""
    key = _new_key()
    name = _name(common_name)
    not_before, not_after = _validity(days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertKeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _ca_parts(ca: CertKeyPair) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = ca.certificate
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise InvalidInput(f"{ca.common_name!r} is not a CA certificate; issue certificates from new_ca().")
    key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InvalidInput(f"the key of CA {ca.common_name!r} is not an ECDSA key; make the CA with new_ca().")
    return cert, key


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError as e:
        raise InvalidInput(f"{text!r} is not an IP address; give IP SANs as plain addresses.") from e


def issue(
    ca: CertKeyPair,
    common_name: str,
    *,
    dns: Sequence[str] = (),
    ips: Sequence[str] = (),
    server: bool = False,
    client: bool = True,
    days: int = 1095,
    organizations: Sequence[str] = (),
) -> CertKeyPair:
    """A leaf certificate signed by ``ca``.

    Server certificates also carry clientAuth: etcd 3.4's own grpc-gateway dials etcd with the server
    certificate, and Cilium met the breakage of serverAuth-only server certs (issue #43099).
    """
    if not (server or client):
        raise InvalidInput("a certificate must be usable as a server, a client or both.")
    ca_cert, ca_key = _ca_parts(ca)
    key = _new_key()
    not_before, not_after = _validity(days)
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH] if server else []
    if client and not server:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organizations))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(min(not_after, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
    )
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns]
    sans += [x509.IPAddress(_ip(ip)) for ip in ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return CertKeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write through a temp file and a rename so a reader (etcd, an agent) never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)  # explicit, so the process umask cannot widen or narrow it
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_pair(directory: str | os.PathLike[str], stem: str, pair: CertKeyPair) -> tuple[Path, Path]:
    """Write ``<stem>.crt`` (0644) and ``<stem>.key`` (0600); returns (cert path, key path)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = d / f"{stem}.crt", d / f"{stem}.key"
    # The key first: a reader that sees the new certificate must also find its key.
    _write_atomic(key_path, pair.key_pem, 0o600)
    _write_atomic(cert_path, pair.cert_pem, 0o644)
    return cert_path, key_path


def write_ca(directory: str | os.PathLike[str], stem: str, ca: CertKeyPair) -> Path:
    """Write only the CA certificate as ``<stem>.crt`` (0644): its key never leaves the hub."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{stem}.crt"
    _write_atomic(path, ca.cert_pem, 0o644)
    return path
