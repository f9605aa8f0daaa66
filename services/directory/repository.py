"""The directory's queries. No commits here: the unit of work commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.directory.models import holiday_tables, org_versions
from shared.workdays import HolidayTable

_SUMMARY_COLUMNS = (org_versions.c.version, org_versions.c.changed_by, org_versions.c.changed_at, org_versions.c.summary)


async def latest(session: AsyncSession) -> Any:
    """The current version's row (version, document, changed_by, changed_at, summary), or None."""
    query = select(org_versions).order_by(org_versions.c.version.desc()).limit(1)
    return (await session.execute(query)).first()


async def latest_number(session: AsyncSession) -> int | None:
    query = select(org_versions.c.version).order_by(org_versions.c.version.desc()).limit(1)
    return (await session.execute(query)).scalar()


async def get_version(session: AsyncSession, version: int) -> Any:
    return (await session.execute(select(org_versions).where(org_versions.c.version == version))).first()


async def insert_version(
    session: AsyncSession, *, version: int, document: dict[str, Any], changed_by: str, summary: str
) -> Any:
    """The new row (version, changed_at), or None when that version was taken meanwhile."""
    statement = (
        pg_insert(org_versions)
        .values(version=version, document=document, changed_by=changed_by, summary=summary)
        .on_conflict_do_nothing(index_elements=[org_versions.c.version])
        .returning(org_versions.c.version, org_versions.c.changed_at)
    )
    return (await session.execute(statement)).first()


async def list_versions(session: AsyncSession, *, before: int | None, limit: int) -> list[Any]:
    """Newest first, without the documents; ``before`` is the cursor (a version number)."""
    query = select(*_SUMMARY_COLUMNS).order_by(org_versions.c.version.desc()).limit(limit)
    if before is not None:
        query = query.where(org_versions.c.version < before)
    return list((await session.execute(query)).all())


# --------------------------------------------------------------------- holiday tables


async def put_holiday_table(session: AsyncSession, table: HolidayTable, loaded_by: str) -> Any:
    """Store (or replace) a year's schedule; its row as stored, ``loaded_at`` the database's now."""
    values = {
        "year": table.year,
        "holidays": sorted(d.isoformat() for d in table.holidays),
        "workdays": sorted(d.isoformat() for d in table.workdays),
        "loaded_by": loaded_by,
    }
    stmt = pg_insert(holiday_tables).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[holiday_tables.c.year],
        set_={"holidays": stmt.excluded.holidays, "workdays": stmt.excluded.workdays,
              "loaded_by": stmt.excluded.loaded_by, "loaded_at": func.now()},
    )  # fmt: skip
    await session.execute(stmt)
    return await get_holiday_table(session, table.year)


async def get_holiday_table(session: AsyncSession, year: int) -> Any:
    return (await session.execute(select(holiday_tables).where(holiday_tables.c.year == year))).first()


async def all_holiday_tables(session: AsyncSession) -> list[Any]:
    return list((await session.execute(select(holiday_tables).order_by(holiday_tables.c.year))).all())
