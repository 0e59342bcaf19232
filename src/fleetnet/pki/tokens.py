"""ServiceAccount tokens: JSON Web Tokens signed with the cluster's service-account key (ES256).

The claims are those of Kubernetes' bound service account tokens (``iss``, ``sub`` =
``system:serviceaccount:<ns>:<name>``, ``aud``, ``exp``, and the ``kubernetes.io`` claim), so any
Kubernetes client that just sends ``Authorization: Bearer <token>`` works. No I/O.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

ISSUER = "https://kubernetes.default.svc.cluster.local"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class TokenIdentity:
    namespace: str
    name: str
    uid: str

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    @property
    def groups(self) -> tuple[str, ...]:
        return ("system:serviceaccounts", f"system:serviceaccounts:{self.namespace}", "system:authenticated")


def mint(
    key_pem: bytes,
    namespace: str,
    name: str,
    uid: str,
    audiences: Sequence[str] = (),
    lifetime: int = 10 * 365 * 24 * 3600,
    now: float | None = None,
) -> str:
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    t = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": f"system:serviceaccount:{namespace}:{name}",
        "aud": list(audiences) or [ISSUER],
        "iat": t,
        "nbf": t,
        "exp": t + lifetime,
        "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}},
    }
    header = _b64(json.dumps({"alg": "ES256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return f"{header}.{payload}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def verify(public_pem: bytes, token: str, now: float | None = None) -> TokenIdentity | None:
    """The service account a token names, or None when it is not one of ours or has expired."""
    try:
        header, payload, sig = token.split(".")
        raw = _unb64(sig)
        if len(raw) != 64:
            return None
        pub = serialization.load_pem_public_key(public_pem)
        assert isinstance(pub, ec.EllipticCurvePublicKey)
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        pub.verify(der, f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
        claims = json.loads(_unb64(payload))
    except (ValueError, InvalidSignature, TypeError):
        return None
    t = time.time() if now is None else now
    if claims.get("iss") != ISSUER or not (claims.get("nbf", 0) - 60 <= t < claims.get("exp", 0)):
        return None
    kio = claims.get("kubernetes.io") or {}
    sa = kio.get("serviceaccount") or {}
    if not kio.get("namespace") or not sa.get("name"):
        return None
    return TokenIdentity(str(kio["namespace"]), str(sa["name"]), str(sa.get("uid", "")))


def new_signing_key() -> tuple[bytes, bytes]:
    """(private PEM, public PEM) of a new service-account signing key."""
    key = ec.generate_private_key(ec.SECP256R1())
    priv = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return priv, pub
