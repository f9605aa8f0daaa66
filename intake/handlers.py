"""Intake listens to the whole lifecycle to show the citizen what every service did."""

from __future__ import annotations

from shared.db import UnitOfWork
from shared.events import EVENT_TYPES, EventBase
from shared.lifecycle import LABELS, status_after, units_asked

from intake import repository


async def record_in_timeline(event: EventBase, uow: UnitOfWork) -> None:
    """Another service's event: on the citizen's timeline, and the status it implies."""
    await repository.add_timeline_entries(uow.session, [_entry(event)])
    await _follow(event, uow)


async def record_batch(uow: UnitOfWork, events: list[EventBase]) -> None:
    """A consumer's partition batch (``shared.consumer``): the timeline in one insert, then
    each event's status and units in topic order — what ``record_in_timeline`` does one by
    one (the timeline is not read by the rest)."""
    await repository.add_timeline_entries(uow.session, [_entry(e) for e in events])
    for event in events:
        await _follow(event, uow)


async def _follow(event: EventBase, uow: UnitOfWork) -> None:
    status = status_after(event.type)
    if status is not None and event.producer != "intake":
        await repository.set_status(uow.session, event.case_id, status, event.occurred_at)
    units = units_asked(event)
    if units:
        # An order names the unit now handling it; a call only adds departments beside it.
        current = units[0] if event.type == "case.dispatched" and event.payload.role != "co" else None
        await repository.add_handlers(uow.session, event.case_id, units, current=current)


async def record_own_events(uow: UnitOfWork, events: list[EventBase]) -> None:
    """Intake's own events, on the timeline in the transaction that files them (one insert
    for the lot: a 500-ticket hotline batch writes 1,500 entries). Intake sets the appeal's
    status itself when it files, so only the timeline is written here."""
    await repository.add_timeline_entries(uow.session, [_entry(e) for e in events if e.case_scoped])


def _entry(event: EventBase) -> dict:
    return {
        "event_id": event.id,
        "case_id": event.case_id,
        "event_type": event.type,
        "occurred_at": event.occurred_at,
        "label": LABELS.get(event.type, event.type),
        "detail": _detail(event),
    }


def _detail(event: EventBase) -> str | None:
    payload = getattr(event, "payload", None)
    # The payload's fields by name: a missing one is a dict miss, where getattr on a
    # pydantic model raises and catches an AttributeError (it shows on intake's hot path).
    fields = vars(payload) if payload is not None else {}
    for field in ("unit_name", "unit", "answer", "reason", "rating", "note"):
        value = fields.get(field)
        if value:
            return str(value)
    return None


# Every case-scoped type; grid activity is not about a case.
HANDLERS = {event_type: record_in_timeline for event_type, cls in EVENT_TYPES.items() if cls.case_scoped}
