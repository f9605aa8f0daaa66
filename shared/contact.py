"""Reaching the citizen without putting a phone number on the topic in clear (PIPL Art. 51).

Intake seals the citizen's phone into ``case.received`` (``payload.contact_sealed``) with the
platform's *contact key ring*; only the services that must reach the citizen (notify) hold
the same ring and can open it. Everyone else sees an opaque token. Brokers, dead-letter
stores and logs therefore never hold a phone number in clear.

The ring is configured per service as ``<SERVICE>_CONTACT_KEYS`` (or the unprefixed
``CONTACT_KEYS`` for all), in the ``k1:<base64 32 bytes>,k2:…`` form of ``KeyRing``.
Without it a fixed development ring is used and a warning logged.
"""

from __future__ import annotations

import base64
import hashlib
import logging

from shared.crypto import KeyRing

log = logging.getLogger(__name__)

# Bound as associated data: a token copied from another field fails to open.
CONTEXT = "case-lifecycle.contact_phone"


def contact_keyring(spec: str | None) -> KeyRing:
    """The contact key ring from its setting, or the development ring (with a warning)."""
    if spec:
        return KeyRing.from_spec(spec)
    log.warning("CONTACT_KEYS not set: sealing citizens' phones with the development key (never in production)")
    dev_key = base64.b64encode(hashlib.sha256(b"jiesu development contact key").digest()).decode()
    return KeyRing.from_spec(f"dev:{dev_key}")


def seal_phone(keys: KeyRing, phone: str) -> str:
    return keys.encrypt(phone, context=CONTEXT)


def open_phone(keys: KeyRing, token: str) -> str:
    """The phone in clear; raises ``shared.crypto.DecryptionError`` for a foreign or tampered token."""
    return keys.decrypt(token, context=CONTEXT)
