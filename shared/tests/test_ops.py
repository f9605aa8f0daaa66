"""Operations with real PostgreSQL, a real broker and real HTTP: metrics that move, /ready
that drains a stuck replica, dead letters replayed once, projections rebuilt from the topic."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fastapi import APIRouter
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, insert, select

from intake.app import create_app as create_intake
from intake.models import timeline
from intake.settings import IntakeSettings
from shared import ops
from shared.settings import ServiceSettings
from shared.consumer import EventConsumer, handled_from, partition_lag, total_lag
from shared.db import UnitOfWork, create_engine, dead_letters
from shared.events import EventBase
from shared.relay import OutboxRelay
from shared.service import ServiceSpec, build_app, handler_of, topic_specs
from shared.testing import Infra, eventually, publish, running, service_settings, unique
from shared.tests.test_delivery import APPEAL, progress
from shared.tests.probe import ProbeSettings, probe_log

PROBE_MIGRATIONS = Path(__file__).parent / "probe" / "versions"




class Switches:
    """What the test's handler does: block until opened, fail until fixed."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.fixed = False


def probe_app(settings: ProbeSettings, switches: Switches):
    async def handle(uow: UnitOfWork, events: list[EventBase]) -> None:
        await switches.gate.wait()
        for event in events:
            if event.payload.note == "needs-fix" and not switches.fixed:  # type: ignore[attr-defined]
                raise RuntimeError("unit catalogue lacks zjj")
            await uow.session.execute(
                insert(probe_log).values(case_id=event.case_id, event_id=event.id, seq=event.payload.percent or 0, handled_by="t")  # type: ignore[attr-defined]
            )

    spec = ServiceSpec(
        name="probe", title="probe", description="test-only", settings_cls=ProbeSettings, router=APIRouter(),
        handles=frozenset({"case.progress_reported"}), batch_handler=lambda _context: handle, migrations=PROBE_MIGRATIONS,
    )
    return build_app(spec, settings)


async def scrape(service) -> dict[tuple[str, frozenset], float]:
    """/metrics as {(sample name, labels): value}, for this service and its topic only: the
    registry is the test process's, where earlier tests' probes left gauges of their topics."""
    text = (await service.client.get("/metrics")).text
    topic = service.settings.kafka_topic
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("service") == "probe" and sample.labels.get("topic", topic) == topic:
                out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def total(samples, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


async def probe_rows(service) -> list[int]:
    async with service.runtime.engine.connect() as conn:
        return [r.seq for r in (await conn.execute(select(probe_log.c.seq).order_by(probe_log.c.id))).all()]


async def test_lag_and_backlog_metrics_move_when_consumer_and_relay_stop_and_recover(infra: Infra):
    topic = unique("lifecycle")
    settings = service_settings(ProbeSettings, infra, topic=topic, database=unique("probe"))
    async with running(probe_app(settings, Switches()), settings) as probe:
        runtime = probe.runtime
        await publish(infra.bootstrap_servers, topic, progress("c-0", 0))
        await eventually(lambda: _has(probe_rows(probe), 1), what="the first event handled")
        samples = await scrape(probe)
        assert total(samples, "jiesu_consumer_lag_messages") == 0
        assert total(samples, "jiesu_consumer_handler_duration_seconds_count") >= 1
        assert total(samples, "jiesu_db_pool_size_connections") == 2 * settings.database_pool_size

        # The consumer stops: the lag is measured from the broker and grows with each event.
        old = runtime.consumer
        assert old is not None
        await old.stop()
        await publish(infra.bootstrap_servers, topic, *(progress(f"c-{i}", i) for i in range(1, 8)))
        samples = await eventually(
            lambda: _when(scrape(probe), lambda s: total(s, "jiesu_consumer_lag_messages") == 7), what="lag of 7"
        )
        assert max(v for (n, _), v in samples.items() if n == "jiesu_consumer_lag_seconds") > 0
        ready = await probe.client.get("/ready")
        assert ready.status_code == 503 and "consumer stopped" in ready.json()["reasons"]

        # The relay stops: rows wait in the outbox and the oldest one ages.
        await runtime.relay.stop()
        for i in range(3):
            async with runtime.uow() as uow:
                uow.emit(progress(f"own-{i}", 90 + i))
                await uow.commit()
        await asyncio.sleep(1.1)
        samples = await scrape(probe)
        assert total(samples, "jiesu_outbox_backlog_events") == 3
        assert total(samples, "jiesu_outbox_oldest_unsent_age_seconds") >= 1

        # Both come back: lag and backlog go to zero, everything is handled once. (The old
        # relay's advisory lock lives on its pooled connection until the pool lets it go.)
        await runtime.engine.dispose()
        runtime.relay = OutboxRelay(
            runtime.engine, service="probe", bootstrap_servers=settings.kafka_bootstrap_servers, topic=topic,
            topics=topic_specs(settings), poll_seconds=0.02, epoch_check_seconds=0.5,
        )
        runtime.relay.start()
        runtime.consumer = EventConsumer(
            service="probe", bootstrap_servers=old.bootstrap_servers, topic=topic, group_id=old.group_id,
            handles=old.handles, batch_handler=old.batch_handler, new_uow=runtime.uow, backoff_seconds=0.05, epoch_check_seconds=0.5,
        )
        await runtime.consumer.start()
        await eventually(lambda: _has(probe_rows(probe), 11), timeout=60, what="all 11 events handled")
        samples = await eventually(
            lambda: _when(
                scrape(probe),
                lambda s: total(s, "jiesu_consumer_lag_messages") == 0 and total(s, "jiesu_outbox_backlog_events") == 0,
            ),
            timeout=30, what="lag and backlog back to zero",
        )
        assert total(samples, "jiesu_outbox_oldest_unsent_age_seconds") == 0
        assert total(samples, "jiesu_outbox_published_events_total") >= 3
        assert sorted(await probe_rows(probe)) == [0, 1, 2, 3, 4, 5, 6, 7, 90, 91, 92]
        assert (await probe.client.get("/ready")).status_code == 200


async def test_ready_answers_503_with_the_reason_when_lag_passes_the_threshold(infra: Infra, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PROBE_READY_MAX_LAG", "5")
    topic = unique("lifecycle")
    settings = service_settings(ProbeSettings, infra, topic=topic, database=unique("probe"))
    switches = Switches()
    async with running(probe_app(settings, switches), settings) as probe:
        first = await probe.client.get("/ready")
        assert first.status_code == 200, first.text
        assert first.json()["checks"]["thresholds"]["ready_max_lag"] == 5
        switches.gate.clear()  # the handler hangs: a stuck replica
        await publish(infra.bootstrap_servers, topic, *(progress("c-1", i) for i in range(10)))

        async def not_ready():
            response = await probe.client.get("/ready")
            return response if response.status_code == 503 else None

        stuck = await eventually(not_ready, what="/ready to turn 503")
        body = stuck.json()
        assert body["status"] == "not ready"
        assert body["checks"]["consumer_lag_total"] == 10
        assert body["reasons"] == ["consumer lag 10 messages (more than 5)"]
        assert body["checks"]["outbox_backlog"] == 0 and body["checks"]["dead_letters_parked"] == 0
        switches.gate.set()
        await eventually(lambda: _has(probe_rows(probe), 10), what="the backlog handled")
        await eventually(lambda: _status(probe, 200), what="/ready back to 200")


async def test_ready_limits_lag_as_time_behind_so_a_few_stuck_events_drain_the_replica(infra: Infra, monkeypatch: pytest.MonkeyPatch):
    """Issue #22 item 6: by default the lag limit is seconds behind (record timestamps), not
    a count: three events stuck for longer than the limit turn /ready to 503."""
    monkeypatch.setenv("PROBE_READY_MAX_LAG_SECONDS", "1.5")
    topic = unique("lifecycle")
    settings = service_settings(ProbeSettings, infra, topic=topic, database=unique("probe"))
    switches = Switches()
    async with running(probe_app(settings, switches), settings) as probe:
        first = await probe.client.get("/ready")
        assert first.status_code == 200, first.text
        assert first.json()["checks"]["thresholds"]["ready_max_lag_seconds"] == 1.5
        switches.gate.clear()  # the handler hangs: a stuck replica
        await publish(infra.bootstrap_servers, topic, *(progress("c-1", i) for i in range(3)))

        async def not_ready():
            response = await probe.client.get("/ready")
            return response if response.status_code == 503 else None

        stuck = (await eventually(not_ready, what="/ready to turn 503")).json()
        assert stuck["checks"]["consumer_lag_seconds_max"] > 1.5
        assert stuck["checks"]["consumer_lag_total"] == 3  # the count stays reported
        assert len(stuck["reasons"]) == 1 and stuck["reasons"][0].startswith("consumer ")
        assert stuck["reasons"][0].endswith("s behind (more than 1.5s)")
        switches.gate.set()
        await eventually(lambda: _has(probe_rows(probe), 3), what="the stuck events handled")
        await eventually(lambda: _status(probe, 200), what="/ready back to 200")


def test_lag_reasons_name_time_behind_and_the_optional_count():
    limits = ops.Readiness(ready_max_lag=None, ready_max_outbox_age_seconds=600, ready_max_lag_seconds=60)
    assert ops.lag_reasons(limits, messages_known=4_202, seconds_behind=59) == []
    assert ops.lag_reasons(limits, messages_known=3, seconds_behind=61) == ["consumer 61s behind (more than 60s)"]
    counted = ops.Readiness(ready_max_lag=100, ready_max_outbox_age_seconds=600, ready_max_lag_seconds=60)
    assert ops.lag_reasons(counted, messages_known=101, seconds_behind=0) == ["consumer lag 101 messages (more than 100)"]


async def test_a_restarted_consumer_reports_lag_from_its_committed_offsets_never_the_whole_topic(infra: Infra):
    """A replica restarted with every offset committed is 0 behind (or does not know yet),
    not the whole topic; one restarted with 5 events unhandled is 5 behind, not 17."""
    topic, database = unique("lifecycle"), unique("probe")
    await publish(infra.bootstrap_servers, topic, *(progress(f"c-{i}", i) for i in range(12)))
    settings = service_settings(ProbeSettings, infra, topic=topic, database=database)
    async with running(probe_app(settings, Switches()), settings) as probe:
        await eventually(lambda: _has(probe_rows(probe), 12), what="the 12 events handled")
        await eventually(lambda: _lag_reads(probe, 0, 0), what="the 12 events committed")

    # Restarted: every answer from the first on is 0 or unknown, and it settles at a known 0.
    settings = service_settings(ProbeSettings, infra, topic=topic, database=database)
    async with running(probe_app(settings, Switches()), settings) as probe:
        answers = await _lag_answers(probe, settled=(0, 0))
        assert {ready for ready, _ in answers} <= {None, 0}, answers
        assert {metric for _, metric in answers} <= {None, 0}, answers
        assert len(await probe_rows(probe)) == 12  # nothing handled twice

    # Stopped; 5 more events; restarted with its handler held: 5 behind, never 17.
    await publish(infra.bootstrap_servers, topic, *(progress(f"d-{i}", 20 + i) for i in range(5)))
    settings = service_settings(ProbeSettings, infra, topic=topic, database=database)
    switches = Switches()
    switches.gate.clear()
    async with running(probe_app(settings, switches), settings) as probe:
        answers = await _lag_answers(probe, settled=(5, 5))
        assert {ready for ready, _ in answers} <= {None, 5}, answers
        assert {metric for _, metric in answers} <= {None, 5}, answers
        switches.gate.set()
        await eventually(lambda: _has(probe_rows(probe), 17), what="the 5 new events handled")
        await eventually(lambda: _lag_reads(probe, 0, 0), what="lag back to 0")


async def _lag_now(probe) -> tuple[int | None, float | None]:
    """(``consumer_lag_total`` of /ready, the sum of the lag gauges of /metrics); None where
    the figure is not given (unknown: null in /ready, no sample in /metrics)."""
    ready = (await probe.client.get("/ready")).json()["checks"].get("consumer_lag_total")
    samples = [v for (n, _), v in (await scrape(probe)).items() if n == "jiesu_consumer_lag_messages"]
    return ready, (sum(samples) if samples else None)


async def _lag_reads(probe, ready: int, metric: int) -> bool:
    return await _lag_now(probe) == (ready, metric)


async def _lag_answers(probe, *, settled: tuple[int, int], timeout: float = 30) -> list[tuple[int | None, float | None]]:
    """Every answer of /ready and /metrics from the service's start until both read
    ``settled`` three times in a row (so a figure that jumps after settling is seen too)."""
    answers: list[tuple[int | None, float | None]] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while answers[-3:] != [settled] * 3:
        assert asyncio.get_running_loop().time() < deadline, f"never settled at {settled}: {answers[-10:]}"
        answers.append(await _lag_now(probe))
        await asyncio.sleep(0.05)
    return answers


async def test_poison_event_is_listed_replayed_after_the_fix_and_applied_once(infra: Infra):
    topic = unique("lifecycle")
    settings = service_settings(ProbeSettings, infra, topic=topic, database=unique("probe"), consumer_max_attempts=2)
    switches = Switches()
    async with running(probe_app(settings, switches), settings) as probe:
        engine = probe.runtime.engine
        poison = progress("case-p", 7, "needs-fix")
        await publish(infra.bootstrap_servers, topic, progress("case-p", 6), poison, progress("case-p", 8))
        await eventually(lambda: _has(probe_rows(probe), 2), what="the good events")
        assert await probe_rows(probe) == [6, 8]

        parked = await ops.list_dead_letters(engine)
        assert [(d.event_id, d.event_type, d.case_id, d.status) for d in parked] == [
            (str(poison.id), "case.progress_reported", "case-p", "parked")
        ]
        assert "unit catalogue lacks zjj" in parked[0].error
        assert (await probe.client.get("/ready")).json()["checks"]["dead_letters_parked"] == 1
        samples = await scrape(probe)
        assert total(samples, "jiesu_dead_letters_parked_events") == 1
        assert any(
            n == "jiesu_consumer_events_total" and dict(l)["outcome"] == "dead_lettered" and dict(l)["event_type"] == "case.progress_reported"
            for (n, l) in samples
        )

        switches.fixed = True
        assert await ops.replay_dead_letters(engine, infra.bootstrap_servers, parked, service="probe") == 1
        await eventually(lambda: _has(probe_rows(probe), 3), what="the replayed event applied")
        [after] = await ops.get_dead_letters(engine, [parked[0].id])
        assert after.status == "replayed" and after.resolved_at is not None

        # Replayed again (by mistake, or a second operator): refused; and a redelivery is a no-op.
        with pytest.raises(ops.OpsError, match="replayed, not parked"):
            await ops.replay_dead_letters(engine, infra.bootstrap_servers, [after], service="probe")
        await publish(infra.bootstrap_servers, topic, poison, progress("case-p", 9))
        await eventually(lambda: _has(probe_rows(probe), 4), what="the next event")
        assert await probe_rows(probe) == [6, 8, 7, 9], "the poison event was applied more than once"
        assert await ops.list_dead_letters(engine) == []


async def test_dropped_dead_letter_keeps_its_reason_and_is_not_applied(infra: Infra):
    topic = unique("lifecycle")
    settings = service_settings(ProbeSettings, infra, topic=topic, database=unique("probe"), consumer_max_attempts=1)
    async with running(probe_app(settings, Switches()), settings) as probe:
        engine = probe.runtime.engine
        await publish(infra.bootstrap_servers, topic, progress("case-d", 1, "needs-fix"))
        parked = await eventually(lambda: ops.list_dead_letters(engine), what="the event parked")
        with pytest.raises(ops.OpsError, match="say why"):
            await ops.drop_dead_letters(engine, parked, reason=" ", service="probe")
        assert await ops.drop_dead_letters(engine, parked, reason="test data, filed by mistake", service="probe") == 1
        async with engine.connect() as conn:
            row = (await conn.execute(select(dead_letters.c.status, dead_letters.c.note))).one()
        assert row.status == "dropped" and "filed by mistake" in row.note
        assert await probe_rows(probe) == []


async def test_outbox_republish_sends_rows_again_and_consumers_drop_the_duplicates(infra: Infra):
    topic = unique("lifecycle")
    settings = service_settings(ProbeSettings, infra, topic=topic, database=unique("probe"))
    async with running(probe_app(settings, Switches()), settings) as probe:
        runtime = probe.runtime
        for i in range(3):
            async with runtime.uow() as uow:
                uow.emit(progress(f"case-o{i}", i))
                await uow.commit()
        await eventually(lambda: _has(probe_rows(probe), 3), what="the three own events consumed")
        published_before = runtime.relay.published
        since = (await _first_sent_at(runtime.engine))
        assert await ops.outbox_sent_since(runtime.engine, since) == 3
        assert await ops.republish_outbox(runtime.engine, since) == 3
        await eventually(lambda: asyncio.sleep(0, runtime.relay.published == published_before + 3), what="published again")
        await eventually(lambda: asyncio.sleep(0, sum(runtime.consumer.committed_offsets().values()) == 6), what="duplicates consumed")
        assert sorted(await probe_rows(probe)) == [0, 1, 2]


async def test_projection_rebuilt_by_replay_equals_the_live_one(infra: Infra):
    topic = unique("lifecycle")
    settings = service_settings(
        IntakeSettings, infra, topic=topic, database=unique("intake"), citizen_rate_limit="0/1", org_topic=unique("org")
    )
    app = create_intake(settings)
    async with running(app, settings) as intake:
        case_ids = []
        for i in range(4):
            created = await intake.client.post("/api/v1/appeals", json={**APPEAL, "title": f"路灯 {i}"})
            assert created.status_code == 201, created.text
            case_ids.append(created.json()["case_id"])
        # Another service's event about one case: intake's handlers put it on the timeline.
        await publish(infra.bootstrap_servers, topic, progress(case_ids[0], 50))
        await intake.runtime.relay.flush()

        async def live_timeline():
            async with intake.runtime.engine.connect() as conn:
                return sorted(
                    (await conn.execute(select(timeline.c.event_id, timeline.c.case_id, timeline.c.event_type, timeline.c.label, timeline.c.detail))).all()
                )

        await eventually(lambda: _when(live_timeline(), lambda rows: len(rows) >= 9), what="the live timeline")
        await eventually(lambda: asyncio.sleep(0, intake.runtime.consumer.lag_total() == 0), what="intake caught up")
        seen: list[ops.ReplayProgress] = []
        report = await ops.rebuild(
            service="intake", settings=settings, handles=app.state.spec.handles,
            batch_handler=handler_of(app.state.spec, app.state.context), migrations=app.state.spec.migrations,
            progress=seen.append,
        )
        try:
            assert seen and seen[-1].done == seen[-1].target == report.events >= 9
            assert seen[-1].remaining_seconds == 0 and seen[-1].events_per_second > 0
            assert [p.elapsed_seconds for p in seen] == sorted(p.elapsed_seconds for p in seen)
            by_table = {t.table: t for t in report.tables}
            assert by_table["timeline"].verdict == "same", report.tables
            assert report.parked == 0
            rebuilt = create_engine(
                settings.async_database_url.rsplit("/", 1)[0] + f"/{report.database}", pool_size=1
            )
            try:
                async with rebuilt.connect() as conn:
                    rows = sorted(
                        (await conn.execute(select(timeline.c.event_id, timeline.c.case_id, timeline.c.event_type, timeline.c.label, timeline.c.detail))).all()
                    )
                    unsent = (await conn.execute(select(func.count()).select_from(ops.outbox))).scalar()
            finally:
                await rebuilt.dispose()
            assert rows == await live_timeline()
            assert unsent == 0, "a rebuild must not write events to publish"
        finally:
            await ops.drop_database(settings, report.database)


# -- helpers ---------------------------------------------------------------------------------


async def _has(rows_coro, n: int) -> bool:
    return len(await rows_coro) >= n


async def _when(coro, predicate):
    value = await coro
    return value if predicate(value) else None


async def _status(service, code: int) -> bool:
    return (await service.client.get("/ready")).status_code == code


async def _first_sent_at(engine):
    async with engine.connect() as conn:
        return (await conn.execute(select(func.min(ops.outbox.c.sent_at)))).scalar()


def test_readiness_thresholds_read_the_service_prefix_first(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("READY_MAX_LAG", "50")
    monkeypatch.setenv("PROBE_READY_MAX_OUTBOX_AGE_SECONDS", "30")
    monkeypatch.setenv("READY_MAX_OUTBOX_AGE_SECONDS", "900")
    limits = ops.load_readiness(ProbeSettings())
    assert (limits.ready_max_lag, limits.ready_max_outbox_age_seconds) == (50, 30)
    monkeypatch.delenv("READY_MAX_LAG")
    assert ops.load_readiness(ProbeSettings()).ready_max_lag == ServiceSettings.model_fields["ready_max_lag"].default


def test_lag_is_unknown_until_both_ends_are_known_and_counts_from_where_the_group_resumes():
    assert partition_lag(None, 12) is None  # no fetch answered yet
    assert partition_lag(12, None) is None  # committed offset not read yet
    assert partition_lag(17, 12) == 5 and partition_lag(12, 12) == 0
    assert handled_from(None, 0) == 0  # the group never committed: from the log start
    assert handled_from(3, 10) == 10  # its offset deleted by retention: from the log start
    assert handled_from(12, 0) == 12
    assert total_lag({0: 5, 1: 0}, joined=True) == 5
    assert total_lag({0: 5, 1: None}, joined=True) is None  # not 5: a partition is unknown
    assert total_lag({}, joined=False) is None  # not 0: no partitions assigned yet
    assert total_lag({}, joined=True) == 0  # a member with no partitions (more replicas than partitions)


def test_tables_and_progress_read_in_a_terminal():
    table = ops.render_table(["id", "事件", "error"], [[1, "派单", "x"], [22, "case.closed", None]])
    lines = table.splitlines()
    assert lines[0].startswith("id  事件")
    assert lines[2].index("派单") == lines[3].index("case.closed") == 4
    assert ops.progress_bar(ops.ReplayProgress(5, 10, 2.0), width=10) == "[#####.....] 5/10 events (50%), 2.5 events/s, 2 s left"
    assert ops.progress_bar(ops.ReplayProgress(0, 0, 0.0), width=4) == "[####] 0/0 events (100%), 0.0 events/s, 0 s left"
    assert ops.progress_bar(ops.ReplayProgress(0, None, 0.5), width=4) == "[....] 0/? events (?), 0.0 events/s, ? s left"


def test_replay_progress_rate_and_time_left_come_from_the_counts_and_the_clock():
    half = ops.ReplayProgress(done=300, target=1200, elapsed_seconds=1.5)
    assert (half.events_per_second, half.remaining_seconds, half.share) == (200.0, 4.5, 0.25)
    assert half.as_dict() == {
        "events_done": 300, "events_target": 1200, "events_per_second": 200.0, "elapsed_seconds": 1.5, "remaining_seconds": 4.5,
    }
    # Not known yet: no target (a partition's high-water mark missing), or nothing done.
    assert ops.ReplayProgress(300, None, 1.5).remaining_seconds is None
    assert ops.ReplayProgress(0, 1200, 1.5).remaining_seconds is None
    # Events published during the replay are replayed too: past the target, nothing left.
    past = ops.ReplayProgress(1300, 1200, 2.0)
    assert (past.remaining_seconds, past.share) == (0.0, 1.0)
    assert ops.parse_start("earliest") == "earliest" and ops.parse_start("42") == 42
    assert ops.parse_start("2026-05-01T08:00:00+08:00").utcoffset().total_seconds() == 8 * 3600
    with pytest.raises(ops.OpsError, match="earliest, an offset, or a time"):
        ops.parse_start("yesterday")
