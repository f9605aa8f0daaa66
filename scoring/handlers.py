"""Scoring's rules per event: which fact rows (``scoring.models``) each event writes.

``facts(event)`` turns one lifecycle event into rows, keyed so that the same event applied
twice changes nothing even without the inbox (upserts on natural keys, ``greatest``/
``coalesce`` on times) — which is what makes a replay of the topic rebuild the same numbers.
All times are the events' own ``occurred_at``, never the processing time.

The rows are for a few kinds of write (``Write``, ``scoring.batch``), each one set-based
statement; the case-level ones are folded per case (``scoring.plan``). The service's one
event handler, ``scoring.plan.apply_batch``, plans a batch of events — the live consumer's,
one event alone, or a rebuild's thousands — into those statements.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import DateTime, String, case, cast, exists, func, select, true, update
from sqlalchemy.dialects.postgresql import JSONB, insert as pg_insert

from scoring import org
from scoring.batch import CaseWrite, Write
from scoring.models import calls, case_ratings, grid_activity, sla_cards, unit_orders, unit_ratings
from shared.case_status import CASE_SCOPED_TYPES
from shared.db import dumps
from shared.events import EventBase, Role, UnitRated

# --------------------------------------------------------------------------- the writes
# Each is one set-based statement (scoring.batch): one row per event live, thousands in a rebuild.


def _types(table, names: Iterable[str]) -> dict:
    """Array types of the columns; strings without their length, so that a value too long is
    refused by the column as a one-row insert would be, not cut short by the cast."""
    return {name: String() if isinstance(table.c[name].type, String | JSONB) else table.c[name].type for name in names}


def _insert(table, columns: tuple[str, ...], v):
    """JSON columns travel as their text (rows hold ``dumps(value)``) and are cast back here."""
    values = (cast(v.c[c], JSONB) if isinstance(table.c[c].type, JSONB) else v.c[c] for c in columns)
    return pg_insert(table).from_select(list(columns), select(*values))


def _insert_once(name: str, table, columns: tuple[str, ...], key: tuple[str, ...], *, target: list[str] | None = None) -> Write:
    return Write(name, _types(table, columns), key, lambda v: _insert(table, columns, v).on_conflict_do_nothing(index_elements=target))


# The case-level facts (one ``case_facts`` row per case) are not written event by event:
# ``scoring.plan`` folds a batch's case rows per case and applies them with one MERGE, whose
# rules (keep the first, take the last, the latest answer decides 解决 …) are written there
# once. Here each kind is only a name that tags an event's row.
_PLACE = ("subject_class", "category", "township", "county", "grid")  # where a case is: received's, corrected by triage
CASE_RECEIVED = CaseWrite("case received")
CASE_ACCEPTED = CaseWrite("case accepted")
CASE_REJECTED = CaseWrite("case rejected")
CASE_MERGED = CaseWrite("case merged")
CASE_TRIAGED = CaseWrite("case triaged")
CASE_RESOLVED = CaseWrite("case resolved")
CASE_CLOSED = CaseWrite("case closed")
CASE_REOPENED = CaseWrite("case reopened")

_ORDER = ("order_no", "case_id", "unit", "unit_name", "role", "redo_round", "dispatched_at")


def _carded(clock: str, v):
    """Whether a red card kept for the case on ``clock`` falls due after the order was
    dispatched: SLA's card can be read before dispatch's order (two producers; a refilled
    topic), and then its mark (``_late``) found no order to mark. An order is neither signed
    nor answered when dispatched, so such a card makes it late, as the mark would have."""
    return exists().where(
        sla_cards.c.case_id == v.c.case_id, sla_cards.c.level == "red", sla_cards.c.clock == clock,
        sla_cards.c.due_at >= v.c.dispatched_at,
        sla_cards.c.unit.is_(None) | (sla_cards.c.unit == "") | (sla_cards.c.unit == v.c.unit),
    )


ORDER_DISPATCHED = Write(
    "order dispatched", _types(unit_orders, _ORDER), ("order_no",),
    lambda v: pg_insert(unit_orders).from_select(
        [*_ORDER, "sign_late", "resolve_late"], select(*(v.c[c] for c in _ORDER), _carded("sign", v), _carded("resolve", v))
    ).on_conflict_do_nothing(),
)  # fmt: skip
# ``by``: the person who acted (the event's actor, 个人绩效), None when a service did.
_AT = {"order_no": String(), "at": DateTime(timezone=True), "by": String()}


def _first_time(column: str, by: str):
    """The first time seen (and whoever acted then) is kept: a repeat changes nothing."""
    return lambda v: update(unit_orders).where(unit_orders.c.order_no == v.c.order_no).values({
        column: func.coalesce(unit_orders.c[column], v.c.at),
        by: case((unit_orders.c[column].is_(None), v.c.by), else_=unit_orders.c[by]),
    })


ORDER_SIGNED = Write("order signed", _AT, ("order_no",), _first_time("signed_at", "signed_by"))
ORDER_RETURNED = Write("order returned", _AT, ("order_no",), _first_time("returned_at", "returned_by"))
ORDER_RESOLVED = Write(
    "order resolved", {**_AT, "solved": unit_orders.c.solved.type}, ("order_no",),
    lambda v: update(unit_orders)
    .where(unit_orders.c.order_no == v.c.order_no, unit_orders.c.resolved_at.is_(None) | (unit_orders.c.resolved_at <= v.c.at))
    .values(resolved_at=v.c.at, solved=v.c.solved, resolved_by=v.c.by),
)  # fmt: skip


def person(event) -> str | None:
    """The person behind an event (its actor), not a service acting on its own."""
    actor = event.actor
    return None if actor is None or actor.role is Role.system else actor.id


def _late(column: str, flag: str):
    """On time is decided by comparing event times, not by arrival order: an order is late
    when a breached deadline falls after it was dispatched and before it was signed
    (resolved), whether the breach arrives before or after the signature."""
    done = unit_orders.c[column]
    return lambda v: update(unit_orders).where(
        unit_orders.c.case_id == v.c.case_id, unit_orders.c.dispatched_at <= v.c.due_at, done.is_(None) | (done > v.c.due_at),
        v.c.unit.is_(None) | (unit_orders.c.unit == v.c.unit),
    ).values({flag: true()})


_BREACH = {"case_id": String(), "unit": String(), "due_at": DateTime(timezone=True)}
BREACH_SIGN = Write("sign breached", _BREACH, ("case_id",), _late("signed_at", "sign_late"))
BREACH_RESOLVE = Write("resolve breached", _BREACH, ("case_id",), _late("resolved_at", "resolve_late"))

CARD = _insert_once("card", sla_cards, ("event_id", "case_id", "unit", "clock", "level", "due_at", "occurred_at"), ("event_id",))


def _rating_upsert(v):
    """A later rating of the same round replaces an earlier one."""
    columns = ("case_id", "round", "rating", "source", "units", "rated_at")
    stmt = _insert(case_ratings, columns, v)
    return stmt.on_conflict_do_update(
        index_elements=["case_id", "round"],
        set_={c: stmt.excluded[c] for c in ("rating", "source", "units", "rated_at")},
        where=stmt.excluded.rated_at >= case_ratings.c.rated_at,
    )


RATING = Write("rating", _types(case_ratings, ("case_id", "round", "rating", "source", "units", "rated_at")), ("case_id", "round"), _rating_upsert)
CALL = _insert_once("call", calls, ("call_id", "case_id", "township", "caller", "units", "kind", "called_at"), ("call_id",))
_UNIT_RATING = (
    "event_id", "direction", "case_id", "call_id", "round", "rater_unit", "rated_unit", "rating", "score", "justified",
    "complete", "comment", "rated_at",
)  # fmt: skip
UNIT_RATING = Write(
    "unit rating", _types(unit_ratings, _UNIT_RATING), ("event_id",), lambda v: _insert(unit_ratings, _UNIT_RATING, v).on_conflict_do_nothing()
)
GRID = _insert_once("grid activity", grid_activity, ("event_id", "worker_id", "grid", "township", "county", "kind", "count", "occurred_at"), ("event_id",))

# After the case facts (scoring.plan), inserts before the updates that need their rows; see
# scoring.batch and order_sensitive.
BATCH_ORDER = (
    ORDER_DISPATCHED, ORDER_SIGNED, ORDER_RETURNED, ORDER_RESOLVED, BREACH_SIGN, BREACH_RESOLVE,
    CARD, RATING, CALL, UNIT_RATING, GRID,
)  # fmt: skip


# --------------------------------------------------------------------------- event → rows
# Pure: which rows each event writes. All times are the events' own occurred_at.

Rows = list[tuple[Write, dict[str, Any]]]


def _township(loc) -> str | None:
    return (loc.township if loc else None) or org.township_of(loc.grid if loc else None)


def received(event) -> Rows:
    data, loc = event.payload, event.payload.location
    township = _township(loc)
    # The county the event names (a department's task item, in no township), else the township's.
    county = (loc.county if loc else None) or org.county_of(township)
    return [(CASE_RECEIVED, {
        "case_id": event.case_id, "tracking_no": data.tracking_no, "channel": data.channel.value,
        "township": township, "county": county, "grid": loc.grid if loc else None,
        "subject_class": data.subject_class, "category": data.category.value if data.category else None,
        "received_at": event.occurred_at, "solved_on_spot": data.solved_on_spot, "first_unit": data.first_unit,
    })]  # fmt: skip


def triaged(event) -> Rows:
    data, loc = event.payload, event.payload.location
    township = _township(loc)
    return [(CASE_TRIAGED, {
        "case_id": event.case_id, "subject_class": data.subject_class, "category": data.category.value,
        "township": township, "county": data.region or org.county_of(township), "grid": loc.grid if loc else None,
    })]  # fmt: skip


def resolved(event) -> Rows:
    data = event.payload
    return [
        (CASE_RESOLVED, {"case_id": event.case_id, "resolved_at": event.occurred_at, "solved": data.solved}),
        (ORDER_RESOLVED, {"order_no": data.order_no, "at": event.occurred_at, "solved": data.solved, "by": person(event)}),
    ]


def dispatched(event) -> Rows:
    data = event.payload
    return [(ORDER_DISPATCHED, {
        "order_no": data.order_no, "case_id": event.case_id, "unit": data.unit, "unit_name": data.unit_name,
        "role": data.role, "redo_round": data.redo_round, "dispatched_at": event.occurred_at,
    })]  # fmt: skip


def _card(event, level: str) -> tuple[Write, dict[str, Any]]:
    data = event.payload
    return (CARD, {
        "event_id": event.id, "case_id": event.case_id, "unit": data.unit, "clock": data.clock.value, "level": level,
        "due_at": data.due_at, "occurred_at": event.occurred_at,
    })  # fmt: skip


def warning(event) -> Rows:
    """An earlier threshold (50%, 75%) is a reminder, not a yellow card."""
    return [_card(event, "yellow")] if event.payload.level == "yellow" else []


def breached(event) -> Rows:
    """A red card; on the unit's sign / resolve clock it also marks the order late."""
    data = event.payload
    late = {"sign": BREACH_SIGN, "resolve": BREACH_RESOLVE}.get(data.clock.value)
    rows: Rows = [_card(event, "red")]
    if late is not None:
        rows.append((late, {"case_id": event.case_id, "unit": data.unit or None, "due_at": data.due_at}))
    return rows


def rated(event) -> Rows:
    """The citizen's rating of one round. Questionnaires are surveys, not the case's rating."""
    data = event.payload
    if data.source == "questionnaire":
        return []
    return [(RATING, {
        "case_id": event.case_id, "round": data.round, "rating": data.rating.value, "source": data.source,
        "units": dumps(list(data.units)), "rated_at": event.occurred_at,
    })]  # fmt: skip


def _call(event, call_id: str, township: str, caller: str, units: list[str], kind: str) -> Rows:
    return [(CALL, {
        "call_id": call_id, "case_id": event.case_id, "township": township, "caller": caller, "units": dumps(units),
        "kind": kind, "called_at": event.occurred_at,
    })]  # fmt: skip


def grid(event) -> Rows:
    data = event.payload
    return [(GRID, {
        "event_id": event.id, "worker_id": data.worker_id, "grid": data.grid, "township": org.township_of(data.grid),
        "county": org.county_of(data.grid), "kind": data.kind, "count": data.count, "occurred_at": event.occurred_at,
    })]  # fmt: skip


FACTS = {
    "case.received": received,
    "case.accepted": lambda e: [(CASE_ACCEPTED, {"case_id": e.case_id, "accepted_at": e.occurred_at})],
    "case.rejected": lambda e: [(CASE_REJECTED, {"case_id": e.case_id, "rejected_at": e.occurred_at})],
    "case.merged": lambda e: [(CASE_MERGED, {"case_id": e.case_id, "merged_into": e.payload.into_case_id})],
    "case.triaged": triaged,
    "case.dispatched": dispatched,
    "case.signed": lambda e: [(ORDER_SIGNED, {"order_no": e.payload.order_no, "at": e.occurred_at, "by": person(e)})],
    "case.returned": lambda e: [(ORDER_RETURNED, {"order_no": e.payload.order_no, "at": e.occurred_at, "by": person(e)})],
    "case.resolved": resolved,
    # 上报 / 下派: the order left its unit unanswered, as a return (退单) does; the unit it went
    # to is counted on its own new order; the person who handed it on, as the one who returns.
    "case.reported_up": lambda e: [(ORDER_RETURNED, {"order_no": e.payload.order_no, "at": e.occurred_at, "by": person(e)})],
    "case.passed_down": lambda e: [(ORDER_RETURNED, {"order_no": e.payload.order_no, "at": e.occurred_at, "by": person(e)})],
    "case.closed": lambda e: [(CASE_CLOSED, {"case_id": e.case_id, "closed_at": e.occurred_at})],
    "case.reopened": lambda e: [(CASE_REOPENED, {"case_id": e.case_id, "current_round": e.payload.redo_round})],
    "case.rated": rated,
    "case.county_called": lambda e: _call(e, e.payload.call_id, e.payload.township, e.payload.township, list(e.payload.units), "county_called"),
    # 网格吹哨、部门报到: a whistle is the blower's (a village or grid from below), not the
    # case's township's; a whistle written before blown_by was the township's.
    "case.whistle_blown": lambda e: _call(
        e, e.payload.call_id, e.payload.township, e.payload.blown_by or e.payload.township,
        [e.payload.lead_unit, *e.payload.co_units], "whistle",
    ),
    "sla.warning": warning,
    "sla.breached": breached,
    # Scoring's own two-way rating coming back from the topic (or a replay): the API wrote the
    # row already in the same transaction as the event, so this is usually a no-op.
    "unit.rated": lambda e: [(UNIT_RATING, unit_rating_row(e))],
    "grid.activity": grid,
}  # fmt: skip


def facts(event: EventBase) -> Rows:
    rows = FACTS.get(event.type)
    return rows(event) if rows is not None else []


def order_sensitive(events: list[EventBase]) -> bool:
    """Whether applying these events write by write could differ from applying them in
    batches of one (what their topic order means): an order
    updated (signed, returned, resolved) before its dispatch in the batch, or a red card
    before a dispatch, signature or answer of its case in the batch that its comparison of
    times would see differently."""
    dispatch_at: dict[str, int] = {}  # order_no → position of its dispatch
    later: dict[str, list[tuple[int, str, Any]]] = {}  # case → (position, what, time) of dispatches, signatures, answers
    for i, event in enumerate(events):
        if event.type == "case.dispatched":
            dispatch_at.setdefault(event.payload.order_no, i)
            later.setdefault(event.case_id, []).append((i, "dispatched", event.occurred_at))
        elif event.type == "case.signed":
            later.setdefault(event.case_id, []).append((i, "sign", event.occurred_at))
        elif event.type == "case.resolved":
            later.setdefault(event.case_id, []).append((i, "resolve", event.occurred_at))
    for i, event in enumerate(events):
        if event.type in ("case.signed", "case.returned", "case.resolved", "case.reported_up", "case.passed_down") and dispatch_at.get(event.payload.order_no, -1) > i:
            return True
        if event.type == "sla.breached" and event.payload.clock.value in ("sign", "resolve"):
            due = event.payload.due_at
            for j, what, at in later.get(event.case_id, ()):
                if j > i and what in ("dispatched", event.payload.clock.value) and at <= due:
                    return True
    return False


def unit_rating_row(event: UnitRated) -> dict:
    data = event.payload
    return {
        "event_id": event.id, "direction": data.direction, "case_id": event.case_id, "call_id": data.call_id or "",
        "round": data.round, "rater_unit": data.rater_unit, "rated_unit": data.rated_unit,
        "rating": data.rating.value if data.rating else None, "score": data.score, "justified": data.justified,
        "complete": data.complete, "comment": data.comment, "rated_at": event.occurred_at,
    }


# Scoring declares no cause to wait for (shared.holding; docs/rules.md, "An effect waits for
# its cause"): its facts are rows that commute — first / last / greatest per column, inserts
# once — and the figures are read from them afterwards. The one effect that needed another
# producer's event first, a red card's "late" mark on an order, is derived again when the
# order arrives (``_carded``); waiting would be wrong, as a card on the accept or callback
# clock belongs to no order and would wait 24 h to be dead-lettered.
# Every case-scoped event keeps case_status; the lifecycle facts and grid activity feed the scores.
HANDLES = CASE_SCOPED_TYPES | frozenset(FACTS)
