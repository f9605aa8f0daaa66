"""Dispatch is correct under any interleaving of producers (issue #22, item 1).

Kafka keeps each producer's order of a case, not the order between producers: after a
broker loss the relays refill the topic in any order, so dispatch may read notify's
``case.rated`` before its own ``case.closed`` comes back, or SLA's cards in between. Dispatch
declares no cause to wait for (docs/rules.md, "An effect waits for its cause"): what it acts
on from other producers is intake's facts (one producer, kept in order) and the citizen's
rating, whose cause — the closure — dispatch wrote in its own database before it published
``case.closed``, so the rating can never be read before it. This test keeps it so.

Against a running dispatch (real PostgreSQL; the case filed through the service's own
consumer code paths and worked and closed over real HTTP): every interleaving of the events
dispatch still has to read then — its own, SLA's, notify's unsatisfied rating — that keeps
each producer's order must leave what the in-order stream leaves: the redo (重办) order, the
events it emitted, the case row, ``case_status``, and nothing held.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from dispatch.models import cases, orders
from dispatch.tests.helpers import CHENGGUAN, CLERK, STREETLAMP, act, intake_events, orders_of
from shared.cloudevents import from_message
from shared.consumer import EventConsumer
from shared.db import case_status, outbox
from shared.events import (
    CaseRated, ClockKind, EventBase, RatedData, Satisfaction, SlaBreached, SlaBreachedData, SlaWarning, SlaWarningData,
    make_event, system_actor,
)  # fmt: skip
from shared.interleaving import plumbing_of, apply, apply_drawn, every_interleaving, in_order, interleave, Streams

UNIT = "LB-XC-ZJJ"  # the catalogue's owner of a streetlamp in 城关镇


@pytest.fixture(scope="module")
async def quiet(dispatch):
    """The service with its live consumer stopped: the test's consumer alone applies the
    topic's events, so what is compared is what they did, not a race with the live one."""
    await dispatch.runtime.consumer.stop()
    return dispatch


async def own_events(dispatch, case_id: str) -> list[EventBase]:
    """What dispatch wrote for the case (its outbox), in the order it wrote them."""
    async with dispatch.runtime.uow() as uow:
        rows = (await uow.session.execute(
            select(outbox.c.headers, outbox.c.body).where(outbox.c.key == case_id).order_by(outbox.c.id)
        )).all()  # fmt: skip
    return [from_message(body, [(k, v.encode()) for k, v in headers]) for headers, body in rows]


async def closed_case(dispatch, consumer: EventConsumer) -> Streams:
    """A streetlamp filed (intake's events applied: the catalogue dispatches it), signed,
    answered, verified and closed over HTTP; then what dispatch still has to read of it."""
    filed = intake_events(STREETLAMP)
    case_id = filed[0].case_id
    await apply(consumer, [[event] for event in filed], isolate=False)
    [order] = await orders_of(dispatch, case_id)
    no = order["order_no"]
    assert (await act(dispatch, no, "sign", CLERK)).status_code == 200
    assert (await act(dispatch, no, "resolve", CLERK, {"answer": "路灯已修复"})).status_code == 200
    verified = await dispatch.client.post(f"/api/v1/cases/{case_id}/verify", headers=CHENGGUAN, json={"passed": True})
    assert verified.status_code == 200, verified.text
    own = await own_events(dispatch, case_id)
    assert [e.type for e in own] == ["case.dispatched", "case.signed", "case.resolved", "case.verified", "case.closed"]
    dispatched, signed, closed = own[0], own[1], own[-1]
    sla = system_actor("sla")
    sign = {"clock_id": f"{case_id}-sign", "clock": ClockKind.sign, "unit": UNIT, "due_at": signed.occurred_at}
    return {
        "dispatch": own,
        "sla": [
            make_event(SlaWarning, case_id=case_id, producer="sla", actor=sla,
                       occurred_at=dispatched.occurred_at + (signed.occurred_at - dispatched.occurred_at) / 3,
                       payload=SlaWarningData(**sign, threshold="yellow")),
            make_event(SlaBreached, case_id=case_id, producer="sla", actor=sla,
                       occurred_at=dispatched.occurred_at + (signed.occurred_at - dispatched.occurred_at) * 2 / 3,
                       payload=SlaBreachedData(**sign)),
        ],
        "notify": [make_event(CaseRated, case_id=case_id, producer="notify", actor=system_actor("notify"),
                              occurred_at=closed.occurred_at + timedelta(minutes=30),
                              payload=RatedData(rating=Satisfaction.unsatisfied, round=0, source="callback"))],
    }  # fmt: skip


async def end_state(dispatch, case_id: str) -> dict:
    """What dispatch holds of the case, without its ids and clock times."""
    async with dispatch.runtime.uow() as uow:
        s = uow.session
        case = (await s.execute(
            select(cases.c.stage, cases.c.redo_round, cases.c.triaged, cases.c.rejected, cases.c.township, cases.c.category)
            .where(cases.c.case_id == case_id)
        )).one()  # fmt: skip
        held = (await s.execute(
            select(orders.c.unit, orders.c.role, orders.c.state, orders.c.redo_round, orders.c.automatic, orders.c.instructions)
            .where(orders.c.case_id == case_id)
        )).all()  # fmt: skip
        plumbing = await plumbing_of(s, case_id, case_status.c.units)
    emitted = [(e.type, getattr(e.payload, "redo_round", None), getattr(e.payload, "unit", None))
               for e in await own_events(dispatch, case_id)]  # fmt: skip
    state = {
        "case": list(case), "orders": sorted(map(list, held)), "emitted": emitted, **plumbing,
    }
    return json.loads(json.dumps(state, default=str))


async def reference(dispatch, consumer: EventConsumer) -> dict:
    streams = await closed_case(dispatch, consumer)
    await apply(consumer, [[event] for event in in_order(streams)], isolate=False)
    return await end_state(dispatch, streams["notify"][0].case_id)


async def test_every_producer_respecting_order_leaves_the_in_order_state(quiet) -> None:
    """All 168 interleavings of dispatch's 5, SLA's 2 and notify's 1 events, each its own
    fetch; alternately through the batch handler and event by event."""
    consumer = quiet.runtime.consumer.like()
    expected = await reference(quiet, consumer)
    # The in-order state is the full one: the unsatisfied rating sent the case back (重办).
    assert expected["case"][:2] == ["dispatched", 1] and expected["held"] == 0
    assert sorted((o[3], o[2]) for o in expected["orders"]) == [(0, "closed"), (1, "dispatched")]
    assert [e[:2] for e in expected["emitted"][-2:]] == [["case.reopened", 1], ["case.dispatched", 1]]
    orders_seen = None
    for n in range(168):
        streams = await closed_case(quiet, consumer)
        orders_seen = orders_seen or every_interleaving(streams)
        await apply(consumer, [[event] for event in interleave(streams, orders_seen[n])], isolate=n % 2 == 1)
        assert await end_state(quiet, streams["notify"][0].case_id) == expected, orders_seen[n]
    assert len(orders_seen) == 168


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_any_interleaving_in_any_batches_leaves_the_in_order_state(quiet, data) -> None:
    """Random interleavings cut into random fetches; a redelivered batch changes nothing."""
    consumer = quiet.runtime.consumer.like()
    expected = await reference(quiet, consumer)
    streams = await closed_case(quiet, consumer)
    await apply_drawn(consumer, streams, data.draw)
    assert await end_state(quiet, streams["notify"][0].case_id) == expected
