"""The signed-in user, kept in a signed HttpOnly cookie (no server-side store).

The cookie is a JWT signed with the console's own secret (HS256). It carries who the user
is and the issuer's token, which the console forwards as ``Authorization: Bearer``. The
browser never sees the token: the cookie is HttpOnly, SameSite=Strict.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt

COOKIE = "jiesu_console"
AUDIENCE = "jiesu-console"
# Roles that see the whole county (the board, every unit's queue).
CENTRE_ROLES = frozenset({"centre_dispatcher", "centre_supervisor", "auditor", "ops"})


@dataclass(frozen=True)
class Session:
    user_id: str
    name: str
    role: str
    unit: str | None
    token: str
    expires_at: int

    @property
    def is_centre(self) -> bool:
        return self.role in CENTRE_ROLES

    def public(self) -> dict[str, Any]:
        """What the page may know about the user (never the token)."""
        return {"id": self.user_id, "name": self.name, "role": self.role, "unit": self.unit,
                "expires_at": self.expires_at, "centre": self.is_centre}  # fmt: skip

    def actor_headers(self) -> dict[str, str]:
        """Both identities: the services use the token with AUTH_MODE=jwt and the headers otherwise."""
        headers = {"Authorization": f"Bearer {self.token}", "X-Actor-Id": self.user_id, "X-Actor-Role": self.role}
        if self.unit:
            headers["X-Actor-Unit"] = self.unit
        return headers


def encode_session(session: Session, secret: str) -> str:
    claims = {
        "sub": session.user_id, "name": session.name, "role": session.role, "unit": session.unit,
        "tok": session.token, "exp": session.expires_at, "aud": AUDIENCE, "iat": int(time.time()),
    }  # fmt: skip
    return jwt.encode(claims, secret, algorithm="HS256")


def decode_session(value: str | None, secret: str, *, now: float | None = None) -> Session | None:
    """The session in a cookie, or None when it is missing, tampered with or expired."""
    if not value:
        return None
    try:
        claims = jwt.decode(
            value, secret, algorithms=["HS256"], audience=AUDIENCE,
            options={"require": ["sub", "role", "tok", "exp"], "verify_exp": now is None},
        )  # fmt: skip
    except jwt.PyJWTError:
        return None
    if now is not None and claims["exp"] <= now:
        return None
    return Session(
        user_id=str(claims["sub"]), name=str(claims.get("name") or claims["sub"]), role=str(claims["role"]),
        unit=claims.get("unit") or None, token=str(claims["tok"]), expires_at=int(claims["exp"]),
    )
