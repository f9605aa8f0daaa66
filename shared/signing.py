"""HMAC request signing for machine clients (the 12345 hotline system, app backends).

The scheme, for a vendor implementing it. Every request carries four headers:

    X-Client-Id:  the client's id, e.g. hotline12345
    X-Timestamp:  unix seconds (ASCII digits) when the request was signed
    X-Nonce:      a fresh random string per request, 1–128 visible ASCII characters
                  (optional, but without it two identical requests in one second collide)
    X-Signature:  lowercase hex HMAC-SHA256(secret, message), where

        message = f"{timestamp}\\n{nonce}\\n{METHOD}\\n{path}\\n".encode("utf-8") + body

``METHOD`` is upper case; ``nonce`` is the empty string when X-Nonce is not sent; ``path``
is the request target exactly as sent, with its query string (``/api/v1/appeals?mine=1``);
``body`` is the exact bytes sent (empty for a GET unless the endpoint says what it signs
instead). The server refuses a request more than 300 s from its clock either way, and a
(client, nonce) pair it has seen before — or, without a nonce, a signature seen before.

Test vector: secret ``test-secret``, timestamp 1700000000, nonce ``n-1``, ``POST``,
path ``/api/v1/hotline/tickets``, body ``{"tickets":[]}`` gives
``62c667aca046b230cc441b44cd0a1fd321aad2224eb8ed30077918de72fe1afb``. From a shell::

    printf '1700000000\\nn-1\\nPOST\\n/api/v1/hotline/tickets\\n{"tickets":[]}' \\
        | openssl dgst -sha256 -hmac test-secret
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

_TIMESTAMP = re.compile(r"[0-9]{1,15}")
# Visible ASCII only: the nonce is a line of the signed message and an HTTP header value.
_NONCE = re.compile(r"[\x21-\x7e]{1,128}")
_CLIENT_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_MIN_SECRET_CHARS = 8


@dataclass(frozen=True)
class SignedRequest:
    """What the server saw: header values ('' when absent) and the exact target and body."""

    client_id: str
    timestamp: str
    nonce: str
    signature: str
    method: str
    path: str
    body: bytes


class SignatureError(Exception):
    """A refused request; ``reason`` is safe to return to the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ReplayGuard(Protocol):
    """Remembers (client, nonce) pairs until they expire; shared by all replicas in production."""

    def check_and_remember(self, client_id: str, nonce: str, expires_at: float) -> bool:
        """False when (client, nonce) was seen before and has not expired."""
        ...


def sign(secret: bytes, *, timestamp: int | str, nonce: str, method: str, path: str, body: bytes) -> str:
    """Hex HMAC-SHA256 over the canonical message described in the module docstring."""
    message = f"{timestamp}\n{nonce}\n{method.upper()}\n{path}\n".encode() + body
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def signature_headers(
    client_id: str,
    secret: bytes,
    *,
    method: str,
    path: str,
    body: bytes,
    now: float | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The four headers for a request, for clients and tests; a random nonce unless given."""
    timestamp = int(time.time() if now is None else now)
    nonce = nonce or os.urandom(16).hex()
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
    """The client id when the signature is good; SignatureError says why not.

    The replay guard is consulted last, so a forged request cannot use up a real nonce.
    """
    for header, value in (
        ("X-Client-Id", request.client_id),
        ("X-Timestamp", request.timestamp),
        ("X-Signature", request.signature),
    ):
        if not value:
            raise SignatureError(f"missing header {header}")
    secret = secrets.get(request.client_id)
    if secret is None:
        raise SignatureError("unknown client")
    if not _TIMESTAMP.fullmatch(request.timestamp):
        raise SignatureError("X-Timestamp is not unix seconds")
    if request.nonce and not _NONCE.fullmatch(request.nonce):
        raise SignatureError("X-Nonce must be 1–128 visible ASCII characters")
    timestamp = int(request.timestamp)
    if abs(now - timestamp) > window_s:
        raise SignatureError(f"timestamp outside the {window_s} s window")
    expected = sign(
        secret, timestamp=request.timestamp, nonce=request.nonce, method=request.method, path=request.path, body=request.body
    )
    # Bytes, not str: compare_digest refuses non-ASCII str, which a client controls.
    if not hmac.compare_digest(expected.encode(), request.signature.lower().encode("utf-8", "replace")):
        raise SignatureError("bad signature")
    # After timestamp + window the window check refuses the request anyway, so that is
    # as long as the guard needs to remember it. Without a nonce the signature stands in.
    if seen is not None and not seen.check_and_remember(
        request.client_id, request.nonce or request.signature.lower(), timestamp + window_s
    ):
        raise SignatureError("replayed request")
    return request.client_id


class MemoryReplayGuard:
    """In-process replay guard with expiry, for one process and for tests (services with
    replicas use a database-backed guard).

    Bounded: at ``max_entries`` live pairs the soonest-expiring is forgotten first. Only
    requests with a good signature reach the guard, so size it above the busiest
    window's request count and nothing live is ever forgotten.
    """

    def __init__(self, max_entries: int = 100_000, *, clock: Callable[[], float] = time.time) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max = max_entries
        self._clock = clock
        self._expiry: dict[tuple[str, str], float] = {}
        self._heap: list[tuple[float, tuple[str, str]]] = []  # (expires_at, key), soonest first
        self._lock = threading.Lock()  # sync endpoints run in a thread pool

    def __len__(self) -> int:
        return len(self._expiry)

    def check_and_remember(self, client_id: str, nonce: str, expires_at: float) -> bool:
        key = (client_id, nonce)
        with self._lock:
            self._forget_expired(self._clock())
            if key in self._expiry:
                return False
            while len(self._expiry) >= self._max:
                _, oldest = heapq.heappop(self._heap)
                del self._expiry[oldest]
            self._expiry[key] = expires_at
            heapq.heappush(self._heap, (expires_at, key))
            return True

    def _forget_expired(self, now: float) -> None:
        while self._heap and self._heap[0][0] < now:
            _, key = heapq.heappop(self._heap)
            del self._expiry[key]


def parse_client_secrets(spec: str) -> dict[str, bytes]:
    """``hotline12345:<secret>,appbackend:<secret>`` → {client id: secret bytes}.

    A secret may contain ':' but not ','. Messages name the entry or client, never a secret.
    """
    clients: dict[str, bytes] = {}
    entries = [part.strip() for part in spec.split(",") if part.strip()]
    for position, entry in enumerate(entries, start=1):
        client, sep, secret = entry.partition(":")
        client = client.strip()
        if not sep:
            raise ValueError(f"client entry {position} is not 'id:secret' (no ':')")
        if not _CLIENT_ID.fullmatch(client):
            raise ValueError(f"client entry {position}: the id must be 1–64 letters, digits, '.', '-' or '_'")
        if client in clients:
            raise ValueError(f"client {client!r} is listed twice")
        if len(secret) < _MIN_SECRET_CHARS:
            raise ValueError(f"client {client!r} needs a secret of {_MIN_SECRET_CHARS}+ characters")
        clients[client] = secret.encode()
    return clients
