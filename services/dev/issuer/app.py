"""The issuer's FastAPI app (see the package docstring)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Response
from pydantic import BaseModel, Field

from services.dev.issuer.keys import KeyRing, load_or_create
from services.dev.issuer.settings import IssuerSettings
from services.dev.issuer.tokens import claims_for, sign
from shared.events import Role
from shared.orgdata import OrgDirectory, load_org
from shared.problems import Problem, install_problem_handlers


class TokenRequest(BaseModel):
    user: str = Field(min_length=1, max_length=128, description="a demo user id, e.g. demo-dept-clerk (see GET /users)")
    lifetime_seconds: int | None = Field(
        default=None, ge=1, le=7 * 86400, description="shorter or longer than the default (ISSUER_TOKEN_LIFETIME_SECONDS)"
    )


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    user: dict[str, Any]


def create_app(
    settings: IssuerSettings | None = None,
    *,
    keys: KeyRing | None = None,
    org: OrgDirectory | None = None,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    settings = settings or IssuerSettings()
    keys = keys or KeyRing(load_or_create(settings.key_file, settings.algorithm), settings.key_file)
    org = org or load_org(settings.org_file)
    issuer = settings.issuer_url

    app = FastAPI(
        title="接诉即办 · development token issuer",
        version="1.0",
        description="Signs sign-in tokens for the demo users. A development tool: loopback only.",
    )
    install_problem_handlers(app)
    app.state.keys = keys
    app.state.settings = settings

    @app.get("/health")
    @app.get("/ready")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": "issuer"}

    @app.get("/.well-known/jwks.json", summary="The public keys that verify its tokens (JWKS)")
    async def jwks(response: Response) -> dict[str, Any]:
        response.headers["Cache-Control"] = "max-age=60"
        return keys.jwks()

    @app.get("/.well-known/openid-configuration", summary="Discovery document")
    async def discovery() -> dict[str, Any]:
        return {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "token_endpoint": f"{issuer}/token",
            "id_token_signing_alg_values_supported": [keys.current.algorithm],
            "token_endpoint_auth_methods_supported": ["none"],
            "subject_types_supported": ["public"],
            "response_types_supported": ["token"],
            "claims_supported": ["sub", "name", "role", "unit", "iss", "aud", "iat", "nbf", "exp", "jti"],
        }

    @app.get("/users", summary="The demo users, by role")
    async def users() -> dict[str, Any]:
        by_role: dict[str, list[dict[str, Any]]] = {}
        for role in Role:
            people = [{"id": u.id, "name": u.name, "unit": u.unit} for u in org.users_with_role(role)]
            if people:
                by_role[role.value] = people
        return {"count": sum(len(v) for v in by_role.values()), "roles": by_role}

    @app.post("/token", summary="A signed token for a demo user", response_model=TokenResponse)
    async def token(body: TokenRequest) -> TokenResponse:
        try:
            user = org.user(body.user)
        except KeyError:
            raise Problem(404, f"no demo user {body.user!r}; GET /users lists them", slug="unknown-user") from None
        if user.role is Role.system:
            raise Problem(422, "role 'system' is for services, not for sign-in", slug="validation")
        lifetime = body.lifetime_seconds or settings.token_lifetime_seconds
        claims = claims_for(user, issuer=issuer, audience=settings.audience, now=int(clock()), lifetime_seconds=lifetime)
        return TokenResponse(
            access_token=sign(claims, keys.current),
            expires_in=lifetime,
            user={"id": user.id, "name": user.name, "role": user.role.value, "unit": user.unit},
        )

    @app.post("/keys/rotate", summary="Sign with a new key from now on; the old one stays published")
    async def rotate() -> dict[str, Any]:
        new = keys.rotate()
        return {"kid": new.kid, "published": [k["kid"] for k in keys.jwks()["keys"]]}

    return app
