"""The citizen's timeline shows the lifecycle in the order it happened, even when events share
their instant (one command emits several at once: resolved, verified and closed together)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.events import (
    CallbackCompleted, CallbackCompletedData, CaseClosed, CaseRated, CaseResolved, CaseVerified, ClosedData, RatedData,
    ResolvedData, Satisfaction, VerifiedData, make_event, system_actor,
)  # fmt: skip
from shared.migrate import alembic_config, ensure_database
from shared.testing import AUDITOR, eventually, publish, unique

from intake.tests.test_intake_api import STREETLAMP, post


def _with_id(event, ordinal: int):
    """The event under a chosen id: ids falling as the lifecycle goes on, so that a timeline
    that breaks a tie of times by id shows it backwards (a random id does so half the time)."""
    return event.model_copy(update={"id": uuid.UUID(int=(0xF - ordinal) << 124)})


async def test_events_of_one_instant_are_shown_in_the_order_they_happened(intake):
    created = (await post(intake, STREETLAMP)).json()
    case_id = created["case_id"]
    view = (await intake.client.get(f"/api/v1/appeals/{case_id}", headers=AUDITOR)).json()
    filed_at = datetime.fromisoformat(view["timeline"][-1]["occurred_at"])
    answered_at, rated_at = filed_at + timedelta(hours=1), filed_at + timedelta(days=1)

    dispatch, notify = system_actor("dispatch"), system_actor("notify")
    lifecycle = [
        make_event(CaseResolved, case_id=case_id, producer="dispatch", actor=dispatch, occurred_at=answered_at,
                   payload=ResolvedData(order_no="JB-XC-2026-000001", unit="LB-XC-ZJJ", answer="已更换灯具")),
        make_event(CaseVerified, case_id=case_id, producer="dispatch", actor=dispatch, occurred_at=answered_at,
                   payload=VerifiedData(verifier_unit="LB-XC-CG")),
        make_event(CaseClosed, case_id=case_id, producer="dispatch", actor=dispatch, occurred_at=answered_at,
                   payload=ClosedData(public_summary="村口路灯已修复")),
        make_event(CallbackCompleted, case_id=case_id, producer="notify", actor=notify, occurred_at=rated_at,
                   payload=CallbackCompletedData(reached=True, attempt=1, rating=Satisfaction.satisfied)),
        make_event(CaseRated, case_id=case_id, producer="notify", actor=notify, occurred_at=rated_at,
                   payload=RatedData(rating=Satisfaction.satisfied)),
    ]  # fmt: skip
    await publish(
        intake.settings.kafka_bootstrap_servers, intake.settings.kafka_topic,
        *(_with_id(event, i) for i, event in enumerate(lifecycle)),
    )  # fmt: skip

    async def all_shown():
        view = (await intake.client.get(f"/api/v1/appeals/{case_id}", headers=AUDITOR)).json()
        types = [entry["type"] for entry in view["timeline"]]
        return types if "case.rated" in types and "case.resolved" in types and len(types) == 8 else None

    assert await eventually(all_shown, what="the lifecycle on the timeline") == [
        "case.received", "case.accepted", "case.triaged",
        "case.resolved", "case.verified", "case.closed", "case.callback_completed", "case.rated",
    ]  # fmt: skip


async def test_the_migration_numbers_rows_written_before_it_by_time_then_as_written(infra):
    """Rows from before intake_0005 are numbered by time, ties in the order they were written;
    rows written after it are numbered on from there."""
    versions = Path(__file__).resolve().parent.parent / "migrations" / "versions"
    url = infra.database_url(unique("intake_migration")).replace("postgresql://", "postgresql+asyncpg://", 1)
    await ensure_database(url)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: command.upgrade(alembic_config(versions, sync), "intake_0004"))
            at = datetime.fromisoformat("2026-11-23T09:00:00+00:00")
            rows = [("case.closed", at + timedelta(minutes=5)), ("case.resolved", at), ("case.verified", at)]
            for i, (kind, when) in enumerate(rows):
                await conn.execute(
                    text("INSERT INTO timeline (event_id, case_id, event_type, occurred_at, label) VALUES (:id, 'c1', :t, :at, '')"),
                    {"id": uuid.UUID(int=(0xF - i) << 124), "t": kind, "at": when},
                )
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: command.upgrade(alembic_config(versions, sync), "heads"))
            await conn.execute(
                text("INSERT INTO timeline (event_id, case_id, event_type, occurred_at, label) VALUES (:id, 'c1', 'case.rated', :at, '')"),
                {"id": uuid.UUID(int=1), "at": at},
            )
            ordered = (await conn.execute(text("SELECT event_type FROM timeline WHERE case_id = 'c1' ORDER BY seq"))).scalars().all()
        assert ordered == ["case.resolved", "case.verified", "case.closed", "case.rated"]
    finally:
        await engine.dispose()
