"""Sla's queries. No commits here: the unit of work commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import String, and_, any_, bindparam, cast, func, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
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


async def all_policies(session: AsyncSession) -> list[RowMapping]:
    """Every policy version (a few rows): which one a case gets is ``sla.domain.choose_policy``."""
    return list((await session.execute(select(policies))).mappings())


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


def _ids(column):
    return column == any_(cast(bindparam("ids"), ARRAY(String)))


# Built once (values as parameters: compiled once, prepared once per connection).
_CASES_BY_ID = select(sla_cases).where(_ids(sla_cases.c.case_id))
_UPSERT_CASES = pg_insert(sla_cases)
_UPSERT_CASES = _UPSERT_CASES.on_conflict_do_update(
    index_elements=["case_id"], set_={c.name: _UPSERT_CASES.excluded[c.name] for c in sla_cases.c if c.name != "case_id"}
)


async def cases_by_id(session: AsyncSession, case_ids: Sequence[str]) -> Sequence[RowMapping]:
    return (await session.execute(_CASES_BY_ID, {"ids": list(case_ids)})).mappings().all()


async def upsert_cases(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Whole case rows, one per case (executemany: one round trip)."""
    await session.execute(_UPSERT_CASES, [{c.name: row[c.name] for c in sla_cases.c} for row in rows])


# --------------------------------------------------------------------- clocks


_CLOCKS_OF_CASES = select(clocks).where(_ids(clocks.c.case_id)).order_by(clocks.c.clock_id).with_for_update()
_CLOCK_COLUMNS = [c.name for c in clocks.c if c.name != "updated_at"]
_INSERT_CLOCKS = pg_insert(clocks).on_conflict_do_nothing(index_elements=["clock_id"])
# What a change to a clock may touch (an update may not bind its own columns' names: b_…).
_CHANGED = ("due_at", "paused_at", "paused_total", "stopped_at", "state", "generation", "fired", "warnings", "next_signal_at")
_UPDATE_CLOCKS = (
    update(clocks)
    .where(clocks.c.clock_id == bindparam("b_clock_id"))
    .values(**{c: bindparam(f"b_{c}", type_=clocks.c[c].type) for c in _CHANGED}, updated_at=func.now())
)


async def clocks_of_cases(session: AsyncSession, case_ids: Sequence[str]) -> Sequence[RowMapping]:
    """Every clock of these cases, locked for the changes the caller is about to make (in id
    order, as a holiday recount locks them; the ticker skips locked clocks)."""
    return (await session.execute(_CLOCKS_OF_CASES, {"ids": list(case_ids)})).mappings().all()


async def insert_clocks(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """New clocks (executemany); an id that exists already is left as it is."""
    await session.execute(_INSERT_CLOCKS, [{c: row[c] for c in _CLOCK_COLUMNS} for row in rows])


async def update_clocks(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Changed clocks by id (executemany: one round trip)."""
    await session.execute(_UPDATE_CLOCKS, [{"b_clock_id": row["clock_id"], **{f"b_{c}": row[c] for c in _CHANGED}} for row in rows])


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

