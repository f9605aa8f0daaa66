"""The issuer's signing keys: generate, load/save as PEM, publish as JWKS, rotate."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
KEEP_RETIRED = 2  # published after a rotation, so tokens already handed out still verify


@dataclass(frozen=True)
class SigningKey:
    private_key: PrivateKey
    algorithm: str  # ES256 or RS256
    kid: str  # RFC 7638 thumbprint of the public key

    def public_jwk(self) -> dict[str, Any]:
        return public_jwk(self.private_key, self.algorithm, self.kid)


def generate(algorithm: str) -> SigningKey:
    if algorithm == "ES256":
        private: PrivateKey = ec.generate_private_key(ec.SECP256R1())
    elif algorithm == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        raise ValueError(f"unsupported algorithm {algorithm!r}; ES256 or RS256")
    return from_private_key(private)


def from_private_key(private: PrivateKey) -> SigningKey:
    if isinstance(private, ec.EllipticCurvePrivateKey):
        if not isinstance(private.curve, ec.SECP256R1):
            raise ValueError("an EC key must be on P-256 (ES256)")
        algorithm = "ES256"
    elif isinstance(private, rsa.RSAPrivateKey):
        if private.key_size < 2048:
            raise ValueError("an RSA key must have at least 2048 bits")
        algorithm = "RS256"
    else:
        raise ValueError("the key must be an EC P-256 or RSA private key")
    return SigningKey(private, algorithm, thumbprint(_jwk_members(private)))


def load_or_create(path: Path | None, algorithm: str) -> SigningKey:
    """The key in ``path`` (any algorithm it fits), or a new one written there (0600)."""
    if path is None:
        return generate(algorithm)
    if path.exists():
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        return from_private_key(private)  # type: ignore[arg-type]
    key = generate(algorithm)
    save(key, path)
    return key


def save(key: SigningKey, path: Path) -> None:
    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    os.replace(tmp, path)


def _jwk_members(private: PrivateKey) -> dict[str, Any]:
    public = private.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        return ECAlgorithm.to_jwk(public, as_dict=True)
    return RSAAlgorithm.to_jwk(public, as_dict=True)


def public_jwk(private: PrivateKey, algorithm: str, kid: str) -> dict[str, Any]:
    members = {k: v for k, v in _jwk_members(private).items() if k not in ("key_ops", "alg", "kid")}
    return {**members, "kid": kid, "alg": algorithm, "use": "sig"}


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: SHA-256 over the required members in lexical order, base64url."""
    required = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}[jwk["kty"]]
    canonical = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


class KeyRing:
    """The current signing key plus the last few retired ones (public halves published)."""

    def __init__(self, current: SigningKey, key_file: Path | None = None) -> None:
        self.current = current
        self.retired: list[SigningKey] = []
        self.key_file = key_file
        self._lock = threading.Lock()

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            return {"keys": [k.public_jwk() for k in (self.current, *self.retired)]}

    def rotate(self, algorithm: str | None = None) -> SigningKey:
        """A new current key; the old one stays published. Saved to the key file, if any,
        so a restart signs with the new key (the retired ones are then no longer published)."""
        new = generate(algorithm or self.current.algorithm)
        with self._lock:
            self.retired = [self.current, *self.retired][:KEEP_RETIRED]
            self.current = new
        if self.key_file is not None:
            save(new, self.key_file)
        return new
