"""Console settings (env prefix ``CONSOLE_``)."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The services the console may forward to, by the name used in its URLs (/api/<name>/…).
SERVICES = ("intake", "dispatch", "sla", "scoring", "notify", "directory", "insight")


def _local(service: str, port: int) -> str:
    return f"http://127.0.0.1:{os.environ.get(f'{service}_PORT', port)}"


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONSOLE_", extra="ignore")

    service_name: str = "console"
    host: str = "127.0.0.1"
    port: int = Field(default=8008, ge=1, le=65535)

    # Each defaults to the service's own <SERVICE>_PORT on loopback, as `make run` starts it.
    intake_url: str = Field(default_factory=lambda: _local("INTAKE", 8001))
    dispatch_url: str = Field(default_factory=lambda: _local("DISPATCH", 8002))
    sla_url: str = Field(default_factory=lambda: _local("SLA", 8003))
    scoring_url: str = Field(default_factory=lambda: _local("SCORING", 8004))
    notify_url: str = Field(default_factory=lambda: _local("NOTIFY", 8005))
    directory_url: str = Field(default_factory=lambda: _local("DIRECTORY", 8006))
    issuer_url: str = Field(default_factory=lambda: _local("ISSUER", 8007))
    insight_url: str = Field(default_factory=lambda: _local("INSIGHT", 8009))

    county: str = Field(default="LB-XC", min_length=1, description="the county the board shows (org unit code)")
    session_secret: SecretStr | None = Field(
        default=None, description="signs the session cookie; unset: a random one per process (sessions end on restart)"
    )
    cookie_secure: bool = Field(default=False, description="mark the session cookie Secure (behind HTTPS)")
    poll_seconds: float = Field(default=2.0, gt=0, le=300, description="how often the live board asks the services")
    upstream_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    board_window_days: int = Field(default=30, ge=1, le=366, description="the board counts cases filed in this many days")
    board_max_cases: int = Field(default=2000, ge=100, le=100_000, description="at most this many cases are read per poll")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True

    @field_validator("intake_url", "dispatch_url", "sla_url", "scoring_url", "notify_url", "directory_url", "issuer_url", "insight_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("session_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < 32:
            raise ValueError("must be at least 32 bytes (it signs the session cookie, HS256)")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    def service_url(self, name: str) -> str:
        return getattr(self, f"{name}_url")


def load_console_settings(**overrides: object) -> ConsoleSettings:
    """Settings from the environment; a bad value exits with a message naming the variable."""
    try:
        return ConsoleSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False):
            name = "_".join(str(p) for p in err["loc"]).upper()
            lines.append(f"  {'CONSOLE_' + name + ': ' if name else ''}{err['msg'].removeprefix('Value error, ')}")
        raise SystemExit("console: invalid settings:\n" + "\n".join(lines)) from None
