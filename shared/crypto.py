"""Personal data at rest (PIPL Art. 51): field encryption with key ids, and look-up hashes.

A token is ``v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`` (AES-256-GCM, 96-bit random
nonce). The key id lets keys be rotated: add a new key (the last listed encrypts), re-encrypt
old tokens with ``KeyRing.rotate`` at leisure, then retire the old key. The column a value
belongs to is bound as associated data (``context``), so a token copied into another column
fails to decrypt instead of leaking, say, an ID number where a phone is shown.

Random nonces are safe for about 2**32 encryptions under one key; rotate long before that.

Rows are found by phone through ``LookupHasher`` (a keyed hash), never by decrypting every row.
Error messages name entries and ids but never echo key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import unicodedata
from collections.abc import Callable, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1"
_KEY_BYTES = 32  # AES-256
_NONCE_BYTES = 12
_TAG_BYTES = 16
# No '.' (the token separator); short enough that key material (44 base64 chars) never fits.
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")


class DecryptionError(ValueError):
    """Unknown key id, a malformed or tampered token, or a token from another column."""


class KeyRing:
    """AES-256-GCM keys by id; the current one encrypts, every one decrypts."""

    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        for position, (key_id, key) in enumerate(keys.items(), start=1):
            _check_key_id(key_id, position)
            if not isinstance(key, bytes):
                raise ValueError(f"key {key_id!r} must be bytes, not {type(key).__name__}")
            if len(key) != _KEY_BYTES:
                raise ValueError(f"key {key_id!r} must be {_KEY_BYTES} bytes (AES-256), not {len(key)}")
        if current not in keys:
            shown = repr(current) if isinstance(current, str) and _KEY_ID.fullmatch(current) else "(not a key id)"
            raise ValueError(f"current key {shown} is not in the ring (ids: {', '.join(keys)})")
        # Only the AESGCM objects are kept: neither repr() nor vars() shows raw key bytes.
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._current = current

    @classmethod
    def from_spec(cls, spec: str, current: str | None = None) -> KeyRing:
        """Parse ``k1:<base64 32 bytes>,k2:<base64 32 bytes>``; the last listed encrypts unless
        ``current`` says otherwise, so adding a key at the end is the whole rotation step."""
        keys: dict[str, bytes] = {}
        entries = [part.strip() for part in spec.split(",") if part.strip()]
        for position, entry in enumerate(entries, start=1):
            key_id, sep, material = entry.partition(":")
            if not sep:
                raise ValueError(f"key entry {position} is not 'id:base64' (no ':')")
            key_id = key_id.strip()
            _check_key_id(key_id, position)  # before any message shows it
            if key_id in keys:
                raise ValueError(f"key id {key_id!r} is listed twice")
            keys[key_id] = _decode_key(key_id, material.strip())
        if not keys:
            raise ValueError("no keys given (expected 'k1:<base64 32 bytes>[,k2:…]')")
        return cls(keys, current or list(keys)[-1])

    @staticmethod
    def generate_spec(key_id: str) -> str:
        """A fresh ``id:<base64>`` entry, for development and tests."""
        _check_key_id(key_id, 1)
        return f"{key_id}:{base64.b64encode(os.urandom(_KEY_BYTES)).decode()}"

    @property
    def current(self) -> str:
        """The id of the key that encrypts."""
        return self._current

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every id that can decrypt, for rotation tooling."""
        return tuple(self._ciphers)

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """Seal under the current key with a fresh random nonce, bound to ``context``."""
        if not context:
            raise ValueError("context must name the column, e.g. 'intake.appeals.phone'")
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[self._current].encrypt(nonce, plaintext.encode(), context.encode())
        return f"{_VERSION}.{self._current}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, *, context: str) -> str:
        """The plaintext, or DecryptionError: never a partial or unauthenticated value."""
        version, key_id, blob = _split(token)
        if version != _VERSION:
            raise DecryptionError(f"unknown token version {version!r}")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise DecryptionError(f"unknown key id {key_id!r}")
        raw = _decode_blob(blob)
        try:
            plain = cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode())
            return plain.decode()
        except (InvalidTag, ValueError):
            raise DecryptionError("token does not decrypt (tampered, or from another column)") from None

    def needs_rotation(self, token: str) -> bool:
        """True when the token is not under the current key (or format), so ``rotate`` would
        rewrite it. Raises DecryptionError for something that is not a token at all."""
        version, key_id, _ = _split(token)
        return version != _VERSION or key_id != self._current

    def rotate(self, token: str, *, context: str) -> str:
        """Re-encrypt under the current key; a token already current comes back unchanged,
        so a rotation job can be re-run safely."""
        if not self.needs_rotation(token):
            return token
        return self.encrypt(self.decrypt(token, context=context), context=context)


def _check_key_id(key_id: object, position: int) -> None:
    # An invalid id is not shown: a swapped 'material:id' entry would otherwise leak the key.
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise ValueError(f"key entry {position}: the id must be 1–32 letters, digits, '-' or '_'")


def _decode_key(key_id: str, material: str) -> bytes:
    try:
        # Either base64 alphabet: keys are pasted from many tools.
        key = base64.b64decode(material.translate(str.maketrans("-_", "+/")), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"key {key_id!r} is not valid base64") from None
    if len(key) != _KEY_BYTES:
        raise ValueError(f"key {key_id!r} must be {_KEY_BYTES} bytes (AES-256), not {len(key)}")
    return key


def _split(token: str) -> tuple[str, str, str]:
    parts = token.split(".", 2) if isinstance(token, str) else []
    if len(parts) != 3:
        raise DecryptionError("not an encrypted token")
    return parts[0], parts[1], parts[2]


def _decode_blob(blob: str) -> bytes:
    # Strict: the lenient decoder would silently drop stray characters.
    if not _BASE64URL.fullmatch(blob):
        raise DecryptionError("token is not base64url")
    stripped = blob.rstrip("=")
    try:
        raw = base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError):
        raise DecryptionError("token is not base64url") from None
    if len(raw) < _NONCE_BYTES + _TAG_BYTES:
        raise DecryptionError("token is too short")
    return raw


def normalise_phone(phone: str) -> str:
    """One spelling per number, so look-up hashes match however the citizen typed it:
    ASCII digits only (full-width digits from Chinese input methods included), without
    the country code: '+86 138-1234-8000', '0086 13812348000', '１３８１２３４８０００' → '13812348000'."""
    digits = re.sub(r"[^0-9]", "", unicodedata.normalize("NFKC", phone))
    if len(digits) == 15 and digits.startswith("0086"):
        return digits[4:]
    if len(digits) == 13 and digits.startswith("86"):
        return digits[2:]
    return digits


class LookupHasher:
    """Keyed hash (HMAC-SHA256) for finding rows by phone without storing it in clear.

    Same input, same digest; without the key nobody can hash all ~10**10 mobile numbers to
    reverse it, which a plain SHA-256 would allow in minutes.
    """

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes):
            raise ValueError(f"the look-up key must be bytes, not {type(key).__name__}")
        if len(key) < 16:
            raise ValueError("the look-up key must be at least 16 bytes")
        self._key = key

    def __repr__(self) -> str:
        return "LookupHasher(<key hidden>)"

    def digest(self, value: str, *, normalise: Callable[[str], str] | None = None) -> str:
        """Hex HMAC-SHA256 of ``value`` (after ``normalise``, e.g. ``normalise_phone``)."""
        text = normalise(value) if normalise else value
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()
