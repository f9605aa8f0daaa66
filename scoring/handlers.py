"""Scoring's event handlers: ``async def handle(event, uow)``.

Each handler turns one lifecycle event into facts (``scoring.models``), keyed so that the
same event applied twice changes nothing even without the inbox (upserts on natural keys,
``greatest``/``coalesce`` on times) — which is what makes a replay of the topic rebuild the
same numbers. All times are the events' own ``occurred_at``, never the processing time.
"""

from __future__ import annotations

from sqlalchemy import case, func, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from scoring import org
from scoring.models import calls, case_facts, case_ratings, grid_activity, sla_cards, unit_orders, unit_ratings
from shared.case_status import with_case_status
from shared.db import UnitOfWork
from shared.events import (
    CaseAccepted,
    CaseClosed,
    CaseDispatched,
    CaseMerged,
    CaseRated,
    CaseReceived,
    CaseRejected,
    CaseReopened,
    CaseResolved,
    CaseReturned,
    CaseSigned,
    CaseTriaged,
    CountyCalled,
    EventBase,
    GridActivity,
    SlaBreached,
    SlaWarning,
    UnitRated,
    WhistleBlown,
)


def _upsert_case(values: dict, **on_conflict) -> object:
    stmt = pg_insert(case_facts).values(**values)
    return stmt.on_conflict_do_update(index_elements=["case_id"], set_={k: v(stmt.excluded) for k, v in on_conflict.items()})


def _keep(column: str):
    """Keep what is there; fill it when empty (the first event that knows it wins)."""
    return lambda excluded: func.coalesce(case_facts.c[column], excluded[column])


def _take(column: str):
    """The newer event knows better (triage corrects the classification)."""
    return lambda excluded: func.coalesce(excluded[column], case_facts.c[column])


async def on_received(event: CaseReceived, uow: UnitOfWork) -> None:
    data = event.payload
    loc = data.location
    township = (loc.township if loc else None) or org.township_of(loc.grid if loc else None)
    values = {
        "case_id": event.case_id, "tracking_no": data.tracking_no, "channel": data.channel.value,
        "township": township, "county": org.county_of(township), "grid": loc.grid if loc else None,
        "subject_class": data.subject_class, "category": data.category.value if data.category else None,
        "received_at": event.occurred_at, "solved_on_spot": data.solved_on_spot,
    }
    cols = ("tracking_no", "channel", "township", "county", "grid", "subject_class", "category", "received_at")
    await uow.session.execute(
        _upsert_case(values, **{c: _keep(c) for c in cols}, solved_on_spot=lambda ex: ex.solved_on_spot)
    )


async def on_accepted(event: CaseAccepted, uow: UnitOfWork) -> None:
    await uow.session.execute(_upsert_case({"case_id": event.case_id, "accepted_at": event.occurred_at}, accepted_at=_keep("accepted_at")))


async def on_rejected(event: CaseRejected, uow: UnitOfWork) -> None:
    await uow.session.execute(_upsert_case({"case_id": event.case_id, "rejected_at": event.occurred_at}, rejected_at=_keep("rejected_at")))


async def on_merged(event: CaseMerged, uow: UnitOfWork) -> None:
    await uow.session.execute(
        _upsert_case({"case_id": event.case_id, "merged_into": event.payload.into_case_id}, merged_into=_take("merged_into"))
    )


async def on_triaged(event: CaseTriaged, uow: UnitOfWork) -> None:
    data = event.payload
    loc = data.location
    township = (loc.township if loc else None) or org.township_of(loc.grid if loc else None)
    county = data.region or org.county_of(township)
    values = {
        "case_id": event.case_id, "subject_class": data.subject_class, "category": data.category.value,
        "township": township, "county": county, "grid": loc.grid if loc else None,
    }
    await uow.session.execute(_upsert_case(values, **{c: _take(c) for c in ("subject_class", "category", "township", "county", "grid")}))


async def on_resolved(event: CaseResolved, uow: UnitOfWork) -> None:
    """The case's latest answer decides 解决; the unit's order records its own."""
    data = event.payload
    stmt = pg_insert(case_facts).values(case_id=event.case_id, resolved_at=event.occurred_at, solved=data.solved)
    newer = (case_facts.c.resolved_at.is_(None)) | (stmt.excluded.resolved_at >= case_facts.c.resolved_at)
    await uow.session.execute(
        stmt.on_conflict_do_update(
            index_elements=["case_id"],
            set_={
                "solved": func.coalesce(_if(newer, stmt.excluded.solved, case_facts.c.solved), stmt.excluded.solved),
                "resolved_at": func.greatest(case_facts.c.resolved_at, stmt.excluded.resolved_at),
            },
        )
    )
    order_newer = unit_orders.c.resolved_at.is_(None) | (unit_orders.c.resolved_at <= event.occurred_at)
    await uow.session.execute(
        update(unit_orders)
        .where(unit_orders.c.order_no == data.order_no, order_newer)
        .values(resolved_at=event.occurred_at, solved=data.solved)
    )


def _if(condition, then, otherwise):
    return case((condition, then), else_=otherwise)


async def on_closed(event: CaseClosed, uow: UnitOfWork) -> None:
    await uow.session.execute(
        _upsert_case({"case_id": event.case_id, "closed_at": event.occurred_at}, closed_at=lambda ex: func.greatest(case_facts.c.closed_at, ex.closed_at))
    )


async def on_reopened(event: CaseReopened, uow: UnitOfWork) -> None:
    await uow.session.execute(
        _upsert_case(
            {"case_id": event.case_id, "current_round": event.payload.redo_round},
            current_round=lambda ex: func.greatest(case_facts.c.current_round, ex.current_round),
        )
    )


async def on_dispatched(event: CaseDispatched, uow: UnitOfWork) -> None:
    data = event.payload
    await uow.session.execute(
        pg_insert(unit_orders)
        .values(
            order_no=data.order_no, case_id=event.case_id, unit=data.unit, unit_name=data.unit_name,
            role=data.role, redo_round=data.redo_round, dispatched_at=event.occurred_at,
        )
        .on_conflict_do_nothing()
    )


async def on_signed(event: CaseSigned, uow: UnitOfWork) -> None:
    await uow.session.execute(
        update(unit_orders)
        .where(unit_orders.c.order_no == event.payload.order_no)
        .values(signed_at=func.coalesce(unit_orders.c.signed_at, event.occurred_at))
    )


async def on_returned(event: CaseReturned, uow: UnitOfWork) -> None:
    await uow.session.execute(
        update(unit_orders)
        .where(unit_orders.c.order_no == event.payload.order_no)
        .values(returned_at=func.coalesce(unit_orders.c.returned_at, event.occurred_at))
    )


async def on_warning(event: SlaWarning, uow: UnitOfWork) -> None:
    data = event.payload
    if data.level != "yellow":
        return  # an earlier threshold (50%, 75%) is a reminder, not a yellow card
    await _card(event, uow, "yellow")


async def on_breached(event: SlaBreached, uow: UnitOfWork) -> None:
    """A red card; on the unit's sign / resolve clock it also marks the order late.

    On time is decided by comparing event times, not by arrival order: an order is late when
    a breached deadline falls after it was dispatched and before it was signed (resolved),
    whether the breach arrives before or after the signature."""
    data = event.payload
    await _card(event, uow, "red")
    column = {"sign": "signed_at", "resolve": "resolved_at"}.get(data.clock.value)
    if column is None:
        return
    flag = "sign_late" if column == "signed_at" else "resolve_late"
    done = unit_orders.c[column]
    where = [unit_orders.c.case_id == event.case_id, unit_orders.c.dispatched_at <= data.due_at, done.is_(None) | (done > data.due_at)]
    if data.unit:
        where.append(unit_orders.c.unit == data.unit)
    await uow.session.execute(update(unit_orders).where(*where).values({flag: True}))


async def _card(event: SlaWarning | SlaBreached, uow: UnitOfWork, level: str) -> None:
    data = event.payload
    await uow.session.execute(
        pg_insert(sla_cards)
        .values(
            event_id=event.id, case_id=event.case_id, unit=data.unit, clock=data.clock.value, level=level,
            due_at=data.due_at, occurred_at=event.occurred_at,
        )
        .on_conflict_do_nothing()
    )


async def on_rated(event: CaseRated, uow: UnitOfWork) -> None:
    """The citizen's rating of one round; a later rating of the same round replaces an
    earlier one. Questionnaires are surveys, not the case's rating: they do not count."""
    data = event.payload
    if data.source == "questionnaire":
        return
    stmt = pg_insert(case_ratings).values(
        case_id=event.case_id, round=data.round, rating=data.rating.value, source=data.source,
        units=list(data.units), rated_at=event.occurred_at,
    )
    newer = stmt.excluded.rated_at >= case_ratings.c.rated_at
    await uow.session.execute(
        stmt.on_conflict_do_update(
            index_elements=["case_id", "round"],
            set_={c: stmt.excluded[c] for c in ("rating", "source", "units", "rated_at")},
            where=newer,
        )
    )


async def on_county_called(event: CountyCalled, uow: UnitOfWork) -> None:
    data = event.payload
    await _call(event, uow, data.call_id, data.township, list(data.units), "county_called")


async def on_whistle(event: WhistleBlown, uow: UnitOfWork) -> None:
    data = event.payload
    await _call(event, uow, data.call_id, data.township, [data.lead_unit, *data.co_units], "whistle")


async def _call(event: EventBase, uow: UnitOfWork, call_id: str, township: str, units: list[str], kind: str) -> None:
    await uow.session.execute(
        pg_insert(calls)
        .values(call_id=call_id, case_id=event.case_id, township=township, units=units, kind=kind, called_at=event.occurred_at)
        .on_conflict_do_nothing()
    )


async def on_unit_rated(event: UnitRated, uow: UnitOfWork) -> None:
    """Scoring's own two-way rating coming back from the topic (or a replay): the API wrote
    the row already in the same transaction as the event, so this is usually a no-op."""
    await uow.session.execute(pg_insert(unit_ratings).values(**unit_rating_row(event)).on_conflict_do_nothing())


def unit_rating_row(event: UnitRated) -> dict:
    data = event.payload
    return {
        "event_id": event.id, "direction": data.direction, "case_id": event.case_id, "call_id": data.call_id or "",
        "round": data.round, "rater_unit": data.rater_unit, "rated_unit": data.rated_unit,
        "rating": data.rating.value if data.rating else None, "score": data.score, "justified": data.justified,
        "complete": data.complete, "comment": data.comment, "rated_at": event.occurred_at,
    }


async def on_grid_activity(event: GridActivity, uow: UnitOfWork) -> None:
    data = event.payload
    township = org.township_of(data.grid)
    await uow.session.execute(
        pg_insert(grid_activity)
        .values(
            event_id=event.id, worker_id=data.worker_id, grid=data.grid, township=township,
            county=org.county_of(data.grid), kind=data.kind, count=data.count, occurred_at=event.occurred_at,
        )
        .on_conflict_do_nothing()
    )


FACT_HANDLERS = {
    "case.received": on_received,
    "case.accepted": on_accepted,
    "case.rejected": on_rejected,
    "case.merged": on_merged,
    "case.triaged": on_triaged,
    "case.dispatched": on_dispatched,
    "case.signed": on_signed,
    "case.returned": on_returned,
    "case.resolved": on_resolved,
    "case.closed": on_closed,
    "case.reopened": on_reopened,
    "case.rated": on_rated,
    "case.county_called": on_county_called,
    "case.whistle_blown": on_whistle,
    "sla.warning": on_warning,
    "sla.breached": on_breached,
    "unit.rated": on_unit_rated,
    "grid.activity": on_grid_activity,
}


# Every case-scoped event keeps case_status; the lifecycle facts and grid activity feed the scores.
HANDLERS = with_case_status(FACT_HANDLERS)
