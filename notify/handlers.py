"""What notify reads from events: the types it handles, what they say of who to tell, and
what each must wait for.

Every case-scoped event keeps ``case_status`` current; some also learn who to tell
(case.received: the citizen's phone, opened from its seal and kept under notify's own key),
schedule the callback and issue the rating link (case.closed), start a new round
(case.reopened), and queue the messages the event causes — all in the handler's unit of
work (``notify.batch``, notify's one handler), so a redelivered event changes nothing (the
consumer's inbox, and the UNIQUE (event_id, recipient, channel) of every message).
"""

from __future__ import annotations

import logging
from typing import Any

from notify.service import PHONE_CONTEXT, NotifyContext
from shared.case_status import CASE_SCOPED_TYPES
from shared.contact import open_phone
from shared.crypto import DecryptionError
from shared.events import EventBase
from shared.holding import requiring_all_but
from shared.privacy import mask_phone

log = logging.getLogger(__name__)

# Event types that cause messages (besides those handled specially, ``APPLIED``).
MESSAGE_EVENTS = frozenset({
    "case.accepted", "case.rejected", "case.resolved", "case.county_called", "case.whistle_blown",
    "sla.warning", "sla.breached", "sla.urged", "sla.escalated", "case.callback_completed", "case.rated",
    "grid.warning",  # not about a case: a grid duty missed, told to the grid and its village
    "hotspot.detected",
    "sla.warning_signal",  # not about a case: an early warning's clock (预警信息处置), told like a case's card
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
        "township": location.township if location else None, "first_unit": p.first_unit,
    }  # fmt: skip


# Intake's events that tell notify who to tell (``recipient_facts``).
RECIPIENT_FACTS = frozenset({"case.received", "case.accepted", "case.triaged"})


# The types that touch a recipient row or cause messages (``notify.batch``); the other
# case-scoped types only move case_status.
APPLIED = frozenset({*RECIPIENT_FACTS, *MESSAGE_EVENTS, "case.dispatched", "case.closed", "case.reopened"})
HANDLES = CASE_SCOPED_TYPES | APPLIED
# Events about no single case (insight's findings, an early warning's cards): nothing of a case to wait for.
NOT_ABOUT_A_CASE = frozenset({"hotspot.detected", "sla.warning_signal"})


def requirements(handles: frozenset[str]) -> dict[str, frozenset[str]]:
    """What notify must have applied of a case before another event of it (shared.holding):
    ``case.received``, which says who the citizen is and how to reach them (channel, sealed
    phone, 12345 ticket). Without it a message to the citizen has no channel and would be
    lost, so every other event of the case waits for it (held, then applied in topic order)."""
    return requiring_all_but(handles, frozenset({"case.received"}), exempt=NOT_ABOUT_A_CASE)
