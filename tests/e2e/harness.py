"""The whole platform for end-to-end tests: every service as its own OS process.

Each platform gets a fresh topic and fresh databases on the session's PostgreSQL server
and broker, so a test module sees only its own cases. Services run exactly as in
production (``python -m <service>``), configured only through environment variables,
and are driven over HTTP. ``kill``/``restart`` let fault tests crash one for real.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from shared.testing import Infra, ServiceProcess, TopicReader, free_port, service_env, unique

SERVICE_NAMES = ("intake", "dispatch", "sla", "scoring", "notify")
# The module `python -m` runs, where it is not the name. insight is not in SERVICE_NAMES: it keeps no
# case_status, so the checkers over SERVICE_NAMES leave it out; a test starts it with services=(…, "insight").
MODULES = {"insight": "services.insight"}
HOTLINE_SECRET = b"e2e-hotline-secret"  # the 12345 system signs its pushes with this
WEBHOOK_SECRET = b"e2e-webhook-secret"  # notify signs the status it posts back with this
APP_SECRET = b"e2e-app-secret"  # the citizens' app backend signs its reads with this


@dataclass
class Platform:
    topic: str
    processes: dict[str, ServiceProcess]  # "dispatch", and "dispatch#2" for a second replica
    reader: TopicReader
    databases: dict[str, str]  # service → its database URL (postgresql://…)
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    def __getattr__(self, name: str) -> httpx.AsyncClient:
        # platform.intake, platform.dispatch, … : an HTTP client for that service
        clients = self.__dict__.get("clients", {})
        if name in clients:
            return clients[name]
        raise AttributeError(name)

    def url(self, service: str) -> str:
        return self.processes[service].url

    async def kill(self, service: str) -> None:
        """SIGKILL: a crash, no shutdown hooks."""
        self.processes[service].kill()

    async def restart(self, service: str) -> None:
        process = self.processes[service]
        process.stop()
        process.start()
        await process.wait_ready(timeout=120)

    async def query(self, service: str, sql: str) -> list[asyncpg.Record]:
        """Read a service's own database (for checkers; tests act only over HTTP)."""
        conn = await asyncpg.connect(self.databases[service.split("#")[0]])
        try:
            return await conn.fetch(sql)
        finally:
            await conn.close()


def platform_env(infra: Infra, name: str, *, topic: str, database: str, port: int, extra: dict[str, str]) -> dict[str, str]:
    prefix = f"{name.upper()}_"
    env = service_env(infra, prefix, topic=topic, database=database, port=port)
    env.update({f"{prefix}{k}": v for k, v in extra.items()})
    return env


@contextlib.asynccontextmanager
async def running_platform(
    infra: Infra,
    logs: Path,
    *,
    services: tuple[str, ...] = SERVICE_NAMES,
    settings: dict[str, dict[str, str]] | None = None,
    replicas: dict[str, int] | None = None,
) -> AsyncIterator[Platform]:
    """Start ``services`` as processes on one new topic; always stop them, even on failure.

    ``settings`` adds per-service variables without the prefix: ``{"sla": {"TIME_TRAVEL": "true"}}``.
    ``replicas`` starts more processes of a service (``{"dispatch": 2}`` → "dispatch" and
    "dispatch#2"), sharing its database and consumer group as production replicas do.
    """
    topic = unique("e2e")
    processes: dict[str, ServiceProcess] = {}
    databases: dict[str, str] = {}
    # The stand-in for the SMS gateway, WeChat and the 12345 system: notify reaches it by URL.
    receiver_port = free_port()
    processes["receiver"] = ServiceProcess(
        "services.dev.receiver", {**service_env(infra, "RECEIVER_", topic=topic, database="unused", port=receiver_port)},
        receiver_port, logs / "receiver.log",
    )
    receiver = f"http://127.0.0.1:{receiver_port}"
    wiring = {
        "notify": {
            "SMS_URL": f"{receiver}/sms", "WECHAT_URL": f"{receiver}/wechat", "HOTLINE_WEBHOOK_URL": f"{receiver}/hotline",
            "HOTLINE_WEBHOOK_SECRET": WEBHOOK_SECRET.decode(), "TEST_CLOCK": "true",
        },
        "intake": {"HOTLINE_CLIENTS": f"hotline12345:{HOTLINE_SECRET.decode()},appbackend:{APP_SECRET.decode()}"},
        "sla": {"TIME_TRAVEL": "true"},  # tests move SLA's now to see cards fire
    }
    for name, extra in (settings or {}).items():
        wiring[name] = {**wiring.get(name, {}), **extra}
    for name in services:
        database = unique(f"e2e_{name}")
        databases[name] = infra.database_url(database)
        for replica in range(1, (replicas or {}).get(name, 1) + 1):
            key = name if replica == 1 else f"{name}#{replica}"
            port = free_port()
            env = platform_env(infra, name, topic=topic, database=database, port=port, extra=wiring.get(name, {}))
            processes[key] = ServiceProcess(MODULES.get(name, name), env, port, logs / f"{key.replace('#', '-')}.log")
    try:
        for process in processes.values():
            process.start()
        await asyncio.gather(*(p.wait_ready(timeout=120) for p in processes.values()))
        async with TopicReader(infra.bootstrap_servers, topic) as reader:
            platform = Platform(topic, processes, reader, databases)
            platform.clients = {n: httpx.AsyncClient(base_url=p.url, timeout=30) for n, p in processes.items()}
            try:
                yield platform
            finally:
                for client in platform.clients.values():
                    await client.aclose()
    finally:
        for process in processes.values():
            process.stop()


PHOTO = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64  # a PNG signature is enough for intake to take it as a photo


async def upload_photo(platform: Platform, headers: dict, content: bytes = PHOTO) -> str:
    """A photo uploaded to intake as the given user (a survey's or a progress report's); its id."""
    answer = await platform.intake.post("/api/v1/attachments", files={"file": ("现场.png", content, "image/png")}, headers=headers)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]
