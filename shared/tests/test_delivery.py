"""Delivery guarantees with real PostgreSQL, a real broker and real HTTP.

Effectively once over at-least-once: duplicates dropped by the inbox, nothing lost on a
crash or a broker restart, poison events parked, per-case order kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import func, select, text, update

from dispatch.app import create_app as create_dispatch
from dispatch.settings import DispatchSettings
from intake.app import create_app as create_intake
from intake.models import timeline
from intake.settings import IntakeSettings
from shared.bus import dlq_topic
from shared.cloudevents import header, to_message
from shared.db import case_status, dead_letters, outbox, processed_events
from shared.events import ProgressReported, ProgressReportedData, make_event, system_actor
from shared.testing import AUDITOR, Infra, ServiceProcess, eventually, free_port, running, service_env, service_settings, unique
from shared.tests.probe import ProbeSettings, probe_log
from shared.tests.probe import create_app as create_probe

APPEAL = {
    "title": "村口路灯不亮",
    "description": "城关镇某村村口的路灯坏了三天，晚上很黑。",
    "channel": "app",
    "contact": {"name": "韦先生", "phone": "13812348000"},
}


def progress(case_id: str, seq: int, note: str = "ok") -> ProgressReported:
    return make_event(
        ProgressReported,
        case_id=case_id,
        producer="test",
        actor=system_actor("test"),
        payload=ProgressReportedData(order_no="JB-1", unit="zjj", note=note, percent=seq),
    )


async def produce(infra: Infra, topic: str, events) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap_servers, acks="all")
    await producer.start()
    try:
        futures = []
        for event in events:
            message = to_message(event)
            futures.append(await producer.send(topic, message.value, key=message.key, headers=message.headers))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


@contextlib.asynccontextmanager
async def intake_and_dispatch(infra: Infra):
    """Intake and dispatch on one fresh topic, each with its own new database."""
    topic = unique("lifecycle")
    # One citizen files many appeals here: the abuse limit is not what these tests are about.
    intake_settings = service_settings(
        IntakeSettings, infra, topic=topic, database=unique("intake"), citizen_rate_limit="0/1", org_topic=unique("org")
    )
    dispatch_settings = service_settings(DispatchSettings, infra, topic=topic, database=unique("dispatch"))
    async with running(create_intake(intake_settings), intake_settings) as intake, running(
        create_dispatch(dispatch_settings), dispatch_settings
    ) as dispatch:
        yield intake, dispatch


async def scalar(service, query):
    async with service.runtime.engine.connect() as conn:
        return (await conn.execute(query)).scalar()


async def test_event_takes_effect_exactly_once_even_when_delivered_twice(infra: Infra):
    async with intake_and_dispatch(infra) as (intake, dispatch):
        created = await intake.client.post("/api/v1/appeals", json=APPEAL)
        assert created.status_code == 201, created.text
        case_id = created.json()["case_id"]

        async def dispatch_view():
            response = await dispatch.client.get(f"/api/v1/cases/{case_id}/status", headers=AUDITOR)
            return response.json() if response.status_code == 200 and response.json()["events_applied"] == 2 else None

        view = await eventually(dispatch_view, what="dispatch to see received + accepted")
        assert view["status"] == "accepted"

        # Deliver everything a second time: the relay republishes the retained rows.
        async with intake.runtime.engine.begin() as conn:
            await conn.execute(update(outbox).values(sent_at=None))
        await intake.runtime.relay.flush()

        consumer = dispatch.runtime.consumer
        await eventually(
            lambda: asyncio.sleep(0, sum(consumer.committed_offsets().values()) == 4),
            what="dispatch to consume the duplicates",
        )
        again = (await dispatch.client.get(f"/api/v1/cases/{case_id}/status", headers=AUDITOR)).json()
        assert again["events_applied"] == 2
        assert await scalar(dispatch, select(func.count()).select_from(processed_events)) == 2

        # Intake's own projection of the topic is deduplicated the same way.
        await eventually(
            lambda: asyncio.sleep(0, sum(intake.runtime.consumer.committed_offsets().values()) == 4),
            what="intake to consume the duplicates",
        )
        shown = (await intake.client.get(f"/api/v1/appeals/{case_id}", headers=AUDITOR)).json()
        assert [entry["type"] for entry in shown["timeline"]] == ["case.received", "case.accepted"]


@pytest.mark.slow
async def test_consumer_killed_mid_batch_loses_nothing_and_applies_nothing_twice(infra: Infra, tmp_path):
    topic = unique("lifecycle")
    database = unique("dispatch")
    port = free_port()
    env = service_env(infra, "DISPATCH_", topic=topic, database=database, port=port, DISPATCH_CONSUMER_BATCH_SIZE="100")
    cases = [f"case-{i}" for i in range(300)]
    per_case = 20
    await produce(infra, topic, (progress(case, seq) for seq in range(per_case) for case in cases))
    total = len(cases) * per_case

    import asyncpg

    dsn = infra.database_url(database)
    dispatch = ServiceProcess("dispatch", env, port, tmp_path / "dispatch.log")
    dispatch.start()
    try:
        await dispatch.wait_ready()

        async def applied() -> int:
            conn = await asyncpg.connect(dsn)
            try:
                return int(await conn.fetchval("SELECT coalesce(sum(events_applied), 0) FROM case_status"))
            finally:
                await conn.close()

        seen = await eventually(applied, interval=0.01, what="the consumer to start applying")
        dispatch.kill()
        at_kill = await applied()
        assert 0 < at_kill < total, f"the kill should land mid-flow (applied {at_kill} of {total})"

        dispatch.start()
        await dispatch.wait_ready()
        await eventually(lambda: _equals(applied, total), timeout=120, what=f"all {total} events applied")
        conn = await asyncpg.connect(dsn)
        try:
            counts = await conn.fetch("SELECT events_applied FROM case_status")
            inbox = await conn.fetchval("SELECT count(*) FROM processed_events")
        finally:
            await conn.close()
        assert len(counts) == len(cases)
        assert {row["events_applied"] for row in counts} == {per_case}, "some event was applied twice or lost"
        assert inbox == total
        assert seen > 0
    finally:
        dispatch.kill()


async def _equals(fn, expected) -> bool:
    return await fn() == expected


async def test_poison_event_is_parked_with_its_error_and_later_events_flow(infra: Infra):
    topic = unique("lifecycle")
    settings = service_settings(ProbeSettings, infra, topic=topic, database=unique("probe"), consumer_max_attempts=3)
    async with running(create_probe(settings), settings) as probe:
        case_id = f"case-{uuid.uuid4().hex[:6]}"
        good_before, poison, good_after = progress(case_id, 1), progress(case_id, 2, "poison"), progress(case_id, 3)
        await produce(infra, topic, [good_before, poison, good_after])
        # A message that is not a valid event at all, with a type the probe handles.
        producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap_servers)
        await producer.start()
        await producer.send_and_wait(
            topic, b"{not json", key=case_id.encode(),
            headers=[("ce_specversion", b"1.0"), ("ce_type", b"case.progress_reported"), ("ce_id", b"garbage-1")],
        )
        await producer.stop()
        await produce(infra, topic, [progress(case_id, 4)])

        async def handled():
            async with probe.runtime.engine.connect() as conn:
                return [r.seq for r in (await conn.execute(select(probe_log.c.seq).order_by(probe_log.c.id))).all()]

        assert await eventually(lambda: _when(handled, lambda seqs: len(seqs) == 3)) == [1, 3, 4]
        async with probe.runtime.engine.connect() as conn:
            parked = (await conn.execute(select(dead_letters).order_by(dead_letters.c.id))).all()
        assert [(p.event_id, p.attempts) for p in parked] == [(str(poison.id), 3), ("garbage-1", 1)]
        assert "poisoned on purpose" in parked[0].error
        assert "schema" in parked[1].error

        # The DLQ topic holds the same two, with the error in the headers.
        consumer = AIOKafkaConsumer(
            dlq_topic(topic, "probe"), bootstrap_servers=infra.bootstrap_servers, auto_offset_reset="earliest"
        )
        await consumer.start()
        messages = []
        try:
            # One fetch may bring only the first record when the machine is busy: read until both are in.
            deadline = asyncio.get_running_loop().time() + 30
            while len(messages) < 2 and asyncio.get_running_loop().time() < deadline:
                batch = await consumer.getmany(timeout_ms=1000)
                messages += [m for ms in batch.values() for m in ms]
        finally:
            await consumer.stop()
        assert [header(m.headers, "ce_id") for m in messages] == [str(poison.id), "garbage-1"]
        assert "poisoned on purpose" in header(messages[0].headers, "dlq_error")


async def test_a_fetch_over_many_partitions_with_a_poison_event_keeps_the_others_and_parks_it(infra: Infra):
    """Events already waiting on every partition come in one fetch, applied in one
    transaction; one case's poison event makes that fail, and then each partition is
    applied on its own: every good event once, the poison and an unreadable record parked
    once, nothing of the poisoned case after it lost."""
    topic = unique("lifecycle")
    cases = [f"case-{uuid.uuid4().hex[:6]}" for _ in range(8)]
    poisoned = cases[0]
    events = [progress(case, seq) for seq in (1, 2, 3) for case in cases]
    poison = progress(poisoned, 4, "poison")
    await produce(infra, topic, [*events, poison, progress(poisoned, 5)])
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap_servers)
    await producer.start()
    await producer.send_and_wait(
        topic, b"{not json", key=cases[1].encode(),
        headers=[("ce_specversion", b"1.0"), ("ce_type", b"case.progress_reported"), ("ce_id", b"garbage-2")],
    )  # fmt: skip
    await producer.stop()
    settings = service_settings(
        ProbeSettings, infra, topic=topic, database=unique("probe"), consumer_max_attempts=2
    )  # fmt: skip
    async with running(create_probe(settings), settings) as probe:

        async def handled():
            async with probe.runtime.engine.connect() as conn:
                return sorted((r.case_id, r.seq) for r in (await conn.execute(select(probe_log.c.case_id, probe_log.c.seq))).all())

        expected = sorted([(case, seq) for case in cases for seq in (1, 2, 3)] + [(poisoned, 5)])
        assert await eventually(lambda: _when(handled, lambda rows: len(rows) >= len(expected))) == expected
        async with probe.runtime.engine.connect() as conn:
            parked = sorted((r.event_id, r.attempts) for r in (await conn.execute(select(dead_letters))).all())
        assert parked == sorted([(str(poison.id), 2), ("garbage-2", 1)])


async def test_a_batch_with_a_poison_event_is_applied_again_event_by_event_through_the_same_handler(infra: Infra):
    """The good events go through the batch handler; a batch with a poison event fails as a
    whole and is applied again event by event (the same handler, batches of one): the poison
    parked, the rest applied once."""
    topic = unique("lifecycle")
    settings = service_settings(ProbeSettings, infra, topic=topic, database=unique("probe"), consumer_max_attempts=2)
    async with running(create_probe(settings), settings) as probe:
        case_id = f"case-{uuid.uuid4().hex[:6]}"
        first = [progress(case_id, 1), progress(case_id, 2)]
        await produce(infra, topic, [*first, first[0]])  # the resend is dropped by the inbox

        async def handled():
            async with probe.runtime.engine.connect() as conn:
                return [(r.seq, r.handled_by) for r in (await conn.execute(select(probe_log.c.seq, probe_log.c.handled_by).order_by(probe_log.c.id))).all()]

        assert await eventually(lambda: _when(handled, lambda rows: len(rows) == 2)) == [(1, "a"), (2, "a")]
        poison = progress(case_id, 4, "poison")
        await produce(infra, topic, [progress(case_id, 3), poison, progress(case_id, 5)])
        rows = await eventually(lambda: _when(handled, lambda rows: len(rows) == 4))
        assert [seq for seq, _ in rows] == [1, 2, 3, 5]
        async with probe.runtime.engine.connect() as conn:
            parked = (await conn.execute(select(dead_letters.c.event_id, dead_letters.c.attempts))).all()
            inbox = (await conn.execute(select(func.count()).select_from(processed_events))).scalar()
        assert [(p.event_id, p.attempts) for p in parked] == [(str(poison.id), 2)]
        assert inbox == 4  # 1, 2, 3 and 5: a parked event is not in the inbox


async def _when(fn, predicate):
    value = await fn()
    return value if predicate(value) else None


async def test_per_case_order_is_kept_across_two_relay_and_consumer_instances(infra: Infra):
    topic = unique("lifecycle")
    database = unique("probe")
    first = service_settings(ProbeSettings, infra, topic=topic, database=database, instance="a")
    second = service_settings(ProbeSettings, infra, topic=topic, database=database, instance="b", consumer_group=first.consumer_group)
    cases = [f"case-{i}" for i in range(12)]
    per_case = 25
    async with running(create_probe(first), first) as a, running(create_probe(second), second) as b:
        instances = [a, b]

        async def write_case(case_id: str) -> None:
            # Each event in its own transaction, alternating between the two instances:
            # both relays see the rows; only the leader may publish them.
            for seq in range(per_case):
                async with instances[seq % 2].runtime.uow() as uow:
                    uow.emit(progress(case_id, seq))
                    await uow.commit()

        await asyncio.gather(*(write_case(c) for c in cases))

        async def rows():
            async with a.runtime.engine.connect() as conn:
                return (await conn.execute(select(probe_log.c.case_id, probe_log.c.seq, probe_log.c.handled_by).order_by(probe_log.c.id))).all()

        handled = await eventually(lambda: _when(rows, lambda r: len(r) >= len(cases) * per_case), timeout=60)
        assert len(handled) == len(cases) * per_case, "an event was handled twice"
        for case_id in cases:
            assert [r.seq for r in handled if r.case_id == case_id] == list(range(per_case)), f"{case_id} out of order"
        assert [a.runtime.relay.is_leader, b.runtime.relay.is_leader].count(True) == 1
        # Both members of the group took partitions.
        assert {r.handled_by for r in handled} == {"a", "b"}


@pytest.mark.slow
async def test_broker_restart_loses_nothing(infra: Infra):
    if infra.broker is None:
        pytest.skip("needs the embedded broker to restart it")
    async with intake_and_dispatch(infra) as (intake, dispatch):

        async def file(n: int) -> list[str]:
            ids = []
            for i in range(n):
                response = await intake.client.post("/api/v1/appeals", json={**APPEAL, "title": f"路灯 {i}"})
                assert response.status_code == 201, response.text
                ids.append(response.json()["case_id"])
            return ids

        async def dispatch_cases() -> dict[str, int]:
            async with dispatch.runtime.engine.connect() as conn:
                return dict((await conn.execute(select(case_status.c.case_id, case_status.c.events_applied))).all())

        before = await file(15)
        await eventually(lambda: _when(dispatch_cases, lambda seen: len(seen) == 15), what="the first cases")

        infra.broker.kill()  # in-memory broker: everything on it is gone
        during = await file(10)  # accepted while the broker is down: they wait in the outbox
        infra.broker.start()
        after = await file(10)

        expected = set(before + during + after)
        seen = await eventually(
            lambda: _when(dispatch_cases, lambda s: set(s) == expected and set(s.values()) == {2}),
            timeout=90,
            what="every case to reach dispatch exactly once in effect",
        )
        assert len(seen) == 35

        async def timelines_complete():
            async with intake.runtime.engine.connect() as conn:
                counts = (await conn.execute(select(timeline.c.case_id, func.count()).group_by(timeline.c.case_id))).all()
            return len(counts) == 35 and {c for _, c in counts} == {2}

        await eventually(timelines_complete, timeout=60, what="intake's timelines to be complete")
        async with intake.runtime.engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))).scalar() == 0
