"""What a token says about a demo user, and signing it."""

from __future__ import annotations

import uuid
from typing import Any

import jwt

from services.dev.issuer.keys import SigningKey
from shared.orgdata import User


def claims_for(user: User, *, issuer: str, audience: str, now: int, lifetime_seconds: int) -> dict[str, Any]:
    """The claims ``shared.auth.TokenVerifier`` maps to an Actor: sub, role, unit."""
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": user.id,
        "name": user.name,
        "role": user.role.value,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime_seconds,
        "jti": uuid.uuid4().hex,
    }
    if user.unit:
        claims["unit"] = user.unit
    return claims


def sign(claims: dict[str, Any], key: SigningKey) -> str:
    return jwt.encode(claims, key.private_key, algorithm=key.algorithm, headers={"kid": key.kid, "typ": "JWT"})
