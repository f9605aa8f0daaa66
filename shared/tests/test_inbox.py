"""The bounded inbox (shared.inbox): ids are kept for the retention and no longer; inside it a
duplicate is still dropped; a retention shorter than the outbox's is refused at start."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update

from dispatch.settings import DispatchSettings
from shared import metrics
from shared.db import outbox, processed_events
from shared.events import ProgressReported, ProgressReportedData, make_event, system_actor
from shared.settings import SettingsError, load_settings
from shared.testing import Infra, eventually, publish, running, service_settings, unique
from shared.tests.probe import ProbeSettings, probe_log
from shared.tests.probe import create_app as create_probe


def progress(case_id: str, seq: int) -> ProgressReported:
    return make_event(
        ProgressReported,
        case_id=case_id,
        producer="test",
        actor=system_actor("test"),
        payload=ProgressReportedData(order_no="JB-1", unit="zjj", note="ok", percent=seq),
    )


def test_inbox_retention_defaults_to_the_outbox_retention_plus_a_day():
    assert load_settings(DispatchSettings).inbox_retention == timedelta(days=7, hours=24)
    assert load_settings(DispatchSettings, outbox_retention_days=2).inbox_retention == timedelta(days=3)
    # Equal to the outbox retention is the least allowed.
    assert load_settings(DispatchSettings, inbox_retention_hours=168).inbox_retention == timedelta(hours=168)


def test_inbox_retention_shorter_than_the_outbox_retention_is_refused(monkeypatch):
    monkeypatch.setenv("OUTBOX_RETENTION_DAYS", "7")
    monkeypatch.setenv("DISPATCH_INBOX_RETENTION_HOURS", "100")
    with pytest.raises(SettingsError) as caught:
        load_settings(DispatchSettings)
    message = str(caught.value.code)
    assert "DISPATCH_INBOX_RETENTION_HOURS" in message
    assert "outbox retention" in message


async def _probe_rows(probe) -> int:
    async with probe.runtime.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(probe_log))).scalar()


async def _inbox_ids(probe) -> set[uuid.UUID]:
    async with probe.runtime.engine.connect() as conn:
        return set((await conn.execute(select(processed_events.c.event_id))).scalars())


async def test_expired_ids_are_pruned_and_a_duplicate_inside_the_window_is_still_dropped(infra: Infra):
    topic = unique("lifecycle")
    # Retention 8 h; the periodic pass is pushed far out so that the test runs each pass itself.
    settings = service_settings(
        ProbeSettings, infra, topic=topic, database=unique("probe"), outbox_retention_days=0.25,
        inbox_retention_hours=8, inbox_prune_seconds=3600,
    )
    async with running(create_probe(settings), settings) as probe:
        tag = uuid.uuid4().hex[:6]
        # More than two pruning batches of 100, then a case applied recently.
        old = [progress(f"old-{tag}-{n}", seq) for n in range(5) for seq in range(1, 51)]
        case_id = f"recent-{tag}"
        recent = [progress(case_id, seq) for seq in range(1, 11)]
        await publish(infra.bootstrap_servers, topic, *old, *recent)
        await eventually(lambda: _equals(_probe_rows(probe), 260), what="the probe to apply every event")

        # Applied long ago (past the retention) and just inside it (an hour short of it).
        async with probe.runtime.engine.begin() as conn:
            await conn.execute(
                update(processed_events)
                .where(processed_events.c.event_id.in_([e.id for e in old]))
                .values(processed_at=func.now() - text("interval '9 hours'"))
            )
            await conn.execute(
                update(processed_events)
                .where(processed_events.c.event_id.in_([e.id for e in recent]))
                .values(processed_at=func.now() - text("interval '7 hours'"))
            )

        pruner = probe.runtime.inbox_pruner
        assert pruner is not None and pruner.retention == timedelta(hours=8)
        pruner.batch = 100
        counted = metrics.INBOX_PRUNED.labels("probe")._value.get()
        assert await pruner.prune_once() == 250
        assert metrics.INBOX_PRUNED.labels("probe")._value.get() - counted == 250
        assert await _inbox_ids(probe) == {e.id for e in recent}
        assert await pruner.prune_once() == 0  # nothing more has expired

        # The recent ones delivered again (a relay's resend, a refilled broker): still dropped.
        await publish(infra.bootstrap_servers, topic, *recent, progress(case_id, 11))
        await eventually(lambda: _equals(_probe_rows(probe), 261), what="the new event to be applied")
        async with probe.runtime.engine.connect() as conn:
            seqs = list((await conn.execute(select(probe_log.c.seq).where(probe_log.c.case_id == case_id).order_by(probe_log.c.id))).scalars())
        assert seqs == list(range(1, 12))  # each once


async def test_inbox_pruning_runs_on_its_own_in_every_consuming_service(infra: Infra):
    """The pruner is part of the service's wiring: started with the consumer, on its interval."""
    topic = unique("lifecycle")
    settings = service_settings(
        ProbeSettings, infra, topic=topic, database=unique("probe"), outbox_retention_days=0,
        inbox_retention_hours=1, inbox_prune_seconds=0.2,
    )
    async with running(create_probe(settings), settings) as probe:
        events = [progress(f"case-{uuid.uuid4().hex[:6]}", 1) for _ in range(5)]
        await publish(infra.bootstrap_servers, topic, *events)
        await eventually(lambda: _equals(_probe_rows(probe), 5), what="the probe to apply every event")
        async with probe.runtime.engine.begin() as conn:
            await conn.execute(update(processed_events).values(processed_at=func.now() - text("interval '2 hours'")))
        await eventually(lambda: _equals(_inbox_ids(probe), set()), what="the periodic pass to prune the inbox")


async def _equals(value, expected) -> bool:
    return await value == expected


async def test_the_outbox_keeps_a_row_for_its_retention_from_creation_not_from_its_last_send(infra: Infra):
    """A fresh broker is refilled from the outbox, and republishing stamps ``sent_at`` again; if
    the outbox's retention ran from the last send, a second refill more than the inbox's
    retention after an event was first applied could bring it back to a consumer that has
    forgotten its id. Counted from creation, every row a refill can republish is younger than
    any consumer's record of having applied it."""
    settings = service_settings(ProbeSettings, infra, topic=unique("lifecycle"), database=unique("probe"))
    async with running(create_probe(settings), settings) as probe:
        runtime = probe.runtime
        async with runtime.uow() as uow:
            for seq in (1, 2):
                uow.emit(progress(f"refilled-{uuid.uuid4().hex[:6]}", seq))
            await uow.commit()
        await eventually(lambda: _none_unsent(runtime), what="both events published")
        async with runtime.engine.begin() as conn:
            rows = (await conn.execute(select(outbox.c.id).order_by(outbox.c.id))).scalars().all()
            old, young = rows[-2], rows[-1]
            # Created 8 days ago and just republished after a fresh broker (sent_at = now) …
            await conn.execute(update(outbox).where(outbox.c.id == old).values(created_at=func.now() - text("interval '8 days'")))
        runtime.relay._purged_at = 0.0
        await runtime.relay._maybe_housekeep()
        async with runtime.engine.connect() as conn:
            kept = set((await conn.execute(select(outbox.c.id).where(outbox.c.id.in_([old, young])))).scalars())
        # … is past the 7-day retention all the same; the young one stays.
        assert kept == {young}


async def _none_unsent(runtime) -> bool:
    async with runtime.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None)))).scalar() == 0
