"""Notify's one event handler (``shared.consumer``): a batch of events applied with the
recipients held in memory; one event is a batch of one.

Each new appeal brings notify four events, and three of them touch the case's recipient
row, two of them read it back to plan messages: event by event that is nine statements a
case. Here a batch costs a few:

1. ``case_status`` for every event of the batch in one statement (``shared.case_status``),
   and the citizen's public timeline in one insert (the look-up on the citizen's page);
2. the batch's recipient rows read once, locked;
3. each event applied to the rows in memory, in topic order: what intake says of who to
   tell (``handlers.recipient_facts``, None never overwriting), the unit an order names
   (``with_unit``), a new round (``case.reopened``: ``with_round``, then its unit), and the
   messages it causes planned from the row as it stands at that event
   (``service.message_rows``); ``case.closed`` and ``case.reopened`` also write the
   callback task and tokens (``close``) or supersede the earlier round's callbacks, in
   their turn;
4. the rows written back in one upsert, the messages in one insert.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any


from notify import domain, repository
from notify.handlers import APPLIED, RECIPIENT_FACTS, recipient_facts
from notify.models import recipients
from notify.service import NotifyContext, message_rows
from shared.callback import callback_window
from shared.case_status import case_status_many
from shared.consumer import BatchHandler
from shared.db import CaseRows, UnitOfWork
from shared.events import EventBase
from shared.lifecycle import timeline_entry
from shared.privacy import redact_for_public
from shared.workdays import LOCAL

# What a recipient row holds before anything is known (the table's defaults).
RECIPIENTS = CaseRows(recipients, {"round": 0, "units": [], "unit_names": {}})


def with_unit(row: dict[str, Any], round_: int, unit: str, unit_name: str | None) -> None:
    """A unit handles the case's current round (a later round starts the list afresh; a late
    order of an earlier round changes no list); its name as given last."""
    if row["round"] < round_:
        row["units"] = [unit]
    elif row["round"] == round_ and unit not in row["units"]:
        row["units"] = [*row["units"], unit]
    row["round"] = max(row["round"], round_)
    row["unit_names"] = {**row["unit_names"], unit: unit_name or unit}


def with_round(row: dict[str, Any], round_: int) -> None:
    """A redo round (重办) starts: the list of units handling the case starts afresh (a late
    reopening of an earlier round changes nothing)."""
    if row["round"] < round_:
        row["round"], row["units"] = round_, []


def public_entry(event: EventBase) -> dict[str, Any]:
    """The event on the citizen's timeline (``shared.lifecycle.timeline_entry``, intake's rule
    too), its detail masked as for the public: the page shows no personal data but the masked phone,
    and no photos (a survey's photos may show people and homes; they are the units' to read)."""
    entry = timeline_entry(event)
    del entry["attachments"]
    return {**entry, "detail": redact_for_public(entry["detail"])}


def make_batch_handler(ctx: NotifyContext) -> BatchHandler:
    """Notify's handler, bound to its context (keys, calendar, clock)."""

    async def apply_batch(uow: UnitOfWork, events: list[EventBase]) -> None:
        status = case_status_many(events)
        if status is not None:
            await uow.session.execute(*status)
        await repository.add_timeline(uow.session, [public_entry(e) for e in events if e.case_scoped])
        await apply_events(uow, ctx, [event for event in events if event.type in APPLIED])

    return apply_batch


async def apply_events(uow: UnitOfWork, ctx: NotifyContext, events: list[EventBase]) -> None:
    """Events of the types in ``APPLIED``, on the recipients read once and written once."""
    if not events:
        return
    session = uow.session
    stored = await RECIPIENTS.load(session, (event.case_id for event in events if event.case_id))
    touched: dict[str, dict[str, Any]] = {}
    messages: list[dict[str, Any]] = []
    for event in events:
        case_id = event.case_id
        row = touched.get(case_id) or stored.get(case_id)
        extra: dict[str, Any] | None = None
        if event.type in RECIPIENT_FACTS or event.type in ("case.dispatched", "case.resolved", "case.closed", "case.reopened"):
            row = touched[case_id] = dict(row or RECIPIENTS.new(case_id))
            p = event.payload  # type: ignore[attr-defined]
            if event.type == "case.dispatched":
                with_unit(row, p.redo_round, p.unit, p.unit_name)
            elif event.type == "case.resolved":
                row["answer"] = redact_for_public(p.answer)  # what the citizen's page shows (公开, masked)
            elif event.type == "case.closed":
                row["public_summary"] = redact_for_public(p.public_summary)
                extra = await close(uow, ctx, event, row)
            elif event.type == "case.reopened":
                with_round(row, p.redo_round)
                if p.unit:
                    with_unit(row, p.redo_round, p.unit, None)
                await repository.supersede_callbacks(session, case_id, p.redo_round)
            else:
                row.update({k: v for k, v in recipient_facts(ctx, event).items() if v is not None})
        messages += message_rows(ctx, event, row, extra=extra)
    await RECIPIENTS.save(session, touched.values())
    if messages:
        for message in messages:  # sent later, by the sender, under the trace of its event
            message["traceparent"] = uow.traceparent_for(message["event_id"])
        await repository.insert_messages(session, messages)
        if any(message["state"] == "queued" for message in messages):
            uow.after_commit(ctx.wake_sender)  # queued due now: sent at once, not at the sender's next due time


async def close(uow: UnitOfWork, ctx: NotifyContext, event: EventBase, row: dict[str, Any]) -> dict[str, Any]:
    """结案: the callback (回访) task of the round, due when SLA's callback clock is
    (``shared.callback``), and the one-time rating link (and, for a sampled case, the
    questionnaire link) the closing message carries. Returns that message's extra data.
    A task item (自上而下的任务) has no citizen: no callback task, no rating link."""
    if not domain.has_citizen(row["channel"]):
        return {}
    session, settings = uow.session, ctx.settings
    round_ = row["round"]
    window = callback_window(ctx.calendar, event.occurred_at)
    await repository.insert_callback(
        session, case_id=event.case_id, round=round_, township=row["township"], tracking_no=row["tracking_no"],
        closed_at=event.occurred_at, opens_at=window.opens_at, due_at=window.due_at,
    )  # fmt: skip
    now = ctx.now()
    expires = now + timedelta(days=settings.rating_token_days)
    day = window.opens_at.astimezone(LOCAL)  # the day the citizen is called (due_at is the next midnight)
    extra: dict[str, Any] = {"callback_day": f"{day.month}月{day.day}日"}
    token, digest = domain.new_token()
    if await repository.insert_token(session, token_hash=digest, case_id=event.case_id, round=round_, purpose="rating",
                                     event_id=event.id, issued_at=now, expires_at=expires):  # fmt: skip
        extra["rating_link"] = f"{settings.rating_url}?case={event.case_id}&round={round_}&token={token}"
    if domain.sampled_for_questionnaire(event.case_id, settings.questionnaire_every):
        token, digest = domain.new_token()
        if await repository.insert_token(session, token_hash=digest, case_id=event.case_id, round=round_,
                                         purpose="questionnaire", event_id=event.id, issued_at=now, expires_at=expires):  # fmt: skip
            extra["questionnaire_link"] = f"{settings.questionnaire_url}?case={event.case_id}&token={token}"
    return extra
