"""Sla's event handler, ``apply_batch``: a consumer batch at a time (one event is a batch of one).

Each clock handler (``async def on_…(event, ledger)``) changes the cases and clocks of a
``sla.ledger.Ledger`` in memory; the ledger reads what the batch touches before and writes
it back after, in a few set statements. The consumer calls ``apply_batch`` with a whole
batch, or with one event when it applies a failed batch again event by event.

Every due time is computed from ``event.occurred_at`` — never from when the event was
processed — so a late consumer or a replay of the topic gives the same deadlines. Clock ids
are derived from the event (case, clock, unit, round), so a handler run twice changes nothing.

The order's deadlines are dispatch's: the resolve and return-window clocks take their due
times from the events (``due_at``, ``return_due_at``, ``new_due_at``); an event written
before a field existed is counted with the same rule, ``shared.deadlines``, and its defaults.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from shared.case_status import CASE_SCOPED_TYPES, case_status_many
from shared import deadlines
from shared.consumer import BatchHandler
from shared.db import UnitOfWork
from shared.events import (
    CallbackCompleted,
    CaseAccepted,
    CaseClosed,
    CaseDispatched,
    CaseMerged,
    CasePassedDown,
    CaseReportedUp,
    CaseRated,
    CaseReceived,
    CaseRejected,
    CaseReopened,
    CaseResolved,
    CaseResumed,
    CaseSigned,
    CaseSuspended,
    CaseSurveyed,
    CaseTriaged,
    CaseVerified,
    ClockKind,
    CountyCalled,
    EventBase,
    DeadlineMoved,
    ExtensionApproved,
    ProgressReported,
    ResolutionClass,
    ReturnReviewed,
    CaseReturned,
    SlaEscalated,
    SlaEscalatedData,
    Urgency,
    VerificationFailed,
    WarningAcknowledged,
    WarningClosed,
    WarningHandled,
    WarningOpened,
    WarningReopened,
    WhistleBlown,
    make_event,
)
from shared.workdays import PACKAGED_CALENDAR, Deadline, WorkingCalendar
from sla import repository as repo
from sla.domain import redo_escalation
from sla.ledger import Ledger
from sla.service import ACTOR, SERVICE, SlaContext

ClockHandler = Callable[[Any, Ledger], Awaitable[None]]


def carried(due_at: datetime | None) -> Deadline | None:
    """A deadline as its owner computed it and the event carries it (None: not carried)."""
    return Deadline(due_at) if due_at is not None else None


async def on_received(event: CaseReceived, led: Ledger) -> None:
    category = event.payload.category.value if event.payload.category else None
    task = event.payload.task is not None
    led.upsert_case(event.case_id, **({"category": category} if category else {}), **({"task": True} if task else {}))
    if led.closed(event.case_id) or task:
        # 自上而下的任务: issued by the centre itself, nothing waits for 受理; its clocks start at dispatch.
        return
    policy = led.case_policy(event.case_id, event.occurred_at, category=category)
    led.start(event.case_id, ClockKind.accept, event.occurred_at, policy=policy)
    due = carried(event.payload.resolve_due_at)
    if due is not None:
        # 1小时诉求服务模式: a simple window appeal is the receiver's unit's to resolve by the
        # deadline intake computed (shared.deadlines); its answer on the spot stops the clock.
        led.start(event.case_id, ClockKind.resolve, event.occurred_at, unit=event.payload.first_unit, due=due, policy=policy)


async def on_accepted(event: CaseAccepted, led: Ledger) -> None:
    led.stop(event.case_id, event.occurred_at, names=("accept",))


async def on_case_ended(event: CaseRejected | CaseMerged, led: Ledger) -> None:
    """不予受理 or merged into another case (并单): nothing of this case runs any more."""
    led.upsert_case(event.case_id, closed=True)
    led.stop(event.case_id, event.occurred_at)


async def on_triaged(event: CaseTriaged, led: Ledger) -> None:
    p = event.payload
    # The case keeps the policy in force when it was triaged (the first moment region ×
    # category × urgency are known), whatever versions are written later.
    chosen = led.policies.for_case(region=p.region, category=p.category.value, urgency=p.urgency.value, at=event.occurred_at)
    led.upsert_case(
        event.case_id, category=p.category.value, region=p.region, urgency=p.urgency.value,
        policy_id=chosen.policy_id, policy_version=chosen.version,
    )
    # Read after dispatch's case.dispatched (another producer: Kafka keeps no order between
    # them): the order was given when its sign clock started, so the dispatch clock ends there
    # (even if the case has been closed since).
    ordered = [c["started_at"] for c in led.case_clocks(event.case_id)
               if c["name"] == "sign" and c["started_at"] >= event.occurred_at]  # fmt: skip
    if led.closed(event.case_id) and not ordered:
        return
    led.start(event.case_id, ClockKind.dispatch, event.occurred_at)
    if ordered:
        led.stop(event.case_id, min(ordered), names=("dispatch",))


async def on_dispatched(event: CaseDispatched, led: Ledger) -> None:
    p = event.payload
    led.stop(event.case_id, event.occurred_at, names=("dispatch",))
    if led.closed(event.case_id):
        return
    case = led.case(event.case_id)
    urgency = Urgency(case["urgency"]) if case and case["urgency"] else Urgency.normal
    common = {"unit": p.unit, "round": p.redo_round, "role": p.role}
    if p.handover:  # a unit handed the case again (上报 / 下派) in this round: new clocks, not its old ones
        common["key"] = f"handover{p.handover}"
    at = event.occurred_at
    led.start(event.case_id, ClockKind.sign, at, urgency=urgency, **common)
    resolve_due = carried(p.due_at) or deadlines.resolve_due(led.calendar, at, p.resolution_class)
    return_due = carried(p.return_due_at) or deadlines.return_window_end(led.calendar, at)
    led.start(event.case_id, ClockKind.resolve, at, resolution_class=p.resolution_class, due=resolve_due, **common)
    led.start(event.case_id, ClockKind.return_window, at, due=return_due, **common)
    if p.role != "co":  # the lead (or sole) unit speaks to the citizen
        led.start(event.case_id, ClockKind.first_contact, at, **common)
    survey_due = carried(p.survey_due_at)
    if survey_due is not None:  # 现场勘查 of an on-site matter, due when dispatch says (absent: no survey clock)
        led.start(event.case_id, ClockKind.survey, at, due=survey_due, **common)


async def on_surveyed(event: CaseSurveyed, led: Ledger) -> None:
    """现场勘查 done: the survey clock stops; the work's deadline counts from the survey, as
    dispatch computed it (``due_at``; an event without it leaves the resolve clock as it is)."""
    p = event.payload
    led.stop(event.case_id, event.occurred_at, names=("survey",), unit=p.unit)
    due = carried(p.due_at)
    if due is not None:
        led.move_due(event.case_id, p.unit, due)


async def on_signed(event: CaseSigned, led: Ledger) -> None:
    """签收 ends signing and the return window: a signed order can no longer be returned
    (dispatch refuses it), so the window's clock must neither warn nor move with a pause."""
    led.stop(event.case_id, event.occurred_at, names=("sign", "response", "return_window"), unit=event.payload.unit)


async def on_returned(event: CaseReturned, led: Ledger) -> None:
    """退单 is the unit's answer to the order: it ends signing and the return window."""
    led.stop(event.case_id, event.occurred_at, names=("sign", "response", "return_window"), unit=event.payload.unit)


async def on_return_reviewed(event: ReturnReviewed, led: Ledger) -> None:
    if event.payload.upheld:  # the order leaves the unit: its clocks end (the new unit gets its own)
        led.stop(event.case_id, event.occurred_at, unit=event.payload.unit)


async def on_handed_over(event: CaseReportedUp | CasePassedDown, led: Ledger) -> None:
    """上报 / 下派: the order leaves the village (or the township) unanswered; its clocks end
    there, and the unit it goes to gets its own from the case.dispatched that follows."""
    p = event.payload
    led.stop(event.case_id, event.occurred_at, unit=p.village if event.type == "case.reported_up" else p.township)


def _start_response(event: EventBase, led: Ledger, call_id: str, units: list[str], minutes: int, respond_by: datetime | None) -> None:
    """响应 / 报到: each called unit's clock runs to the time dispatch set on the call
    (``respond_by``, shared.deadlines.response_due); an older event, without it, gives only
    its minutes, counted with the same rule. Late, it is carded like every clock."""
    if led.closed(event.case_id):
        return
    due = carried(respond_by) or Deadline(deadlines.response_due(event.occurred_at, minutes))
    for unit in dict.fromkeys(units):
        led.start(event.case_id, ClockKind.sign, event.occurred_at, name="response", unit=unit, due=due, key=call_id)


async def on_county_called(event: CountyCalled, led: Ledger) -> None:
    p = event.payload
    _start_response(event, led, p.call_id, p.units, p.respond_within_minutes, p.respond_by)


async def on_whistle_blown(event: WhistleBlown, led: Ledger) -> None:
    p = event.payload
    _start_response(event, led, p.call_id, [p.lead_unit, *p.co_units], p.respond_within_minutes, p.respond_by)


async def on_progress(event: ProgressReported, led: Ledger) -> None:
    led.stop(event.case_id, event.occurred_at, names=("response",), unit=event.payload.unit)
    if event.payload.first_contact:
        led.stop(event.case_id, event.occurred_at, names=("first_contact",))


async def on_suspended(event: CaseSuspended, led: Ledger) -> None:
    led.pause(event.case_id, event.occurred_at, unit=event.payload.unit)


async def on_resumed(event: CaseResumed, led: Ledger) -> None:
    led.resume(event.case_id, event.occurred_at, unit=event.payload.unit, resolve_due=carried(event.payload.due_at))


async def on_extension_approved(event: ExtensionApproved, led: Ledger) -> None:
    p = event.payload
    led.extend(event.case_id, p.unit, event.occurred_at, p.working_days, due=carried(p.new_due_at))


async def on_deadline_moved(event: DeadlineMoved, led: Ledger) -> None:
    """A holiday table moved one of the order's deadlines (dispatch counted it again): the clock
    takes the carried time as is — SLA never recounts an order's deadline."""
    p = event.payload
    led.take_due(event.case_id, p.unit, p.clock, p.new_due_at)


async def on_resolved(event: CaseResolved, led: Ledger) -> None:
    led.stop(event.case_id, event.occurred_at, names=("resolve", "sign", "response", "survey"), unit=event.payload.unit)
    if led.closed(event.case_id):
        return
    case = led.case(event.case_id)
    # The township verifies (核查) within its limit; one verification per round.
    led.start(event.case_id, ClockKind.verify, event.occurred_at, round=case["redo_round"] if case else 0)


async def on_verification_ended(event: CaseVerified | VerificationFailed, led: Ledger) -> None:
    led.stop(event.case_id, event.occurred_at, names=("verify",))


async def on_closed(event: CaseClosed, led: Ledger) -> None:
    """结案: everything stops; only the callback (回访) clock starts, due when notify's
    callback task is due (``shared.callback``: the end of the working day after closure)."""
    led.upsert_case(event.case_id)
    led.stop(event.case_id, event.occurred_at)
    case = led.case(event.case_id)
    led.upsert_case(event.case_id, closed=True)
    if case and case["task"]:
        return  # 自上而下的任务: no citizen to call back
    led.start(event.case_id, ClockKind.callback, event.occurred_at, round=case["redo_round"] if case else 0)


async def on_callback_done(event: CallbackCompleted | CaseRated, led: Ledger) -> None:
    """The callback has its outcome: reached, rated, or closed as unreachable. Notify writes
    case.callback_completed only then (an unreachable try that will be retried writes
    nothing), so an unreachable one is done too: the clock must not urge a call given up."""
    led.stop(event.case_id, event.occurred_at, names=("callback",))


async def on_reopened(event: CaseReopened, led: Ledger) -> None:
    """重办: the case is open again and the unit gets a new resolve clock for the round."""
    p = event.payload
    led.upsert_case(event.case_id, closed=False, redo_round=p.redo_round)
    led.stop(event.case_id, event.occurred_at, names=("callback",))
    if p.unit:
        previous = [c for c in led.case_clocks(event.case_id) if c["name"] == "resolve" and c["unit"] == p.unit]
        klass = ResolutionClass(previous[-1]["resolution_class"] or "general") if previous else ResolutionClass.general
        # Same id as the case.dispatched of the round, so whichever comes first starts it; both
        # carry the redo order's deadline.
        led.start(
            event.case_id, ClockKind.resolve, event.occurred_at, unit=p.unit, round=p.redo_round,
            role=previous[-1]["role"] if previous else None, resolution_class=klass,
            due=carried(p.due_at) or deadlines.resolve_due(led.calendar, event.occurred_at, klass),
        )
    if redo_escalation(p.redo_round):
        escalation = make_event(
            SlaEscalated,
            payload=SlaEscalatedData(reason="redo_limit", unit=p.unit, detail=f"redo round {p.redo_round}: {p.reason}"),
            producer=SERVICE, actor=ACTOR, caused_by=event, occurred_at=event.occurred_at,
        )
        # Rare, and it decides whether to emit: its own statement, in the event's turn.
        first = await repo.insert_signal(
            led.uow.session,
            {"clock_id": f"{event.case_id}:redo_limit", "generation": 0, "signal": "redo_limit", "case_id": event.case_id,
             "unit": p.unit, "event_id": str(escalation.id), "fired_at": event.occurred_at},
        )
        if first:  # once per case, however many rounds follow
            led.uow.emit(escalation)


# --------------------------------------------------------------------------- early warnings (预警信息处置)
# A warning runs on the same clocks as a case, keyed by its own id (``clocks.subject``
# 'warning'): 签收 and 处置, each due at the time insight computed and carried on the event
# (shared.deadlines.warning_acknowledge_due / warning_handle_due), never recounted here.


def _warning_policy(event: WarningOpened | WarningReopened, led: Ledger) -> tuple[str, int]:
    """The thresholds (reminders, urging, escalation) of the policy in force for the county."""
    chosen = led.policies.for_case(region=event.payload.county, category=None, urgency=None, at=event.occurred_at)
    return chosen.policy_id, chosen.version


def _start_warning_clock(event: WarningOpened | WarningReopened, led: Ledger, kind: ClockKind, due_at: datetime) -> None:
    p = event.payload
    led.start(
        p.warning_id, kind, event.occurred_at, unit=p.unit, round=p.round, due=Deadline(due_at),
        policy=_warning_policy(event, led), subject="warning",
    )  # fmt: skip


async def on_warning_opened(event: WarningOpened, led: Ledger) -> None:
    """Opened: the unit warned owes its 签收 and its 处置, both counted from the opening."""
    _start_warning_clock(event, led, ClockKind.warning_acknowledge, event.payload.acknowledge_due_at)
    _start_warning_clock(event, led, ClockKind.warning_handle, event.payload.handle_due_at)


async def on_warning_acknowledged(event: WarningAcknowledged, led: Ledger) -> None:
    led.stop(event.payload.warning_id, event.occurred_at, names=(ClockKind.warning_acknowledge.value,))


async def on_warning_handled(event: WarningHandled, led: Ledger) -> None:
    """What was done is reported: the handling clock of the round stops (and the acknowledge
    clock, should the report come first in some older flow)."""
    led.stop(event.payload.warning_id, event.occurred_at)


async def on_warning_closed(event: WarningClosed, led: Ledger) -> None:
    led.stop(event.payload.warning_id, event.occurred_at)


async def on_warning_reopened(event: WarningReopened, led: Ledger) -> None:
    """Sent back (重办): a new round and its handling clock, due at the round's carried deadline."""
    _start_warning_clock(event, led, ClockKind.warning_handle, event.payload.handle_due_at)


WARNING_CLOCK_HANDLERS: dict[str, ClockHandler] = {
    "warning.opened": on_warning_opened,
    "warning.acknowledged": on_warning_acknowledged,
    "warning.handled": on_warning_handled,
    "warning.closed": on_warning_closed,
    "warning.reopened": on_warning_reopened,
}


def subject_id(event: EventBase) -> str:
    """Whose clocks an event moves: its case's, or an early warning's (its own id)."""
    if event.type in WARNING_CLOCK_HANDLERS:
        return event.payload.warning_id  # type: ignore[attr-defined]
    assert event.case_id is not None
    return event.case_id


CLOCK_HANDLERS: dict[str, ClockHandler] = {
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
    "case.reported_up": on_handed_over,
    "case.passed_down": on_handed_over,
    "case.whistle_blown": on_whistle_blown,
    "case.surveyed": on_surveyed,
    "case.progress_reported": on_progress,
    "case.suspended": on_suspended,
    "case.resumed": on_resumed,
    "case.extension_approved": on_extension_approved,
    "case.deadline_moved": on_deadline_moved,
    "case.resolved": on_resolved,
    "case.verified": on_verification_ended,
    "case.verification_failed": on_verification_ended,
    "case.closed": on_closed,
    "case.callback_completed": on_callback_done,
    "case.rated": on_callback_done,
    "case.reopened": on_reopened,
    **WARNING_CLOCK_HANDLERS,
}




async def apply_clock_events(uow: UnitOfWork, events: list[EventBase], calendar: WorkingCalendar = PACKAGED_CALENDAR) -> bool:
    """The clock handlers of these events, in order, on one ledger: read once, write once.
    True when a clock was started or changed."""
    changing = [(CLOCK_HANDLERS[e.type], e) for e in events if e.type in CLOCK_HANDLERS]
    if not changing:
        return False
    ledger = await Ledger.load(uow, [subject_id(e) for _, e in changing], calendar)
    for handler, event in changing:
        await handler(event, ledger)
    return await ledger.flush()


async def apply_batch(uow: UnitOfWork, events: list[EventBase], calendar: WorkingCalendar = PACKAGED_CALENDAR) -> bool:
    """SLA's one event handler (shared.consumer): ``case_status`` folded per case into one
    MERGE (``shared.case_status``; a replica that inserts the same new case meanwhile makes it
    fail, and the consumer then applies the batch again event by event), then the clocks.
    True when a clock was started or changed. ``calendar``: the service's, as it follows the
    holiday tables (``SlaContext.calendar``)."""
    status = case_status_many(events)
    if status is not None:
        await uow.session.execute(*status)
    return await apply_clock_events(uow, events, calendar)


def make_batch_handler(ctx: SlaContext) -> BatchHandler:
    """``apply_batch`` bound to the running service: a batch that started or moved a clock
    wakes the tickers once it has committed (the new clock may be due before they would look)."""

    async def handle(uow: UnitOfWork, events: list[EventBase]) -> None:
        if await apply_batch(uow, events, ctx.calendar):
            uow.after_commit(ctx.wake_ticker)

    return handle


# What SLA must have applied of a case before another event of it (shared.holding); only
# causes from ANOTHER producer (each producer's own order is kept by Kafka). See docs/rules.md,
# "An effect waits for its cause".
# - intake's case.accepted (受理, after case.received in intake's own order) before any of
#   dispatch's events: dispatch acts only on a case intake received and accepted; read first,
#   the order's clocks start on an unknown case (no category, so another policy) and its
#   closure stops the accept clock hours late. All of dispatch's types wait for it, so a held
#   one never lets a later one of dispatch overtake it.
# - dispatch's case.closed before notify's case.callback_completed / case.rated: closure starts
#   the callback (回访) clock they stop; read first, they stop nothing and the clock runs on.
DISPATCH_TYPES = frozenset({
    "case.dispatched", "case.signed", "case.returned", "case.return_reviewed", "case.county_called",
    "case.reported_up", "case.passed_down", "case.surveyed",
    "case.whistle_blown", "case.progress_reported", "case.suspended", "case.resumed", "case.extension_approved",
    "case.deadline_moved", "case.resolved", "case.verified", "case.verification_failed", "case.closed", "case.reopened",
})  # fmt: skip
CALLBACK_TYPES = frozenset({"case.callback_completed", "case.rated"})
REQUIRES: dict[str, frozenset[str]] = {
    **{t: frozenset({"case.accepted"}) for t in DISPATCH_TYPES},
    **{t: frozenset({"case.closed"}) for t in CALLBACK_TYPES},
}


# Follow every case-scoped event (this service's view of where each case stands) and run
# the clocks from the lifecycle ones.
HANDLES = CASE_SCOPED_TYPES | frozenset(CLOCK_HANDLERS)
