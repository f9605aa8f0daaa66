"""HMAC request signing for machine clients (the 12345 hotline system, app backends).

The scheme, for a vendor implementing it:

    X-Client-Id:  the client's id, e.g. hotline12345
    X-Timestamp:  unix seconds when the request was signed
    X-Nonce:      a random string, never reused (replays are refused)
    X-Signature:  hex(HMAC-SHA256(secret, f"{timestamp}\\n{nonce}\\n{METHOD}\\n{path}\\n" + body))

``path`` is the request target with its query string (``/api/v1/appeals?mine=1``); the body
is the exact bytes sent. A request more than 300 s from the server's clock either way is
refused, and so is a (client, nonce) pair seen before.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SignedRequest:
    client_id: str
    timestamp: str
    nonce: str
    signature: str
    method: str
    path: str
    body: bytes


class SignatureError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ReplayGuard(Protocol):
    def check_and_remember(self, client_id: str, nonce: str, expires_at: float) -> bool:
        """False when (client, nonce) was seen before."""


def sign(secret: bytes, *, timestamp: int | str, nonce: str, method: str, path: str, body: bytes) -> str:
    message = f"{timestamp}\n{nonce}\n{method.upper()}\n{path}\n".encode() + body
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def signature_headers(
    client_id: str, secret: bytes, *, method: str, path: str, body: bytes, now: float | None = None, nonce: str | None = None
) -> dict[str, str]:
    timestamp = int(time.time() if now is None else now)
    nonce = nonce or uuid.uuid4().hex
    return {
        "X-Client-Id": client_id,
        "X-Timestamp": str(timestamp),
        "X-Nonce": nonce,
        "X-Signature": sign(secret, timestamp=timestamp, nonce=nonce, method=method, path=path, body=body),
    }


def verify(
    request: SignedRequest,
    secrets: Mapping[str, bytes],
    *,
    now: float,
    window_s: int = 300,
    seen: ReplayGuard | None = None,
) -> str:
    """The client id when the signature is good; SignatureError says why not."""
    for name, value in (("X-Client-Id", request.client_id), ("X-Timestamp", request.timestamp), ("X-Signature", request.signature)):
        if not value:
            raise SignatureError(f"missing header {name}")
    secret = secrets.get(request.client_id)
    if secret is None:
        raise SignatureError("unknown client")
    try:
        timestamp = int(request.timestamp)
    except ValueError:
        raise SignatureError("X-Timestamp is not unix seconds") from None
    if abs(now - timestamp) > window_s:
        raise SignatureError(f"timestamp outside the {window_s} s window")
    expected = sign(
        secret, timestamp=request.timestamp, nonce=request.nonce, method=request.method, path=request.path, body=request.body
    )
    if not hmac.compare_digest(expected, request.signature.lower()):
        raise SignatureError("bad signature")
    if seen is not None and not seen.check_and_remember(request.client_id, request.nonce, timestamp + window_s):
        raise SignatureError("replayed request")
    return request.client_id


class MemoryReplayGuard:
    """In-process replay guard with expiry (a service with replicas uses its database)."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._max = max_entries

    def check_and_remember(self, client_id: str, nonce: str, expires_at: float) -> bool:
        # Forgetting is only needed for memory: once a nonce has expired, the timestamp
        # window refuses its request anyway.
        if len(self._seen) >= self._max:
            now = time.time()
            self._seen = {k: v for k, v in self._seen.items() if v > now}
        key = (client_id, nonce)
        if key in self._seen:
            return False
        self._seen[key] = expires_at
        return True


def parse_client_secrets(spec: str) -> dict[str, bytes]:
    """``hotline12345:<secret>,appbackend:<secret>``."""
    clients: dict[str, bytes] = {}
    for item in (part.strip() for part in spec.split(",") if part.strip()):
        client, sep, secret = item.partition(":")
        if not sep or not client or len(secret) < 8:
            raise ValueError(f"client entry {client or '?'!r} must be 'id:secret' with a secret of 8+ characters")
        clients[client] = secret.encode()
    return clients
