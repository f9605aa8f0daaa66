"""Helpers for integration tests: real servers, real HTTP, isolated per test.

Each test gets its own topic and its own databases on the session's PostgreSQL server,
so tests never see each other's events. Services run in-process under a real uvicorn
server on a free loopback port, or as their own process (``ServiceProcess``) when a test
needs to kill -9 them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.cloudevents import from_message, to_message
from shared.events import EventBase
from shared.migrate import create_database, ensure_database, migrate
from shared.ports import free_port
from shared.server import Server, server_config
from shared.service import Runtime
from shared.settings import ServiceSettings, load_settings

S = TypeVar("S", bound=ServiceSettings)

#: The consumer session of services run in-process by tests. The embedded broker answers a
#: group's first join after about half a session and a restarted member's after about two, so
#: the default 6 s session cost 3 s per service start and 11 s per restart. 2 s keeps ten
#: heartbeats per session (0.2 s apart), so a test process busy for a moment is not evicted.
#: Tests about the default session pass ``consumer_session_timeout_ms`` themselves.
TEST_SESSION_MS = 2000

#: Who tests act as when they only look: the auditor reads every case and changes nothing.
AUDITOR = {"X-Actor-Id": "test-auditor", "X-Actor-Role": "auditor"}
#: 忻城县's command centre: sees and dispatches the county's cases.
CENTRE = {"X-Actor-Id": "test-dispatcher", "X-Actor-Role": "centre_dispatcher", "X-Actor-Unit": "LB-XC-ZZZX"}
#: Ops: runs the machines (moves a test clock, replays dead letters), sees no case.
OPS = {"X-Actor-Id": "test-ops", "X-Actor-Role": "ops"}


def inbox_owner(recipient: str) -> dict[str, str]:
    """Headers of someone who owns an in-app inbox (notify): ``unit:<code>:duty|head`` or ``citizen:<ref>``."""
    parts = recipient.split(":")
    if parts[0] == "unit":
        return {"X-Actor-Id": f"test-{parts[2]}", "X-Actor-Role": "dept_head" if parts[2] == "head" else "dept_clerk", "X-Actor-Unit": parts[1]}
    return {"X-Actor-Id": recipient, "X-Actor-Role": "citizen"}
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Infra:
    """The session's PostgreSQL server and broker."""

    postgres_url: str  # postgresql://postgres@127.0.0.1:PORT/postgres
    bootstrap_servers: str
    postgres: Any = None  # services.dev.devstack.EmbeddedPostgres when embedded
    broker: Any = None  # services.dev.devstack.TansuBroker when embedded

    def database_url(self, name: str) -> str:
        return self.postgres_url.rsplit("/", 1)[0] + f"/{name}"


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def service_settings(cls: type[S], infra: Infra, *, topic: str, database: str, **overrides: Any) -> S:
    """Settings pointing one service at the test's topic and its own database."""
    values: dict[str, Any] = {
        "database_url": infra.database_url(database),
        "kafka_bootstrap_servers": infra.bootstrap_servers,
        "kafka_topic": topic,
        "kafka_partitions": 4,
        "consumer_group": f"{database}-{topic}",
        "port": free_port(),
        "outbox_poll_seconds": 0.02,
        "consumer_backoff_seconds": 0.05,
        "broker_epoch_check_seconds": 0.5,
        "log_json": True,
        "consumer_session_timeout_ms": TEST_SESSION_MS,
    }
    values.update(overrides)
    return load_settings(cls, **values)


def service_env(infra: Infra, prefix: str, *, topic: str, database: str, port: int, **extra: str) -> dict[str, str]:
    """Environment for running a service as its own process with the same wiring."""
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_DATABASE_URL", "_KAFKA_BOOTSTRAP_SERVERS"))}
    env.update(
        {
            f"{prefix}DATABASE_URL": infra.database_url(database),
            f"{prefix}KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap_servers,
            f"{prefix}KAFKA_TOPIC": topic,
            f"{prefix}KAFKA_PARTITIONS": "4",
            f"{prefix}CONSUMER_GROUP": f"{database}-{topic}",
            f"{prefix}PORT": str(port),
            f"{prefix}OUTBOX_POLL_SECONDS": "0.02",
            f"{prefix}CONSUMER_BACKOFF_SECONDS": "0.05",
            f"{prefix}BROKER_EPOCH_CHECK_SECONDS": "0.5",
            # A killed process's partitions move after 3 s, not 10: crash tests restart sooner.
            f"{prefix}CONSUMER_SESSION_TIMEOUT_MS": "3000",
        }
    )
    env.update(extra)
    return env


class DatabaseTemplates:
    """Each service's database migrated once per session and copied for every test that starts it.

    A service creates and migrates its database when it starts (``shared.service``); the suite
    starts services hundreds of times, each on a database of its own, and running alembic from
    an empty database each time cost 0.3–1 s a start. Instead the first start of a service
    migrates a template database, and a later start whose database does not exist yet gets a
    copy of it (PostgreSQL ``CREATE DATABASE … TEMPLATE``, ~0.1 s). The copy is what the
    migrations made, and the service's own ``migrate`` still runs on it and must find it at
    ``heads``. A database that already exists (a restart, a test's own older schema) is left
    to the service exactly as in production. ``install`` puts this in place of the service's
    ``ensure_database`` and ``migrate`` for in-process services; processes are not affected.
    """

    def __init__(self) -> None:
        self._templates: dict[tuple[str | None, int | None, Path], str] = {}
        self._fresh: set[str] = set()  # databases found missing, to be made at migrate time

    def install(self, monkeypatch: Any) -> None:
        import shared.service

        monkeypatch.setattr(shared.service, "ensure_database", self.ensure_database)
        monkeypatch.setattr(shared.service, "migrate", self.migrate)

    async def ensure_database(self, url: str) -> None:
        target = make_url(url)
        name = target.database or ""
        if not re.fullmatch(r"[A-Za-z0-9_]+", name) or await _database_exists(target, name):
            await ensure_database(url)  # its checks and its errors, unchanged
            return
        self._fresh.add(name)

    async def migrate(self, engine: AsyncEngine, service_versions: Path) -> None:
        name = engine.url.database or ""
        if name in self._fresh:
            self._fresh.discard(name)
            template = await self._template(engine, service_versions)
            await _create_database(engine.url, name, template=template)
        await migrate(engine, service_versions)

    async def _template(self, engine: AsyncEngine, service_versions: Path) -> str:
        # Per server: a test may run a service on a private PostgreSQL of its own.
        key = (engine.url.host, engine.url.port, Path(service_versions).resolve())
        if key not in self._templates:
            name = unique(f"template_{key[2].parent.parent.name}")
            await _create_database(engine.url, name)
            template_engine = create_async_engine(engine.url.set(database=name))
            try:
                await migrate(template_engine, service_versions)
            finally:
                await template_engine.dispose()
            self._templates[key] = name
        return self._templates[key]


async def _database_exists(url: Any, name: str) -> bool:
    admin = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            return bool((await conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})).scalar())
    finally:
        await admin.dispose()


async def _create_database(url: Any, name: str, *, template: str | None = None) -> None:
    """CREATE DATABASE (optionally from a template), ``shared.migrate.create_database``'s way."""
    admin = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await create_database(conn, name, template=template)
    finally:
        await admin.dispose()


class RunningService:
    """A service app served by uvicorn inside this process, on a real port."""

    def __init__(self, app: FastAPI, settings: ServiceSettings) -> None:
        self.app = app
        self.settings = settings
        self.url = f"http://127.0.0.1:{settings.port}"
        config = server_config(app, settings, host="127.0.0.1", lifespan="on")  # as served in production
        self.server = Server(config)
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._task: asyncio.Task[None] | None = None
        self.client = httpx.AsyncClient(base_url=self.url, timeout=30)

    @property
    def runtime(self) -> Runtime:
        return self.app.state.runtime

    async def start(self, timeout: float = 60) -> None:
        self._task = asyncio.create_task(self.server.serve())
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if self._task.done():
                self._task.result()  # raises the start-up error
                raise RuntimeError("server exited during start-up")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.settings.service_name} did not start in {timeout}s")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        await self.client.aclose()
        if self._task is not None and not self._task.done():
            self.server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 30)


@contextlib.asynccontextmanager
async def running(app: FastAPI, settings: ServiceSettings) -> AsyncIterator[RunningService]:
    service = RunningService(app, settings)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


class ServiceProcess:
    """A service as its own OS process (``python -m <module>``), for kill -9 tests."""

    def __init__(self, module: str, env: dict[str, str], port: int, log_path: Path) -> None:
        self.module = module
        self.env = env
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module], env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    async def wait_ready(self, timeout: float = 60) -> None:
        async with httpx.AsyncClient(timeout=2) as client:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"{self.module} exited with {self.proc.returncode}; see {self.log_path}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/ready")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise TimeoutError(f"{self.module} not ready after {timeout}s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flush — a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout: float = 30, interval: float = 0.05, what: str = "") -> Any:
    """Poll until ``check`` returns something truthy; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}; last value: {last!r}")


async def publish(bootstrap_servers: str, topic: str, *events: EventBase) -> None:
    """Put events on a topic as another service's relay would (CloudEvents binary mode, keyed by case)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    await producer.start()
    try:
        for event in events:
            message = to_message(event)
            await producer.send_and_wait(topic, message.value, key=message.key, headers=message.headers)
    finally:
        await producer.stop()


class TopicReader:
    """Reads everything on a topic from the start, for tests that check what services wrote.

    ``await reader.events(case_id=…, types=…)`` returns the decoded events seen so far (in
    partition order, which is per-case order); combine with ``eventually`` to wait for one.
    """

    @classmethod
    def of(cls, service: RunningService) -> TopicReader:
        """A reader of the topic ``service`` consumes and publishes to."""
        return cls(service.settings.kafka_bootstrap_servers, service.settings.kafka_topic)

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self._consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap_servers, auto_offset_reset="earliest", enable_auto_commit=False,
            group_id=None,
        )
        self._seen: list[EventBase] = []

    async def __aenter__(self) -> TopicReader:
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def events(
        self, *, case_id: str | None = None, types: tuple[str, ...] | str | None = None
    ) -> list[EventBase]:
        batch = await self._consumer.getmany(timeout_ms=200, max_records=10_000)
        for records in batch.values():
            self._seen.extend(from_message(r.value, r.headers) for r in records)
        wanted = (types,) if isinstance(types, str) else types
        return [
            e for e in self._seen
            if (case_id is None or e.case_id == case_id) and (wanted is None or e.type in wanted)
        ]


async def generic_plan(conn: Any, statement: Any) -> str:
    """PostgreSQL's plan for a SQLAlchemy ``statement`` prepared once for any parameters — the
    plan asyncpg's cached statements run on after a few executions. ``conn`` is an asyncpg
    connection (or SQLAlchemy's driver connection)."""
    compiled = statement.compile(dialect=asyncpg_dialect.dialect(), compile_kwargs={"render_postcompile": True})
    nulls = ", ".join(["NULL"] * len(compiled.positiontup or ()))  # a generic plan never looks at them
    name = f"generic_{uuid.uuid4().hex[:12]}"
    await conn.execute(f"PREPARE {name} AS {compiled}")
    try:
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        rows = await conn.fetch(f"EXPLAIN EXECUTE {name}({nulls})" if nulls else f"EXPLAIN EXECUTE {name}")
        return "\n".join(row[0] for row in rows)
    finally:
        await conn.execute(f"DEALLOCATE {name}; RESET plan_cache_mode")
