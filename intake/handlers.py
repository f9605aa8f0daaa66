"""Intake listens to the whole lifecycle to show the citizen what every service did."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from shared.db import UnitOfWork
from shared.case_status import CASE_SCOPED_TYPES
from shared.events import EventBase
from shared.lifecycle import LABELS, status_after, units_asked

from intake import learning, repository
from shared.consumer import BatchHandler
from shared.orgdata import OrgDirectory

if TYPE_CHECKING:
    from intake.service import IntakeContext


def make_batch_handler(ctx: IntakeContext) -> BatchHandler:
    """Intake's one event handler (``shared.consumer``), reading the directory intake follows."""

    async def record_batch(uow: UnitOfWork, events: list[EventBase]) -> None:
        """Other services' events on the citizen's timeline in one insert, then each case's
        status and handling units in one statement; an upheld return becomes a training
        example in the same transaction. One event is a batch of one."""
        await repository.add_timeline_entries(uow.session, [_entry(e) for e in events])
        await repository.apply_follow_up(uow.session, *follow_up(events))
        for event in events:
            if event.type == "case.return_reviewed" and event.payload.upheld and event.payload.redispatch_to:
                await learn_from_return(uow, event, ctx.follower.current)

    return record_batch


async def learn_from_return(uow: UnitOfWork, event: EventBase, org: OrgDirectory) -> None:
    """退单 upheld: the unit was the wrong owner. The class whose catalogue line leads to the
    unit it was re-dispatched to is what the appeal was (``learning.class_owned_by``); when
    no single class leads there the return says who, not what, and teaches nothing."""
    row = await repository.get_appeal(uow.session, event.case_id)
    if row is None:
        return
    area = row.grid or row.village or row.township or row.county
    if not area or not org.has_unit(area):
        return
    subject = learning.class_owned_by(org, event.payload.redispatch_to, area, f"{row.title}\n{row.description}")
    if subject is None or subject == row.subject_class:
        return
    await learning.add_example(
        uow.session, event_id=event.id, case_id=event.case_id, title=row.title, description=row.description,
        subject_class=subject, proposed_class=row.subject_class, source=learning.RETURN_UPHELD,
        actor_id=event.actor.id, reason=event.payload.comment,
    )  # fmt: skip


def follow_up(events: list[EventBase]) -> tuple[dict[str, tuple[str, datetime]], dict[str, tuple[list[str], str | None]]]:
    """What the events, applied in topic order, leave on each appeal:

    - status: another service's latest report (by event time; of equal times the later in
      the topic) — the store keeps it only if nothing later is shown already;
    - handling units: every unit asked, and the unit an order names as now handling it (a
      call only adds departments beside it; a co-handler's order names no new handler)."""
    statuses: dict[str, tuple[str, datetime]] = {}
    handlers: dict[str, tuple[list[str], str | None]] = {}
    for event in events:
        status = status_after(event.type)
        if status is not None and event.producer != "intake":
            shown = statuses.get(event.case_id)
            if shown is None or shown[1] <= event.occurred_at:
                statuses[event.case_id] = (status, event.occurred_at)
        units = units_asked(event)
        if units:
            known, current = handlers.get(event.case_id, ([], None))
            if event.type == "case.dispatched" and event.payload.role != "co":
                current = units[0]
            handlers[event.case_id] = ([*known, *(u for u in units if u not in known)], current)
    return statuses, handlers


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
        "attachments": _photos(event),
    }


def _photos(event: EventBase) -> list[str]:
    """The photos a survey carries: its typed ``photos``, or on a survey recorded before they
    were typed, the ids of its first form (``attachments``)."""
    if event.type != "case.surveyed":
        return []
    return list(event.payload.photos or event.payload.attachments)


def _detail(event: EventBase) -> str | None:
    payload = getattr(event, "payload", None)
    # The payload's fields by name: a missing one is a dict miss, where getattr on a
    # pydantic model raises and catches an AttributeError (it shows on intake's hot path).
    fields = vars(payload) if payload is not None else {}
    for field in ("unit_name", "findings", "unit", "answer", "reason", "rating", "note"):  # findings: 现场勘查
        value = fields.get(field)
        if value:
            return str(value)
    return None


# Every case-scoped type; grid activity is not about a case.
HANDLES = CASE_SCOPED_TYPES
