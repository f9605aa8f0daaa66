"""Dispatch's queries. No commits here: the unit of work commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.models import cases, extension_requests, holiday_tables_applied, orders

ACTIVE = ("dispatched", "returned", "signed", "in_progress", "resolved", "verified")


async def next_order_sequence(session: AsyncSession) -> int:
    return int((await session.execute(text("SELECT nextval('order_seq')"))).scalar_one())


async def upsert_case(session: AsyncSession, case_id: str, **values: Any) -> None:
    stmt = pg_insert(cases).values(case_id=case_id, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=["case_id"], set_={**values, "updated_at": func.now()}))


async def get_case(session: AsyncSession, case_id: str, *, lock: bool = False) -> Any:
    query = select(cases).where(cases.c.case_id == case_id)
    return (await session.execute(query.with_for_update() if lock else query)).first()


async def merged_into(session: AsyncSession, case_id: str) -> list[Any]:
    """Open duplicates that follow this case (并单)."""
    query = select(cases).where(cases.c.merged_into == case_id, cases.c.stage != "closed")
    return list((await session.execute(query)).all())


async def update_case(session: AsyncSession, case_id: str, **values: Any) -> None:
    await session.execute(update(cases).where(cases.c.case_id == case_id).values(**values, updated_at=func.now()))


async def insert_order(session: AsyncSession, **values: Any) -> bool:
    """False when this unit already has an order for this case, round and call."""
    result = await session.execute(pg_insert(orders).values(**values).on_conflict_do_nothing().returning(orders.c.order_no))
    return result.first() is not None


async def get_order(session: AsyncSession, order_no: str, *, lock: bool = False) -> Any:
    query = select(orders).where(orders.c.order_no == order_no)
    return (await session.execute(query.with_for_update() if lock else query)).first()


async def case_orders(session: AsyncSession, case_id: str, *, lock: bool = False) -> list[Any]:
    query = select(orders).where(orders.c.case_id == case_id).order_by(orders.c.dispatched_at, orders.c.order_no)
    return list((await session.execute(query.with_for_update() if lock else query)).all())


async def save_order(session: AsyncSession, order_no: str, version: int, **values: Any) -> bool:
    """Compare-and-set on the version: False when someone else changed the order first."""
    result = await session.execute(
        update(orders)
        .where(orders.c.order_no == order_no, orders.c.version == version)
        .values(**values, version=orders.c.version + 1, updated_at=func.now())
    )
    return result.rowcount == 1


async def insert_extension(session: AsyncSession, **values: Any) -> None:
    await session.execute(pg_insert(extension_requests).values(**values))


async def get_extension(session: AsyncSession, request_id: str, *, lock: bool = False) -> Any:
    query = select(extension_requests).where(extension_requests.c.request_id == request_id)
    return (await session.execute(query.with_for_update() if lock else query)).first()


async def extension_requests_of(session: AsyncSession, order_nos: list[str]) -> dict[str, list[Any]]:
    """Every extension request (延期) of these orders, asked and decided, oldest first."""
    if not order_nos:
        return {}
    query = (select(extension_requests).where(extension_requests.c.order_no.in_(order_nos))
             .order_by(extension_requests.c.requested_at, extension_requests.c.request_id))  # fmt: skip
    found: dict[str, list[Any]] = {}
    for row in (await session.execute(query)).all():
        found.setdefault(row.order_no, []).append(row)
    return found


async def decide_extension(session: AsyncSession, request_id: str, state: str, at: datetime) -> None:
    await session.execute(
        update(extension_requests).where(extension_requests.c.request_id == request_id).values(state=state, decided_at=at)
    )


def queue_condition(queue: str, now: datetime, soon: datetime):
    """Which orders are in a unit's queue."""
    working = orders.c.state.in_(("signed", "in_progress"))
    return {
        "to_sign": orders.c.state == "dispatched",
        "in_progress": working,
        "due_soon": and_(working, orders.c.due_at >= now, orders.c.due_at < soon),
        "overdue": and_(orders.c.state.in_(("dispatched", "signed", "in_progress")), orders.c.due_at < now),
        "returned": orders.c.state == "returned",
        "resolved": orders.c.state == "resolved",
    }[queue]


# What a listed order carries of its case: enough to show it and to say who may act on it.
CASE_COLUMNS = (cases.c.tracking_no, cases.c.title, cases.c.county, cases.c.township, cases.c.village, cases.c.grid)

QUEUES = ("to_sign", "in_progress", "due_soon", "overdue", "returned", "resolved")


async def unit_queue(
    session: AsyncSession, unit: str, queue: str, *, now: datetime, soon: datetime, after: tuple[datetime, str] | None, limit: int
) -> list[Any]:
    query = select(orders, *CASE_COLUMNS).join(cases, cases.c.case_id == orders.c.case_id).where(
        orders.c.unit == unit, queue_condition(queue, now, soon)
    )
    if after is not None:
        at, order_no = after
        query = query.where(or_(orders.c.dispatched_at > at, and_(orders.c.dispatched_at == at, orders.c.order_no > order_no)))
    return list((await session.execute(query.order_by(orders.c.dispatched_at, orders.c.order_no).limit(limit))).all())


async def unit_counts(session: AsyncSession, unit: str, *, now: datetime, soon: datetime) -> dict[str, int]:
    columns = [func.count().filter(queue_condition(q, now, soon)).label(q) for q in QUEUES]
    row = (await session.execute(select(*columns).select_from(orders).where(orders.c.unit == unit))).one()
    return {q: int(getattr(row, q)) for q in QUEUES}


async def board(session: AsyncSession, limit: int) -> dict[str, list[Any]]:
    """The dispatcher's board: cases waiting for a unit, and returns waiting for review."""
    undispatched = (
        select(cases)
        .where(cases.c.stage == "received", cases.c.rejected.is_(False), cases.c.merged_into.is_(None),
               cases.c.solved_on_spot.is_(False))  # fmt: skip
        .order_by(cases.c.received_at)
        .limit(limit)
    )
    returned = select(orders, *CASE_COLUMNS).join(cases, cases.c.case_id == orders.c.case_id).where(
        orders.c.state == "returned"
    )
    return {
        "unassigned": list((await session.execute(undispatched)).all()),
        "returned": list((await session.execute(returned.order_by(orders.c.updated_at).limit(limit))).all()),
    }


async def closed_cases(session: AsyncSession, *, limit: int, before: datetime | None) -> list[Any]:
    query = select(cases.c.case_id, cases.c.tracking_no, cases.c.public_summary, cases.c.township, cases.c.closed_at).where(
        cases.c.stage == "closed", cases.c.public_summary.is_not(None)
    )
    if before is not None:
        query = query.where(cases.c.closed_at < before)
    return list((await session.execute(query.order_by(cases.c.closed_at.desc()).limit(limit))).all())


async def claim_holiday_table(session: AsyncSession, year: int, loaded_at: datetime) -> bool:
    """Record that the table of ``year`` loaded at ``loaded_at`` is being applied; False when
    it (or a later one) already was. The row stays locked until the transaction ends, so a
    second replica applying the same table waits and then finds it applied."""
    stmt = pg_insert(holiday_tables_applied).values(year=year, loaded_at=loaded_at)
    stmt = stmt.on_conflict_do_update(
        index_elements=["year"], set_={"loaded_at": stmt.excluded.loaded_at, "applied_at": func.now()},
        where=holiday_tables_applied.c.loaded_at < stmt.excluded.loaded_at,
    )
    return (await session.execute(stmt.returning(holiday_tables_applied.c.year))).first() is not None


async def record_moves(session: AsyncSession, year: int, moved: int) -> None:
    await session.execute(update(holiday_tables_applied).where(holiday_tables_applied.c.year == year).values(moved=moved))


async def open_orders_between(session: AsyncSession, start: datetime, end: datetime) -> list[Any]:
    """Open orders (not yet answered) whose window from dispatch to deadline touches [start, end),
    locked, each with its case's subject class (the survey's rule needs it)."""
    query = (
        select(orders, cases.c.subject_class)
        .join(cases, cases.c.case_id == orders.c.case_id, isouter=True)
        .where(
            orders.c.state.in_(("dispatched", "returned", "signed", "in_progress")),
            orders.c.dispatched_at < end,
            func.greatest(orders.c.due_at, orders.c.return_due_at, orders.c.survey_due_at) >= start,
        )
        .order_by(orders.c.order_no)
        .with_for_update(of=orders)
    )
    return list((await session.execute(query)).all())


async def approved_extensions(session: AsyncSession, order_nos: list[str]) -> dict[str, int]:
    """request_id -> working days of the approved extensions of ``order_nos``."""
    query = select(extension_requests.c.request_id, extension_requests.c.working_days).where(
        extension_requests.c.order_no.in_(order_nos), extension_requests.c.state == "approved"
    )
    return {r.request_id: r.working_days for r in (await session.execute(query)).all()}
