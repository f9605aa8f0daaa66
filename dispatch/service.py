"""Dispatch's use cases: open orders (by the catalogue or by hand), and every action on them.

Each use case runs inside the caller's unit of work: it locks the order (or the case) it
changes, checks the rules in ``dispatch.domain``, writes the new state and emits the event
that says what happened, all in one transaction. Two clerks acting on one order at once:
the second waits for the first's lock and then meets the new state (``WrongState`` naming
it), or sends the version it saw (``If-Match``) and gets ``StaleVersion`` when it is stale.
A use case a route calls is one transaction (``shared.db.transactional``: committed when it
returns) and refuses with the domain errors of ``shared.errors``, never an HTTP status.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dispatch import access, domain, repository
from dispatch.domain import Action, OrderState, Refused
from dispatch.settings import DispatchSettings
from shared.db import UnitOfWork, transactional
from shared.events import (
    Actor,
    CaseClosed,
    CaseDispatched,
    CasePassedDown,
    CaseReportedUp,
    CaseReopened,
    CaseResolved,
    CaseReturned,
    CaseResumed,
    CaseSigned,
    CaseSuspended,
    CaseSurveyed,
    CaseVerified,
    ClosedData,
    CountyCalled,
    DeadlineMoved,
    DeadlineMovedData,
    CountyCalledData,
    DispatchedData,
    EventBase,
    ExtensionApproved,
    ExtensionApprovedData,
    ExtensionDenied,
    ExtensionDeniedData,
    ExtensionRequested,
    ExtensionRequestedData,
    ProgressReported,
    ProgressReportedData,
    PassedDownData,
    ReopenedData,
    ReportedUpData,
    ResolutionClass,
    ResolvedData,
    ResumedData,
    ReturnedData,
    ReturnReviewed,
    ReturnReviewedData,
    SignedData,
    SuspendedData,
    SurveyedData,
    VerificationFailed,
    VerificationFailedData,
    VerifiedData,
    WhistleBlown,
    WhistleBlownData,
    WorkPlanFiled,
    WorkPlanFiledData,
    make_event,
    system_actor,
    utcnow,
)
from shared.orgdata import OrgDirectory, load_org
from shared.orgfollow import OrgFollower
from shared.privacy import redact_for_public, scrub
from shared.errors import Conflict, Forbidden, Invalid, NotFound, StaleVersion, WrongState
from shared import deadlines, scope
from shared.holidays import HolidayFollower
from shared.workdays import PACKAGED_CALENDAR, WorkingCalendar

log = logging.getLogger(__name__)


@dataclass
class DispatchContext:
    settings: DispatchSettings
    follower: OrgFollower
    # The holiday tables the directory publishes, followed (ServiceSpec.follow_holidays, set at
    # start-up); until then the packaged calendar. Read per use: a table loaded moves it.
    holidays: HolidayFollower | None = None
    # Running moves of open orders' deadlines for a holiday table (follow_holiday_tables).
    moves: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def calendar(self) -> WorkingCalendar:
        return self.holidays.calendar if self.holidays is not None else PACKAGED_CALENDAR

    @classmethod
    def from_settings(cls, settings: DispatchSettings) -> DispatchContext:
        follower = OrgFollower(settings.kafka_bootstrap_servers, settings.org_topic, initial=load_org(settings.org_file))
        return cls(settings, follower)

    @property
    def org(self) -> OrgDirectory:
        return self.follower.current

    def unit_name(self, code: str) -> str | None:
        return self.org.unit(code).name if self.org.has_unit(code) else None

    def due(self, start: datetime, working_days: float) -> datetime:
        return self.calendar.add_working_days(start, working_days).due_at

    # The order's deadlines: computed here once, stored on the order and carried on the event
    # that sets them, so SLA's clocks show the same times (shared.deadlines has the rules).

    def resolve_due(self, dispatched_at: datetime, resolution_class: ResolutionClass) -> datetime:
        return deadlines.resolve_due(self.calendar, dispatched_at, resolution_class, self.settings.resolve_working_days).due_at

    def return_due(self, dispatched_at: datetime) -> datetime:
        return deadlines.return_window_end(self.calendar, dispatched_at, self.settings.return_window_working_days).due_at

    def survey_due(self, dispatched_at: datetime, subject_class: str | None) -> datetime | None:
        s = self.settings
        due = deadlines.survey_due(self.calendar, dispatched_at, subject_class, s.survey_working_days, s.on_site_subject_classes)
        return due.due_at if due is not None else None

    def after_survey_due(self, due_at: datetime, surveyed_at: datetime) -> datetime:
        return deadlines.after_survey_due(self.calendar, due_at, surveyed_at, self.settings.after_survey_working_days).due_at


# --------------------------------------------------------------------------- who may act


# The rules themselves are in ``dispatch.access``; the API shows the same ones as allowed_actions.


def _refused(refused: Refused, allowed: list[str] | None = None) -> WrongState:
    """The rules' refusal, naming the state and what may be done now (``allowed``: what this actor may do)."""
    allowed = refused.allowed if allowed is None else allowed
    return WrongState(refused.reason, code=refused.code, state=refused.state.value, allowed_actions=allowed)


async def readable_order(uow: UnitOfWork, ctx: DispatchContext, order_no: str, actor: Actor, *, lock: bool = False) -> tuple[Any, Any]:
    """The order and its case, or NotFound when the order does not exist or is not the actor's
    to read (another unit's order answers as if it did not exist: ids cannot be probed)."""
    order = await repository.get_order(uow.session, order_no, lock=lock)
    case = await repository.get_case(uow.session, order.case_id) if order is not None else None
    if order is None or not access.may_read_order(ctx.org, actor, order, case):
        raise NotFound(f"no order {order_no}")
    return order, case


def visible_unit(ctx: DispatchContext, actor: Actor, unit: str) -> None:
    """NotFound unless ``unit``'s queue is the actor's to see (another's answers as if absent)."""
    if not scope.may_see_unit(ctx.org, actor, unit):
        raise NotFound(f"no unit {unit} for you")


async def readable_case_orders(uow: UnitOfWork, ctx: DispatchContext, case_id: str, actor: Actor) -> tuple[Any, list[Any]]:
    """The case and those of its orders the actor may read; NotFound when there is no such
    case or the actor may read neither an order of it nor the case's area."""
    case = await repository.get_case(uow.session, case_id)
    rows = await repository.case_orders(uow.session, case_id)
    visible = [r for r in rows if access.may_read_order(ctx.org, actor, r, case)]
    if case is None or (
        not visible and not scope.may_see_case(ctx.org, actor, scope.CaseScope(places=access.case_places(case)))
        and not access.is_first_unit(ctx.org, actor, case)
    ):
        raise NotFound(f"no case {case_id}")
    return case, visible


async def actions_for(uow: UnitOfWork, ctx: DispatchContext, actor: Actor, order: Any, case: Any) -> list[str]:
    """What ``actor`` may do to ``order`` now (``dispatch.access.allowed_actions``)."""
    requests = (await repository.extension_requests_of(uow.session, [order.order_no])).get(order.order_no, [])
    pending = any(r.state == "pending" for r in requests)
    return access.allowed_actions(ctx.org, actor, order, case, pending_extension=pending)


def _entry(action: str, actor: Actor, at: datetime, **detail: Any) -> dict[str, Any]:
    return {"action": action, "actor": actor.id, "role": actor.role.value, "unit": actor.org_unit,
            "at": at.isoformat(), **({"detail": detail} if detail else {})}  # fmt: skip


# --------------------------------------------------------------------------- opening orders


def new_order(
    ctx: DispatchContext,
    case: Any,
    *,
    sequence: int,
    unit: str,
    actor: Actor,
    at: datetime,
    role: str = "sole",
    resolution_class: ResolutionClass = ResolutionClass.general,
    instructions: str | None = None,
    automatic: bool = False,
    redo_round: int = 0,
    call_id: str | None = None,
) -> dict[str, Any]:
    """The ``orders`` row of a new dispatch order (交办单), numbered from ``sequence``."""
    return {
        "order_no": domain.order_number(ctx.settings.region_prefix, at.year, sequence), "case_id": case.case_id,
        "unit": unit, "unit_name": ctx.unit_name(unit), "role": role, "call_id": call_id,
        "state": OrderState.dispatched.value, "resolution_class": resolution_class.value, "instructions": instructions,
        "redo_round": redo_round, "automatic": automatic, "dispatched_at": at,
        "due_at": ctx.resolve_due(at, resolution_class), "return_due_at": ctx.return_due(at),
        "survey_due_at": ctx.survey_due(at, getattr(case, "subject_class", None)),
        "history": [_entry("dispatch", actor, at, automatic=automatic)],
    }  # fmt: skip


def dispatched_event(order: dict[str, Any], actor: Actor, caused_by: EventBase | None) -> EventBase:
    """``case.dispatched`` for a new order (a row of ``new_order``)."""
    return make_event(
        CaseDispatched, case_id=order["case_id"], producer="dispatch", actor=actor, caused_by=caused_by,
        occurred_at=order["dispatched_at"],
        payload=DispatchedData(
            order_no=order["order_no"], unit=order["unit"], unit_name=order["unit_name"],
            resolution_class=ResolutionClass(order["resolution_class"]), instructions=order["instructions"],
            role=order["role"], automatic=order["automatic"], redo_round=order["redo_round"], due_at=order["due_at"],
            return_due_at=order["return_due_at"], handover=order.get("handover", 0), survey_due_at=order.get("survey_due_at"),
        ),
    )  # fmt: skip


async def open_order(
    uow: UnitOfWork,
    ctx: DispatchContext,
    case: Any,
    *,
    unit: str,
    actor: Actor,
    at: datetime,
    caused_by: EventBase | None = None,
    **details: Any,
) -> str | None:
    """Open a dispatch order and emit ``case.dispatched``; None when this unit already has one
    for this case, round and call (an event applied again must not dispatch twice).
    ``details``: role, resolution class, instructions, automatic, redo round, call (``new_order``)."""
    session = uow.session
    sequence = await repository.next_order_sequence(session)
    order = new_order(ctx, case, sequence=sequence, unit=unit, actor=actor, at=at, **details)
    if not await repository.insert_order(session, **order):
        return None
    await repository.update_case(session, case.case_id, stage="dispatched")
    uow.emit(dispatched_event(order, actor, caused_by))
    return order["order_no"]


def catalogue_owner(ctx: DispatchContext, case: Any) -> str | None:
    """Who holds this matter first by the dispatch catalogue (派单目录) — the village it is in
    when the catalogue gives it to the township (``access.first_holder``) — or None to leave
    it to the centre."""
    area = case.grid or case.village or case.township or case.county
    if not area or not case.subject_class or not ctx.org.has_unit(area):
        return None
    try:
        owner = ctx.org.owner_for(case.subject_class, area, f"{case.title or ''} {case.description or ''}")
    except (LookupError, ValueError) as exc:
        log.warning("no catalogue owner for case %s: %s", case.case_id, exc)
        return None
    return access.first_holder(ctx.org, owner, case.village)


def dispatchable(case: Any) -> bool:
    return not (case.rejected or case.merged_into or case.solved_on_spot) and case.stage == "received"


def held_at_window(case: Any) -> bool:
    """谁接待、谁负责: a simple window appeal (1小时诉求服务模式: it has a 1-hour deadline) is its
    receiver's to answer on the spot, so the catalogue does not send it on; the township or
    the centre may still dispatch it by hand when the window cannot solve it."""
    return getattr(case, "resolve_due_at", None) is not None


@transactional
async def dispatch_by_hand(
    uow: UnitOfWork, ctx: DispatchContext, case_id: str, actor: Actor, *, unit: str,
    resolution_class: ResolutionClass, instructions: str | None,
) -> str:  # fmt: skip
    case = await repository.get_case(uow.session, case_id, lock=True)
    if case is None or not access.in_my_area(ctx.org, actor, case):
        raise NotFound(f"no case {case_id}")
    if not ctx.org.has_unit(unit):
        raise Invalid(f"no unit {unit} in the organisation directory", field="unit")
    if not access.may_dispatch_to(ctx.org, actor, unit):
        raise Invalid(f"{unit} is outside the area your centre serves", field="unit", unit=unit)
    if not dispatchable(case):
        raise WrongState(f"case {case_id} is {case.stage}; it cannot be dispatched now", state=case.stage)
    order_no = await open_order(
        uow, ctx, case, unit=unit, actor=actor, at=utcnow(), resolution_class=resolution_class, instructions=instructions,
        redo_round=case.redo_round,
    )
    if order_no is None:
        raise Conflict(f"{unit} already holds an order for case {case_id}", code="already-dispatched")
    return order_no


# --------------------------------------------------------------------------- acting on an order


@dataclass
class Acting:
    order: Any
    new_state: OrderState
    at: datetime
    entry: dict[str, Any]


async def _begin(
    uow: UnitOfWork, ctx: DispatchContext, order_no: str, actor: Actor, action: Action, *,
    version: int | None, decision: bool | None = None, **detail: Any,
) -> Acting:  # fmt: skip
    order, case = await readable_order(uow, ctx, order_no, actor, lock=True)
    if not access.may_perform(ctx.org, actor, action, order, case):
        # The order is the actor's to read (a township verifying, the auditor), not to act on.
        raise Forbidden(f"a {actor.role.value} of {actor.org_unit or 'no unit'} may not {action.value} order {order_no}",
                        code="forbidden", role=actor.role.value, state=order.state,
                        allowed_actions=await actions_for(uow, ctx, actor, order, case))  # fmt: skip
    if version is not None and version != order.version:
        raise StaleVersion(
            f"order {order_no} was changed by someone else (version {order.version}, you sent {version}); reload it",
            state=order.state, version=order.version,
        )  # fmt: skip
    try:
        new_state = domain.next_state(OrderState(order.state), action, decision=decision)
    except Refused as refused:
        raise _refused(refused, await actions_for(uow, ctx, actor, order, case)) from None
    at = utcnow()
    return Acting(order, new_state, at, _entry(action.value, actor, at, **detail))


async def _save(uow: UnitOfWork, acting: Acting, **values: Any) -> None:
    order = acting.order
    saved = await repository.save_order(
        uow.session, order.order_no, order.version, state=acting.new_state.value, history=[*order.history, acting.entry], **values
    )
    if not saved:  # the lock makes this unreachable unless the row changed under us
        raise StaleVersion(f"order {order.order_no} was changed by someone else; reload it")


def _event(cls, acting: Acting, actor: Actor, payload) -> EventBase:
    return make_event(cls, case_id=acting.order.case_id, producer="dispatch", actor=actor, occurred_at=acting.at, payload=payload)


@transactional
async def sign(uow: UnitOfWork, ctx: DispatchContext, order_no: str, actor: Actor, version: int | None) -> None:
    acting = await _begin(uow, ctx, order_no, actor, Action.sign, version=version)
    await _save(uow, acting, signed_at=acting.at)
    uow.emit(_event(CaseSigned, acting, actor, SignedData(order_no=order_no, unit=acting.order.unit)))


@transactional
async def claim(uow: UnitOfWork, ctx: DispatchContext, order_no: str, actor: Actor, version: int | None) -> None:
    """认领: the village takes the matter as its own — its 签收, carried as ``case.signed``
    (``claimed``), so its clocks and figures run as any unit's signed order."""
    acting = await _begin(uow, ctx, order_no, actor, Action.claim, version=version)
    await _save(uow, acting, signed_at=acting.at)
    uow.emit(_event(CaseSigned, acting, actor, SignedData(order_no=order_no, unit=acting.order.unit, claimed=True)))


@transactional
async def report_up(uow: UnitOfWork, ctx: DispatchContext, order_no: str, actor: Actor, version: int | None, *, reason: str) -> str:
    """上报: the village cannot solve it within its means; its order ends and its township
    gets an order of its own (deadlines from now, ``shared.deadlines``). Returns the new order."""
    acting = await _begin(uow, ctx, order_no, actor, Action.report_up, version=version, reason=reason)
    order = acting.order
    township = ctx.org.unit(order.unit).parent
    return await _hand_over(uow, ctx, acting, actor, to=township, reason=reason, event=lambda new_no: make_event(
        CaseReportedUp, case_id=order.case_id, producer="dispatch", actor=actor, occurred_at=acting.at,
        payload=ReportedUpData(order_no=order_no, village=order.unit, village_name=ctx.unit_name(order.unit), township=township,
                               township_name=ctx.unit_name(township), reason=scrub(reason), new_order_no=new_no),
    ), instructions=f"村级上报：{reason}")  # fmt: skip


@transactional
async def pass_down(
    uow: UnitOfWork, ctx: DispatchContext, order_no: str, actor: Actor, version: int | None, *, reason: str, village: str | None,
) -> str:  # fmt: skip
    """下派: the township sends the matter down to one of its villages (the case's own unless
    named); its order ends and the village gets one of its own. Returns the new order."""
    order, case = await readable_order(uow, ctx, order_no, actor)
    village = village or case.village
    if access.may_perform(ctx.org, actor, Action.pass_down, order, case):
        problem = access.pass_down_problem(ctx.org, order.unit, village)
        if problem:
            raise Invalid(problem, field="village")
    acting = await _begin(uow, ctx, order_no, actor, Action.pass_down, version=version, reason=reason, village=village)
    township = acting.order.unit
    return await _hand_over(uow, ctx, acting, actor, to=village, reason=reason, event=lambda new_no: make_event(
        CasePassedDown, case_id=order.case_id, producer="dispatch", actor=actor, occurred_at=acting.at,
        payload=PassedDownData(order_no=order_no, township=township, township_name=ctx.unit_name(township), village=village,
                               village_name=ctx.unit_name(village), reason=scrub(reason), new_order_no=new_no),
    ), instructions=f"乡镇下派：{reason}")  # fmt: skip


async def _hand_over(uow: UnitOfWork, ctx: DispatchContext, acting: Acting, actor: Actor, *, to: str, reason: str, event: Any,
                     instructions: str) -> str:  # fmt: skip
    """The order ends (reassigned) and ``to`` gets a new one of the same class and round: the
    handover event first, then its ``case.dispatched`` (SLA stops the old unit's clocks and
    starts the new one's in that order)."""
    order = acting.order
    await _save(uow, acting)
    case = await repository.get_case(uow.session, order.case_id, lock=True)
    sequence = await repository.next_order_sequence(uow.session)
    row = new_order(ctx, case, sequence=sequence, unit=to, actor=actor, at=acting.at,
                    resolution_class=ResolutionClass(order.resolution_class), instructions=instructions, redo_round=order.redo_round)  # fmt: skip
    row["handover"] = order.handover + 1
    if not await repository.insert_order(uow.session, **row):
        raise Conflict(f"{to} already holds an order for case {order.case_id} in this round", code="already-dispatched")
    await repository.update_case(uow.session, order.case_id, stage="dispatched")
    handover = event(row["order_no"])
    uow.emit(handover)
    uow.emit(dispatched_event(row, actor, handover))
    return row["order_no"]


@transactional
async def return_order(
    uow: UnitOfWork, ctx: DispatchContext, order_no: str, actor: Actor, version: int | None, *,
    reason_code: str, reason: str, suggested_unit: str | None,
) -> None:  # fmt: skip
    order = await repository.get_order(uow.session, order_no)
    # An order from before return_due_at was stored counts its window from dispatch, as then.
    within = order is not None and utcnow() <= (order.return_due_at or ctx.return_due(order.dispatched_at))
    earlier = [domain.ReturnRecord(r["reason_code"], r["reviewed"]) for r in (order.returns if order else [])]
    acting = await _begin(uow, ctx, order_no, actor, Action.return_order, version=version, reason_code=reason_code)
    try:
        domain.check_return(reason_code=reason_code, within_window=within, earlier=earlier, state=OrderState(acting.order.state))
    except Refused as refused:
        raise _refused(refused) from None
    returns = [*acting.order.returns, {"reason_code": reason_code, "reason": reason, "reviewed": False, "suggested_unit": suggested_unit}]
    await _save(uow, acting, returns=returns)
    uow.emit(_event(CaseReturned, acting, actor, ReturnedData(
        order_no=order_no, unit=acting.order.unit, reason_code=reason_code, reason=reason, suggested_unit=suggested_unit,
    )))  # fmt: skip


@transactional
async def review_return(
    uow: UnitOfWork, ctx: DispatchContext, order_no: str, actor: Actor, version: int | None, *,
    upheld: bool, comment: str | None, redispatch_to: str | None,
) -> str | None:  # fmt: skip
    """Upheld: the case goes to the right unit (a new order, returned). Rejected: back to the unit.
    Only the centre reviews (``dispatch.access``)."""
    if upheld and (not redispatch_to or not ctx.org.has_unit(redispatch_to)):
        raise Invalid("an upheld return names the unit to re-dispatch to (redispatch_to)", field="redispatch_to")
    acting = await _begin(uow, ctx, order_no, actor, Action.review_return, version=version, decision=upheld, upheld=upheld)
    returns = [{**r, "reviewed": True, "upheld": upheld} if not r["reviewed"] else r for r in acting.order.returns]
    await _save(uow, acting, returns=returns)
    uow.emit(_event(ReturnReviewed, acting, actor, ReturnReviewedData(
        order_no=order_no, unit=acting.order.unit, upheld=upheld, comment=comment, redispatch_to=redispatch_to if upheld else None,
    )))  # fmt: skip
    if not upheld:
        return None
    case = await repository.get_case(uow.session, acting.order.case_id, lock=True)
    await repository.update_case(uow.session, case.case_id, stage="received")
    return await open_order(
        uow, ctx, case, unit=redispatch_to, actor=actor, at=acting.at, role=acting.order.role,
        resolution_class=ResolutionClass(acting.order.resolution_class), instructions=acting.order.instructions,
        redo_round=acting.order.redo_round, call_id=acting.order.call_id,
    )  # fmt: skip


@transactional
async def survey(
    uow: UnitOfWork, ctx: DispatchContext, order_no: str, actor: Actor, version: int | None, *,
    findings: str, attachments: list[str],
) -> datetime:  # fmt: skip
    """现场勘查: the unit records its on-site survey (findings, photos), once per order. The
    survey clock stops, and the work's deadline counts from the survey (never shortened):
    computed here once and carried on ``case.surveyed``. Returns the order's new deadline."""
    acting = await _begin(uow, ctx, order_no, actor, Action.survey, version=version, attachments=attachments)
    order = acting.order
    if order.survey:
        raise Conflict(f"order {order_no} was surveyed on {order.survey['at']}; report further visits as progress",
                       code="already-surveyed", state=order.state)  # fmt: skip
    due = ctx.after_survey_due(order.due_at, acting.at) if order.due_at is not None else None
    record = {"findings": findings, "attachments": attachments, "at": acting.at.isoformat(), "actor": actor.id, "unit": actor.org_unit,
              "on_time": order.survey_due_at is None or acting.at <= order.survey_due_at}  # fmt: skip
    await _save(uow, acting, survey=record, due_at=due)
    uow.emit(_event(CaseSurveyed, acting, actor, SurveyedData(
        order_no=order_no, unit=order.unit, findings=scrub(findings), attachments=attachments, photos=attachments, due_at=due,
    )))  # fmt: skip
    return due


@transactional
async def file_plan(
    uow: UnitOfWork, ctx: DispatchContext, order_no: str, actor: Actor, version: int | None, *,
    measures: str, planned_finish_at: datetime, responsible: str, contact: str | None,
) -> None:  # fmt: skip
    acting = await _begin(uow, ctx, order_no, actor, Action.file_plan, version=version)
    # The contact is kept whole for the staff who read the order (the township verifying
    # calls the responsible person); only the event, which travels further, masks it.
    plan = {"measures": measures, "planned_finish_at": planned_finish_at.isoformat(), "responsible": responsible,
            "contact": contact}  # fmt: skip
    if acting.order.plan and acting.order.plan.get("suspended"):
        plan["suspended"] = True  # a new plan does not restart clocks paused for the citizen
    await _save(uow, acting, plan=plan)
    uow.emit(_event(WorkPlanFiled, acting, actor, WorkPlanFiledData(
        order_no=order_no, unit=acting.order.unit, measures=measures, planned_finish_at=planned_finish_at,
        responsible=responsible, contact_masked=scrub(contact) if contact else None,
    )))  # fmt: skip


@transactional
async def report_progress(
    uow: UnitOfWork, ctx: DispatchContext, order_no: str, actor: Actor, version: int | None, *,
    note: str, percent: int | None, attachments: list[str], first_contact: bool, part_done: bool,
) -> None:  # fmt: skip
    # The report stays on the order (its history) for whoever verifies the work: note, photos.
    acting = await _begin(uow, ctx, order_no, actor, Action.report_progress, version=version, note=note, percent=percent,
                          attachments=attachments, first_contact=first_contact, part_done=part_done)  # fmt: skip
    if part_done and acting.order.role != "co":
        raise Invalid("only a co-handler reports its part done; the lead resolves", field="part_done")
    await _save(uow, acting, part_done=acting.order.part_done or part_done)
    uow.emit(_event(ProgressReported, acting, actor, ProgressReportedData(
        order_no=order_no, unit=acting.order.unit, note=scrub(note), percent=percent, attachments=attachments,
        first_contact=first_contact, co_handler_part_done=part_done,
    )))  # fmt: skip


@transactional
async def request_extension(
    uow: UnitOfWork, ctx: DispatchContext, order_no: str, actor: Actor, version: int | None, *,
    working_days: int, reason: str, long_cycle: bool,
) -> str:  # fmt: skip
    acting = await _begin(uow, ctx, order_no, actor, Action.request_extension, version=version, working_days=working_days)
    try:  # refuse at once what could never be approved
        domain.check_extension(working_days, domain.ExtensionHistory(list(acting.order.extensions)), long_cycle=long_cycle)
    except Refused as refused:
        raise Invalid(refused.reason, code=refused.code, field="working_days") from None
    request_id = f"EXT-{uuid.uuid4().hex[:12]}"
    await repository.insert_extension(
        uow.session, request_id=request_id, order_no=order_no, working_days=working_days, reason=reason,
        long_cycle=long_cycle, state="pending", requested_at=acting.at,
    )  # fmt: skip
    await _save(uow, acting)
    uow.emit(_event(ExtensionRequested, acting, actor, ExtensionRequestedData(
        order_no=order_no, unit=acting.order.unit, request_id=request_id, working_days=working_days, reason=reason,
        long_cycle=long_cycle,
    )))  # fmt: skip
    return request_id


@transactional
async def decide_extension(
    uow: UnitOfWork, ctx: DispatchContext, request_id: str, actor: Actor, *, approve: bool, reason: str | None,
) -> datetime | None:  # fmt: skip
    """Approved: a new deadline (延期), carried on the event for SLA to follow. Only the
    centre decides (``dispatch.access``)."""
    request = await repository.get_extension(uow.session, request_id, lock=True)
    # A request on an order the actor may not read answers as one that does not exist, and
    # names neither the order nor its case: request ids cannot be probed for orders.
    missing = NotFound(f"no extension request {request_id}")
    if request is None:
        raise missing
    try:
        await readable_order(uow, ctx, request.order_no, actor, lock=True)
    except NotFound:
        raise missing from None
    acting = await _begin(uow, ctx, request.order_no, actor, Action.decide_extension, version=None, approve=approve,
                          request_id=request_id, reason=reason)  # fmt: skip
    if request.state != "pending":
        raise WrongState(f"extension request {request_id} was already {request.state}", code="already-decided", state=request.state)
    order = acting.order
    if not approve:
        await repository.decide_extension(uow.session, request_id, "denied", acting.at)
        await _save(uow, acting)
        uow.emit(_event(ExtensionDenied, acting, actor, ExtensionDeniedData(
            order_no=order.order_no, unit=order.unit, request_id=request_id, reason=reason or "不予延期",
        )))  # fmt: skip
        return None
    try:
        domain.check_extension(request.working_days, domain.ExtensionHistory(list(order.extensions)), long_cycle=request.long_cycle)
    except Refused as refused:
        raise WrongState(refused.reason, code=refused.code, state=order.state) from None
    # Counted from the current deadline, or from the approval when overdue (shared.deadlines).
    new_due = deadlines.extended_due(ctx.calendar, order.due_at or acting.at, acting.at, request.working_days).due_at
    await repository.decide_extension(uow.session, request_id, "approved", acting.at)
    await _save(uow, acting, due_at=new_due, extensions=[*order.extensions, request.working_days])
    uow.emit(_event(ExtensionApproved, acting, actor, ExtensionApprovedData(
        order_no=order.order_no, unit=order.unit, request_id=request_id, working_days=request.working_days, new_due_at=new_due,
    )))  # fmt: skip
    return new_due


@transactional
async def suspend(
    uow: UnitOfWork, ctx: DispatchContext, order_no: str, actor: Actor, version: int | None, *, reason: str, resume: bool,
) -> None:
    """Pause the order's clocks while waiting on the citizen (or an approved suspension), and resume."""
    order, _case = await readable_order(uow, ctx, order_no, actor, lock=True)
    if not access.may_act_for(ctx.org, actor, order.unit):
        raise Forbidden(f"a {actor.role.value} may not pause or resume order {order_no}", code="forbidden", role=actor.role.value)
    if version is not None and version != order.version:
        raise StaleVersion(f"order {order_no} was changed by someone else; reload it", version=order.version)
    suspended = bool(order.plan and order.plan.get("suspended"))
    if order.state not in ("signed", "in_progress") or suspended == (not resume):
        allowed = ["resume"] if suspended else ["suspend"] if order.state in ("signed", "in_progress") else []
        raise WrongState(f"cannot {'resume' if resume else 'suspend'} an order that is {order.state}"
                         f"{' and suspended' if suspended else ''}", state=order.state, allowed_actions=allowed)  # fmt: skip
    at = utcnow()
    acting = Acting(order, OrderState(order.state), at, _entry("resume" if resume else "suspend", actor, at, reason=reason))
    if resume:
        # The time waiting on the citizen does not count: the deadline moves on by it, here
        # once, and SLA's resolve clock takes the moved time from the event.
        due, survey_due = order.due_at, order.survey_due_at if not order.survey else None
        since = suspended_since(order) or at
        if due is not None:
            due = deadlines.resumed_due(ctx.calendar, due, since, at).due_at
        # A survey not yet made moves on the same way (SLA's survey clock follows the same
        # rule from the same times: shared.deadlines.resumed_due).
        moved = {"survey_due_at": deadlines.resumed_due(ctx.calendar, survey_due, since, at).due_at} if survey_due else {}
        await _save(uow, acting, plan={**(order.plan or {}), "suspended": False}, due_at=due, **moved)
        uow.emit(_event(CaseResumed, acting, actor, ResumedData(unit=order.unit, due_at=due)))
        return
    await _save(uow, acting, plan={**(order.plan or {}), "suspended": True})
    uow.emit(_event(CaseSuspended, acting, actor, SuspendedData(reason=scrub(reason), unit=order.unit)))


def suspended_since(order: Any) -> datetime | None:
    """When the order's current suspension began: its last 'suspend' in the history."""
    for entry in reversed(order.history or []):
        if entry.get("action") == "suspend":
            return datetime.fromisoformat(entry["at"])
    return None


@transactional
async def resolve(
    uow: UnitOfWork, ctx: DispatchContext, order_no: str, actor: Actor, version: int | None, *,
    answer: str, solved: bool, override_co_handlers: bool,
) -> None:  # fmt: skip
    acting = await _begin(uow, ctx, order_no, actor, Action.resolve, version=version)
    order = acting.order
    if order.role == "co":
        raise WrongState("a co-handler reports its part (progress with part_done); the lead unit resolves",
                         code="lead-resolves", state=order.state, allowed_actions=["report_progress"])  # fmt: skip
    if order.role == "lead" and not override_co_handlers:
        siblings = [o for o in await repository.case_orders(uow.session, order.case_id) if o.call_id == order.call_id and o.role == "co"]
        waiting = [o.unit for o in siblings if not o.part_done]
        if waiting:
            raise WrongState(f"co-handlers have not reported their part: {', '.join(waiting)}", code="co-handlers-pending",
                             state=order.state, waiting=waiting)  # fmt: skip
    await _save(uow, acting, resolved_at=acting.at, answer=answer)
    await repository.update_case(uow.session, order.case_id, stage="resolved")
    uow.emit(_event(CaseResolved, acting, actor, ResolvedData(order_no=order_no, unit=order.unit, answer=scrub(answer), solved=solved)))


@transactional
async def verify(
    uow: UnitOfWork, ctx: DispatchContext, case_id: str, actor: Actor, *,
    passed: bool, comment: str | None, public_summary: str | None,
) -> None:  # fmt: skip
    """核验 by the case's township (or the centre): passed → verified, closed and published
    (销号、公示); failed → every resolved order of the round goes back to its unit."""
    case = await repository.get_case(uow.session, case_id, lock=True)
    if case is None or not access.may_verify(ctx.org, actor, case):
        raise NotFound(f"no case {case_id} for you to verify")
    resolved = [o for o in await repository.case_orders(uow.session, case_id, lock=True)
                if o.redo_round == case.redo_round and o.state == OrderState.resolved.value]  # fmt: skip
    if not resolved:
        raise WrongState(f"case {case_id} has no resolved order to verify", state=case.stage, allowed_actions=[])
    now = utcnow()
    unit = actor.org_unit or "centre"
    if not passed:
        for order in resolved:
            acting = Acting(order, OrderState.in_progress, now, _entry("verify", actor, now, passed=False, reason=comment))
            await _save(uow, acting)
            uow.emit(_event(VerificationFailed, acting, actor, VerificationFailedData(
                verifier_unit=unit, reason=comment or "核验未通过", order_no=order.order_no, unit=order.unit,
            )))  # fmt: skip
        await repository.update_case(uow.session, case_id, stage="dispatched")
        return
    summary = redact_for_public(public_summary or f"{case.title}：已办结。")  # 公示: what the public may read
    for order in resolved:
        acting = Acting(order, OrderState.closed, now, _entry("verify", actor, now, passed=True))
        await _save(uow, acting)
    for order in await repository.case_orders(uow.session, case_id):  # co-handlers of a whistle end with the case
        if order.redo_round == case.redo_round and order.state in ("signed", "in_progress"):
            await _save(uow, Acting(order, OrderState.closed, now, _entry("close", actor, now, with_case=True)))
    await repository.update_case(uow.session, case_id, stage="closed", closed_at=now, public_summary=summary)
    first = Acting(resolved[0], OrderState.closed, now, {})
    uow.emit(_event(CaseVerified, first, actor, VerifiedData(verifier_unit=unit, comment=comment)))
    uow.emit(_event(CaseClosed, first, actor, ClosedData(public_summary=summary, published=True)))
    # 并单: the duplicates that followed this case close with it, each citizen told the answer.
    for duplicate in await repository.merged_into(uow.session, case_id):
        await repository.update_case(uow.session, duplicate.case_id, stage="closed", closed_at=now, public_summary=summary)
        uow.emit(make_event(CaseClosed, case_id=duplicate.case_id, producer="dispatch", actor=actor, occurred_at=now,
                            payload=ClosedData(public_summary=summary, published=False)))  # fmt: skip


# --------------------------------------------------------------------------- 乡呼县应 and 吹哨报到

#: An order its unit still holds: not yet answered, returned or handed over.
OPEN_STATES = access.OPEN_STATES


@transactional
async def call_county(
    uow: UnitOfWork, ctx: DispatchContext, case_id: str, actor: Actor, *,
    units: list[str], reason: str, respond_within_minutes: int | None, lead_unit: str | None,
) -> tuple[str, list[str]]:  # fmt: skip
    """The township calls county departments (乡呼县应), or blows the whistle (吹哨报到) when a
    lead is named — and so may the case's village or grid, from below (网格吹哨、部门报到): one
    order per department; the called departments must report within the response limit
    (``shared.deadlines.response_minutes``: 30 minutes for an emergency), carried on the event."""
    case = await repository.get_case(uow.session, case_id, lock=True)
    caller = access.calling_unit(ctx.org, actor, case)
    if caller is None:
        if case is not None and scope.may_see_case(ctx.org, actor, scope.CaseScope(places=access.case_places(case))):
            # It reads the case (a grid worker its whole village's) but whistles only where it works.
            raise Forbidden(f"case {case_id} is not in your grid, village or township: only the place it is in calls "
                            "for it (网格吹哨: the grid the case is in)", code="outside-your-area")  # fmt: skip
        raise NotFound(f"no case {case_id} in your township, village or grid")
    named = [*((f"units[{i}]", u) for i, u in enumerate(units)), *([("lead_unit", lead_unit)] if lead_unit else [])]
    for field, unit in named:
        if not access.may_call(ctx.org, case, unit):
            raise Invalid(f"{unit} is not a unit this case's township may call: a department of its own county, "
                          "or a unit the dispatch catalogue names for the matter", field=field, unit=unit)  # fmt: skip
    problem = access.call_problem(ctx.org, case, caller, await repository.case_orders(uow.session, case_id), lead=lead_unit is not None)
    if problem is not None:
        code, message, facts = problem
        if code == "lead-required":
            raise Invalid(message, code=code, **facts)
        raise WrongState(message, code=None if code == "invalid-state" else code, **facts)
    call_id = f"CALL-{uuid.uuid4().hex[:10]}"
    at = utcnow()
    township = case.township or actor.org_unit
    minutes = deadlines.response_minutes(case.urgency, respond_within_minutes)
    respond_by = deadlines.response_due(at, minutes)
    if lead_unit:
        co_units = [u for u in units if u != lead_unit]
        call = make_event(WhistleBlown, case_id=case_id, producer="dispatch", actor=actor, occurred_at=at, payload=WhistleBlownData(
            call_id=call_id, township=township, township_name=ctx.unit_name(township),
            blown_by=caller, blown_by_name=ctx.unit_name(caller), lead_unit=lead_unit,
            lead_unit_name=ctx.unit_name(lead_unit), co_units=co_units,
            reason=reason, respond_within_minutes=minutes, respond_by=respond_by,
        ))  # fmt: skip
        plan = [(lead_unit, "lead"), *((u, "co") for u in co_units)]
    else:
        call = make_event(CountyCalled, case_id=case_id, producer="dispatch", actor=actor, occurred_at=at, payload=CountyCalledData(
            call_id=call_id, township=township, township_name=ctx.unit_name(township), units=units, reason=reason,
            respond_within_minutes=minutes, respond_by=respond_by,
        ))  # fmt: skip
        plan = [(u, "sole" if len(units) == 1 else "co") for u in units]
    uow.emit(call)
    # The caller's own order on this case (if any) ends: the county units take it over.
    own = access.holding_unit(ctx.org, caller)
    for order in await repository.case_orders(uow.session, case_id, lock=True):
        if order.unit == own and order.state in OPEN_STATES:
            await _save(uow, Acting(order, OrderState.reassigned, at, _entry("call_county", actor, at, call_id=call_id)))
    await repository.update_case(uow.session, case_id, stage="received")
    opened = []
    for unit, role in plan:
        order_no = await open_order(
            uow, ctx, case, unit=unit, actor=actor, at=at, role=role, instructions=reason,
            redo_round=case.redo_round, call_id=call_id, caused_by=call,
        )  # fmt: skip
        if order_no:
            opened.append(order_no)
    return call_id, opened


# --------------------------------------------------------------------------- redo (重办)


async def reopen_after_rating(uow: UnitOfWork, ctx: DispatchContext, event: EventBase) -> None:
    """An unsatisfied rating of round r sends the case back to the unit that handled it, as
    round r + 1; only the later round's rating will count."""
    case = await repository.get_case(uow.session, event.case_id, lock=True)
    rated_round = event.payload.round
    if case is None or case.stage != "closed" or rated_round != case.redo_round:
        return  # not ours, not closed, or a rating of an earlier round: nothing to redo
    handled = [o for o in await repository.case_orders(uow.session, case.case_id)
               if o.redo_round == rated_round and o.role in ("sole", "lead") and o.state == "closed"]  # fmt: skip
    if not handled:
        return
    last = handled[-1]
    redo = rated_round + 1
    actor = system_actor("dispatch")
    at = utcnow()  # the redo starts when it is ordered, after the rating that caused it
    klass = ResolutionClass(last.resolution_class)
    # The redo order's deadline, the one open_order stores and carries on case.dispatched:
    # SLA starts the round's resolve clock from whichever of the two events it meets first.
    uow.emit(make_event(CaseReopened, producer="dispatch", actor=actor, caused_by=event, occurred_at=at,
                        payload=ReopenedData(reason="群众不满意，重办", redo_round=redo, unit=last.unit,
                                             due_at=ctx.resolve_due(at, klass))))  # fmt: skip
    await repository.update_case(uow.session, case.case_id, stage="received", redo_round=redo)
    case = await repository.get_case(uow.session, case.case_id)
    await open_order(
        uow, ctx, case, unit=last.unit, actor=actor, at=at, resolution_class=klass,
        instructions=f"重办（第{redo}次）：群众对上次办理不满意", redo_round=redo, caused_by=event,
    )  # fmt: skip


def soon_horizon(ctx: DispatchContext, now: datetime) -> datetime:
    return ctx.due(now, ctx.settings.due_soon_working_days)



# --------------------------------------------------------------------------- holiday tables


BEIJING = ZoneInfo("Asia/Shanghai")


def recounted_deadlines(
    calendar: WorkingCalendar, settings: DispatchSettings, order: Any, subject_class: str | None, extensions: dict[str, int],
) -> dict[str, datetime | None]:  # fmt: skip
    """The order's deadlines counted again on ``calendar`` from its start and class, replaying
    what moved them since (an approved extension, a suspension, the survey) in the order of its
    history — the same rules (``shared.deadlines``) that set them, so counting on the calendar
    they were set on gives them back unchanged. ``extensions``: request_id → approved days."""
    start, klass = order.dispatched_at, ResolutionClass(order.resolution_class)
    due = deadlines.resolve_due(calendar, start, klass, settings.resolve_working_days).due_at
    survey = deadlines.survey_due(calendar, start, subject_class, settings.survey_working_days, settings.on_site_subject_classes)
    survey_due = survey.due_at if survey is not None and order.survey_due_at is not None else None
    surveyed, since = False, None
    for entry in order.history or []:
        action, at, detail = entry.get("action"), datetime.fromisoformat(entry["at"]), entry.get("detail") or {}
        if action == "suspend":
            since = at
        elif action == "resume" and since is not None:
            due = deadlines.resumed_due(calendar, due, since, at).due_at
            if survey_due is not None and not surveyed:
                survey_due = deadlines.resumed_due(calendar, survey_due, since, at).due_at
            since = None
        elif action == "survey":
            surveyed = True
            due = deadlines.after_survey_due(calendar, due, at, settings.after_survey_working_days).due_at
        elif action == "decide_extension" and detail.get("approve") and detail.get("request_id") in extensions:
            due = deadlines.extended_due(calendar, due, at, extensions[detail["request_id"]]).due_at
    return {
        "due_at": due if order.due_at is not None else None,
        "return_due_at": deadlines.return_window_end(calendar, start, settings.return_window_working_days).due_at
        if order.return_due_at is not None else None,
        "survey_due_at": survey_due,
    }  # fmt: skip


# Which of the order's deadlines each clock of SLA runs on, and while the clock still runs:
# the return window (退单) only while the order waits to be signed, the survey until it is made.
MOVABLE = (("resolve", "due_at"), ("return_window", "return_due_at"), ("survey", "survey_due_at"))


def still_running(clock: str, order: Any) -> bool:
    if clock == "return_window":
        return order.state == OrderState.dispatched.value
    if clock == "survey":
        return not order.survey
    return True


@transactional
async def apply_holiday_table(uow: UnitOfWork, ctx: DispatchContext, year: int, loaded_at: datetime, calendar: WorkingCalendar) -> int:
    """A holiday table for ``year`` (loaded at ``loaded_at``) took effect: move the deadlines of
    the open orders whose window touches that year to the ones ``calendar`` gives, each carried
    on ``case.deadline_moved``. Once per table version: the version applied is recorded in the
    same transaction as the moves, so another replica, or a restart replaying the topic, finds
    it applied and moves nothing. Returns how many deadlines moved."""
    if not await repository.claim_holiday_table(uow.session, year, loaded_at):
        return 0
    start = datetime(year, 1, 1, tzinfo=BEIJING)
    rows = await repository.open_orders_between(uow.session, start, datetime(year + 1, 1, 1, tzinfo=BEIJING))
    extensions = await repository.approved_extensions(uow.session, [r.order_no for r in rows])
    actor, at, reason, moved = system_actor("dispatch"), utcnow(), f"holiday table {year}", 0
    for order in rows:
        counted = recounted_deadlines(calendar, ctx.settings, order, order.subject_class, extensions)
        changes = {column: counted[column] for clock, column in MOVABLE
                   if still_running(clock, order) and counted[column] is not None and counted[column] != getattr(order, column)}  # fmt: skip
        if not changes:
            continue
        entry = _entry("deadline_moved", actor, at, reason=reason, **{k: v.isoformat() for k, v in changes.items()})
        await _save(uow, Acting(order, OrderState(order.state), at, entry), **changes)
        for clock, column in MOVABLE:
            if column in changes:
                moved += 1
                uow.emit(make_event(DeadlineMoved, case_id=order.case_id, producer="dispatch", actor=actor, occurred_at=at,
                                    payload=DeadlineMovedData(order_no=order.order_no, unit=order.unit, clock=clock,
                                                              old_due_at=getattr(order, column), new_due_at=changes[column],
                                                              reason=reason)))  # fmt: skip
    await repository.record_moves(uow.session, year, moved)
    return moved


# A move that failed (the database away) is tried again after this long, this many times.
RETRY_SECONDS = 1.0
ATTEMPTS = 5


def follow_holiday_tables(runtime: Any, ctx: DispatchContext) -> None:
    """On each holiday table followed, move the open orders' deadlines (in a task of its own:
    the follower must not wait on the database). Tables followed before the hook was set (the
    follower starts first, replaying the topic) are applied too: those already applied, by this
    replica or another, move nothing (``apply_holiday_table``)."""

    async def apply(year: int, loaded_at: datetime, calendar: WorkingCalendar) -> None:
        for attempt in range(ATTEMPTS):
            try:
                moved = await apply_holiday_table(runtime.uow(), ctx, year, loaded_at, calendar)
                if moved:
                    log.info("holiday table %d: %d deadlines of open orders moved", year, moved)
                return
            except Exception:
                log.exception("moving deadlines for holiday table %d failed (attempt %d)", year, attempt + 1)
                await asyncio.sleep(RETRY_SECONDS)

    def changed(year: int, _old: WorkingCalendar, new: WorkingCalendar) -> None:
        loaded = ctx.holidays.table(year) if ctx.holidays is not None else None
        if loaded is None:
            return
        task = asyncio.create_task(apply(year, loaded.loaded_at, new), name=f"dispatch-holidays:{year}")
        ctx.moves.add(task)
        task.add_done_callback(ctx.moves.discard)

    if ctx.holidays is not None:
        ctx.holidays.on_change.append(changed)
        for year in sorted(ctx.holidays.tables):
            changed(year, ctx.holidays.calendar, ctx.holidays.calendar)
