"""A consumer's partition batch applied with the recipients held in memory
(``shared.consumer``'s batch handler).

Each new appeal brings notify four events, and three of them touch the case's recipient
row, two of them read it back to plan messages: one by one that is nine statements a case.
Here a run of events costs a few per batch:

1. ``case_status`` for every event of the batch in one statement (``shared.case_status``);
2. the run's recipient rows read once, locked (as ``case.closed`` locks its row);
3. each event applied to the rows in memory with the one-by-one rules — what intake says
   of who to tell (``handlers.recipient_facts``, None never overwriting), the unit an
   order names (``with_unit``, the rule of ``repository.add_unit``), and the messages it
   causes planned from the row as it stands at that event (``service.message_rows``);
4. the rows written back in one upsert, the messages in one insert.

``case.closed`` and ``case.reopened`` (callbacks, rating tokens, a new round) end the run
and go through their one-by-one handlers, so the order of effects is the topic's.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from notify import repository
from notify.handlers import MESSAGE_EVENTS, RECIPIENT_FACTS, Handler, recipient_facts
from notify.models import recipients
from notify.service import NotifyContext, message_rows
from shared.case_status import case_status_many
from shared.consumer import BatchHandler, apply_in_runs
from shared.db import UnitOfWork
from shared.events import EventBase

# Applied in memory; any other type with a handler is applied one by one in its place.
IN_MEMORY = frozenset({*RECIPIENT_FACTS, "case.dispatched", *MESSAGE_EVENTS})

# What a recipient row holds before anything is known (the table's defaults).
NEW_ROW: dict[str, Any] = {column.name: None for column in recipients.columns} | {"round": 0, "units": [], "unit_names": {}}
COLUMNS = tuple(column.name for column in recipients.columns if column.name != "updated_at")

_LOCK = (
    select(recipients)
    .where(recipients.c.case_id.in_(bindparam("ids", expanding=True)))
    .order_by(recipients.c.case_id)
    .with_for_update()
)
_upsert = pg_insert(recipients)
_UPSERT = _upsert.on_conflict_do_update(
    index_elements=["case_id"], set_={**{c: _upsert.excluded[c] for c in COLUMNS if c != "case_id"}, "updated_at": func.now()}
)


def with_unit(row: dict[str, Any], round_: int, unit: str, unit_name: str | None) -> None:
    """``repository.add_unit`` on a row in memory: a unit handles the case's current round
    (a later round starts the list afresh; a late order of an earlier round changes no list)."""
    if row["round"] < round_:
        row["units"] = [unit]
    elif row["round"] == round_ and unit not in row["units"]:
        row["units"] = [*row["units"], unit]
    row["round"] = max(row["round"], round_)
    row["unit_names"] = {**row["unit_names"], unit: unit_name or unit}


def make_batch_handler(ctx: NotifyContext, own: dict[str, Handler]) -> BatchHandler:
    """The batch handler over notify's own handlers (``handlers.make_own_handlers``)."""

    def alone(event: EventBase) -> Handler | None:
        return None if event.type in IN_MEMORY else own.get(event.type)

    async def as_set(uow: UnitOfWork, run: list[EventBase]) -> None:
        await apply_run(uow, ctx, [event for event in run if event.type in IN_MEMORY])

    async def apply_batch(uow: UnitOfWork, events: list[EventBase]) -> None:
        status = case_status_many(events)
        if status is not None:
            await uow.session.execute(*status)
        await apply_in_runs(uow, events, as_set=as_set, alone=alone)

    return apply_batch


async def apply_run(uow: UnitOfWork, ctx: NotifyContext, run: list[EventBase]) -> None:
    """Events of the types applied in memory (``IN_MEMORY``), as a set."""
    if not run:
        return
    session = uow.session
    ids = sorted({event.case_id for event in run})
    stored = {row["case_id"]: dict(row) for row in (await session.execute(_LOCK, {"ids": ids})).mappings()}
    touched: dict[str, dict[str, Any]] = {}
    messages: list[dict[str, Any]] = []
    for event in run:
        case_id = event.case_id
        row = touched.get(case_id) or stored.get(case_id)
        if event.type in RECIPIENT_FACTS or event.type == "case.dispatched":
            row = touched[case_id] = dict(row or {**NEW_ROW, "case_id": case_id})
            if event.type == "case.dispatched":
                p = event.payload  # type: ignore[attr-defined]
                with_unit(row, p.redo_round, p.unit, p.unit_name)
            else:
                row.update({k: v for k, v in recipient_facts(ctx, event).items() if v is not None})
        if event.type in MESSAGE_EVENTS or event.type == "case.dispatched":
            messages += message_rows(ctx, event, row)
    if touched:
        await session.execute(_UPSERT, [{c: row[c] for c in COLUMNS} for row in touched.values()])
    await repository.insert_messages(session, messages)
