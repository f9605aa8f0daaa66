"""The ticker sleeps until the next threshold, not on a short poll: with its longest sleep
set to a minute, a clock that falls due a few seconds after it is started fires at its
time — started in the same replica (woken after the handler's commit) or in another one
that runs no ticker (woken by PostgreSQL NOTIFY)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from shared.testing import Infra, eventually, publish, running, unique
from sla.app import create_app
from sla.models import clocks, signals
from sla.tests.conftest import sla_settings
from sla.tests.events import dispatched, filed

LONGEST_SLEEP = 60  # far longer than the test: only a wake-up fires the clock in time
LEAD_SECONDS = 4.0  # the sign clock (1 hour) falls due this long after the events are published
ON_TIME_SECONDS = 1.5


async def fires_on_time(infra: Infra, topic: str, ticking) -> None:
    """Start a sign clock due ``LEAD_SECONDS`` from now through ``topic``; it must fire (a row
    in ``signals`` of ``ticking``'s database) within ``ON_TIME_SECONDS`` of its next threshold."""
    case = unique("case")
    due = datetime.now(UTC) + timedelta(seconds=LEAD_SECONDS)
    start = due - timedelta(hours=1)
    await publish(infra.bootstrap_servers, topic, *filed(case, start), dispatched(case, start))

    async def next_threshold():
        async with ticking.runtime.engine.connect() as conn:
            return (await conn.execute(select(func.min(clocks.c.next_signal_at)).where(clocks.c.case_id == case))).scalar()

    threshold = await eventually(next_threshold, timeout=LEAD_SECONDS, what="the case's clocks started")
    assert threshold > datetime.now(UTC), "the clock was due before it was started: nothing to wait for"

    async def fired_at():
        async with ticking.runtime.engine.connect() as conn:
            return (await conn.execute(select(func.min(signals.c.fired_at)).where(signals.c.case_id == case))).scalar()

    first = await eventually(fired_at, timeout=LEAD_SECONDS + 10, what="a threshold fired")
    assert (first - threshold).total_seconds() < ON_TIME_SECONDS, f"fired {first - threshold} after its time"


async def test_a_clock_due_in_seconds_fires_at_its_time_with_a_minute_of_sleep(infra: Infra):
    settings = sla_settings(infra, topic=unique("lifecycle"), database=unique("sla"), time_travel=False,
                            tick_max_sleep_seconds=LONGEST_SLEEP)  # fmt: skip
    async with running(create_app(settings), settings) as sla:
        await asyncio.sleep(1)  # the first round (no clocks) is over: the ticker sleeps for a minute now
        await fires_on_time(infra, settings.kafka_topic, sla)


async def test_a_clock_started_in_another_replica_wakes_the_ticker(infra: Infra):
    database = unique("sla")
    ticking = sla_settings(infra, topic=unique("lifecycle"), database=database, time_travel=False,
                           tick_max_sleep_seconds=LONGEST_SLEEP)  # fmt: skip
    # The other replica shares the database but runs no ticker; its consumer reads a topic of its own.
    other = sla_settings(infra, topic=unique("lifecycle"), database=database, time_travel=False, ticker_enabled=False)
    async with running(create_app(ticking), ticking) as one, running(create_app(other), other):
        await asyncio.sleep(1)
        await fires_on_time(infra, other.kafka_topic, one)
