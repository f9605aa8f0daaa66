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

import httpx

from shared.testing import Infra, ServiceProcess, TopicReader, free_port, service_env, unique

SERVICE_NAMES = ("intake", "dispatch", "sla", "scoring", "notify")


@dataclass
class Platform:
    topic: str
    processes: dict[str, ServiceProcess]
    reader: TopicReader
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
        await process.wait_ready()


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
) -> AsyncIterator[Platform]:
    """Start ``services`` as processes on one new topic; always stop them, even on failure.

    ``settings`` adds per-service variables without the prefix: ``{"sla": {"TIME_TRAVEL": "true"}}``.
    """
    topic = unique("e2e")
    processes: dict[str, ServiceProcess] = {}
    for name in services:
        port = free_port()
        env = platform_env(
            infra, name, topic=topic, database=unique(f"e2e_{name}"), port=port, extra=(settings or {}).get(name, {})
        )
        processes[name] = ServiceProcess(name, env, port, logs / f"{name}.log")
    try:
        for process in processes.values():
            process.start()
        await asyncio.gather(*(p.wait_ready(timeout=120) for p in processes.values()))
        async with TopicReader(infra.bootstrap_servers, topic) as reader:
            platform = Platform(topic, processes, reader)
            platform.clients = {n: httpx.AsyncClient(base_url=p.url, timeout=30) for n, p in processes.items()}
            try:
                yield platform
            finally:
                for client in platform.clients.values():
                    await client.aclose()
    finally:
        for process in processes.values():
            process.stop()
