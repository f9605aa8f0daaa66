"""Issuer settings (env prefix ``ISSUER_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.ports import is_loopback


class IssuerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ISSUER_", extra="ignore")

    service_name: str = "issuer"
    host: str = "127.0.0.1"
    port: int = Field(default=8007, ge=1, le=65535)
    allow_remote: bool = Field(default=False, description="listen on a non-loopback address (never in production)")
    issuer: str | None = Field(default=None, description="the `iss` it writes; default http://<host>:<port>")
    audience: str = Field(default="jiesu", min_length=1, description="the `aud` it writes (AUTH_AUDIENCE of the services)")
    algorithm: Literal["ES256", "RS256"] = "ES256"
    key_file: Path | None = Field(default=None, description="PEM private key; created when missing; in memory when unset")
    token_lifetime_seconds: int = Field(default=8 * 3600, ge=60, le=7 * 86400)
    org_file: Path | None = Field(default=None, description="organisation file with the users (default: the demo org)")

    @model_validator(mode="after")
    def _loopback_only(self) -> IssuerSettings:
        problem = bind_problem(self.host, self.allow_remote)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def issuer_url(self) -> str:
        if self.issuer:
            return self.issuer.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"



def bind_problem(host: str, allow_remote: bool) -> str | None:
    """Why the issuer must not listen on ``host``, or None when it may."""
    if is_loopback(host) or allow_remote:
        return None
    return (
        f"the development token issuer signs a token for anyone who asks, so it listens on loopback only; "
        f"refusing ISSUER_HOST={host}. Set ISSUER_ALLOW_REMOTE=true to override (never in production)"
    )


def load_issuer_settings(**overrides: object) -> IssuerSettings:
    """Settings from the environment; a bad value exits with a message naming it."""
    try:
        return IssuerSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False):
            name = "_".join(str(p) for p in err["loc"]).upper()
            lines.append(f"  {'ISSUER_' + name + ': ' if name else ''}{err['msg'].removeprefix('Value error, ')}")
        raise SystemExit("issuer: invalid settings:\n" + "\n".join(lines)) from None
