"""The sender sleeps until the next message falls due, not on a short poll: with its longest
sleep set to a minute, a message queued by the consumer is sent at once (the handler's
commit wakes it)."""

from __future__ import annotations

import asyncio
import time

from notify.app import create_app
from notify.settings import NotifySettings
from notify.tests.conftest import WEBHOOK_SECRET
from notify.tests.helpers import Case, local, set_clock
from shared.testing import Infra, eventually, publish, running, service_settings, unique

LONGEST_SLEEP = 60  # far longer than the test: only a wake-up sends in time
PROMPT_SECONDS = 3.0  # the consumer's fetch and the send fit well inside


async def test_a_queued_message_is_sent_at_once_with_a_minute_of_sleep(infra: Infra, receiver) -> None:
    settings = service_settings(
        NotifySettings, infra, topic=unique("lifecycle"), database=unique("notify"),
        hotline_webhook_url=f"{receiver.url}/hotline", hotline_webhook_secret=WEBHOOK_SECRET,
        sender_max_sleep_seconds=LONGEST_SLEEP, test_clock=True,
    )  # fmt: skip
    async with running(create_app(settings), settings) as notify:
        await set_clock(notify, local(2026, 11, 24, 10))  # a working morning (the webhook has no quiet hours anyway)
        await asyncio.sleep(1)  # the first rounds are over: the sender sleeps for a minute now
        case = Case(channel="hotline")
        accepted = case.accepted()
        started = time.monotonic()
        await publish(infra.bootstrap_servers, settings.kafka_topic, case.received(), accepted)

        async def delivered() -> list[dict]:
            return await receiver.messages(path="/hotline", header=f"idempotency-key={accepted.id}")

        await eventually(delivered, timeout=PROMPT_SECONDS * 3, what="the webhook sent")
        assert time.monotonic() - started < PROMPT_SECONDS, "the queued message waited for the sender's sleep"
