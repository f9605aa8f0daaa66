"""Service settings from the environment, with per-service overrides.

Every variable can be set for one service (``INTAKE_DATABASE_URL``) or for all of them
(``DATABASE_URL``); the service-specific one wins. A bad value aborts start-up with a
message naming the variable (see ``load_settings``).
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, PrivateAttr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url

S = TypeVar("S", bound="ServiceSettings")


class ServiceSettings(BaseSettings):
    """What every service needs. Subclasses set ``service_name`` and ``env_prefix``."""

    model_config = SettingsConfigDict(extra="ignore", validate_default=True)

    service_name: str = "service"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    # A PostgreSQL server URL. Unless <SERVICE>_DATABASE_URL names a database, the
    # service uses its own database on that server, called ``jiesu_<service>``.
    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    database_pool_size: int = Field(default=10, ge=1, le=200)
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_topic: str = "case-lifecycle"
    kafka_partitions: int = Field(default=12, ge=1, le=1024)
    kafka_replication_factor: int = Field(default=1, ge=1, le=7)
    consumer_group: str | None = None  # default: the service name

    # Delivery
    outbox_batch_size: int = Field(default=500, ge=1, le=10_000)
    # The relay is woken by each commit that wrote outbox rows (shared.relay); this poll is
    # only its fallback, for rows written by other means.
    outbox_poll_seconds: float = Field(default=5.0, gt=0, le=60)
    outbox_retention_days: float = Field(default=7, ge=0)
    # The inbox (processed_events) keeps an event id only as long as a duplicate of it can
    # arrive: a fresh broker is refilled with the outbox rows sent in the last
    # outbox_retention_days, so the inbox keeps its ids that long plus a margin (default
    # outbox retention + 24 h); shorter would let a refill apply an event twice (shared.inbox).
    inbox_retention_hours: float | None = Field(
        default=None, gt=0, description="how long an applied event's id is kept for dedup (default: outbox retention + 24 h; never less than the outbox retention)"
    )
    inbox_prune_seconds: float = Field(default=300, gt=0, le=86_400, description="how often expired inbox ids are deleted")
    inbox_prune_batch: int = Field(default=5_000, ge=100, le=100_000, description="inbox rows deleted per statement")
    consumer_max_attempts: int = Field(default=5, ge=1, le=100)
    consumer_backoff_seconds: float = Field(default=0.2, ge=0, le=60)
    consumer_max_backoff_seconds: float = Field(default=10, ge=0, le=600)
    consumer_batch_size: int = Field(default=500, ge=1, le=10_000)
    # How long the broker waits for a silent member (a crashed replica) before its partitions
    # move: a restarted replica waits out its predecessor's session before it is assigned.
    # A stopped replica leaves the group at once (LeaveGroup), so this bounds only a crash.
    # 6 s (heartbeats every 0.6 s) is Kafka's smallest default session; on the embedded broker a
    # crashed replica's partitions move after ~1.5 sessions (~9 s; 10 s cost ~16 s) — README.
    consumer_session_timeout_ms: int = Field(default=6_000, ge=1_000, le=300_000)
    # How long the broker may hold a consumer's fetch while its partitions have nothing new.
    # Apache Kafka answers a held fetch as soon as a record arrives, so there a long hold
    # (5 s) costs no latency and spares the idle round trips; the development broker (Tansu)
    # only looks again after half the hold, then half the rest, so there a new record waits
    # up to half of it for each hop: 500 ms keeps a hop under about 250 ms.
    consumer_fetch_max_wait_ms: int = Field(default=500, ge=10, le=30_000)
    # How often the relay and the consumer look whether the broker is a fresh one (each look
    # is a client of its own: connect, read one record, close); the relay also looks after
    # any failed publish. A fresh broker only happens to the in-memory development broker.
    broker_epoch_check_seconds: float = Field(default=10.0, gt=0, le=600)
    shutdown_grace_seconds: float = Field(default=10, ge=0, le=300)

    max_body_bytes: int = Field(default=2_000_000, ge=1_000, description="larger request bodies get 413")
    # Slow clients (shared/server.py, shared/http.py): none may hold a connection for ever.
    header_read_timeout_seconds: float = Field(
        default=20, gt=0, le=600, description="a request's line and headers must arrive within this (else the connection is closed)"
    )
    body_read_timeout_seconds: float = Field(
        default=30, gt=0, le=3600, description="a request body must arrive within this, plus 1 s per body_min_bytes_per_second received (else 408)"
    )
    body_min_bytes_per_second: int = Field(default=5_000, ge=1, description="the slowest upload rate still waited for")
    # /ready answers 503 past these, so a load balancer drains a stuck replica (shared/ops.py).
    # Lag as time behind means the same at 1 and 1,000 appeals/s; a count does not.
    ready_max_lag_seconds: float = Field(
        default=60, gt=0, description="consumer lag: age of the oldest unhandled event (record timestamps), in seconds"
    )
    ready_max_lag: int | None = Field(default=None, ge=0, description="consumer lag in messages, if also wanted (off by default)")
    ready_max_outbox_age_seconds: float = Field(default=600, ge=0, description="age of the oldest unsent outbox row")
    cors_origins: list[str] = Field(default_factory=list, description='browser origins allowed to call, e.g. ["https://console.example.cn"]')

    # The org directory (services/directory publishes every version; shared.orgfollow).
    org_file: Path | None = Field(default=None, description="organisation directory JSON used until the directory publishes (default: the demo org)")
    org_topic: str = Field(default="org-directory", description="where the directory publishes its versions")
    holiday_topic: str = Field(default="holiday-tables", description="where the directory publishes the holiday tables (shared.holidays)")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True

    # True when <SERVICE>_DATABASE_URL names the database outright (set by load_settings).
    _explicit_database: bool = PrivateAttr(default=False)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("inbox_retention_hours")
    @classmethod
    def _inbox_outlives_outbox(cls, value: float | None, info: ValidationInfo) -> float | None:
        outbox_days = info.data.get("outbox_retention_days")
        if value is not None and outbox_days is not None and value < outbox_days * 24:
            raise ValueError(
                f"must be at least the outbox retention ({outbox_days:g} days = {outbox_days * 24:g} h): a fresh "
                "broker is refilled with that much, and an id pruned sooner lets a refilled event apply twice"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        url = make_url(value)  # raises ArgumentError on garbage
        if not url.drivername.startswith("postgresql"):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _host_ports(cls, value: str) -> str:
        for item in value.split(","):
            host, sep, port = item.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port…], got {item!r}")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # <SERVICE>_X first, then the shared X: one variable can point every service at
        # real servers, and one service can still be pointed elsewhere.
        shared_env = EnvSettingsSource(settings_cls, env_prefix="")
        return init_settings, env_settings, shared_env, file_secret_settings

    # -- derived values -------------------------------------------------------------

    @property
    def group_id(self) -> str:
        return self.consumer_group or self.service_name

    @property
    def inbox_retention(self) -> timedelta:
        """How long the inbox keeps an applied event's id (see ``inbox_retention_hours``)."""
        return inbox_retention(self.outbox_retention_days, self.inbox_retention_hours)

    @property
    def database_name(self) -> str:
        return f"jiesu_{self.service_name}"

    def service_database_url(self, *, explicit: bool) -> str:
        """The SQLAlchemy async URL of this service's own database."""
        url = make_url(self.database_url).set(drivername="postgresql+asyncpg")
        if not explicit:
            url = url.set(database=self.database_name)
        return url.render_as_string(hide_password=False)

    @property
    def async_database_url(self) -> str:
        return self.service_database_url(explicit=self._explicit_database)


INBOX_MARGIN = timedelta(hours=24)


def inbox_retention(outbox_retention_days: float, inbox_retention_hours: float | None) -> timedelta:
    """The inbox's retention: the one set, else the outbox retention plus a day's margin (for a
    refill that runs late, clocks that disagree, a consumer that catches up on a backlog)."""
    if inbox_retention_hours is not None:
        return timedelta(hours=inbox_retention_hours)
    return timedelta(days=outbox_retention_days) + INBOX_MARGIN


def _prefix(cls: type[ServiceSettings]) -> str:
    return cls.model_config.get("env_prefix", "") or ""


class SettingsError(SystemExit):
    """Raised (as a clean exit, code 2) when the environment holds a bad value."""


def describe_errors(cls: type[ServiceSettings], exc: ValidationError) -> str:
    prefix = _prefix(cls)
    lines = [f"configuration error in {cls.__name__}:"]
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "?"
        var = f"{prefix}{field}".upper()
        lines.append(f"  {var} (or {field.upper()}): {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build settings or raise SettingsError with a message naming each bad variable."""
    import os

    try:
        settings = cls(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_errors(cls, exc)) from None
    explicit = "database_url" in overrides or f"{_prefix(cls)}DATABASE_URL" in {k.upper() for k in os.environ}
    settings._explicit_database = explicit
    return settings


def exit_on_bad_settings(cls: type[S]) -> S:
    try:
        return load_settings(cls)
    except SettingsError as exc:
        print(exc.code, file=sys.stderr)
        raise SystemExit(2) from None
