"""The gateway circuit breakers (notify/breakers.py) against the development receiver made to fail,
with real PostgreSQL, the broker and real HTTP."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from notify.app import create_app
from notify.settings import NotifySettings
from notify.tests.conftest import WEBHOOK_SECRET
from notify.tests.helpers import Case, local, message_states, set_clock
from shared.testing import Infra, eventually, publish, running, service_settings, unique

FAILURES = 3  # failed tries in a row that open a breaker
OPEN_SECONDS = 1.0
MAX_ATTEMPTS = 6


@pytest.fixture(scope="module")
async def gated(infra: Infra, receiver):
    settings = service_settings(
        NotifySettings, infra, topic=unique("lifecycle"), database=unique("notify"),
        sms_url=f"{receiver.url}/sms", wechat_url=f"{receiver.url}/wechat",
        hotline_webhook_url=f"{receiver.url}/hotline", hotline_webhook_secret=WEBHOOK_SECRET,
        sender_max_sleep_seconds=0.05, backoff_seconds=0.1, max_backoff_seconds=0.4, max_attempts=MAX_ATTEMPTS,
        breaker_failures=FAILURES, breaker_open_seconds=OPEN_SECONDS, test_clock=True,
    )  # fmt: skip
    async with running(create_app(settings), settings) as service:
        yield service


async def _breaker(service, channel: str) -> dict:
    body = (await service.client.get("/ready")).json()
    return body["checks"]["gateway_breakers"][channel]


def _state_sample(metrics_text: str, channel: str, state: str) -> float:
    wanted = f'jiesu_notify_gateway_breaker_state{{channel="{channel}",jiesu_notify_gateway_breaker_state="{state}",service="notify"}}'
    for line in metrics_text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {wanted}")


async def test_a_failing_webhook_is_not_hammered_and_its_messages_wait_then_go(gated, infra, receiver) -> None:
    await set_clock(gated, local(2026, 11, 24, 10))
    assert (await _breaker(gated, "hotline"))["state"] == "closed"
    await receiver.fail_next(10_000, "/hotline")
    cases = [Case(channel="hotline") for _ in range(4)]
    started = time.monotonic()
    try:
        for case in cases:
            await publish(infra.bootstrap_servers, gated.settings.kafka_topic, case.received(), case.accepted())

        async def opened() -> dict | None:
            breaker = await _breaker(gated, "hotline")
            return breaker if breaker["state"] == "opened" else None

        breaker = await eventually(opened, what="the webhook's breaker open")
        assert 0 <= breaker["retry_in_seconds"] <= OPEN_SECONDS  # 0: due, the next round tries one
        # The other gateways are not affected, and /ready stays ready: the messages wait in the database.
        ready = await gated.client.get("/ready")
        assert ready.status_code == 200 and ready.json()["checks"]["gateway_breakers"]["sms"]["state"] == "closed"
        metrics_text = (await gated.client.get("/metrics")).text
        assert _state_sample(metrics_text, "hotline", "opened") == 1.0
        assert _state_sample(metrics_text, "hotline", "closed") == 0.0

        await asyncio.sleep(3 * OPEN_SECONDS)
        elapsed = time.monotonic() - started
        tries = await receiver.messages(path="/hotline", include_failed=True)
        # Without a breaker each of the 4 messages would be tried every 0.1–0.4 s (~20 tries by now);
        # with it: the tries that opened it, then one try per open period.
        assert len(tries) <= FAILURES + math.ceil(elapsed / OPEN_SECONDS) + 1, [t["received_at"] for t in tries]
        assert all(t["status"] == 503 for t in tries)
        states = [m for case in cases for m in await message_states(gated, case) if m["channel"] == "hotline"]
        assert len(states) == len(cases) and not [m for m in states if m["state"] == "dead"], states
        assert any("breaker open" in (m["last_error"] or "") for m in states), states
    finally:
        await receiver.fail_next(0, "/hotline")

    async def all_delivered() -> bool:
        states = [m for case in cases for m in await message_states(gated, case) if m["channel"] == "hotline"]
        return all(m["state"] == "delivered" for m in states)

    await eventually(all_delivered, timeout=20, what="every waiting webhook delivered once the gateway is back")
    for case in cases:
        delivered = [t for t in await receiver.messages(path="/hotline") if t["json"]["case_id"] == case.id]
        assert len(delivered) == 1
    assert (await _breaker(gated, "hotline")) == {"state": "closed", "failures": 0}
    assert _state_sample((await gated.client.get("/metrics")).text, "hotline", "closed") == 1.0


async def test_a_rejected_message_does_not_open_the_breaker(gated, infra, receiver) -> None:
    """A permanent 4xx is the message's fault, not the gateway's: it is dead-lettered at once and the
    gateway's breaker stays closed for the others."""
    await set_clock(gated, local(2026, 11, 24, 10))
    (await receiver.client.post("/fail", params={"count": FAILURES + 2, "path": "/hotline", "status": 422})).raise_for_status()
    cases = [Case(channel="hotline") for _ in range(FAILURES + 2)]
    try:
        for case in cases:
            await publish(infra.bootstrap_servers, gated.settings.kafka_topic, case.received(), case.accepted())

        async def all_dead() -> bool:
            states = [m for case in cases for m in await message_states(gated, case) if m["channel"] == "hotline"]
            return len(states) == len(cases) and all(m["state"] == "dead" for m in states)

        await eventually(all_dead, what="the rejected webhooks dead-lettered")
    finally:
        await receiver.fail_next(0, "/hotline")
    assert (await _breaker(gated, "hotline"))["state"] == "closed"
