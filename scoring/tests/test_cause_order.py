"""Scoring is correct under any interleaving of producers (issue #22, item 1).

Kafka keeps each producer's order of a case, not the order between producers: after a
broker loss the relays refill the topic in any order, so SLA's red card (红牌) on an
order's sign clock can be read before dispatch's ``case.dispatched`` of that order. The
card's "late" mark was an update of the order's row: read first, it matched no row and the
order counted as signed on time for good. Waiting is wrong there (a card on the accept
clock has no order and may never get one), so the order's dispatch derives the mark again
from the red cards already kept (``scoring.handlers`` ``ORDER_DISPATCHED``).

Against a running scoring service (real PostgreSQL; the records go through the service's
own consumer code paths, the batch handler and event by event): every interleaving of
intake's, dispatch's, notify's and SLA's events of a case that keeps each producer's order
must leave the facts that the in-order stream leaves, and nothing held.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from scoring.models import calls, case_facts, case_ratings, sla_cards, unit_orders
from scoring.tests.factory import Case
from shared.consumer import EventConsumer
from shared.interleaving import plumbing_of, apply, apply_drawn, every_interleaving, in_order, interleave, Streams

# A pinned moment: event times are relative to it, never to today.
T0 = datetime(2026, 11, 16, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
M = timedelta(minutes=1)
UNIT = "U-ROADS"


def streams_of(case: Case) -> Streams:
    """A case's events, per producer in that producer's own order (every event of ``case``)."""
    by: Streams = {}
    for event in case.events:
        by.setdefault(event.producer, []).append(event)
    return by


def first_round(case_id: str | None = None) -> Streams:
    """Filed, dispatched, signed after its sign clock's red card, answered, closed, rated."""
    case = Case(township="TS-1", case_id=case_id)
    case.received(T0).accepted(T0 + 5 * M)
    order = case.dispatched(UNIT, T0 + 30 * M)
    case.breached(UNIT, "sign", due=T0 + 150 * M)  # signed an hour after it was due
    case.signed(order, UNIT, T0 + 210 * M).resolved(order, UNIT, T0 + 300 * M).closed(T0 + 330 * M)
    case.rated("不满意", T0 + 400 * M)
    return streams_of(case)


def with_redo(case_id: str | None = None) -> Streams:
    """The whole story: triaged, then after the unsatisfied rating 重办 — reopened, the unit
    given the order again, which misses its sign clock too."""
    case = Case(township="TS-1", case_id=case_id)
    case.filed(T0)
    first = case.dispatched(UNIT, T0 + 30 * M)
    case.breached(UNIT, "sign", due=T0 + 150 * M)
    case.signed(first, UNIT, T0 + 210 * M).resolved(first, UNIT, T0 + 300 * M, solved=False).closed(T0 + 330 * M)
    case.rated("不满意", T0 + 400 * M)
    case.reopened(UNIT, 1, T0 + 420 * M)
    second = case.dispatched(UNIT, T0 + 421 * M, redo_round=1)
    case.breached(UNIT, "sign", due=T0 + 541 * M)
    case.signed(second, UNIT, T0 + 600 * M).resolved(second, UNIT, T0 + 700 * M).closed(T0 + 720 * M)
    return streams_of(case)


async def end_state(scoring, case_id: str) -> dict:
    """What scoring holds of the case, its ids written as placeholders."""
    async with scoring.runtime.uow() as uow:
        s = uow.session
        facts = (await s.execute(select(case_facts).where(case_facts.c.case_id == case_id))).mappings().first()
        orders = (await s.execute(select(unit_orders).where(unit_orders.c.case_id == case_id))).mappings().all()
        cards = (await s.execute(
            select(sla_cards.c.unit, sla_cards.c.clock, sla_cards.c.level, sla_cards.c.due_at).where(sla_cards.c.case_id == case_id)
        )).all()  # fmt: skip
        ratings = (await s.execute(select(case_ratings).where(case_ratings.c.case_id == case_id))).mappings().all()
        called = (await s.execute(select(calls).where(calls.c.case_id == case_id))).mappings().all()
        plumbing = await plumbing_of(s, case_id)
    state = {
        "facts": dict(facts) if facts else None, "orders": sorted((dict(o) for o in orders), key=lambda o: o["order_no"]),
        "cards": sorted(map(list, cards)), "ratings": sorted((dict(r) for r in ratings), key=lambda r: r["round"]),
        "calls": [dict(c) for c in called], **plumbing,
    }  # fmt: skip
    text = json.dumps(state, default=str).replace(case_id, "<case>").replace(f"XC-{case_id[-8:]}", "<tracking>")
    return json.loads(text)


async def reference(scoring, consumer: EventConsumer, story) -> dict:
    streams = story()
    case_id = streams["intake"][0].case_id
    await apply(consumer, [[event] for event in in_order(streams)], isolate=False)
    return await end_state(scoring, case_id)


async def test_every_producer_respecting_order_leaves_the_in_order_state(scoring) -> None:
    """All 840 interleavings of 2 + 4 + 1 + 1 events, each event its own fetch; alternately
    through the batch handler and event by event (the replayed batch's path)."""
    consumer = scoring.runtime.consumer.like()
    expected = await reference(scoring, consumer, first_round)
    # The in-order state is the full one: the order signed late, the case rated.
    [order] = expected["orders"]
    assert order["sign_late"] is True and order["resolve_late"] is False and order["signed_at"] is not None
    assert [r["rating"] for r in expected["ratings"]] == ["不满意"] and expected["held"] == 0
    orders = every_interleaving(first_round())
    assert len(orders) == 840
    for n, labels in enumerate(orders):
        streams = first_round()
        await apply(consumer, [[event] for event in interleave(streams, labels)], isolate=n % 2 == 1)
        assert await end_state(scoring, streams["intake"][0].case_id) == expected, labels


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_any_interleaving_of_a_redo_in_any_batches_leaves_the_in_order_state(scoring, data) -> None:
    """The story with 重办, in random interleavings cut into random fetches (a card and the
    order it marks in one batch, or the card a batch earlier); a redelivered batch changes nothing."""
    consumer = scoring.runtime.consumer.like()
    expected = await reference(scoring, consumer, with_redo)
    assert [(o["redo_round"], o["sign_late"]) for o in expected["orders"]] == [(0, True), (1, True)]
    streams = with_redo()
    await apply_drawn(consumer, streams, data.draw)
    assert await end_state(scoring, streams["intake"][0].case_id) == expected
