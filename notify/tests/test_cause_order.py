"""Notify is correct under any interleaving of producers (issue #22, item 1).

Kafka keeps each producer's order of a case, not the order between producers: after a
broker was lost, dispatch's relay refilled the topic before intake's, and notify read
``case.dispatched`` of cases it did not know yet — it planned no message to the citizen
(no channel known) and the message was lost for good. Now an event of a case whose
``case.received`` notify has not applied is held and applied when it comes.

Against a running notify (real PostgreSQL, the real broker for the story through Kafka; the
property tests apply records through the service's own consumer code paths): every
interleaving of intake's, dispatch's and SLA's events of a case that keeps each producer's
order must leave what the in-order stream leaves — recipients, messages, callbacks,
case_status — and nothing held.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from notify.app import create_app
from notify.models import callback_tasks as callbacks, messages, recipients
from notify.settings import NotifySettings
from notify.tests.helpers import UNIT, Case, local, message_states
from shared.consumer import EventConsumer
from shared.db import dead_letters, held_events
from shared.events import (
    CaseResolved, ClockKind, EventBase, ResolvedData, SlaWarning, SlaWarningData, make_event, system_actor,
)  # fmt: skip
from shared.interleaving import plumbing_of, apply, apply_drawn, every_interleaving, in_order, interleave
from shared.testing import Infra, eventually, publish, running, service_settings, unique

# A pinned moment: event times are relative to it, never to today.
T0 = local(2026, 9, 30, 9, 0)


@pytest.fixture(scope="module")
async def notify(infra: Infra):
    settings = service_settings(NotifySettings, infra, topic=unique("lifecycle"), database=unique("notify"))
    async with running(create_app(settings), settings) as service:
        # What is compared is what the handlers wrote, not what the sender did with it since.
        await service.runtime.context.sender.stop()
        yield service


def producers(case: Case) -> dict[str, list[EventBase]]:
    """A case's events, per producer in that producer's own order (times pinned to T0)."""

    def at(event: EventBase, minutes: int) -> EventBase:
        return event.model_copy(update={"occurred_at": T0 + timedelta(minutes=minutes)})

    resolved = make_event(
        CaseResolved, case_id=case.id, producer="dispatch",
        actor=system_actor("dispatch"), occurred_at=T0 + timedelta(hours=3),
        payload=ResolvedData(order_no=f"JB-{case.id[-6:]}-0", unit=UNIT, answer="路灯已修复"),
    )  # fmt: skip
    warning = make_event(
        SlaWarning, case_id=case.id, producer="sla", actor=system_actor("sla"), occurred_at=T0 + timedelta(hours=2),
        payload=SlaWarningData(clock_id=f"{case.id}-sign", clock=ClockKind.sign, unit=UNIT, due_at=T0 + timedelta(hours=4),
                               threshold="yellow"),
    )  # fmt: skip
    return {
        "intake": [at(case.received(), 0), at(case.accepted(), 1)],
        "dispatch": [at(case.dispatched(), 30), resolved, case.closed(T0 + timedelta(hours=5))],
        "sla": [warning],
    }


async def end_state(notify, case: Case) -> dict:
    """What notify holds of the case, with the case's own ids written as placeholders."""
    async with notify.runtime.uow() as uow:
        s = uow.session
        sent = (await s.execute(
            select(messages.c.event_type, messages.c.kind, messages.c.channel, messages.c.recipient, messages.c.urgent)
            .where(messages.c.case_id == case.id)
        )).all()  # fmt: skip
        recipient = (await s.execute(select(recipients).where(recipients.c.case_id == case.id))).mappings().first()
        tasks = (await s.execute(
            select(callbacks.c.round, callbacks.c.township, callbacks.c.tracking_no, callbacks.c.due_at)
            .where(callbacks.c.case_id == case.id)
        )).all()  # fmt: skip
        plumbing = await plumbing_of(s, case.id)
    row = {k: v for k, v in (recipient or {}).items() if k not in ("updated_at", "phone_enc", "citizen_ref")}
    state = {
        "messages": sorted(map(list, sent)), "recipient": row, "callbacks": sorted(map(list, tasks)),
        **plumbing,
    }
    text = json.dumps(state, default=str).replace(case.tracking_no, "<tracking>").replace(case.id, "<case>")
    if recipient is not None and recipient["citizen_ref"]:
        text = text.replace(recipient["citizen_ref"], "<citizen>")
    return json.loads(text)


async def reference(notify, consumer: EventConsumer) -> dict:
    case = Case()
    await apply(consumer, [[event] for event in in_order(producers(case))], isolate=False)
    return await end_state(notify, case)


async def test_every_producer_respecting_order_leaves_the_in_order_state(notify) -> None:
    """All 60 interleavings of 2 + 3 + 1 events, each event its own fetch; alternately through
    the batch handler and event by event (the replayed batch's path)."""
    consumer = notify.runtime.consumer.like()
    expected = await reference(notify, consumer)
    # The in-order state is the full one: the citizen hears of the order on every channel.
    assert {(m[0], m[2]) for m in expected["messages"]} >= {("case.dispatched", "sms"), ("case.dispatched", "inbox")}
    assert expected["held"] == 0 and len(expected["callbacks"]) == 1
    orders = every_interleaving(producers(Case()))
    assert len(orders) == 60
    for n, labels in enumerate(orders):
        case = Case()
        await apply(consumer, [[event] for event in interleave(producers(case), labels)], isolate=n % 2 == 1)
        assert await end_state(notify, case) == expected, labels


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_any_interleaving_in_any_batches_leaves_the_in_order_state(notify, data) -> None:
    """Random interleavings cut into random fetches, several events per batch (the batch
    handler sees an effect and its cause in one batch, or the effect a batch earlier); a
    redelivered batch changes nothing."""
    consumer = notify.runtime.consumer.like()
    expected = await reference(notify, consumer)
    case = Case()
    streams = producers(case)
    await apply_drawn(consumer, streams, data.draw)
    assert await end_state(notify, case) == expected


async def test_an_order_read_before_the_appeal_reaches_the_citizen_once_the_appeal_arrives(notify, infra) -> None:
    """The lost-broker story through Kafka: dispatch's relay refilled the topic first."""
    case = Case()
    streams = producers(case)
    await publish(infra.bootstrap_servers, notify.settings.kafka_topic, streams["dispatch"][0])

    async def held() -> int:
        async with notify.runtime.uow() as uow:
            return (await uow.session.execute(
                select(func.count()).select_from(held_events).where(held_events.c.case_id == case.id)
            )).scalar()  # fmt: skip

    async def read() -> bool:  # the order reached notify: held (or, before the fix, applied at once)
        return await held() > 0 or bool(await message_states(notify, case))

    await eventually(read, what="case.dispatched read")
    await publish(infra.bootstrap_servers, notify.settings.kafka_topic, *streams["intake"])

    async def to_citizen() -> list[tuple[str, str]]:
        states = await message_states(notify, case)
        return sorted((m["channel"], m["recipient"]) for m in states if m["event_type"] == "case.dispatched"
                      and m["recipient"].startswith("citizen:"))  # fmt: skip

    citizen = await eventually(to_citizen, what="the citizen's message about the order")
    assert [channel for channel, _ in citizen] == ["inbox", "sms"]
    assert await held() == 0
    async with notify.runtime.uow() as uow:
        parked = (await uow.session.execute(select(func.count()).select_from(dead_letters))).scalar()
    assert parked == 0


async def test_an_event_whose_cause_never_comes_is_dead_lettered(notify) -> None:
    """Bounded: held past ``hold_seconds`` it goes to dead_letters, where ops sees it."""
    consumer = notify.runtime.consumer.like()
    consumer.hold_seconds = 0
    consumer.hold_check_seconds = 0
    case = Case()
    orphan = producers(case)["dispatch"][0]
    await apply(consumer, [[orphan]], isolate=False)
    async with notify.runtime.uow() as uow:
        assert (await uow.session.execute(select(held_events.c.event_id).where(held_events.c.case_id == case.id))).scalars().all() == [orphan.id]
    await consumer._maybe_expire_held()
    async with notify.runtime.uow() as uow:
        letters = (await uow.session.execute(
            select(dead_letters.c.event_id, dead_letters.c.error).where(dead_letters.c.event_id == str(orphan.id))
        )).all()  # fmt: skip
        left = (await uow.session.execute(select(func.count()).select_from(held_events).where(held_events.c.case_id == case.id))).scalar()
    assert len(letters) == 1 and "CauseNotYetKnown" in letters[0].error
    assert left == 0


def test_every_interleaving_keeps_each_producers_order() -> None:
    case = Case()
    streams = producers(case)
    for labels in every_interleaving(streams):
        events = interleave(streams, labels)
        for own in streams.values():
            assert [e for e in events if e in own] == own
