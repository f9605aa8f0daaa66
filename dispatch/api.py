"""Dispatch's REST API (``/api/v1``): thin routes over ``dispatch.service``.

A route parses the request, calls the use case and answers: the use case commits its own
transaction and refuses with domain errors, which the shared app maps to problem+json.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query
from pydantic import AwareDatetime, BaseModel, Field

from dispatch import access, repository, service
from dispatch.domain import OrderState
from dispatch.service import DispatchContext
from shared.privacy import redact_for_public
from shared.scope import CENTRE_ROLES, CaseScope, may_open_contact, may_see_case, may_see_unit, require_role
from shared.actors import ActorDep
from shared.events import Actor, AttachmentId, ResolutionClass, Role, utcnow
from shared.edge import IsoDateTime
from shared.http import require_json
from shared.paging import decode_cursor, encode_cursor
from shared.permissions import permit
from shared.service import UowDep, service_context

router = APIRouter(prefix="/api/v1", tags=["dispatch"])
JsonBody = Depends(require_json)


ContextDep = Annotated[DispatchContext, Depends(service_context)]
IfMatch = Annotated[int | None, Header(description="the order's version you saw; a stale one is a 409")]


class Done(BaseModel):
    order_no: str | None = None
    state: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class ManualDispatch(BaseModel):
    unit: str = Field(min_length=1, max_length=64, description="org directory unit code, e.g. LB-XC-ZJJ")
    resolution_class: ResolutionClass = ResolutionClass.general
    instructions: str | None = Field(default=None, max_length=2000)


class ReturnBody(BaseModel):
    reason_code: Literal["not_our_duty", "wrong_area", "insufficient_info", "duplicate", "other"]
    reason: str = Field(min_length=2, max_length=1000)
    suggested_unit: str | None = Field(default=None, max_length=64)


class ReviewBody(BaseModel):
    upheld: bool
    comment: str | None = Field(default=None, max_length=1000)
    redispatch_to: str | None = Field(default=None, max_length=64)


class SurveyBody(BaseModel):
    findings: str = Field(min_length=2, max_length=4000, description="勘查情况: what the survey found on site")
    # 现场勘查 is "a step of its own, with photos": at least one, each a typed reference to an
    # attachment uploaded to intake (a free string is refused with 422 naming attachments.<i>).
    attachments: list[AttachmentId] = Field(min_length=1, max_length=9, description="photos of the site: attachment ids (intake's POST /api/v1/attachments)")


class PlanBody(BaseModel):
    measures: str = Field(min_length=2, max_length=4000)
    planned_finish_at: AwareDatetime
    responsible: str = Field(min_length=1, max_length=64)
    contact: str | None = Field(default=None, max_length=32)


class ProgressBody(BaseModel):
    note: str = Field(min_length=1, max_length=4000)
    percent: int | None = Field(default=None, ge=0, le=100)
    attachments: list[str] = Field(default_factory=list, max_length=9)
    first_contact: bool = False
    part_done: bool = Field(default=False, description="a co-handler of a whistle reports its part done")


class ExtensionBody(BaseModel):
    working_days: int = Field(gt=0, le=180)
    reason: str = Field(min_length=2, max_length=1000)
    long_cycle: bool = False


class DecisionBody(BaseModel):
    approve: bool
    reason: str | None = Field(default=None, max_length=1000)


class ResolveBody(BaseModel):
    answer: str = Field(min_length=2, max_length=4000, description="答复 to the citizen")
    solved: bool = True
    override_co_handlers: bool = False


class VerifyBody(BaseModel):
    passed: bool
    comment: str | None = Field(default=None, max_length=1000)
    public_summary: str | None = Field(default=None, max_length=1000, description="公示 text (personal data is masked)")


class CallBody(BaseModel):
    units: list[str] = Field(min_length=1, max_length=10, description="county departments called")
    reason: str = Field(min_length=2, max_length=2000)
    respond_within_minutes: int | None = Field(default=None, ge=5, le=24 * 60, description=(
        "the response limit (报到); default 60, or 30 for an emergency, which is never given more "
        "(shared/deadlines.py `response_minutes`)"))
    lead_unit: str | None = Field(default=None, description="吹哨报到: the lead; the other units co-handle. "
                                  "Required from a village or grid (网格吹哨、部门报到)")


# --------------------------------------------------------------------------- dispatching


@router.post("/cases/{case_id}/dispatch", status_code=201, response_model=Done, dependencies=[permit("dispatch.dispatch"), JsonBody],
             summary="Dispatch a case by hand (centre): a dispatch order (交办单) to a unit")  # fmt: skip
async def dispatch_case(case_id: str, body: ManualDispatch, ctx: ContextDep, uow: UowDep, actor: ActorDep) -> Done:
    order_no = await service.dispatch_by_hand(
        uow, ctx, case_id, actor, unit=body.unit, resolution_class=body.resolution_class, instructions=body.instructions
    )
    return Done(order_no=order_no, state=OrderState.dispatched.value)


@router.post("/cases/{case_id}/call", status_code=201, response_model=Done, dependencies=[permit("dispatch.call"), JsonBody],
             summary="乡呼县应 / 吹哨报到: the township calls county departments (name a lead for a whistle); "
             "the case's village or grid blows the whistle from below (网格吹哨、部门报到)")  # fmt: skip
async def call_county(case_id: str, body: CallBody, ctx: ContextDep, uow: UowDep, actor: ActorDep) -> Done:
    call_id, opened = await service.call_county(
        uow, ctx, case_id, actor, units=body.units, reason=body.reason,
        respond_within_minutes=body.respond_within_minutes, lead_unit=body.lead_unit,
    )  # fmt: skip
    return Done(detail={"call_id": call_id, "orders": opened})


@router.post("/cases/{case_id}/verify", response_model=Done, dependencies=[permit("dispatch.verify"), JsonBody],
             summary="核验 by the township: passed → closed and published (销号、公示); failed → back to the unit")  # fmt: skip
async def verify_case(case_id: str, body: VerifyBody, ctx: ContextDep, uow: UowDep, actor: ActorDep) -> Done:
    await service.verify(uow, ctx, case_id, actor, passed=body.passed, comment=body.comment, public_summary=body.public_summary)
    return Done(state="closed" if body.passed else "in_progress")


# --------------------------------------------------------------------------- acting on an order


@router.get("/orders/{order_no}", summary="A dispatch order: what was asked, the answer, the work plan, progress, "
            "extensions, its history and the actions the caller may take now")  # fmt: skip
async def get_order(order_no: str, ctx: ContextDep, uow: UowDep, actor: ActorDep) -> dict[str, Any]:
    async with uow:
        order, case = await service.readable_order(uow, ctx, order_no, actor)
        [view] = await _order_views(uow, ctx, actor, [(order, case)])
    return shown_to(actor, view)


@router.post("/orders/{order_no}/sign", response_model=Done, summary="签收: the unit takes the order", dependencies=[permit("dispatch.sign")])
async def sign(order_no: str, ctx: ContextDep, uow: UowDep, actor: ActorDep, if_match: IfMatch = None) -> Done:
    await service.sign(uow, ctx, order_no, actor, if_match)
    return Done(order_no=order_no, state=OrderState.signed.value)


class HandOverBody(BaseModel):
    reason: str = Field(min_length=2, max_length=1000, description="why: the village cannot solve it / the village can")


class PassDownBody(HandOverBody):
    village: str | None = Field(default=None, max_length=64, description="a village of the township; default: the case's village")


@router.post("/orders/{order_no}/claim", response_model=Done, summary="认领: the village takes the matter as its own (its 签收)",
             dependencies=[permit("dispatch.claim")])  # fmt: skip
async def claim(order_no: str, ctx: ContextDep, uow: UowDep, actor: ActorDep, if_match: IfMatch = None) -> Done:
    await service.claim(uow, ctx, order_no, actor, if_match)
    return Done(order_no=order_no, state=OrderState.signed.value)


@router.post("/orders/{order_no}/report-up", response_model=Done, dependencies=[permit("dispatch.report_up"), JsonBody],
             summary="上报: the village sends the matter up to its township, with a reason; the township gets a new order")  # fmt: skip
async def report_up(order_no: str, body: HandOverBody, ctx: ContextDep, uow: UowDep, actor: ActorDep, if_match: IfMatch = None) -> Done:
    new_order = await service.report_up(uow, ctx, order_no, actor, if_match, reason=body.reason)
    return Done(order_no=order_no, state=OrderState.reassigned.value, detail={"new_order": new_order})


@router.post("/orders/{order_no}/pass-down", response_model=Done, dependencies=[permit("dispatch.pass_down"), JsonBody],
             summary="下派: the township sends the matter down to one of its villages, with a reason; the village gets a new order")  # fmt: skip
async def pass_down(order_no: str, body: PassDownBody, ctx: ContextDep, uow: UowDep, actor: ActorDep, if_match: IfMatch = None) -> Done:
    new_order = await service.pass_down(uow, ctx, order_no, actor, if_match, reason=body.reason, village=body.village)
    return Done(order_no=order_no, state=OrderState.reassigned.value, detail={"new_order": new_order})


@router.post("/orders/{order_no}/return", response_model=Done, dependencies=[permit("dispatch.return"), JsonBody],
             summary="退单: within the return window, with a reason; the centre reviews it")  # fmt: skip
async def return_order(order_no: str, body: ReturnBody, ctx: ContextDep, uow: UowDep, actor: ActorDep, if_match: IfMatch = None) -> Done:
    await service.return_order(uow, ctx, order_no, actor, if_match, reason_code=body.reason_code, reason=body.reason,
                               suggested_unit=body.suggested_unit)  # fmt: skip
    return Done(order_no=order_no, state=OrderState.returned.value)


@router.post("/orders/{order_no}/review", response_model=Done, dependencies=[permit("dispatch.review"), JsonBody],
             summary="The centre reviews a return: upheld → re-dispatched; rejected → back to the unit")  # fmt: skip
async def review(order_no: str, body: ReviewBody, ctx: ContextDep, uow: UowDep, actor: ActorDep, if_match: IfMatch = None) -> Done:
    new_order = await service.review_return(uow, ctx, order_no, actor, if_match, upheld=body.upheld, comment=body.comment,
                                            redispatch_to=body.redispatch_to)  # fmt: skip
    state = OrderState.reassigned if body.upheld else OrderState.dispatched
    return Done(order_no=order_no, state=state.value, detail={"new_order": new_order} if new_order else {})


@router.post("/orders/{order_no}/survey", response_model=Done, dependencies=[permit("dispatch.survey"), JsonBody],
             summary="现场勘查: the on-site survey, with photos; the work's deadline then counts from it")  # fmt: skip
async def survey(order_no: str, body: SurveyBody, ctx: ContextDep, uow: UowDep, actor: ActorDep, if_match: IfMatch = None) -> Done:
    due = await service.survey(uow, ctx, order_no, actor, if_match, findings=body.findings, attachments=body.attachments)
    return Done(order_no=order_no, state=OrderState.in_progress.value, detail={"due_at": due.isoformat() if due else None})


@router.post("/orders/{order_no}/plan", response_model=Done, dependencies=[permit("dispatch.plan"), JsonBody], summary="施工图: the work plan")
async def plan(order_no: str, body: PlanBody, ctx: ContextDep, uow: UowDep, actor: ActorDep, if_match: IfMatch = None) -> Done:
    await service.file_plan(uow, ctx, order_no, actor, if_match, measures=body.measures,
                            planned_finish_at=body.planned_finish_at, responsible=body.responsible, contact=body.contact)  # fmt: skip
    return Done(order_no=order_no, state=OrderState.in_progress.value)


@router.post("/orders/{order_no}/progress", response_model=Done, dependencies=[permit("dispatch.progress"), JsonBody], summary="Progress (photos by attachment id)")
async def progress(order_no: str, body: ProgressBody, ctx: ContextDep, uow: UowDep, actor: ActorDep, if_match: IfMatch = None) -> Done:
    await service.report_progress(uow, ctx, order_no, actor, if_match, note=body.note, percent=body.percent,
                                  attachments=body.attachments, first_contact=body.first_contact, part_done=body.part_done)  # fmt: skip
    return Done(order_no=order_no, state=OrderState.in_progress.value)


@router.post("/orders/{order_no}/extensions", status_code=201, response_model=Done, dependencies=[permit("dispatch.extension"), JsonBody],
             summary="延期: ask for more working days (≤ 3 × 3, or once ≤ 10; long-cycle ≤ 180)")  # fmt: skip
async def ask_extension(order_no: str, body: ExtensionBody, ctx: ContextDep, uow: UowDep, actor: ActorDep, if_match: IfMatch = None) -> Done:
    request_id = await service.request_extension(uow, ctx, order_no, actor, if_match, working_days=body.working_days,
                                                 reason=body.reason, long_cycle=body.long_cycle)  # fmt: skip
    return Done(order_no=order_no, detail={"request_id": request_id})


@router.post("/extensions/{request_id}/decision", response_model=Done, dependencies=[permit("dispatch.decide_extension"), JsonBody],
             summary="The centre approves (deadline recomputed from now) or denies an extension")  # fmt: skip
async def decide(request_id: str, body: DecisionBody, ctx: ContextDep, uow: UowDep, actor: ActorDep) -> Done:
    new_due = await service.decide_extension(uow, ctx, request_id, actor, approve=body.approve, reason=body.reason)
    return Done(detail={"request_id": request_id, "approved": body.approve, "new_due_at": new_due.isoformat() if new_due else None})


class SuspendBody(BaseModel):
    reason: str = Field(min_length=2, max_length=1000, description="e.g. 等待群众补充材料")


@router.post("/orders/{order_no}/suspend", response_model=Done, dependencies=[permit("dispatch.suspend"), JsonBody],
             summary="Pause the clocks: waiting on the citizen, or an approved suspension")  # fmt: skip
async def suspend(order_no: str, body: SuspendBody, ctx: ContextDep, uow: UowDep, actor: ActorDep, if_match: IfMatch = None) -> Done:
    await service.suspend(uow, ctx, order_no, actor, if_match, reason=body.reason, resume=False)
    return Done(order_no=order_no, detail={"suspended": True})


@router.post("/orders/{order_no}/resume", response_model=Done, summary="Resume the clocks", dependencies=[permit("dispatch.resume")])
async def resume(order_no: str, ctx: ContextDep, uow: UowDep, actor: ActorDep, if_match: IfMatch = None) -> Done:
    await service.suspend(uow, ctx, order_no, actor, if_match, reason="resumed", resume=True)
    return Done(order_no=order_no, detail={"suspended": False})


@router.post("/orders/{order_no}/resolve", response_model=Done, dependencies=[permit("dispatch.resolve"), JsonBody], summary="答复: resolved, with the answer")
async def resolve(order_no: str, body: ResolveBody, ctx: ContextDep, uow: UowDep, actor: ActorDep, if_match: IfMatch = None) -> Done:
    await service.resolve(uow, ctx, order_no, actor, if_match, answer=body.answer, solved=body.solved,
                          override_co_handlers=body.override_co_handlers)  # fmt: skip
    return Done(order_no=order_no, state=OrderState.resolved.value)


# --------------------------------------------------------------------------- queues and lists


@router.get("/units/{unit}/orders", summary="A unit's work queue with counts: to_sign, in_progress, due_soon, overdue, returned, resolved")
async def unit_orders(
    unit: str, ctx: ContextDep, uow: UowDep, actor: ActorDep,
    queue: Annotated[Literal[repository.QUEUES], Query()] = "to_sign",  # type: ignore[valid-type]
    cursor: str | None = None, limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:  # fmt: skip
    service.visible_unit(ctx, actor, unit)
    now = utcnow()
    soon = service.soon_horizon(ctx, now)
    async with uow:
        counts = await repository.unit_counts(uow.session, unit, now=now, soon=soon)
        rows = await repository.unit_queue(uow.session, unit, queue, now=now, soon=soon, after=decode_cursor(cursor), limit=limit + 1)
        page, more = rows[:limit], len(rows) > limit
        views = await _order_views(uow, ctx, actor, [(r, r) for r in page], history=False)
    return shown_to(actor, {
        "unit": unit, "queue": queue, "counts": counts,
        "items": [{**view, "tracking_no": r.tracking_no, "title": r.title} for r, view in zip(page, views, strict=True)],
        "next_cursor": encode_cursor(page[-1].dispatched_at, page[-1].order_no) if more else None,
    })  # fmt: skip


@router.get("/board", summary="The dispatcher's board: cases waiting for a unit, returns waiting for review")
async def board(ctx: ContextDep, uow: UowDep, actor: ActorDep, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    require_role(actor, (*CENTRE_ROLES, Role.auditor), "see the dispatch board")
    async with uow:
        found = await repository.board(uow.session, limit)
        # Each centre sees its own area (a case with no township yet: every centre).
        waiting = [c for c in found["unassigned"] if may_see_case(ctx.org, actor, CaseScope(places=(c.township,)))]
        returned = [r for r in found["returned"] if may_see_unit(ctx.org, actor, r.unit)]
        views = await _order_views(uow, ctx, actor, [(r, r) for r in returned], history=False)
    return shown_to(actor, {
        "unassigned": [{"case_id": c.case_id, "tracking_no": c.tracking_no, "title": c.title, "subject_class": c.subject_class,
                        "township": c.township, "triaged": c.triaged, "received_at": c.received_at} for c in waiting],
        "returned": [{**view, "tracking_no": r.tracking_no, "title": r.title}
                     for r, view in zip(returned, views, strict=True)],
    })  # fmt: skip


@router.get("/cases/{case_id}/orders", summary="The orders of a case the caller may read: what each unit was asked and did "
            "(a department: its own; the case's township, the centre, the auditor: all)")  # fmt: skip
async def case_orders(case_id: str, ctx: ContextDep, uow: UowDep, actor: ActorDep) -> dict[str, Any]:
    async with uow:
        case, visible = await service.readable_case_orders(uow, ctx, case_id, actor)
        views = await _order_views(uow, ctx, actor, [(r, case) for r in visible])
        # What the caller may do to the case itself (call / whistle), from every order of it.
        actions = access.case_actions(ctx.org, actor, case, await repository.case_orders(uow.session, case_id))
    return shown_to(actor, {
        "case_id": case_id, "stage": case.stage, "redo_round": case.redo_round,
        # 首问负责制: the unit answerable for the case whoever handles it; 谁接待、谁负责 at a window.
        "first_unit": case.first_unit, "first_unit_name": case.first_unit_name, "received_by": case.received_by,
        "resolve_due_at": case.resolve_due_at, "orders": views, "allowed_actions": actions,
    })  # fmt: skip


@router.get("/public/closed", summary="公示: closed cases with their public summary (personal data masked)")
async def public_closed(uow: UowDep, before: IsoDateTime | None = None, limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict[str, Any]:
    async with uow:
        rows = await repository.closed_cases(uow.session, limit=limit, before=before)
    # Masked again as it is read: the one rule, also for summaries stored before it was.
    return {"items": [{"tracking_no": r.tracking_no, "summary": redact_for_public(r.public_summary), "township": r.township,
                       "closed_at": r.closed_at} for r in rows]}  # fmt: skip


# What people write in an order (the title, the centre's instructions, the answer, notes and
# reasons in its history): free text that may name or locate the citizen.
FREE_TEXT = frozenset({"title", "instructions", "answer", "note", "reason", "comment", "measures", "decision_reason"})


def shown_to(actor: Actor, data: Any) -> Any:
    """A view as this caller may read it: as written for staff who may open the citizen's
    contact anyway; free text masked (``redact_for_public``) for whoever may not (the auditor)."""
    return data if may_open_contact(actor) else _masked(data)


def _masked(data: Any, key: str | None = None) -> Any:
    if isinstance(data, dict):
        return {k: _masked(v, k) for k, v in data.items()}
    if isinstance(data, list):
        return [_masked(v, key) for v in data]
    return redact_for_public(data) if key in FREE_TEXT and isinstance(data, str) else data


async def _order_views(
    uow: Any, ctx: DispatchContext, actor: Actor, pairs: list[tuple[Any, Any]], *, history: bool = True
) -> list[dict[str, Any]]:
    """The views of (order, its case) pairs the actor may read, with their extension requests."""
    requests = await repository.extension_requests_of(uow.session, [order.order_no for order, _ in pairs])
    return [_order_view(ctx, actor, order, case, requests.get(order.order_no, []), history=history) for order, case in pairs]


def _order_view(ctx: DispatchContext, actor: Actor, order: Any, case: Any, requests: list[Any], *, history: bool = True) -> dict[str, Any]:
    """What was asked (instructions, class, deadline), the unit's answer (答复), the on-site
    survey (现场勘查: its deadline, findings, photos), the work plan (施工图), progress with its photos, returns, extensions asked and decided, and what this
    actor may do now."""
    pending = any(r.state == "pending" for r in requests)
    view = {
        "order_no": order.order_no, "case_id": order.case_id, "unit": order.unit, "unit_name": order.unit_name,
        "role": order.role, "call_id": order.call_id, "state": order.state, "resolution_class": order.resolution_class,
        "instructions": order.instructions, "redo_round": order.redo_round, "automatic": order.automatic,
        "dispatched_at": order.dispatched_at, "due_at": order.due_at, "return_due_at": order.return_due_at,
        "signed_at": order.signed_at, "survey_due_at": order.survey_due_at, "survey": order.survey,
        "resolved_at": order.resolved_at, "answer": order.answer, "plan": work_plan(order.plan),
        "suspended": bool(order.plan and order.plan.get("suspended")), "returns": order.returns,
        "progress": progress_reports(order.history), "extensions": extension_requests(requests, order.history),
        "version": order.version,
        "allowed_actions": access.allowed_actions(ctx.org, actor, order, case, pending_extension=pending),
    }  # fmt: skip
    if history:
        view["history"] = order.history
    return view


def work_plan(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    """施工图 as filed: measures, planned finish, responsible person and contact (None before
    one is filed; the pause flag kept beside it is shown as ``suspended``)."""
    if not stored or "measures" not in stored:
        return None
    return {key: stored.get(key) for key in ("measures", "planned_finish_at", "responsible", "contact")}


def progress_reports(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The unit's progress reports, oldest first, each with its note and photos (attachment ids)."""
    return [
        {"at": e["at"], "actor": e["actor"], "unit": e.get("unit"), "note": e.get("detail", {}).get("note"),
         "percent": e.get("detail", {}).get("percent"), "attachments": e.get("detail", {}).get("attachments", []),
         "first_contact": e.get("detail", {}).get("first_contact", False), "part_done": e.get("detail", {}).get("part_done", False)}
        for e in history if e.get("action") == "report_progress"
    ]  # fmt: skip


def extension_requests(requests: list[Any], history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """延期: each request with its days and reason, and the centre's decision when made."""
    decisions = {e["detail"]["request_id"]: e for e in history
                 if e.get("action") == "decide_extension" and "request_id" in e.get("detail", {})}  # fmt: skip
    out = []
    for r in requests:
        decision = decisions.get(r.request_id, {}).get("detail", {})
        out.append({"request_id": r.request_id, "working_days": r.working_days, "reason": r.reason, "long_cycle": r.long_cycle,
                    "state": r.state, "requested_at": r.requested_at, "decided_at": r.decided_at,
                    "decision_reason": decision.get("reason")})  # fmt: skip
    return out
