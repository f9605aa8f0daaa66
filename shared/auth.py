"""Sign-in: who is acting, from a verified Bearer JWT (issue #9, "Identity").

Every service trusts one identity provider (IdP): the province's in production, the
development issuer (``python -m services.dev.issuer``) on a laptop. A request carries
``Authorization: Bearer <JWT>``; ``TokenVerifier`` checks it and turns its claims into the
``shared.events.Actor`` the services record on every event:

    sub  → Actor.id         (1–128 characters)
    role → Actor.role       (one of ``shared.events.Role``, never ``system``)
    unit → Actor.org_unit   (an org-directory unit code; optional for citizens and ops)

What is checked, and why:

- the signature, against the IdP's JWKS (keys by ``kid``). The accepted algorithms are
  fixed here (RS256/ES256 by default), never read from the token: ``alg=none`` and every
  HS* algorithm are refused, so a token "signed" with the public key as an HMAC secret
  (the RS/HS confusion attack) fails before any key is touched;
- the key fits the algorithm (an RSA key for RS*, the right curve for ES*);
- ``iss`` and ``aud`` equal what we expect; ``exp``, ``iat`` (and ``nbf`` when present) with a
  small leeway for clock skew (30 s by default);
- a token without ``kid`` only when the key set holds exactly one key.

The key set is fetched with a timeout and cached. A token naming an unknown ``kid`` makes
the verifier fetch the set again (the IdP may have rotated its key), but at most once per
``min_refresh_seconds`` — a flood of made-up kids cannot hammer the IdP.

Refusals are 401 problem+json with ``WWW-Authenticate: Bearer error="invalid_token",
error_description="…"`` and a ``reason`` field a client can branch on (``token_expired``,
``wrong_audience``, ``unknown_key``, …). The token itself is never echoed or logged.

``AuthSettings`` (env ``AUTH_*``) chooses the mode: ``headers`` (the development fallback
of ``shared.actors``: the caller states who it is in X-Actor-* headers) or ``jwt``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import httpx
import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jwt.exceptions import (
    DecodeError,
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAudienceError,
    InvalidIssuedAtError,
    InvalidIssuerError,
    InvalidKeyError,
    InvalidSignatureError,
    MissingRequiredClaimError,
    PyJWKError,
    PyJWTError,
)
from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.ports import is_loopback
from shared.events import Actor, Role
from shared.problems import Problem

log = logging.getLogger(__name__)

# Asymmetric algorithms only: with these the services hold no secret that could sign.
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
DEFAULT_ALGORITHMS = ("RS256", "ES256")
_EC_CURVE_FOR = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]
MAX_TOKEN_CHARS = 8192  # a JWT larger than this is not one our IdP issued; do not parse it
MAX_JWKS_BYTES = 1_000_000
_ALG_NAME = re.compile(r"[A-Za-z0-9]{1,16}")
PERSON_ROLES = ", ".join(role.value for role in Role if role is not Role.system)


# --------------------------------------------------------------------------- settings


class AuthSettings(BaseSettings):
    """How services learn who is acting. Env: AUTH_MODE, AUTH_JWKS_URL, AUTH_ISSUER, …"""

    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore")

    mode: Literal["jwt", "headers"] = Field(
        default="headers",
        description="jwt: verify Bearer tokens; headers: trust X-Actor-* headers (development only)",
    )
    jwks_url: str | None = Field(default=None, description="the IdP's JWKS, e.g. https://idp.example/.well-known/jwks.json")
    issuer: str | None = Field(default=None, description="expected `iss`, exactly as the IdP writes it")
    audience: str = Field(default="jiesu", description="expected `aud`: the id the IdP gives this platform")
    leeway_seconds: int = Field(default=30, ge=0, le=300, description="clock skew allowed on exp/nbf/iat")
    algorithms: tuple[str, ...] = Field(default=DEFAULT_ALGORITHMS, description="accepted signature algorithms")
    jwks_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    jwks_cache_seconds: float = Field(default=600, ge=0, description="re-fetch the key set when older than this")
    jwks_min_refresh_seconds: float = Field(default=30, ge=0, description="at most one fetch per this many seconds")
    role_claim: str = Field(default="role", min_length=1, description="claim holding the platform role")
    unit_claim: str = Field(default="unit", min_length=1, description="claim holding the org unit code")
    allow_headers_remote: bool = Field(
        default=False, description="let AUTH_MODE=headers serve beyond loopback (a closed trial only; never in production)"
    )

    @model_validator(mode="after")
    def _jwt_needs_idp(self) -> AuthSettings:
        if self.mode == "jwt":
            missing = [name for name, value in (("AUTH_JWKS_URL", self.jwks_url), ("AUTH_ISSUER", self.issuer)) if not value]
            if missing:
                raise ValueError(f"AUTH_MODE=jwt needs {' and '.join(missing)}")
        _check_algorithms(self.algorithms)
        if self.jwks_url:
            _check_jwks_url(self.jwks_url)
        return self


class SignInMode(BaseSettings):
    """AUTH_MODE and AUTH_ALLOW_HEADERS_REMOTE alone, for the development tools beside the
    services (the console, the receiver): they verify no token, so the IdP settings are not
    theirs to check, but they must not serve beyond loopback in headers mode either."""

    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore")

    mode: Literal["jwt", "headers"] = "headers"
    allow_headers_remote: bool = False


def headers_mode_problem(auth: AuthSettings | SignInMode, host: str) -> str | None:
    """Why a service must not start: X-Actor-* headers are trusted from anyone who can reach
    it, so headers mode serves loopback (development) only unless explicitly allowed."""
    if auth.mode != "headers" or is_loopback(host) or auth.allow_headers_remote:
        return None
    return (
        f"AUTH_MODE=headers trusts X-Actor-* headers from anyone, but this service listens on {host}: "
        "set AUTH_MODE=jwt with AUTH_JWKS_URL and AUTH_ISSUER (README, 'Sign-in and identity'), "
        "or AUTH_ALLOW_HEADERS_REMOTE=true for a closed trial"
    )


def load_auth_settings(**overrides: Any) -> AuthSettings:
    """AuthSettings from the environment; a bad value stops start-up with a readable message."""
    try:
        return AuthSettings(**overrides)
    except ValidationError as exc:
        lines = [f"  AUTH_{'_'.join(str(p) for p in e['loc']).upper() or 'SETTINGS'}: {e['msg']}" for e in exc.errors()]
        raise SystemExit("invalid sign-in settings:\n" + "\n".join(lines)) from None


def _check_algorithms(algorithms: tuple[str, ...] | list[str]) -> None:
    if not algorithms:
        raise ValueError("at least one algorithm is needed")
    refused = [a for a in algorithms if a not in ASYMMETRIC_ALGORITHMS]
    if refused:
        raise ValueError(
            f"algorithms {', '.join(refused)} are not accepted: only asymmetric ones "
            f"({', '.join(sorted(ASYMMETRIC_ALGORITHMS))}); never none or HS*"
        )


def _check_jwks_url(url: str) -> None:
    """https, or http to this machine only (the development issuer)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
        return
    raise ValueError("the JWKS URL must be https:// (http:// only to 127.0.0.1/localhost)")



# --------------------------------------------------------------------------- refusals


class TokenError(Exception):
    """A refused token. ``reason`` is a stable code; ``description`` is safe to show
    (it never contains the token)."""

    def __init__(self, reason: str, description: str, *, status: int = 401) -> None:
        super().__init__(description)
        self.reason = reason
        self.description = description
        self.status = status

    def problem(self) -> Problem:
        if self.status == 401:
            # RFC 6750 §3.1: no error code when the request carried no token at all.
            error = "" if self.reason == "missing_token" else ', error="invalid_token"'
            header = f'Bearer realm="jiesu"{error}, error_description="{_header_safe(self.description)}"'
            return Problem(401, self.description, slug="invalid-token", headers={"WWW-Authenticate": header}, reason=self.reason)
        return Problem(self.status, self.description, reason=self.reason)


class KeySetUnavailable(Exception):
    """The IdP's key set could not be fetched; not the caller's fault (503)."""


def _header_safe(text: str) -> str:
    # A quoted-string in a header: printable ASCII without quote or backslash.
    return "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\' else "?" for c in text)


# --------------------------------------------------------------------------- key set


@dataclass(frozen=True)
class _Key:
    kid: str | None
    kty: str
    declared_alg: str | None
    jwk: jwt.PyJWK

    def fits(self, alg: str) -> bool:
        """Whether a token signed with ``alg`` may be checked against this key."""
        if self.declared_alg:
            return self.declared_alg == alg
        if alg.startswith(("RS", "PS")):
            return self.kty == "RSA"
        if alg in _EC_CURVE_FOR:
            return self.kty == "EC" and self.jwk.algorithm_name == alg
        if alg == "EdDSA":
            return self.kty == "OKP"
        return False


def parse_jwks(document: Mapping[str, Any]) -> list[_Key]:
    """The signature keys of a JWKS document; symmetric (``oct``), encryption-only and
    unreadable keys are skipped (with a warning), never trusted."""
    raw_keys = document.get("keys") if isinstance(document, Mapping) else None
    if not isinstance(raw_keys, list):
        raise ValueError("a JWKS document is an object with a 'keys' list")
    keys = []
    for position, raw in enumerate(raw_keys):
        if not isinstance(raw, dict):
            log.warning("JWKS key %d is not an object; skipped", position)
            continue
        kty = raw.get("kty")
        if kty not in ("RSA", "EC", "OKP"):
            log.warning("JWKS key %d (kid %r) has kty %r; only RSA/EC/OKP keys are used", position, raw.get("kid"), kty)
            continue
        if raw.get("use", "sig") != "sig":
            continue
        declared = raw.get("alg")
        if declared is not None and declared not in ASYMMETRIC_ALGORITHMS:
            log.warning("JWKS key %d (kid %r) declares alg %r; skipped", position, raw.get("kid"), declared)
            continue
        try:
            parsed = jwt.PyJWK(raw)
        except (PyJWKError, InvalidKeyError, ValueError, TypeError) as exc:
            log.warning("JWKS key %d (kid %r) cannot be read (%s); skipped", position, raw.get("kid"), type(exc).__name__)
            continue
        kid = raw.get("kid")
        keys.append(_Key(kid=kid if isinstance(kid, str) else None, kty=kty, declared_alg=declared, jwk=parsed))
    return keys


# --------------------------------------------------------------------------- the verifier


class TokenVerifier:
    """Checks Bearer JWTs against an IdP's JWKS and maps them to an ``Actor``.

    ``jwks`` is the JWKS URL (fetched, cached, refreshed) or a JWKS document (fixed keys).
    ``clock`` is monotonic seconds, for the cache and the refresh limit only; token times
    are checked against the wall clock.
    """

    def __init__(
        self,
        jwks: str | Mapping[str, Any],
        *,
        issuer: str,
        audience: str,
        leeway_seconds: float = 30,
        algorithms: tuple[str, ...] | list[str] = DEFAULT_ALGORITHMS,
        timeout_seconds: float = 5.0,
        cache_seconds: float = 600,
        min_refresh_seconds: float = 30,
        role_claim: str = "role",
        unit_claim: str = "unit",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _check_algorithms(tuple(algorithms))
        if not issuer or not audience:
            raise ValueError("issuer and audience are required")
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway_seconds
        self.algorithms = tuple(algorithms)
        self.timeout = timeout_seconds
        self.cache_seconds = cache_seconds
        self.min_refresh_seconds = min_refresh_seconds
        self.role_claim = role_claim
        self.unit_claim = unit_claim
        self._clock = clock
        self.fetches = 0  # how many times the key set was fetched (for metrics and tests)
        self._keys: list[_Key] = []
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last attempt, successful or not
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()
        if isinstance(jwks, str):
            _check_jwks_url(jwks)
            self.jwks_url: str | None = jwks
        else:
            self.jwks_url = None
            self._keys = parse_jwks(jwks)
            if not self._keys:
                raise ValueError("the JWKS document holds no usable signature key")

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> TokenVerifier:
        if not settings.jwks_url or not settings.issuer:
            raise ValueError("AUTH_JWKS_URL and AUTH_ISSUER are needed to verify tokens")
        return cls(
            settings.jwks_url,
            issuer=settings.issuer,
            audience=settings.audience,
            leeway_seconds=settings.leeway_seconds,
            algorithms=settings.algorithms,
            timeout_seconds=settings.jwks_timeout_seconds,
            cache_seconds=settings.jwks_cache_seconds,
            min_refresh_seconds=settings.jwks_min_refresh_seconds,
            role_claim=settings.role_claim,
            unit_claim=settings.unit_claim,
        )

    # -- public -------------------------------------------------------------------------

    async def verify(self, token: str) -> Actor:
        """The actor of a good token; ``TokenError`` says why not, ``KeySetUnavailable``
        when the IdP cannot be reached and no cached key applies."""
        claims = await self.claims(token)
        return self.actor_from_claims(claims)

    async def claims(self, token: str) -> dict[str, Any]:
        """The verified claims of a token (signature, issuer, audience, times)."""
        if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
            raise TokenError("malformed_token", "the token is not a well-formed JWT")
        try:
            header = jwt.get_unverified_header(token)
        except DecodeError:
            raise TokenError("malformed_token", "the token is not a well-formed JWT") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            shown = alg if isinstance(alg, str) and _ALG_NAME.fullmatch(alg) else "?"
            raise TokenError(
                "algorithm_not_accepted",
                f"algorithm {shown} is not accepted; accepted: {', '.join(self.algorithms)}",
            )
        kid = header.get("kid")
        if kid is not None and (not isinstance(kid, str) or not kid or len(kid) > 256):
            raise TokenError("malformed_token", "the token's key id (kid) is not a string")
        key = await self._key_for(kid, alg)
        try:
            return jwt.decode(
                token,
                key.jwk.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": _REQUIRED_CLAIMS, "verify_signature": True},
            )
        except InvalidSignatureError:
            raise TokenError("bad_signature", "the token signature does not verify") from None
        except ExpiredSignatureError:
            raise TokenError("token_expired", "the token has expired") from None
        except ImmatureSignatureError:
            raise TokenError("token_not_yet_valid", "the token is not valid yet (nbf or iat in the future)") from None
        except InvalidAudienceError:
            raise TokenError("wrong_audience", "the token is for another audience (aud)") from None
        except InvalidIssuerError:
            raise TokenError("wrong_issuer", "the token is from another issuer (iss)") from None
        except MissingRequiredClaimError as exc:
            raise TokenError("missing_claim", f"the token lacks the {exc.claim!r} claim") from None
        except InvalidIssuedAtError:
            raise TokenError("malformed_token", "the token's iat is not a number") from None
        except (DecodeError, InvalidKeyError, PyJWTError, ValueError, TypeError):
            # Garbled payload or base64, non-numeric exp/nbf, a signature of the wrong size …
            raise TokenError("malformed_token", "the token is not a well-formed JWT") from None

    def actor_from_claims(self, claims: Mapping[str, Any]) -> Actor:
        """``sub``/``role``/``unit`` → Actor; an unknown role is refused, not guessed."""
        role_value = claims.get(self.role_claim)
        try:
            role = Role(role_value) if isinstance(role_value, str) else None
        except ValueError:
            role = None
        if role is None:
            raise TokenError("unknown_role", f"the token's {self.role_claim} claim is not one of: {PERSON_ROLES}")
        if role is Role.system:
            raise TokenError("system_role", "role 'system' is for services acting on their own, not for requests", status=403)
        subject = claims.get("sub")
        unit = claims.get(self.unit_claim)
        if not isinstance(subject, str) or not 1 <= len(subject) <= 128:
            raise TokenError("bad_claims", "the token's sub claim must be 1–128 characters")
        if unit is not None and (not isinstance(unit, str) or not 1 <= len(unit) <= 64):
            raise TokenError("bad_claims", f"the token's {self.unit_claim} claim must be a unit code of 1–64 characters")
        return Actor(id=subject, role=role, org_unit=unit)

    async def actor_from_credentials(self, credentials: HTTPAuthorizationCredentials | None) -> Actor:
        """For a FastAPI dependency: the actor, or a 401/403/503 Problem."""
        if credentials is None:
            raise TokenError("missing_token", "sign in: send Authorization: Bearer <token>").problem()
        try:
            return await self.verify(credentials.credentials)
        except TokenError as exc:
            raise exc.problem() from None
        except KeySetUnavailable:
            raise Problem(
                503, "the identity provider's keys cannot be fetched; try again shortly", slug="idp-unavailable",
                headers={"Retry-After": str(max(1, int(self.min_refresh_seconds)))},
            ) from None

    # -- keys ---------------------------------------------------------------------------

    async def _key_for(self, kid: str | None, alg: str) -> _Key:
        if self.jwks_url is not None:
            stale = self._fetched_at is None or self._clock() - self._fetched_at >= self.cache_seconds
            if stale or (kid is not None and self._find(kid) is None):
                await self._refresh()
        if kid is None:
            if len(self._keys) != 1:
                raise TokenError("no_key_id", "the token names no key (kid) and the key set holds several")
            key = self._keys[0]
        else:
            found = self._find(kid)
            if found is None:
                raise TokenError("unknown_key", "the token is signed with an unknown key (kid)")
            key = found
        if not key.fits(alg):
            raise TokenError("bad_signature", "the token's algorithm does not fit its key")
        return key

    def _find(self, kid: str) -> _Key | None:
        return next((k for k in self._keys if k.kid == kid), None)

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    async def _refresh(self) -> None:
        """Fetch the key set, unless someone did (or tried) less than min_refresh_seconds ago.

        Concurrent callers queue on one lock, so a burst of unknown kids makes one fetch.
        When a fetch fails the cached keys stay in use; with none cached the caller gets
        ``KeySetUnavailable``.
        """
        async with self._lock():
            now = self._clock()
            if self._attempted_at is not None and now - self._attempted_at < self.min_refresh_seconds:
                if not self._keys:
                    raise KeySetUnavailable("the key set could not be fetched recently")
                return
            self._attempted_at = now
            self.fetches += 1
            assert self.jwks_url is not None
            try:
                document = await self._fetch(self.jwks_url)
                keys = parse_jwks(document)
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("could not fetch the JWKS from %s: %s", self.jwks_url, exc)
                if not self._keys:
                    raise KeySetUnavailable(str(exc)) from None
                return
            if not keys:
                log.warning("the JWKS at %s holds no usable signature key; keeping the cached keys", self.jwks_url)
                if not self._keys:
                    raise KeySetUnavailable("the key set holds no usable key")
                return
            self._keys = keys
            self._fetched_at = now

    async def _fetch(self, url: str) -> Any:
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
            async with client.stream("GET", url, headers={"Accept": "application/json"}) as response:
                response.raise_for_status()
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise ValueError(f"the JWKS is larger than {MAX_JWKS_BYTES} bytes")
        return json.loads(body)


# --------------------------------------------------------------------------- FastAPI


# auto_error=False: we answer a missing token ourselves (problem+json, RFC 6750 header).
bearer_scheme = HTTPBearer(
    auto_error=False, scheme_name="bearer", description="a JWT from the identity provider (dev: python -m services.dev.issuer)"
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


def bearer_actor(verifier: TokenVerifier | Callable[[], TokenVerifier]) -> Callable[..., Awaitable[Actor]]:
    """A FastAPI dependency giving the verified actor of the request::

        ActorDep = Annotated[Actor, Depends(bearer_actor(verifier))]
    """

    async def dependency(credentials: BearerDep) -> Actor:
        current = verifier if isinstance(verifier, TokenVerifier) else verifier()
        return await current.actor_from_credentials(credentials)

    return dependency


@lru_cache(maxsize=1)
def default_verifier() -> TokenVerifier:
    """The process-wide verifier built from AUTH_* (used when AUTH_MODE=jwt and the app has
    none of its own). Call ``load_auth_settings()`` at start-up to fail fast on bad settings."""
    return TokenVerifier.from_settings(AuthSettings())


@lru_cache(maxsize=1)
def auth_mode() -> str:
    """AUTH_MODE of this process ("headers" or "jwt"), read once."""
    return AuthSettings().mode


def reset_auth_cache() -> None:
    """Forget the process-wide mode and verifier (tests that change AUTH_* call this)."""
    auth_mode.cache_clear()
    default_verifier.cache_clear()


def verifier_for(request: Request) -> TokenVerifier | None:
    """The verifier for a request: the app's own (``app.state.token_verifier``, set at
    start-up or by a test), else the process-wide one when AUTH_MODE=jwt, else None —
    header mode, the development fallback of ``shared.actors``."""
    own = getattr(request.app.state, "token_verifier", None)
    if own is not None:
        return own
    if auth_mode() == "jwt":
        return default_verifier()
    return None
