"""Sla's event handlers: ``async def handle(event, uow)``.

Every due time is computed from ``event.occurred_at`` — never from when the event was
processed — so a late consumer or a replay of the topic gives the same deadlines. Clock ids
are derived from the event (case, clock, unit, round), so a handler run twice changes nothing.
"""

from __future__ import annotations

from datetime import timedelta

from shared.case_status import with_case_status
from shared.db import UnitOfWork
from shared.events import (
    CallbackCompleted,
    CaseAccepted,
    CaseClosed,
    CaseDispatched,
    CaseMerged,
    CaseRated,
    CaseReceived,
    CaseRejected,
    CaseReopened,
    CaseResolved,
    CaseResumed,
    CaseSigned,
    CaseSuspended,
    CaseTriaged,
    CaseVerified,
    ClockKind,
    CountyCalled,
    EventBase,
    ExtensionApproved,
    ProgressReported,
    ResolutionClass,
    ReturnReviewed,
    CaseReturned,
    SlaEscalated,
    SlaEscalatedData,
    Urgency,
    VerificationFailed,
    WhistleBlown,
    make_event,
)
from sla import repository as repo
from sla.service import ACTOR, SERVICE, Clocks

REDO_LIMIT = 3  # 督办 after the third redo (DOMAIN.md)


async def _closed(uow: UnitOfWork, case_id: str) -> bool:
    case = await repo.get_case(uow.session, case_id)
    return bool(case and case["closed"])


async def on_received(event: CaseReceived, uow: UnitOfWork) -> None:
    category = event.payload.category.value if event.payload.category else None
    await repo.upsert_case(uow.session, event.case_id, **({"category": category} if category else {}))
    if await _closed(uow, event.case_id):
        return
    clocks = await Clocks.open(uow)
    policy = await clocks.case_policy(event.case_id, event.occurred_at, category=category)
    await clocks.start(event.case_id, ClockKind.accept, event.occurred_at, policy=policy)


async def on_accepted(event: CaseAccepted, uow: UnitOfWork) -> None:
    await (await Clocks.open(uow)).stop(event.case_id, event.occurred_at, names=("accept",))


async def on_case_ended(event: CaseRejected | CaseMerged, uow: UnitOfWork) -> None:
    """不予受理 or merged into another case (并单): nothing of this case runs any more."""
    await repo.upsert_case(uow.session, event.case_id, closed=True)
    await (await Clocks.open(uow)).stop(event.case_id, event.occurred_at)


async def on_triaged(event: CaseTriaged, uow: UnitOfWork) -> None:
    p = event.payload
    # The case keeps the policy in force when it was triaged (the first moment region ×
    # category × urgency are known), whatever versions are written later.
    row = await repo.policy_for(uow.session, region=p.region, category=p.category.value, urgency=p.urgency.value, at=event.occurred_at)
    await repo.upsert_case(
        uow.session, event.case_id, category=p.category.value, region=p.region, urgency=p.urgency.value,
        policy_id=row["policy_id"], policy_version=row["version"],
    )
    if await _closed(uow, event.case_id):
        return
    await (await Clocks.open(uow)).start(event.case_id, ClockKind.dispatch, event.occurred_at)


async def on_dispatched(event: CaseDispatched, uow: UnitOfWork) -> None:
    p = event.payload
    clocks = await Clocks.open(uow)
    await clocks.stop(event.case_id, event.occurred_at, names=("dispatch",))
    if await _closed(uow, event.case_id):
        return
    case = await repo.get_case(uow.session, event.case_id)
    urgency = Urgency(case["urgency"]) if case and case["urgency"] else Urgency.normal
    common = {"unit": p.unit, "round": p.redo_round, "role": p.role}
    at = event.occurred_at
    await clocks.start(event.case_id, ClockKind.sign, at, urgency=urgency, **common)
    await clocks.start(event.case_id, ClockKind.resolve, at, resolution_class=p.resolution_class, **common)
    await clocks.start(event.case_id, ClockKind.return_window, at, **common)
    if p.role != "co":  # the lead (or sole) unit speaks to the citizen
        await clocks.start(event.case_id, ClockKind.first_contact, at, **common)


async def on_signed(event: CaseSigned, uow: UnitOfWork) -> None:
    await (await Clocks.open(uow)).stop(event.case_id, event.occurred_at, names=("sign", "response"), unit=event.payload.unit)


async def on_returned(event: CaseReturned, uow: UnitOfWork) -> None:
    """退单 is the unit's answer to the order: it ends signing and the return window."""
    await (await Clocks.open(uow)).stop(
        event.case_id, event.occurred_at, names=("sign", "response", "return_window"), unit=event.payload.unit
    )


async def on_return_reviewed(event: ReturnReviewed, uow: UnitOfWork) -> None:
    if event.payload.upheld:  # the order leaves the unit: its clocks end (the new unit gets its own)
        await (await Clocks.open(uow)).stop(event.case_id, event.occurred_at, unit=event.payload.unit)


async def _start_response(event: EventBase, uow: UnitOfWork, call_id: str, units: list[str], minutes: int) -> None:
    if await _closed(uow, event.case_id):
        return
    clocks = await Clocks.open(uow)
    for unit in dict.fromkeys(units):
        await clocks.start(
            event.case_id, ClockKind.sign, event.occurred_at, name="response", unit=unit,
            limit=timedelta(minutes=minutes), key=call_id,
        )


async def on_county_called(event: CountyCalled, uow: UnitOfWork) -> None:
    p = event.payload
    await _start_response(event, uow, p.call_id, p.units, p.respond_within_minutes)


async def on_whistle_blown(event: WhistleBlown, uow: UnitOfWork) -> None:
    p = event.payload
    await _start_response(event, uow, p.call_id, [p.lead_unit, *p.co_units], p.respond_within_minutes)


async def on_progress(event: ProgressReported, uow: UnitOfWork) -> None:
    clocks = await Clocks.open(uow)
    await clocks.stop(event.case_id, event.occurred_at, names=("response",), unit=event.payload.unit)
    if event.payload.first_contact:
        await clocks.stop(event.case_id, event.occurred_at, names=("first_contact",))


async def on_suspended(event: CaseSuspended, uow: UnitOfWork) -> None:
    await (await Clocks.open(uow)).pause(event.case_id, event.occurred_at, unit=event.payload.unit)


async def on_resumed(event: CaseResumed, uow: UnitOfWork) -> None:
    await (await Clocks.open(uow)).resume(event.case_id, event.occurred_at, unit=event.payload.unit)


async def on_extension_approved(event: ExtensionApproved, uow: UnitOfWork) -> None:
    p = event.payload
    await (await Clocks.open(uow)).extend(event.case_id, p.unit, event.occurred_at, p.working_days)


async def on_resolved(event: CaseResolved, uow: UnitOfWork) -> None:
    clocks = await Clocks.open(uow)
    await clocks.stop(event.case_id, event.occurred_at, names=("resolve", "sign", "response"), unit=event.payload.unit)
    if await _closed(uow, event.case_id):
        return
    case = await repo.get_case(uow.session, event.case_id)
    # The township verifies (核查) within its limit; one verification per round.
    await clocks.start(event.case_id, ClockKind.verify, event.occurred_at, round=case["redo_round"] if case else 0)


async def on_verification_ended(event: CaseVerified | VerificationFailed, uow: UnitOfWork) -> None:
    await (await Clocks.open(uow)).stop(event.case_id, event.occurred_at, names=("verify",))


async def on_closed(event: CaseClosed, uow: UnitOfWork) -> None:
    """结案: everything stops; only the callback (回访) clock starts, the working day after."""
    await repo.upsert_case(uow.session, event.case_id)
    clocks = await Clocks.open(uow)
    await clocks.stop(event.case_id, event.occurred_at)
    case = await repo.get_case(uow.session, event.case_id)
    await repo.upsert_case(uow.session, event.case_id, closed=True)
    await clocks.start(event.case_id, ClockKind.callback, event.occurred_at, round=case["redo_round"] if case else 0)


async def on_callback_done(event: CallbackCompleted | CaseRated, uow: UnitOfWork) -> None:
    if isinstance(event, CallbackCompleted) and not event.payload.reached:
        return  # not reached: the callback is still owed
    await (await Clocks.open(uow)).stop(event.case_id, event.occurred_at, names=("callback",))


async def on_reopened(event: CaseReopened, uow: UnitOfWork) -> None:
    """重办: the case is open again and the unit gets a new resolve clock for the round."""
    p = event.payload
    await repo.upsert_case(uow.session, event.case_id, closed=False, redo_round=p.redo_round)
    clocks = await Clocks.open(uow)
    await clocks.stop(event.case_id, event.occurred_at, names=("callback",))
    if p.unit:
        previous = [c for c in await repo.case_clocks(uow.session, event.case_id) if c["name"] == "resolve" and c["unit"] == p.unit]
        klass = previous[-1]["resolution_class"] if previous else None
        # Same id as the case.dispatched of the round, so whichever comes first starts it.
        await clocks.start(
            event.case_id, ClockKind.resolve, event.occurred_at, unit=p.unit, round=p.redo_round,
            role=previous[-1]["role"] if previous else None,
            resolution_class=ResolutionClass(klass) if klass else ResolutionClass.general,
        )
    if p.redo_round >= REDO_LIMIT:
        escalation = make_event(
            SlaEscalated,
            payload=SlaEscalatedData(reason="redo_limit", unit=p.unit, detail=f"redo round {p.redo_round}: {p.reason}"),
            producer=SERVICE, actor=ACTOR, caused_by=event, occurred_at=event.occurred_at,
        )
        first = await repo.insert_signal(
            uow.session,
            {"clock_id": f"{event.case_id}:redo_limit", "generation": 0, "signal": "redo_limit", "case_id": event.case_id,
             "unit": p.unit, "event_id": str(escalation.id), "fired_at": event.occurred_at},
        )
        if first:  # once per case, however many rounds follow
            uow.emit(escalation)


CLOCK_HANDLERS = {
    "case.received": on_received,
    "case.accepted": on_accepted,
    "case.rejected": on_case_ended,
    "case.merged": on_case_ended,
    "case.triaged": on_triaged,
    "case.dispatched": on_dispatched,
    "case.signed": on_signed,
    "case.returned": on_returned,
    "case.return_reviewed": on_return_reviewed,
    "case.county_called": on_county_called,
    "case.whistle_blown": on_whistle_blown,
    "case.progress_reported": on_progress,
    "case.suspended": on_suspended,
    "case.resumed": on_resumed,
    "case.extension_approved": on_extension_approved,
    "case.resolved": on_resolved,
    "case.verified": on_verification_ended,
    "case.verification_failed": on_verification_ended,
    "case.closed": on_closed,
    "case.callback_completed": on_callback_done,
    "case.rated": on_callback_done,
    "case.reopened": on_reopened,
}


# Follow every case-scoped event (this service's view of where each case stands) and run
# the clocks from the lifecycle ones.
HANDLERS = with_case_status(CLOCK_HANDLERS)
