"""Notify's event handlers: ``async def handle(event, uow)``.

Every case-scoped event keeps ``case_status`` current; the ones below also learn who to tell
(case.received: the citizen's phone, opened from its seal and kept under notify's own key),
schedule the callback and issue the rating link (case.closed), start a new round
(case.reopened), and queue the messages the event causes — all in the handler's unit of
work, so a redelivered event changes nothing (the consumer's inbox, and the
UNIQUE (event_id, recipient, channel) of every message).

The handlers need notify's context (keys, calendar, clock), so they are built per app by
``make_own_handlers(ctx)``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from notify import domain, repository
from notify.service import PHONE_CONTEXT, NotifyContext, queue_messages
from shared.callback import callback_window
from shared.contact import open_phone
from shared.crypto import DecryptionError
from shared.db import UnitOfWork
from shared.events import EventBase
from shared.holding import requiring_all_but
from shared.privacy import mask_phone
from shared.workdays import LOCAL

log = logging.getLogger(__name__)

Handler = Callable[[EventBase, UnitOfWork], Awaitable[None]]

# Event types that cause messages (besides those handled specially below).
MESSAGE_EVENTS = frozenset({
    "case.accepted", "case.rejected", "case.resolved", "case.county_called", "case.whistle_blown",
    "sla.warning", "sla.breached", "sla.urged", "sla.escalated", "case.callback_completed", "case.rated",
})  # fmt: skip


def recipient_facts(ctx: NotifyContext, event: EventBase) -> dict[str, Any]:
    """What intake's ``received``, ``accepted`` and ``triaged`` say of who to tell (None
    values never overwrite what is known)."""
    p = event.payload  # type: ignore[attr-defined]
    if event.type == "case.accepted":
        return {"tracking_no": p.tracking_no}
    if event.type == "case.triaged":
        return {"urgency": p.urgency.value, "township": p.location.township if p.location else None}
    phone_enc = masked = None
    if p.contact_sealed:
        try:
            phone = open_phone(ctx.contact_keys, p.contact_sealed)
            phone_enc, masked = ctx.keys.encrypt(phone, context=PHONE_CONTEXT), mask_phone(phone)
        except DecryptionError:
            # A ring that does not match intake's: the citizen gets no SMS; say so without the token.
            log.warning("cannot open the citizen's sealed phone (check CONTACT_KEYS)", extra={"case_id": event.case_id})
    location = p.location
    return {
        "tracking_no": p.tracking_no, "channel": p.channel.value, "external_ref": p.external_ref,
        "citizen_ref": p.citizen_ref, "phone_enc": phone_enc, "phone_masked": masked or p.contact_masked,
        "township": location.township if location else None,
    }  # fmt: skip


# Intake's events that tell notify who to tell (``recipient_facts``).
RECIPIENT_FACTS = frozenset({"case.received", "case.accepted", "case.triaged"})


def make_own_handlers(ctx: NotifyContext) -> dict[str, Handler]:
    """Notify's work per event type; ``shared.case_status`` adds the status of every
    case-scoped event (``with_case_status`` one by one; ``notify.batch`` a batch)."""

    async def learn(event: EventBase, uow: UnitOfWork) -> None:
        await repository.upsert_recipient(uow.session, event.case_id, **recipient_facts(ctx, event))
        if event.type in MESSAGE_EVENTS:
            await queue_messages(uow, ctx, event)

    async def dispatched(event: EventBase, uow: UnitOfWork) -> None:
        p = event.payload  # type: ignore[attr-defined]
        await repository.add_unit(uow.session, event.case_id, p.redo_round, p.unit, p.unit_name)
        await queue_messages(uow, ctx, event)

    async def closed(event: EventBase, uow: UnitOfWork) -> None:
        settings = ctx.settings
        await repository.upsert_recipient(uow.session, event.case_id)
        row = await repository.get_recipient(uow.session, event.case_id, lock=True)
        assert row is not None
        round_ = row["round"]
        window = callback_window(ctx.calendar, event.occurred_at)  # due_at: what SLA's callback clock shows
        await repository.insert_callback(
            uow.session, case_id=event.case_id, round=round_, township=row["township"], tracking_no=row["tracking_no"],
            closed_at=event.occurred_at, opens_at=window.opens_at, due_at=window.due_at,
        )  # fmt: skip
        now = ctx.now()
        expires = now + timedelta(days=settings.rating_token_days)
        day = window.opens_at.astimezone(LOCAL)  # the day the citizen is called (due_at is the next midnight)
        extra = {"callback_day": f"{day.month}月{day.day}日"}
        token, digest = domain.new_token()
        if await repository.insert_token(uow.session, token_hash=digest, case_id=event.case_id, round=round_,
                                         purpose="rating", event_id=event.id, issued_at=now, expires_at=expires):  # fmt: skip
            extra["rating_link"] = f"{settings.rating_url}?case={event.case_id}&round={round_}&token={token}"
        if domain.sampled_for_questionnaire(event.case_id, settings.questionnaire_every):
            token, digest = domain.new_token()
            if await repository.insert_token(uow.session, token_hash=digest, case_id=event.case_id, round=round_,
                                             purpose="questionnaire", event_id=event.id, issued_at=now,
                                             expires_at=expires):  # fmt: skip
                extra["questionnaire_link"] = f"{settings.questionnaire_url}?case={event.case_id}&token={token}"
        await queue_messages(uow, ctx, event, extra=extra)

    async def reopened(event: EventBase, uow: UnitOfWork) -> None:
        p = event.payload  # type: ignore[attr-defined]
        await repository.start_round(uow.session, event.case_id, p.redo_round)
        if p.unit:
            await repository.add_unit(uow.session, event.case_id, p.redo_round, p.unit, None)
        await repository.supersede_callbacks(uow.session, event.case_id, p.redo_round)
        await queue_messages(uow, ctx, event)

    async def messages_only(event: EventBase, uow: UnitOfWork) -> None:
        await queue_messages(uow, ctx, event)

    return {
        **{t: messages_only for t in MESSAGE_EVENTS},
        **{t: learn for t in RECIPIENT_FACTS},
        "case.dispatched": dispatched,
        "case.closed": closed,
        "case.reopened": reopened,
    }



def requirements(handlers: dict[str, Handler]) -> dict[str, frozenset[str]]:
    """What notify must have applied of a case before another event of it (shared.holding):
    ``case.received``, which says who the citizen is and how to reach them (channel, sealed
    phone, 12345 ticket). Without it a message to the citizen has no channel and would be
    lost, so every other event of the case waits for it (held, then applied in topic order)."""
    return requiring_all_but(handlers, frozenset({"case.received"}))
