"""Sla's queries. No commits here: the unit of work commits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Integer, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.engine import RowMapping

from shared.workdays import HolidayTable, WorkingCalendar
from sla.models import clocks, holiday_tables, policies, signals, sla_cases, time_offset

OPEN_STATES = ("running", "paused", "breached")


# --------------------------------------------------------------------- calendar


class _MemoCalendar(WorkingCalendar):
    """A calendar that remembers each day's answer: a deadline walks the same days many
    times (every threshold of every clock), and the package's answer for a day never changes."""

    def __init__(self, tables) -> None:
        super().__init__(tables)
        self._workday: dict[date, bool] = {}
        self._source: dict[date, str] = {}

    def is_workday(self, day: date) -> bool:
        known = self._workday.get(day)
        if known is None:
            known = self._workday[day] = super().is_workday(day)
        return known

    def source(self, day: date) -> str:
        known = self._source.get(day)
        if known is None:
            known = self._source[day] = super().source(day)
        return known


# The calendar of the tables as last read, reused while they are unchanged (its memo with it).
_calendar: tuple[tuple, WorkingCalendar] | None = None


async def load_calendar(session: AsyncSession) -> WorkingCalendar:
    """The loaded holiday tables over the package: a few rows, read per unit of work so that
    a table loaded on one replica counts on every replica at once."""
    global _calendar
    rows = (await session.execute(select(holiday_tables.c.year, holiday_tables.c.holidays, holiday_tables.c.workdays))).all()
    key = tuple(sorted((r.year, tuple(r.holidays), tuple(r.workdays)) for r in rows))
    if _calendar is None or _calendar[0] != key:
        tables = [HolidayTable.parse({"year": r.year, "holidays": r.holidays, "workdays": r.workdays}) for r in rows]
        _calendar = (key, _MemoCalendar(tables))
    return _calendar[1]


async def put_holiday_table(session: AsyncSession, table: HolidayTable, loaded_by: str) -> None:
    values = {
        "year": table.year,
        "holidays": sorted(d.isoformat() for d in table.holidays),
        "workdays": sorted(d.isoformat() for d in table.workdays),
        "loaded_by": loaded_by,
    }
    stmt = pg_insert(holiday_tables).values(**values)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["year"],
            set_={"holidays": stmt.excluded.holidays, "workdays": stmt.excluded.workdays,
                  "loaded_by": stmt.excluded.loaded_by, "loaded_at": func.now()},
        )
    )


async def get_holiday_table(session: AsyncSession, year: int) -> RowMapping | None:
    return (await session.execute(select(holiday_tables).where(holiday_tables.c.year == year))).mappings().first()


async def list_holiday_years(session: AsyncSession) -> list[RowMapping]:
    stmt = select(holiday_tables.c.year, holiday_tables.c.loaded_at, holiday_tables.c.loaded_by).order_by(holiday_tables.c.year)
    return list((await session.execute(stmt)).mappings())


# --------------------------------------------------------------------- policies


async def policy_for(session: AsyncSession, *, region: str | None, category: str | None, urgency: str | None, at: datetime) -> RowMapping:
    """The most specific policy matching the case, in its latest version in force at ``at``
    (the event time, so a replay picks the same version)."""
    matches = and_(
        or_(policies.c.region.is_(None), policies.c.region == region),
        or_(policies.c.category.is_(None), policies.c.category == category),
        or_(policies.c.urgency.is_(None), policies.c.urgency == urgency),
    )
    specificity = (
        (policies.c.region.is_not(None)).cast(Integer) * 4
        + (policies.c.category.is_not(None)).cast(Integer) * 2
        + (policies.c.urgency.is_not(None)).cast(Integer)
    )
    stmt = select(policies).where(matches)
    in_force = await session.execute(
        stmt.where(policies.c.effective_from <= at).order_by(specificity.desc(), policies.c.version.desc()).limit(1)
    )
    row = in_force.mappings().first()
    if row is None:  # an event older than every policy: the oldest catch-all
        row = (await session.execute(stmt.order_by(specificity.desc(), policies.c.version).limit(1))).mappings().first()
    assert row is not None, "the default policy is created by the migration"
    return row


async def get_policy(session: AsyncSession, policy_id: str, version: int | None = None) -> RowMapping | None:
    stmt = select(policies).where(policies.c.policy_id == policy_id)
    stmt = stmt.where(policies.c.version == version) if version is not None else stmt.order_by(policies.c.version.desc()).limit(1)
    return (await session.execute(stmt)).mappings().first()


async def list_policies(session: AsyncSession) -> list[RowMapping]:
    return list((await session.execute(select(policies).order_by(policies.c.policy_id, policies.c.version))).mappings())


async def insert_policy_version(session: AsyncSession, values: dict[str, Any]) -> bool:
    """False when that version number was taken meanwhile (two administrators at once)."""
    stmt = pg_insert(policies).values(**values).on_conflict_do_nothing(index_elements=["policy_id", "version"])
    return (await session.execute(stmt.returning(policies.c.version))).first() is not None


# --------------------------------------------------------------------- cases


async def get_case(session: AsyncSession, case_id: str) -> RowMapping | None:
    return (await session.execute(select(sla_cases).where(sla_cases.c.case_id == case_id))).mappings().first()


async def upsert_case(session: AsyncSession, case_id: str, **values: Any) -> None:
    stmt = pg_insert(sla_cases).values(case_id=case_id, **values)
    if values:
        stmt = stmt.on_conflict_do_update(index_elements=["case_id"], set_=values)
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=["case_id"])
    await session.execute(stmt)


# --------------------------------------------------------------------- clocks


async def insert_clock(session: AsyncSession, values: dict[str, Any]) -> bool:
    stmt = pg_insert(clocks).values(**values).on_conflict_do_nothing(index_elements=["clock_id"])
    return (await session.execute(stmt.returning(clocks.c.clock_id))).first() is not None


async def open_clocks(
    session: AsyncSession, case_id: str, *, names: Iterable[str] | None = None, unit: str | None = None, any_unit: bool = True
) -> Sequence[RowMapping]:
    """Open clocks of a case, locked for the change the caller is about to make."""
    stmt = select(clocks).where(clocks.c.case_id == case_id, clocks.c.state.in_(OPEN_STATES))
    if names is not None:
        stmt = stmt.where(clocks.c.name.in_(list(names)))
    if unit is not None:
        stmt = stmt.where(clocks.c.unit == unit)
    elif not any_unit:
        stmt = stmt.where(clocks.c.unit.is_(None))
    return (await session.execute(stmt.order_by(clocks.c.clock_id).with_for_update())).mappings().all()


async def open_clocks_warned(session: AsyncSession, warning: str) -> Sequence[RowMapping]:
    """Open clocks carrying a warning (e.g. a year counted without its holiday table), locked."""
    stmt = select(clocks).where(clocks.c.state.in_(OPEN_STATES), clocks.c.warnings.contains([warning]))
    return (await session.execute(stmt.order_by(clocks.c.clock_id).with_for_update())).mappings().all()


async def clock_by_id(session: AsyncSession, clock_id: str) -> RowMapping | None:
    return (await session.execute(select(clocks).where(clocks.c.clock_id == clock_id))).mappings().first()


async def update_clock(session: AsyncSession, clock_id: str, values: dict[str, Any]) -> None:
    await session.execute(update(clocks).where(clocks.c.clock_id == clock_id).values(**values, updated_at=func.now()))


async def claim_due(session: AsyncSession, now: datetime, batch: int) -> Sequence[RowMapping]:
    """Clocks with a threshold reached, locked; another replica skips them (SKIP LOCKED)."""
    stmt = (
        select(clocks)
        .where(clocks.c.next_signal_at.is_not(None), clocks.c.next_signal_at <= now)
        .order_by(clocks.c.next_signal_at)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    return (await session.execute(stmt)).mappings().all()


async def earliest_signal(session: AsyncSession) -> datetime | None:
    stmt = select(func.min(clocks.c.next_signal_at)).where(clocks.c.next_signal_at.is_not(None))
    return (await session.execute(stmt)).scalar()


async def insert_signal(session: AsyncSession, values: dict[str, Any]) -> bool:
    """True when this replica is the one that fires it."""
    stmt = pg_insert(signals).values(**values).on_conflict_do_nothing(constraint="signals_once")
    return (await session.execute(stmt.returning(signals.c.id))).first() is not None


async def case_clocks(session: AsyncSession, case_id: str) -> Sequence[RowMapping]:
    stmt = select(clocks).where(clocks.c.case_id == case_id).order_by(clocks.c.started_at, clocks.c.clock_id)
    return (await session.execute(stmt)).mappings().all()


async def unit_clocks(
    session: AsyncSession, unit: str, *, after: datetime | None, before: datetime, cursor: tuple[datetime, str] | None, limit: int
) -> Sequence[RowMapping]:
    """Open running clocks of a unit due in (after, before], soonest first, paged by (due_at, clock_id)."""
    stmt = select(clocks).where(clocks.c.unit == unit, clocks.c.state.in_(("running", "breached")), clocks.c.due_at <= before)
    if after is not None:
        stmt = stmt.where(clocks.c.due_at > after)
    if cursor is not None:
        at, key = cursor
        stmt = stmt.where(or_(clocks.c.due_at > at, and_(clocks.c.due_at == at, clocks.c.clock_id > key)))
    return (await session.execute(stmt.order_by(clocks.c.due_at, clocks.c.clock_id).limit(limit))).mappings().all()


async def board(session: AsyncSession, now: datetime, soon: datetime) -> Sequence[Any]:
    """Per unit: open clocks due within the yellow window, and overdue ones."""
    open_unit = and_(clocks.c.unit.is_not(None), clocks.c.state.in_(("running", "breached")), clocks.c.due_at <= soon)
    yellow = func.count().filter(clocks.c.due_at > now)
    red = func.count().filter(clocks.c.due_at <= now)
    stmt = select(clocks.c.unit, yellow.label("yellow"), red.label("red")).where(open_unit).group_by(clocks.c.unit).order_by(red.desc(), clocks.c.unit)
    return (await session.execute(stmt)).all()


# --------------------------------------------------------------------- time travel


async def get_offset(session: AsyncSession) -> int:
    return int((await session.execute(select(time_offset.c.offset_seconds).where(time_offset.c.id == 1))).scalar() or 0)


async def set_offset(session: AsyncSession, seconds: int) -> None:
    stmt = pg_insert(time_offset).values(id=1, offset_seconds=seconds)
    await session.execute(stmt.on_conflict_do_update(index_elements=["id"], set_={"offset_seconds": seconds}))

