"""Sla's queries. No commits here: the unit of work commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.engine import RowMapping

from shared.db import in_literal
from sla.models import clocks, policies, signals, sla_cases, time_offset

OPEN_STATES = ("running", "paused", "breached")
# Clocks that run against a unit: the partial index ``clocks_open_unit_due`` is on exactly these
# (constants in the SQL, so a prepared statement can use it: shared.db.in_literal).
RUNNING_STATES = ("running", "breached")


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


# --------------------------------------------------------------------- a batch's cases and clocks, on the driver
# The consumer's batch path reads and writes hundreds of cases and clocks per partition batch.
# Through SQLAlchemy every value of an executemany goes through its parameter processing
# (a third of the service's time in that burst); here each table is one statement on the
# asyncpg connection under the session — same transaction — with one array per column
# (``unnest``), encoded by the driver in C.


async def driver(session: AsyncSession) -> asyncpg.Connection:
    """The session's asyncpg connection, inside the session's transaction."""
    connection = await (await session.connection()).get_raw_connection()
    raw: asyncpg.Connection = connection.driver_connection  # type: ignore[assignment]
    if not raw.is_in_transaction():
        # SQLAlchemy sends BEGIN with its first statement: let it, so that it owns the transaction.
        await session.execute(select(1))
    return raw


# Array types of the columns that are not text.
_TYPES = {
    "round": "int", "policy_version": "int", "generation": "int", "redo_round": "int", "closed": "bool", "task": "bool",
    "started_at": "timestamptz", "due_at": "timestamptz", "paused_at": "timestamptz", "stopped_at": "timestamptz",
    "next_signal_at": "timestamptz", "paused_total": "interval",
}  # fmt: skip


def _unnest(columns: Sequence[str]) -> str:
    """``unnest($1::text[], $2::int[], …) AS v(columns…)``: one array parameter per column."""
    arrays = ", ".join(f"${n}::{_TYPES.get(c, 'text')}[]" for n, c in enumerate(columns, 1))
    return f"unnest({arrays}) AS v({', '.join(columns)})"


_CASE_COLUMNS = tuple(c.name for c in sla_cases.c)
_CASES_BY_ID = f"SELECT {', '.join(_CASE_COLUMNS)} FROM sla_cases WHERE case_id = ANY($1::text[])"
_UPSERT_CASES = f"""
INSERT INTO sla_cases ({', '.join(_CASE_COLUMNS)})
SELECT {', '.join(f"v.{c}" for c in _CASE_COLUMNS)} FROM {_unnest(_CASE_COLUMNS)}
ON CONFLICT (case_id) DO UPDATE SET {', '.join(f"{c} = excluded.{c}" for c in _CASE_COLUMNS if c != "case_id")}
"""


async def cases_by_id(raw: asyncpg.Connection, case_ids: Sequence[str]) -> list[asyncpg.Record]:
    return await raw.fetch(_CASES_BY_ID, list(case_ids))


async def upsert_cases(raw: asyncpg.Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Whole case rows, one per case, in the given order (the order their rows are locked in)."""
    await raw.execute(_UPSERT_CASES, *([row[c] for row in rows] for c in _CASE_COLUMNS))


# Every column but updated_at (the database's now()). ``fired`` (text[] per clock) travels as
# JSON text, since clocks with different numbers of thresholds fired make no 2-D array;
# ``warnings`` as JSON text too, cast back to jsonb.
_CLOCK_COLUMNS = tuple(c.name for c in clocks.c if c.name != "updated_at")
_FIRED = "ARRAY(SELECT f FROM jsonb_array_elements_text(v.fired::jsonb) WITH ORDINALITY AS x(f, n) ORDER BY n)"


def _value(column: str) -> str:
    return {"fired": _FIRED, "warnings": "v.warnings::jsonb"}.get(column, f"v.{column}")


_CLOCKS_OF_CASES = f"SELECT {', '.join(_CLOCK_COLUMNS)} FROM clocks WHERE case_id = ANY($1::text[]) ORDER BY clock_id FOR UPDATE"
_INSERT_CLOCKS = f"""
INSERT INTO clocks ({', '.join(_CLOCK_COLUMNS)})
SELECT {', '.join(_value(c) for c in _CLOCK_COLUMNS)} FROM {_unnest(_CLOCK_COLUMNS)}
ON CONFLICT (clock_id) DO NOTHING
"""
# What a change to a clock may touch.
_CHANGED = ("due_at", "paused_at", "paused_total", "stopped_at", "state", "generation", "fired", "warnings", "next_signal_at")
_UPDATE_CLOCKS = f"""
UPDATE clocks AS c SET {', '.join(f"{col} = {_value(col)}" for col in _CHANGED)}, updated_at = now()
FROM {_unnest(("clock_id", *_CHANGED))}
WHERE c.clock_id = v.clock_id
"""


def _arrays(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[list[Any]]:
    def column(name: str) -> list[Any]:
        if name == "fired" or name == "warnings":
            return [orjson.dumps(row[name]).decode() for row in rows]
        return [row[name] for row in rows]

    return [column(c) for c in columns]


async def clocks_of_cases(raw: asyncpg.Connection, case_ids: Sequence[str]) -> list[asyncpg.Record]:
    """Every clock of these cases, locked for the changes the caller is about to make (in id
    order, as a holiday recount locks them; the ticker skips locked clocks)."""
    return await raw.fetch(_CLOCKS_OF_CASES, list(case_ids))


async def insert_clocks(raw: asyncpg.Connection, rows: Sequence[dict[str, Any]]) -> None:
    """New clocks; an id that exists already is left as it is."""
    await raw.execute(_INSERT_CLOCKS, *_arrays(rows, _CLOCK_COLUMNS))


async def update_clocks(raw: asyncpg.Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Changed clocks by id (one row each)."""
    await raw.execute(_UPDATE_CLOCKS, *_arrays(rows, ("clock_id", *_CHANGED)))


# --------------------------------------------------------------------- clocks


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
    stmt = select(clocks).where(clocks.c.case_id == case_id, clocks.c.subject == "case").order_by(clocks.c.started_at, clocks.c.clock_id)
    return (await session.execute(stmt)).mappings().all()


async def warning_clocks(session: AsyncSession, warning_id: str) -> Sequence[RowMapping]:
    """An early warning's clocks (their subject id is the warning's)."""
    stmt = select(clocks).where(clocks.c.case_id == warning_id, clocks.c.subject == "warning")
    return (await session.execute(stmt.order_by(clocks.c.started_at, clocks.c.clock_id))).mappings().all()


def unit_clocks_query(unit: str, *, after: datetime | None, before: datetime, cursor: tuple[datetime, str] | None, limit: int) -> Select:
    """Open running clocks of a unit's cases due in (after, before], soonest first, paged by (due_at,
    clock_id). An early warning's clocks are not listed: they are read with the warning (insight)."""
    stmt = select(clocks).where(
        clocks.c.unit == unit, in_literal(clocks.c.state, RUNNING_STATES), clocks.c.due_at <= before, clocks.c.subject == "case"
    )
    if after is not None:
        stmt = stmt.where(clocks.c.due_at > after)
    if cursor is not None:
        at, key = cursor
        stmt = stmt.where(or_(clocks.c.due_at > at, and_(clocks.c.due_at == at, clocks.c.clock_id > key)))
    return stmt.order_by(clocks.c.due_at, clocks.c.clock_id).limit(limit)


async def unit_clocks(
    session: AsyncSession, unit: str, *, after: datetime | None, before: datetime, cursor: tuple[datetime, str] | None, limit: int
) -> Sequence[RowMapping]:
    query = unit_clocks_query(unit, after=after, before=before, cursor=cursor, limit=limit)
    return (await session.execute(query)).mappings().all()


async def board(session: AsyncSession, now: datetime, soon: datetime) -> Sequence[Any]:
    """Per unit: open clocks due within the yellow window, and overdue ones."""
    open_unit = and_(
        clocks.c.unit.is_not(None), in_literal(clocks.c.state, RUNNING_STATES), clocks.c.due_at <= soon, clocks.c.subject == "case"
    )
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

