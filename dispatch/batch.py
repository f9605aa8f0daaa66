"""A consumer's partition batch applied as a set (``shared.consumer``'s batch handler).

At 8 a.m. on a Monday intake files hundreds of appeals a second, and each brings dispatch
four events (received, accepted, triaged, and its own dispatched coming back). One by one
that is a dozen statements per case; here a run of events costs a handful per batch:

1. ``case_status`` for every event of the run in one statement (``shared.case_status``);
2. the run's cases read once, locked (as the one-by-one path locks a case before dispatching);
3. intake's facts folded into each case in topic order (``handlers.case_facts``), and at
   each ``case.triaged`` the same decision as the one-by-one path, on the case as it stands
   at that event: dispatchable, and the catalogue names an owner → an order is opened;
4. the cases written back in one upsert, the new orders in one insert, their
   ``case.dispatched`` events emitted in order.

Events that need more than facts — a citizen's rating that reopens a case — end the run
and go through their one-by-one handler, so the order of effects is the topic's.

An order that already exists (the one-by-one path then dispatches nothing and leaves the
case as it was) raises ``ReplayOneByOne``: the consumer rolls the batch back and applies it
event by event, which decides that rare case exactly.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from dispatch import service
from dispatch.handlers import FACT_TYPES, Handler, acts_on, case_facts, resolution_class_of
from dispatch.models import cases, orders
from dispatch.service import DispatchContext
from shared.case_status import case_status_many
from shared.consumer import BatchHandler, apply_in_runs
from shared.db import UnitOfWork
from shared.events import EventBase, system_actor, utcnow

# What a ``cases`` row holds before any fact (the table's defaults).
NEW_CASE: dict[str, Any] = {column.name: None for column in cases.columns} | {
    "solved_on_spot": False, "rejected": False, "triaged": False, "stage": "received", "redo_round": 0,
}  # fmt: skip
# The columns intake's facts and an automatic order write; the rest of a row is left as it is.
WRITTEN = (
    "tracking_no", "title", "description", "channel", "subject_class", "category", "urgency", "county", "township",
    "village", "grid", "street", "solved_on_spot", "rejected", "merged_into", "triaged", "received_at", "stage",
)  # fmt: skip

# Types whose handler does more than record facts: applied one by one, in their place.
ONE_BY_ONE = frozenset(("case.rated",))

_LOCK_CASES = (
    select(cases).where(cases.c.case_id.in_(bindparam("ids", expanding=True))).order_by(cases.c.case_id).with_for_update()
)
_upsert = pg_insert(cases)
_UPSERT_CASES = _upsert.on_conflict_do_update(
    index_elements=["case_id"], set_={**{c: _upsert.excluded[c] for c in WRITTEN}, "updated_at": func.now()}
)
_SEQUENCES = text("SELECT nextval('order_seq') FROM generate_series(1, :n)")
_INSERT_ORDERS = pg_insert(orders).on_conflict_do_nothing().returning(orders.c.order_no)


class ReplayOneByOne(Exception):
    """The batch met a case that only the one-by-one path decides exactly."""


def make_batch_handler(ctx: DispatchContext, handlers: dict[str, Handler]) -> BatchHandler:
    """The batch handler over ``handlers`` (``dispatch.handlers.make_handlers``)."""

    def alone(event: EventBase) -> Handler | None:
        return handlers[event.type] if event.type in ONE_BY_ONE and acts_on(event) else None

    async def as_set(uow: UnitOfWork, run: list[EventBase]) -> None:
        await apply_run(uow, ctx, run)

    async def apply_batch(uow: UnitOfWork, events: list[EventBase]) -> None:
        mark = len(uow.pending)
        savepoint = await uow.session.begin_nested()
        try:
            await apply_in_runs(uow, events, as_set=as_set, alone=alone)
            await savepoint.commit()
        except ReplayOneByOne:
            # Transitional: the consumer no longer replays one by one, so the batch does it here.
            await savepoint.rollback()
            del uow.pending[mark:]
            for event in events:
                await handlers[event.type](event, uow)

    return apply_batch


async def apply_run(uow: UnitOfWork, ctx: DispatchContext, run: list[EventBase]) -> None:
    """Events that only record facts (or only move ``case_status``), as a set."""
    session = uow.session
    status = case_status_many(run)
    if status is not None:
        await session.execute(*status)
    facts = [event for event in run if event.type in FACT_TYPES and acts_on(event)]
    if not facts:
        return
    ids = sorted({event.case_id for event in facts})
    stored = {row.case_id: dict(row._mapping) for row in await session.execute(_LOCK_CASES, {"ids": ids})}
    rows, openings = fold(ctx, facts, stored)
    await session.execute(_UPSERT_CASES, [{"case_id": case_id, **{c: row[c] for c in WRITTEN}} for case_id, row in rows.items()])
    if openings:
        await open_orders(uow, ctx, openings)


def fold(
    ctx: DispatchContext, facts: list[EventBase], stored: dict[str, dict[str, Any]]
) -> tuple[dict[str, dict[str, Any]], list[tuple[Any, str, EventBase]]]:
    """Each case's row after the facts, in topic order, and the orders the catalogue opens
    on the way: (the case as it stood at its ``case.triaged``, the owner, that event)."""
    rows: dict[str, dict[str, Any]] = {}
    openings: list[tuple[Any, str, EventBase]] = []
    for event in facts:
        row = rows.get(event.case_id)
        if row is None:
            row = rows[event.case_id] = dict(stored.get(event.case_id) or {**NEW_CASE, "case_id": event.case_id})
        row.update(case_facts(event))
        if event.type == "case.triaged":
            case = SimpleNamespace(**row)
            owner = service.catalogue_owner(ctx, case) if service.dispatchable(case) else None
            if owner is not None:
                openings.append((case, owner, event))
                row["stage"] = "dispatched"
    return rows, openings


async def open_orders(uow: UnitOfWork, ctx: DispatchContext, openings: list[tuple[Any, str, EventBase]]) -> None:
    """The catalogue's orders in one insert, numbered in topic order, and their events."""
    session = uow.session
    sequences = (await session.execute(_SEQUENCES, {"n": len(openings)})).scalars().all()
    actor = system_actor("dispatch")
    new = [
        service.new_order(
            ctx, case, sequence=sequence, unit=owner, actor=actor, at=utcnow(), automatic=True,
            resolution_class=resolution_class_of(case), redo_round=case.redo_round,
        )  # fmt: skip
        for (case, owner, _), sequence in zip(openings, sorted(sequences), strict=True)
    ]
    inserted = set((await session.execute(_INSERT_ORDERS, new)).scalars())
    if len(inserted) != len(new):
        # One of them was there already: the one-by-one path leaves that case as it was.
        raise ReplayOneByOne(f"{len(new) - len(inserted)} of {len(new)} orders exist already")
    for order, (_, _, event) in zip(new, openings, strict=True):
        uow.emit(service.dispatched_event(order, actor, caused_by=event))
