"""PKI: one CA per cross-cluster network and the certificates it issues (``cryptography``)."""

from __future__ import annotations

from fleetnet.pki.certs import CertKeyPair, issue, new_ca, write_ca, write_pair

__all__ = ["CertKeyPair", "issue", "new_ca", "write_ca", "write_pair"]
