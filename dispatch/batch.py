"""Dispatch's one event handler (``shared.consumer``): a batch of events applied as a set;
one event is a batch of one.

At 8 a.m. on a Monday intake files hundreds of appeals a second, and each brings dispatch
four events (received, accepted, triaged, and its own dispatched coming back). Event by
event that is a dozen statements per case; here a run of events costs a handful per batch:

1. ``case_status`` for every event of the run in one statement (``shared.case_status``);
2. the run's cases read once, locked, with the orders they have already (one per unit and
   round: ``orders_once_per_round``);
3. intake's facts folded into each case in topic order (``handlers.case_facts``), and at
   each ``case.triaged`` the decision on the case as it stands at that event: dispatchable,
   the catalogue names an owner, and that owner has no order of the round yet → an order
   is opened; an order already there opens nothing and leaves the case as it was;
4. the cases written back in one upsert, the new orders in one insert, their
   ``case.dispatched`` events emitted in order.

A citizen's unsatisfied rating that reopens a case (重办) reads and writes the case and its
orders on its own (``service.reopen_after_rating``): it ends the run before it, so the
order of effects is the topic's.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from dispatch import service
from dispatch import handlers
from dispatch.handlers import FACT_TYPES, acts_on, case_facts
from dispatch.models import cases, orders
from dispatch.service import DispatchContext
from shared.case_status import case_status_many
from shared.consumer import BatchHandler
from shared.db import UnitOfWork
from shared.events import EventBase, Satisfaction, system_actor, utcnow

# What a ``cases`` row holds before any fact (the table's defaults).
NEW_CASE: dict[str, Any] = {column.name: None for column in cases.columns} | {
    "solved_on_spot": False, "rejected": False, "triaged": False, "stage": "received", "redo_round": 0,
}  # fmt: skip
# The columns intake's facts and an automatic order write; the rest of a row is left as it is.
WRITTEN = (
    "tracking_no", "title", "description", "channel", "subject_class", "category", "urgency", "county", "township",
    "village", "grid", "street", "solved_on_spot", "rejected", "merged_into", "triaged", "received_at", "stage",
    "first_unit", "first_unit_name", "received_by", "resolve_due_at", "closed_at", "public_summary",
)  # fmt: skip

_LOCK_CASES = (
    select(cases).where(cases.c.case_id.in_(bindparam("ids", expanding=True))).order_by(cases.c.case_id).with_for_update()
)
_upsert = pg_insert(cases)
_UPSERT_CASES = _upsert.on_conflict_do_update(
    index_elements=["case_id"], set_={**{c: _upsert.excluded[c] for c in WRITTEN}, "updated_at": func.now()}
)
# The orders the catalogue could collide with: one per case, unit and round (no call).
_OPEN_ORDERS = select(orders.c.case_id, orders.c.unit, orders.c.redo_round).where(
    orders.c.case_id.in_(bindparam("ids", expanding=True)), orders.c.call_id.is_(None)
)
_SEQUENCES = text("SELECT nextval('order_seq') FROM generate_series(1, :n)")
_INSERT_ORDERS = pg_insert(orders).on_conflict_do_nothing().returning(orders.c.order_no)


def make_batch_handler(ctx: DispatchContext) -> BatchHandler:
    """Dispatch's handler, bound to its context (the org directory, settings)."""

    async def apply_batch(uow: UnitOfWork, events: list[EventBase]) -> None:
        run: list[EventBase] = []
        for event in events:
            if not redo_asked(event):
                run.append(event)
                continue
            await apply_run(uow, ctx, run)
            run = []
            status = case_status_many([event])
            if status is not None:
                await uow.session.execute(*status)
            await service.reopen_after_rating(uow, ctx, event)
        await apply_run(uow, ctx, run)

    return apply_batch


def redo_asked(event: EventBase) -> bool:
    """A citizen's rating that may send the case back (重办): unsatisfied, and not a survey."""
    return (
        event.type == "case.rated" and acts_on(event)
        and event.payload.rating is Satisfaction.unsatisfied and event.payload.source != "questionnaire"  # type: ignore[attr-defined]
    )  # fmt: skip


async def apply_run(uow: UnitOfWork, ctx: DispatchContext, run: list[EventBase]) -> None:
    """Events that only record facts (or only move ``case_status``), as a set."""
    if not run:
        return
    session = uow.session
    status = case_status_many(run)
    if status is not None:
        await session.execute(*status)
    facts = [event for event in run if event.type in FACT_TYPES and acts_on(event)]
    if not facts:
        return
    ids = sorted({event.case_id for event in facts})
    stored = {row.case_id: dict(row._mapping) for row in await session.execute(_LOCK_CASES, {"ids": ids})}
    # Most runs (received, accepted) open no order and need not read the orders there are.
    may_open = any(map(may_open_order, facts))
    existing = {tuple(row) for row in await session.execute(_OPEN_ORDERS, {"ids": ids})} if may_open else set()
    rows, openings = fold(ctx, facts, stored, existing)
    await session.execute(_UPSERT_CASES, [{"case_id": case_id, **{c: row[c] for c in WRITTEN}} for case_id, row in rows.items()])
    if openings:
        await open_orders(uow, ctx, openings)


def may_open_order(event: EventBase) -> bool:
    """Whether ``fold`` may open an order at this event: a triage, or a task item's receipt.
    The fold asks it first, so its run's orders are read only when it can be true."""
    return event.type == "case.triaged" or handlers.task_of(event) is not None


def fold(
    ctx: DispatchContext, facts: list[EventBase], stored: dict[str, dict[str, Any]], existing: set[tuple[str, str, int]]
) -> tuple[dict[str, dict[str, Any]], list[tuple[Any, str, EventBase]]]:
    """Each case's row after the facts, in topic order, and the orders the catalogue opens
    on the way: (the case as it stood at its ``case.triaged``, the owner, that event) — or,
    for a task item, at its ``case.received`` (the item's unit).
    ``existing``: the (case, unit, round) of the orders already there (without a call); an
    opening adds its own, so a second triage naming the same owner opens nothing either."""
    existing = set(existing)
    rows: dict[str, dict[str, Any]] = {}
    openings: list[tuple[Any, str, EventBase]] = []
    for event in facts:
        row = rows.get(event.case_id)
        if row is None:
            row = rows[event.case_id] = dict(stored.get(event.case_id) or {**NEW_CASE, "case_id": event.case_id})
        row.update(case_facts(event))
        if not may_open_order(event):
            continue
        task = handlers.task_of(event)
        if task is not None and service.dispatchable(SimpleNamespace(**row)):
            # 自上而下的任务: the item goes straight to its unit, no catalogue guess.
            existing.add((event.case_id, task.unit, row["redo_round"]))
            openings.append((SimpleNamespace(**row), task.unit, event))
            row["stage"] = "dispatched"
        elif event.type == "case.triaged":
            case = SimpleNamespace(**row)
            owner = service.catalogue_owner(ctx, case) if service.dispatchable(case) and not service.held_at_window(case) else None
            # An order of this unit and round already there (returned, say): nothing opens,
            # and the case stays as it was.
            if owner is not None and (case.case_id, owner, case.redo_round) not in existing:
                existing.add((case.case_id, owner, case.redo_round))
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
            resolution_class=handlers.order_class(case, event), redo_round=case.redo_round,
        )  # fmt: skip
        for (case, owner, event), sequence in zip(openings, sorted(sequences), strict=True)
    ]
    inserted = set((await session.execute(_INSERT_ORDERS, new)).scalars())
    if len(inserted) != len(new):
        # Written meanwhile by a hand dispatch of a case this batch saw as new (unlocked):
        # fail the batch; applied again, the fold sees that order and opens nothing.
        raise RuntimeError(f"{len(new) - len(inserted)} of {len(new)} orders appeared while the batch ran")
    for order, (_, _, event) in zip(new, openings, strict=True):
        uow.emit(service.dispatched_event(order, actor, caused_by=event))
