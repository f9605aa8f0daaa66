"""Personal data at rest (PIPL Art. 51): field encryption with key ids, and look-up hashes.

A token is ``v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>``. The key id lets keys be
rotated: add a new key (it becomes the one that encrypts), re-encrypt old tokens with
``rotate`` at leisure, then retire the old key. The column a value belongs to is bound
as associated data (``context``), so a token copied into another column fails to decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Callable, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1"
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class DecryptionError(ValueError):
    """Unknown key id, a tampered token, or a token from another column."""


class KeyRing:
    """AES-256-GCM keys by id; the current one encrypts, every one decrypts."""

    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        for key_id, key in keys.items():
            if not _KEY_ID.match(key_id):
                raise ValueError(f"key id {key_id!r} must be 1–32 letters, digits, '-' or '_'")
            if len(key) != 32:
                raise ValueError(f"key {key_id!r} must be 32 bytes, not {len(key)}")
        if current not in keys:
            raise ValueError(f"current key {current!r} is not in the ring")
        self._keys = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.current = current

    @classmethod
    def from_spec(cls, spec: str, current: str | None = None) -> KeyRing:
        """``k1:<base64 32 bytes>,k2:<base64 32 bytes>``; the last listed encrypts."""
        keys: dict[str, bytes] = {}
        for position, item in enumerate(part.strip() for part in spec.split(",") if part.strip()):
            key_id, sep, material = item.partition(":")
            if not sep:
                raise ValueError(f"key {position + 1} is not 'id:base64' (no ':')")
            try:
                keys[key_id] = base64.b64decode(material, validate=True)
            except ValueError:
                raise ValueError(f"key {key_id!r} is not valid base64") from None
        if not keys:
            raise ValueError("no keys given")
        return cls(keys, current or list(keys)[-1])

    @staticmethod
    def generate_spec(key_id: str) -> str:
        return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"

    def encrypt(self, plaintext: str, *, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._keys[self.current].encrypt(nonce, plaintext.encode(), context.encode())
        return f"{_VERSION}.{self.current}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, *, context: str) -> str:
        version, key_id, blob = _split(token)
        if version != _VERSION:
            raise DecryptionError(f"unknown token version {version!r}")
        key = self._keys.get(key_id)
        if key is None:
            raise DecryptionError(f"unknown key id {key_id!r}")
        try:
            raw = base64.urlsafe_b64decode(blob.encode())
            return key.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except (InvalidTag, ValueError):
            raise DecryptionError("token does not decrypt (tampered, or from another column)") from None

    def needs_rotation(self, token: str) -> bool:
        return _split(token)[1] != self.current

    def rotate(self, token: str, *, context: str) -> str:
        if not self.needs_rotation(token):
            return token
        return self.encrypt(self.decrypt(token, context=context), context=context)


def _split(token: str) -> tuple[str, str, str]:
    parts = token.split(".", 2)
    if len(parts) != 3:
        raise DecryptionError("not an encrypted token")
    return parts[0], parts[1], parts[2]


def normalise_phone(phone: str) -> str:
    """Digits only, without the +86 country code: '+86 138-1234-8000' → '13812348000'."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits


class LookupHasher:
    """HMAC-SHA256 of a value: finds rows by phone without keeping it in clear, and cannot be
    reversed by hashing every phone number without the key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the look-up key must be at least 16 bytes")
        self._key = key

    def digest(self, value: str, *, normalise: Callable[[str], str] | None = None) -> str:
        text = normalise(value) if normalise else value
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()
