"""Quiet when idle (issue #21 item 7): a service with nothing to do wakes about once a second,
not ten or fifteen times — and still answers a stop, and applies a new event, at once."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from fastapi import FastAPI

from shared import consumer as consumer_module
from shared.consumer import IDLE_WAIT_SECONDS, client_options, fetch_wait_ms
from shared.server import Server, server_config
from shared.testing import Infra, eventually, free_port, publish, running, service_settings, unique
from shared.tests.probe import ProbeSettings
from shared.tests.test_delivery import progress
from shared.tests.test_ops import Switches, _has, probe_app, probe_rows


def test_the_fetch_wait_is_a_second_unless_a_paused_partition_is_due_sooner():
    assert fetch_wait_ms([], now=100.0) == int(IDLE_WAIT_SECONDS * 1000)
    assert fetch_wait_ms([100.3, 105.0], now=100.0) == 300  # the backoff of a partition ends first
    assert fetch_wait_ms([99.0], now=100.0) == 10  # overdue: look at once (the floor)
    assert fetch_wait_ms([130.0], now=100.0) == int(IDLE_WAIT_SECONDS * 1000)


def test_the_broker_may_hold_a_fetch_as_long_as_configured_and_a_request_outlasts_the_hold():
    consumer = SimpleNamespace(bootstrap_servers="b:9092", group_id="g", service="s", batch_size=10, session_timeout_ms=6_000)
    default = client_options(SimpleNamespace(**vars(consumer), fetch_max_wait_ms=500))
    assert (default["fetch_max_wait_ms"], default["request_timeout_ms"]) == (500, 15_000)
    # A deployment on Apache Kafka holds fetches 5 s or more: a request must not time out first.
    held = client_options(SimpleNamespace(**vars(consumer), fetch_max_wait_ms=20_000))
    assert (held["fetch_max_wait_ms"], held["request_timeout_ms"]) == (20_000, 25_000)


async def test_the_server_ticks_once_a_second_and_stops_at_once():
    ticks: list[float] = []

    class Counting(Server):
        async def on_tick(self, counter: int) -> bool:
            ticks.append(time.monotonic())
            return await super().on_tick(counter)

    settings = SimpleNamespace(host="127.0.0.1", port=free_port())
    server = Counting(server_config(FastAPI(), settings, lifespan="off"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    await eventually(lambda: _true(server.started), timeout=30, what="the server started")
    ticks.clear()
    await asyncio.sleep(2.5)
    # uvicorn's own loop ticks every 100 ms: 25 here.
    assert 1 <= len(ticks) <= 4, ticks
    asked = time.monotonic()
    server.should_exit = True
    await asyncio.wait_for(task, 10)
    # Woken by the request, not found by the next tick (up to a second later).
    assert ticks[-1] - asked < 0.5


async def test_an_idle_consumer_wakes_about_once_a_second_and_applies_a_new_event(infra: Infra, monkeypatch):
    rounds: list[float] = []
    export = consumer_module.EventConsumer._export_lag

    def counted(self):  # noqa: ANN001, ANN202 - one call per round of the consumer's loop
        rounds.append(time.monotonic())
        return export(self)

    monkeypatch.setattr(consumer_module.EventConsumer, "_export_lag", counted)
    topic = unique("lifecycle")
    settings = service_settings(ProbeSettings, infra, topic=topic, database=unique("probe"), consumer_fetch_max_wait_ms=400)
    async with running(probe_app(settings, Switches()), settings) as probe:
        await eventually(lambda: _true(probe.runtime.consumer.joined), timeout=60, what="the consumer joined its group")
        # CONSUMER_FETCH_MAX_WAIT_MS reaches the Kafka client the service runs.
        assert probe.runtime.consumer._consumer._fetcher._fetch_max_wait_ms == 400
        await asyncio.sleep(0.5)
        rounds.clear()
        await asyncio.sleep(3)
        # The loop waited 200 ms a round before: 15 rounds here.
        assert len(rounds) <= 5, len(rounds)
        await publish(infra.bootstrap_servers, topic, progress("c-idle", 1))
        await eventually(lambda: _has(probe_rows(probe), 1), timeout=30, what="the new event applied")


async def _true(value: bool) -> bool:
    return bool(value)
