"""Intake's queries. No commits here: the unit of work commits."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, cast, delete, false, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from intake.models import appeals, request_nonces, timeline

OPEN_STATUSES = ("accepted", "triage", "triaged", "dispatched", "in_progress", "called", "returned", "suspended", "reopened")


async def next_sequence(session: AsyncSession) -> int:
    return int((await session.execute(text("SELECT nextval('tracking_seq')"))).scalar_one())


async def find_by_idempotency_key(session: AsyncSession, key: str) -> Any:
    return (await session.execute(select(appeals).where(appeals.c.idempotency_key == key))).first()


async def find_by_external_ref(session: AsyncSession, channel: str, ref: str) -> Any:
    return (
        await session.execute(select(appeals).where(appeals.c.channel == channel, appeals.c.external_ref == ref))
    ).first()


# Hot-path statements are built once and given their values as parameters: SQLAlchemy then
# compiles each once and reuses it, instead of building a cache key from every value.
_INSERT_APPEAL = pg_insert(appeals).on_conflict_do_nothing().returning(appeals.c.case_id)
# Run with a list of rows (an executemany): one statement compiled once, whatever the count.
_INSERT_TIMELINE = pg_insert(timeline).on_conflict_do_nothing()


async def insert_appeal(session: AsyncSession, **values: Any) -> bool:
    """False when a unique key (idempotency key, channel + ticket number) was already taken."""
    result = await session.execute(_INSERT_APPEAL, values)
    return result.first() is not None


async def get_appeal(session: AsyncSession, case_id: str, *, lock: bool = False) -> Any:
    query = select(appeals).where(appeals.c.case_id == case_id)
    return (await session.execute(query.with_for_update() if lock else query)).first()


async def list_by_phone_hash(session: AsyncSession, phone_hash: str, *, before: tuple[datetime, str] | None, limit: int) -> list[Any]:
    query = select(appeals).where(appeals.c.phone_hash == phone_hash)
    return list((await session.execute(newest_first(query, before, limit))).all())


async def one_snapshot(session: AsyncSession) -> None:
    """What this transaction reads next is one snapshot (REPEATABLE READ): an appeal and its
    timeline as of one moment. Read one statement after the other under READ COMMITTED, a
    batch committed between them showed 已评价 on the timeline beside a status still 'closed'.
    The transaction's first statement."""
    await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))


def newest_first(query: Any, before: tuple[datetime, str] | None, limit: int) -> Any:
    """A page of appeals, newest first, after the cursor (created_at, case_id) when given."""
    if before is not None:
        created_at, case_id = before
        query = query.where(
            or_(appeals.c.created_at < created_at, and_(appeals.c.created_at == created_at, appeals.c.case_id < case_id))
        )
    return query.order_by(appeals.c.created_at.desc(), appeals.c.case_id.desc()).limit(limit)


async def set_triage(session: AsyncSession, case_id: str, **values: Any) -> None:
    await session.execute(update(appeals).where(appeals.c.case_id == case_id).values(**values, updated_at=func.now()))


# What other services' events leave on each appeal, one row version per case (see
# ``intake.handlers.follow_up``): the status reported, unless a later one is shown already
# (events of different producers may arrive out of order); the units asked to handle it, kept
# as a set (a replayed event adds nothing), joined by the unit separator; and the unit an
# order names as now handling it. A case with only an older status is not written at all.
_FOLLOW_UP = text("""
UPDATE appeals AS a
SET status = CASE WHEN a.updated_at <= v.at THEN v.status ELSE a.status END,
    updated_at = CASE WHEN a.updated_at <= v.at THEN v.at ELSE a.updated_at END,
    handler_units = CASE WHEN v.units IS NULL THEN a.handler_units
        ELSE array(SELECT DISTINCT unnest(a.handler_units || string_to_array(v.units, chr(31))::varchar(64)[])) END,
    handler_unit = coalesce(v.current_unit, a.handler_unit)
FROM unnest(CAST(:case_ids AS text[]), CAST(:statuses AS text[]), CAST(:ats AS timestamptz[]),
            CAST(:units AS text[]), CAST(:currents AS text[])) AS v(case_id, status, at, units, current_unit)
WHERE a.case_id = v.case_id AND (a.updated_at <= v.at OR v.units IS NOT NULL)
""")


async def apply_follow_up(
    session: AsyncSession, statuses: dict[str, tuple[str, datetime]], handlers: dict[str, tuple[list[str], str | None]]
) -> None:
    """``statuses``: ``{case_id: (status, at)}``; ``handlers``: ``{case_id: (units asked, unit
    now handling or None)}`` — see ``intake.handlers.follow_up``."""
    case_ids = list(statuses.keys() | handlers.keys())
    if not case_ids:
        return
    no_status, no_units = (None, None), (None, None)
    await session.execute(_FOLLOW_UP, {
        "case_ids": case_ids,
        "statuses": [statuses.get(c, no_status)[0] for c in case_ids],
        "ats": [statuses.get(c, no_status)[1] for c in case_ids],
        "units": ["\x1f".join(handlers[c][0]) if c in handlers else None for c in case_ids],
        "currents": [handlers.get(c, no_units)[1] for c in case_ids],
    })  # fmt: skip


async def staff_list(
    session: AsyncSession,
    *,
    places: list[tuple[str, list[str]]] | None,
    units: list[str] | None,
    unplaced: bool = False,
    status: str | None,
    township: str | None,
    since: datetime | None,
    before: tuple[datetime, str] | None,
    limit: int,
) -> list[Any]:
    """Appeals for staff, newest first: ``places`` are (column, codes) pairs of the caller's area
    (any one matching lists the row),
    ``units`` the departments whose cases it may see, ``unplaced`` adds the appeals placed
    nowhere yet (the centre's triage queue); none of them: everything (the auditor)."""
    query = select(
        appeals.c.case_id, appeals.c.tracking_no, appeals.c.title, appeals.c.status, appeals.c.channel,
        appeals.c.category, appeals.c.subject_class, appeals.c.urgency, appeals.c.county, appeals.c.township,
        appeals.c.village, appeals.c.grid, appeals.c.lat, appeals.c.lng, appeals.c.handler_unit,
        appeals.c.merged_into, appeals.c.created_at, appeals.c.updated_at,
    )  # fmt: skip
    seen = []
    for column, codes in places or ():
        seen.append(appeals.c[column].in_(codes))
    if units is not None:
        seen.append(appeals.c.handler_units.overlap(cast(units, ARRAY(String(64)))))
        seen.append(appeals.c.first_unit.in_(units))  # 首问负责制: the unit that first learned of it
    if unplaced:
        seen.append(and_(appeals.c.county.is_(None), appeals.c.township.is_(None), func.cardinality(appeals.c.handler_units) == 0))
    if seen:
        query = query.where(or_(*seen))
    if status:
        query = query.where(appeals.c.status == status)
    if township:
        query = query.where(appeals.c.township == township)
    if since is not None:
        query = query.where(appeals.c.created_at >= since)
    return list((await session.execute(newest_first(query, before, limit))).all())


async def add_timeline_entries(session: AsyncSession, entries: list[dict[str, Any]]) -> None:
    if entries:
        await session.execute(_INSERT_TIMELINE, entries)


async def get_timeline(session: AsyncSession, case_id: str) -> list[Any]:
    """A case's timeline in the order it happened: by ``seq``, never by time (one command's
    events share an instant, and a tie broken by event id is a coin toss)."""
    query = select(timeline).where(timeline.c.case_id == case_id).order_by(timeline.c.seq)
    return list((await session.execute(query)).all())


async def remember_nonce(session: AsyncSession, client_id: str, nonce: str, expires_at: datetime) -> bool:
    """False when this nonce was seen before (a replayed request)."""
    await session.execute(delete(request_nonces).where(request_nonces.c.expires_at < func.now()))
    result = await session.execute(
        pg_insert(request_nonces)
        .values(client_id=client_id, nonce=nonce, expires_at=expires_at)
        .on_conflict_do_nothing()
        .returning(request_nonces.c.nonce)
    )
    return result.first() is not None


async def search(
    session: AsyncSession,
    *,
    ids: list[str] | None,
    subject_classes: list[str] | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    statuses: tuple[str, ...],
    publishing: Mapping[str, frozenset[str]] | None,
) -> list[Any]:
    """Open311 request search (newest first): appeals in ``statuses``, of the counties in
    ``publishing`` with their subject classes ("*": every class); None: every county."""
    query = select(appeals).where(appeals.c.status.in_(statuses))
    if publishing is not None:
        query = query.where(
            or_(
                false(),
                *(
                    appeals.c.county == county if "*" in classes
                    else and_(appeals.c.county == county, appeals.c.subject_class.in_(sorted(classes)))
                    for county, classes in publishing.items()
                ),
            )
        )  # fmt: skip
    if ids:
        query = query.where(appeals.c.case_id.in_(ids))
    if subject_classes:
        query = query.where(appeals.c.subject_class.in_(subject_classes))
    if start is not None:
        query = query.where(appeals.c.created_at >= start)
    if end is not None:
        query = query.where(appeals.c.created_at <= end)
    return list((await session.execute(query.order_by(appeals.c.created_at.desc()).limit(limit))).all())
