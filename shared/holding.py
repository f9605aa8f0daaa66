"""Events that arrive before their cause: held per case, applied when the cause arrives.

Kafka keeps one producer's order per case (the key), not the order between producers: two
relays race, and a broker refilled after a loss can show dispatch's ``case.dispatched`` of a
case before intake's ``case.received``. A service declares, per event type, the types it
must have applied for the same case first (``Requires``; notify: anything but
``case.received`` needs ``case.received``, which says who the citizen is and how to reach
them). The consumer (``shared.consumer``) then

- holds an event whose causes are not all known yet: a row in ``held_events`` (not in the
  inbox, so it is applied, once, when released) instead of applying it;
- records the cause types it applies in ``case_causes``;
- after applying any event of a case, applies that case's held events whose causes are now
  known, in the order they were held (the topic's order);
- dead-letters an event held too long (``hold_seconds``), one whose case holds too many
  (``hold_per_case``) or when too many are held in all (``hold_total``), and a released one
  that keeps failing (``max_attempts``), into ``dead_letters`` where ops sees the others.

The decision is the pure ``waiting_for``; the rest is its bookkeeping in the database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import case_causes, held_events
from shared.events import EventBase

# event type -> the event types of the same case that must have been applied before it
Requires = Mapping[str, frozenset[str]]

# A case this service knew before holding existed (plumbing_0004): every cause counts as known.
ALL_KNOWN = "*"


def waiting_for(event: EventBase, requires: Requires, known: set[str]) -> frozenset[str]:
    """The causes ``event`` still waits for, given the cause types known for its case
    (empty: apply it now). An event about no case never waits."""
    if not event.case_scoped or event.case_id is None or ALL_KNOWN in known:
        return frozenset()
    return requires.get(event.type, frozenset()) - known


def cause_types(requires: Requires) -> frozenset[str]:
    """The types some other type waits for: the only ones worth recording per case."""
    return frozenset().union(*requires.values()) if requires else frozenset()


def requiring_all_but(handled: Iterable[str], causes: frozenset[str], *, exempt: Iterable[str] = ()) -> dict[str, frozenset[str]]:
    """Every handled type other than the causes themselves (and ``exempt``) waits for ``causes``."""
    skip = set(causes) | set(exempt)
    return {t: causes for t in handled if t not in skip}


async def known_causes(session: AsyncSession, case_ids: Iterable[str]) -> dict[str, set[str]]:
    ids = sorted(set(case_ids))
    known: dict[str, set[str]] = {case_id: set() for case_id in ids}
    if ids:
        rows = await session.execute(
            select(case_causes.c.case_id, case_causes.c.event_type).where(case_causes.c.case_id.in_(ids))
        )
        for case_id, event_type in rows:
            known[case_id].add(event_type)
    return known


async def record_causes(session: AsyncSession, pairs: Iterable[tuple[str, str]]) -> None:
    rows = [{"case_id": case_id, "event_type": t} for case_id, t in sorted(set(pairs))]
    if rows:
        await session.execute(pg_insert(case_causes).on_conflict_do_nothing(), rows)


@dataclass
class Held:
    """A held event as stored: enough to apply it, or to dead-letter it as it came."""

    id: int
    case_id: str
    event_id: uuid.UUID
    event_type: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    headers: list[list[str]]
    body: bytes | None
    tries: int


def _held(row: Any) -> Held:
    return Held(**{name: row._mapping[name] for name in Held.__dataclass_fields__})


async def counts(session: AsyncSession, case_id: str) -> tuple[int, int]:
    """(held for this case, held in all)."""
    for_case = func.count().filter(held_events.c.case_id == case_id)
    row = (await session.execute(select(for_case, func.count()).select_from(held_events))).one()
    return int(row[0]), int(row[1])


async def hold(session: AsyncSession, *, event: EventBase, topic: str, partition: int, offset: int,
               key: bytes | None, headers: list[list[str]], body: bytes | None) -> None:  # fmt: skip
    """Hold ``event`` (a redelivery of an event already held changes nothing)."""
    await session.execute(
        pg_insert(held_events)
        .values(case_id=event.case_id, event_id=event.id, event_type=event.type, topic=topic, partition=partition,
                offset=offset, key=key, headers=headers, body=body)  # fmt: skip
        .on_conflict_do_nothing(index_elements=["event_id"])
    )


def producer_of(headers: list[list[str]]) -> str:
    """The producer of a held event, from its ``ce_source`` header as stored."""
    source = dict((k, v) for k, v in headers).get("ce_source", "")
    return source.rsplit("/", 1)[-1]


async def producers_held(session: AsyncSession, case_ids: Iterable[str]) -> set[tuple[str, str]]:
    """(case, producer) pairs with an event held: a later event of that producer for that
    case must wait behind it, or it would overtake its own producer's earlier event."""
    ids = sorted(set(case_ids))
    if not ids:
        return set()
    rows = await session.execute(select(held_events.c.case_id, held_events.c.headers).where(held_events.c.case_id.in_(ids)))
    return {(case_id, producer_of(headers)) for case_id, headers in rows}


async def cases_with_held(session: AsyncSession, case_ids: Iterable[str]) -> list[str]:
    ids = sorted(set(case_ids))
    if not ids:
        return []
    rows = await session.execute(select(held_events.c.case_id).where(held_events.c.case_id.in_(ids)).distinct())
    return sorted(rows.scalars())


async def held_of(session: AsyncSession, case_ids: Iterable[str]) -> list[Held]:
    """The cases' held events in the order they were held, locked (one releaser at a time)."""
    ids = sorted(set(case_ids))
    rows = await session.execute(
        select(held_events).where(held_events.c.case_id.in_(ids)).order_by(held_events.c.id).with_for_update()
    )
    return [_held(row) for row in rows]


async def release(session: AsyncSession, held_id: int) -> None:
    await session.execute(delete(held_events).where(held_events.c.id == held_id))


async def failed(session: AsyncSession, held_id: int, error: str) -> None:
    await session.execute(
        update(held_events).where(held_events.c.id == held_id).values(tries=held_events.c.tries + 1, error=error[:4000])
    )


async def expired(session: AsyncSession, older_than_seconds: float, limit: int = 500) -> list[Held]:
    """Events held longer than allowed, locked and taken out of ``held_events`` (the caller
    dead-letters them in the same transaction)."""
    too_old = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, older_than_seconds)
    rows = (
        await session.execute(
            select(held_events).where(held_events.c.first_held_at < too_old).order_by(held_events.c.id)
            .limit(limit).with_for_update(skip_locked=True)
        )
    ).all()
    found = [_held(row) for row in rows]
    if found:
        await session.execute(delete(held_events).where(held_events.c.id.in_([h.id for h in found])))
    return found


async def summary(session: AsyncSession) -> tuple[int, float]:
    """(events held, age in seconds of the oldest; 0 when none) for the metrics."""
    row = (
        await session.execute(
            select(func.count(), func.coalesce(func.extract("epoch", func.now() - func.min(held_events.c.first_held_at)), 0))
        )
    ).one()
    return int(row[0]), float(row[1])

