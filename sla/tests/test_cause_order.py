"""SLA is correct under any interleaving of producers (issue #22, item 1).

Kafka keeps each producer's order of a case, not the order between producers. Read before
intake's ``case.received``, dispatch's ``case.dispatched`` started the order's clocks on a
case SLA did not know (no category, hence the wrong policy), and intake's ``case.triaged``
read after it started a dispatch clock that nothing would stop again (a false 派单超时);
notify's ``case.callback_completed`` read before dispatch's ``case.closed`` stopped no
callback clock, and the one ``case.closed`` then started ran on for ever.

Against a running SLA (real PostgreSQL; the records go through the service's own consumer
code paths, the batch handler and event by event): every interleaving of intake's,
dispatch's and notify's events of a case that keeps each producer's order must leave the
clocks, the case row and ``case_status`` that the in-order stream leaves, and nothing held.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from shared.consumer import EventConsumer
from shared.events import FiveMatters
from shared.interleaving import plumbing_of, apply, apply_drawn, every_interleaving, in_order, interleave, Streams
from shared.testing import Infra, running, unique
from sla.app import create_app
from sla.models import clocks, sla_cases
from sla.tests.conftest import sla_settings
from sla.tests.events import accepted, bj, callback_completed, closed, dispatched, received, resolved, triaged

# A pinned moment: event times are relative to it, never to today.
T0 = bj(2026, 9, 30, 9, 0)


@pytest.fixture(scope="module")
async def sla(infra: Infra):
    # No ticker: what is compared is what the handlers wrote, not warnings fired since.
    settings = sla_settings(infra, topic=unique("lifecycle"), database=unique("sla"), ticker_enabled=False)
    async with running(create_app(settings), settings) as service:
        yield service


def producers(case_id: str) -> Streams:
    """A case's events, per producer in that producer's own order (times pinned to T0)."""
    m = timedelta(minutes=1)
    return {
        "intake": [received(case_id, T0), accepted(case_id, T0 + m),
                   triaged(case_id, T0 + 2 * m, category=FiveMatters.annoyance)],
        "dispatch": [dispatched(case_id, T0 + 30 * m), resolved(case_id, T0 + 180 * m), closed(case_id, T0 + 300 * m)],
        "notify": [callback_completed(case_id, T0 + 360 * m, reached=True, attempt=1)],
    }  # fmt: skip


async def end_state(sla, case_id: str) -> dict:
    """What SLA holds of the case, the case id written as a placeholder."""
    async with sla.runtime.uow() as uow:
        s = uow.session
        rows = (await s.execute(
            select(clocks.c.clock_id, clocks.c.kind, clocks.c.name, clocks.c.unit, clocks.c.round, clocks.c.role,
                   clocks.c.policy_id, clocks.c.policy_version, clocks.c.started_at, clocks.c.due_at,
                   clocks.c.stopped_at, clocks.c.state, clocks.c.paused_total)
            .where(clocks.c.case_id == case_id)
        )).all()  # fmt: skip
        case = (await s.execute(select(sla_cases).where(sla_cases.c.case_id == case_id))).mappings().first()
        plumbing = await plumbing_of(s, case_id)
    state = {
        "clocks": sorted(map(list, rows)), "case": dict(case) if case else None,
        **plumbing,
    }
    return json.loads(json.dumps(state, default=str).replace(case_id, "<case>"))


async def reference(sla, consumer: EventConsumer) -> dict:
    case_id = unique("case")
    await apply(consumer, [[event] for event in in_order(producers(case_id))], isolate=False)
    return await end_state(sla, case_id)


async def test_every_producer_respecting_order_leaves_the_in_order_state(sla) -> None:
    """All 140 interleavings of 3 + 3 + 1 events, each event its own fetch; alternately through
    the batch handler and event by event (the replayed batch's path)."""
    consumer = sla.runtime.consumer.like()
    expected = await reference(sla, consumer)
    # The in-order state is the full one: every clock stopped, the callback's by notify.
    by_name = {c[2]: c[11] for c in expected["clocks"]}
    assert by_name == {"accept": "stopped", "dispatch": "stopped", "sign": "stopped", "resolve": "stopped",
                       "return_window": "stopped", "first_contact": "stopped", "verify": "stopped",
                       "callback": "stopped"}, by_name  # fmt: skip
    assert expected["case"]["closed"] is True and expected["held"] == 0
    orders = every_interleaving(producers("x"))
    assert len(orders) == 140
    for n, labels in enumerate(orders):
        case_id = unique("case")
        await apply(consumer, [[event] for event in interleave(producers(case_id), labels)], isolate=n % 2 == 1)
        assert await end_state(sla, case_id) == expected, labels


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_any_interleaving_in_any_batches_leaves_the_in_order_state(sla, data) -> None:
    """Random interleavings cut into random fetches (an effect and its cause in one batch, or
    the effect a batch earlier); a redelivered batch changes nothing."""
    consumer = sla.runtime.consumer.like()
    expected = await reference(sla, consumer)
    case_id = unique("case")
    streams = producers(case_id)
    await apply_drawn(consumer, streams, data.draw)
    assert await end_state(sla, case_id) == expected
