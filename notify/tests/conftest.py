import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn

from notify.app import create_app
from notify.settings import NotifySettings
from services.dev.receiver.app import create_app as create_receiver
from shared.ports import free_port
from shared.testing import Infra, TopicReader, running, service_settings, unique

WEBHOOK_SECRET = "test-webhook-secret"


class Receiver:
    """The development receiver (services/dev/receiver) on a real loopback port, in this process."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(create_receiver(), host="127.0.0.1", port=self.port, log_config=None, access_log=False)
        )
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self.client = httpx.AsyncClient(base_url=self.url, timeout=10)

    async def messages(self, **params: object) -> list[dict]:
        response = await self.client.get("/messages", params={k: v for k, v in params.items() if v is not None})
        response.raise_for_status()
        return response.json()["items"]

    async def fail_next(self, count: int, path: str) -> None:
        (await self.client.post("/fail", params={"count": count, "path": path})).raise_for_status()


@contextlib.asynccontextmanager
async def serving_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    task = asyncio.create_task(receiver.server.serve())
    deadline = time.monotonic() + 20
    try:
        while not receiver.server.started:
            if task.done():
                task.result()
            if time.monotonic() > deadline:
                raise TimeoutError("receiver did not start")
            await asyncio.sleep(0.02)
        yield receiver
    finally:
        await receiver.client.aclose()
        receiver.server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    async with serving_receiver() as r:
        yield r


@pytest.fixture(scope="module")
async def notify(infra: Infra, receiver: Receiver):
    """A running notify (real HTTP, its own database and topic) sending to the receiver by URL."""
    settings = service_settings(
        NotifySettings, infra, topic=unique("lifecycle"), database=unique("notify"),
        sms_url=f"{receiver.url}/sms", wechat_url=f"{receiver.url}/wechat",
        hotline_webhook_url=f"{receiver.url}/hotline", hotline_client_id="jiesu-notify",
        hotline_webhook_secret=WEBHOOK_SECRET, sender_max_sleep_seconds=0.05, backoff_seconds=0.1, max_attempts=4,
        breaker_open_seconds=0.5,  # the tests that fail the receiver on purpose must not wait long
        test_clock=True, questionnaire_every=1, rate_limit_count=5,
    )  # fmt: skip
    async with running(create_app(settings), settings) as service:
        yield service


@pytest.fixture(scope="module")
async def topic(notify) -> AsyncIterator[TopicReader]:
    async with TopicReader.of(notify) as reader:
        yield reader
