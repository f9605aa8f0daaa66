"""Intake's queries. No commits here: the unit of work commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from intake.models import appeals, timeline


async def next_sequence(session: AsyncSession) -> int:
    return int((await session.execute(text("SELECT nextval('tracking_seq')"))).scalar_one())


async def find_by_idempotency_key(session: AsyncSession, key: str) -> Any:
    return (await session.execute(select(appeals).where(appeals.c.idempotency_key == key))).first()


async def insert_appeal(session: AsyncSession, **values: Any) -> bool:
    """False when the idempotency key was taken by a concurrent request (ON CONFLICT)."""
    result = await session.execute(
        pg_insert(appeals).values(**values).on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(appeals.c.case_id)
    )
    return result.first() is not None


async def get_appeal(session: AsyncSession, case_id: str) -> Any:
    return (await session.execute(select(appeals).where(appeals.c.case_id == case_id))).first()


async def set_status(session: AsyncSession, case_id: str, status: str, at: Any) -> None:
    """Apply a status reported by another service, unless a later one is already shown
    (events of different producers may arrive out of order)."""
    await session.execute(
        update(appeals)
        .where(appeals.c.case_id == case_id, appeals.c.updated_at <= at)
        .values(status=status, updated_at=at)
    )


async def add_timeline_entry(session: AsyncSession, **values: Any) -> None:
    await session.execute(pg_insert(timeline).values(**values).on_conflict_do_nothing())


async def get_timeline(session: AsyncSession, case_id: str) -> list[Any]:
    return list(
        (await session.execute(select(timeline).where(timeline.c.case_id == case_id).order_by(timeline.c.occurred_at, timeline.c.event_id))).all()
    )
