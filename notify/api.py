"""Notify's REST API (``/api/v1``): the callback queue (回访), ratings with one-time links,
questionnaires, message status per case, the in-app inbox, dead-lettered 12345 webhooks."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import AwareDatetime, BaseModel, Field

from notify import domain, repository, service
from notify.service import BODY_CONTEXT, NotifyContext
from shared.http import PG_BIGINT_MAX
from shared.actors import ActorDep
from shared.case_status import require_visible_case
from shared.events import Actor, Role, Satisfaction
from shared.scope import area_of, not_found_unless, require_role, units_below
from shared.signing import SignatureError, SignedRequest, verify
from shared.paging import decode_cursor, encode_cursor
from shared.permissions import PERMISSIONS, permit
from shared.problems import Problem
from shared.service import RuntimeDep, UowDep, service_context

router = APIRouter(prefix="/api/v1", tags=["notify"])

# Who makes callbacks (回访): the centre's and the townships' operators.
OPERATOR_ROLES = PERMISSIONS["notify.callback_result"].roles
# Who may read the callback queue: the operators and the auditor.
QUEUE_READERS = OPERATOR_ROLES | {Role.auditor}
WEBHOOK_ADMINS = PERMISSIONS["notify.webhook_resend"].roles


ContextDep = Annotated[NotifyContext, Depends(service_context)]
RowId = Annotated[int, Path(ge=1, le=PG_BIGINT_MAX)]


def _operator(actor: Actor) -> Actor:
    require_role(actor, OPERATOR_ROLES, "record callbacks (回访)")
    return actor


def _townships_of(runtime, actor: Actor) -> list[str] | None:
    """The townships whose callbacks a reader may see; None: all (the auditor)."""
    require_role(actor, QUEUE_READERS, "read the callback queue")
    if actor.role is Role.auditor:
        return None
    area = area_of(runtime.org, actor)
    if area is None:
        return []
    return [code for code in units_below(runtime.org, area) if runtime.org.unit(code).kind == "township"]


# --------------------------------------------------------------------------- paging


def _after(cursor: str | None) -> tuple[datetime, int] | None:
    found = decode_cursor(cursor)
    if found is None:
        return None
    if not found[1].isdigit():
        raise Problem(400, "cursor is not one this API gave out", slug="bad-cursor", field="cursor")
    return found[0], int(found[1])


# --------------------------------------------------------------------------- callbacks (回访)


class CallbackTask(BaseModel):
    id: int
    case_id: str
    round: int
    tracking_no: str | None
    township: str | None
    closed_at: datetime
    opens_at: datetime = Field(description="when calling starts: 09:00 Beijing on the callback's working day")
    due_at: datetime = Field(description="the deadline, the instant SLA's callback clock shows: the end of that day")
    attempts: int
    state: str
    view: str | None = Field(description="upcoming / due / overdue (open tasks)")
    rating: str | None = None


def _task(row: dict[str, Any], now: datetime) -> CallbackTask:
    view = domain.callback_view(row["opens_at"], row["due_at"], now) if row["state"] == "open" else None
    return CallbackTask(**{k: row[k] for k in CallbackTask.model_fields if k in row and k != "view"}, view=view)


class CallbackPage(BaseModel):
    items: list[CallbackTask]
    next_cursor: str | None


@router.get("/callbacks", response_model=CallbackPage, summary="The operators' callback queue (回访)")
async def callback_queue(
    uow: UowDep,
    ctx: ContextDep,
    runtime: RuntimeDep,
    actor: ActorDep,
    view: Literal["due", "overdue", "today", "all"] = Query("due", description="due: callable now (incl. overdue); "
                                                            "overdue: past due_at; today: callable and not yet overdue"),
    township: str | None = Query(None, description="township unit code"),
    state: Literal["open", "done", "unreachable", "superseded"] = "open",
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
) -> CallbackPage:
    now = ctx.now()
    townships = _townships_of(runtime, actor)
    if township is not None and townships is not None:
        townships = [t for t in townships if t == township]
    async with uow:
        rows = await repository.callback_queue(
            uow.session, now=now, view=view, township=township,
            townships=townships, after=_after(cursor), limit=limit + 1, state=state,
        )  # fmt: skip
    more = len(rows) > limit
    rows = rows[:limit]
    return CallbackPage(
        items=[_task(r, now) for r in rows],
        next_cursor=encode_cursor(rows[-1]["due_at"], rows[-1]["id"]) if more and rows else None,
    )


@router.get("/callbacks/summary", summary="Open callbacks per township: due, overdue, upcoming")
async def callback_summary(uow: UowDep, ctx: ContextDep, runtime: RuntimeDep, actor: ActorDep) -> dict[str, Any]:
    townships = _townships_of(runtime, actor)
    now = ctx.now()
    async with uow:
        rows = await repository.callback_counts(uow.session, now=now)
    if townships is not None:
        rows = [r for r in rows if r["township"] in townships]
    return {"as_of": now, "townships": rows}


@router.get("/callbacks/{task_id}", response_model=CallbackTask, summary="One callback task")
async def get_callback(task_id: RowId, uow: UowDep, ctx: ContextDep, runtime: RuntimeDep, actor: ActorDep) -> CallbackTask:
    async with uow:
        row = await service.visible_task(uow, runtime.org, actor, task_id)
    return _task(row, ctx.now())


class CallbackResult(BaseModel):
    reached: bool = Field(description="the citizen answered")
    rating: Satisfaction | None = Field(None, description="满意 / 基本满意 / 不满意; required when reached")
    comment: str | None = Field(None, max_length=2000)


@router.post("/callbacks/{task_id}/result", summary="Record a callback: reached with a rating, or unreachable", dependencies=[permit("notify.callback_result")])
async def record_callback(
    task_id: RowId, body: CallbackResult, uow: UowDep, ctx: ContextDep, runtime: RuntimeDep, actor: ActorDep
) -> dict[str, Any]:
    return await service.record_callback(
        uow, ctx, runtime.org, task_id, reached=body.reached, rating=body.rating, comment=body.comment, actor=_operator(actor)
    )


@router.get("/cases/{case_id}/callbacks", response_model=list[CallbackTask], summary="A case's callbacks, per round")
async def case_callbacks(case_id: str, uow: UowDep, ctx: ContextDep, runtime: RuntimeDep, actor: ActorDep) -> list[CallbackTask]:
    async with uow:
        await require_visible_case(uow, runtime.org, actor, case_id)
        rows = await repository.callbacks_of_case(uow.session, case_id)
    now = ctx.now()
    return [_task(r, now) for r in rows]


# --------------------------------------------------------------------------- ratings and questionnaires


class RatingIn(BaseModel):
    token: str = Field(min_length=8, max_length=128, description="the one-time token from the closing notice")
    rating: Satisfaction
    comment: str | None = Field(None, max_length=2000)


@router.post("/cases/{case_id}/rating", status_code=201, summary="The citizen rates a round with a one-time token")
async def rate(case_id: str, body: RatingIn, uow: UowDep, ctx: ContextDep) -> dict[str, Any]:
    return await service.rate_with_token(uow, ctx, case_id, token=body.token, rating=body.rating, comment=body.comment)


@router.get("/cases/{case_id}/questionnaire", summary="The questionnaire for a sampled closed case")
async def questionnaire(case_id: str, uow: UowDep, ctx: ContextDep, token: str = Query(min_length=8)) -> dict[str, Any]:
    async with uow:
        return await service.questionnaire_for(uow, ctx, case_id, token)


class AnswersIn(BaseModel):
    token: str = Field(min_length=8, max_length=128)
    answers: dict[str, str] = Field(description="question id → answer; 'overall' is required")


@router.post("/cases/{case_id}/questionnaire", status_code=201, summary="Answer the questionnaire (once)")
async def answer(case_id: str, body: AnswersIn, uow: UowDep, ctx: ContextDep) -> dict[str, Any]:
    return await service.answer_questionnaire(uow, ctx, case_id, token=body.token, answers=body.answers)


# --------------------------------------------------------------------------- messages


class MessageView(BaseModel):
    id: int
    event_type: str
    recipient: str
    channel: str
    kind: str
    state: str
    attempts: int
    urgent: bool
    next_attempt_at: datetime | None
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None
    text: str | None = Field(None, description="shown for unit messages; a citizen's text stays private")
    tries: list[dict[str, Any]] = Field(default_factory=list)


def _message(ctx: NotifyContext, row: dict[str, Any], tries: list[dict[str, Any]] | None = None) -> MessageView:
    private = row["recipient"].startswith("citizen:")
    text = None if private else ctx.keys.decrypt(row["body_enc"], context=BODY_CONTEXT)
    done = row["state"] in ("sent", "delivered", "dead")
    return MessageView(
        **{k: row[k] for k in MessageView.model_fields if k in row and k not in ("text", "tries", "next_attempt_at")},
        next_attempt_at=None if done else row["next_attempt_at"], text=text,
        tries=[{k: t[k] for k in ("attempt", "at", "outcome", "status_code", "error")} for t in tries or []],
    )  # fmt: skip


@router.get("/cases/{case_id}/messages", response_model=list[MessageView], summary="Every message about a case and its delivery")
async def case_messages(case_id: str, uow: UowDep, ctx: ContextDep, runtime: RuntimeDep, actor: ActorDep) -> list[MessageView]:
    async with uow:
        await require_visible_case(uow, runtime.org, actor, case_id)
        rows = await repository.messages_of_case(uow.session, case_id)
        tries = await repository.attempts_of(uow.session, [r["id"] for r in rows])
    return [_message(ctx, r, tries[r["id"]]) for r in rows]


class ReceiptIn(BaseModel):
    status: Literal["delivered", "failed"]
    error: str | None = Field(None, max_length=500)


async def signed_gateway(request: Request, ctx: ContextDep) -> str:
    """A gateway's HMAC-signed request (shared.signing; clients in NOTIFY_GATEWAY_CLIENTS).
    Replays are refused by this process's memory: a receipt replayed to another replica
    within the window would only set the state it already set."""
    headers = request.headers
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    signed = SignedRequest(
        client_id=headers.get("X-Client-Id", ""), timestamp=headers.get("X-Timestamp", ""), nonce=headers.get("X-Nonce", ""),
        signature=headers.get("X-Signature", ""), method=request.method, path=target, body=await request.body(),
    )  # fmt: skip
    try:
        return verify(signed, ctx.gateway_clients, now=time.time(), seen=ctx.gateway_replays)
    except SignatureError as exc:
        raise Problem(401, f"signature refused: {exc.reason}", slug="bad-signature") from None


@router.post("/messages/{message_id}/receipt", summary="Delivery receipt from the SMS gateway or WeChat backend (HMAC-signed)")
async def receipt(
    message_id: RowId, body: ReceiptIn, uow: UowDep, ctx: ContextDep, gateway: Annotated[str, Depends(signed_gateway)]
) -> dict[str, Any]:
    await service.record_receipt(uow, ctx, message_id, status=body.status, error=body.error)
    return {"id": message_id, "state": body.status}


class InboxItem(BaseModel):
    id: int
    case_id: str | None
    kind: str
    text: str
    created_at: datetime
    read: bool


class InboxPage(BaseModel):
    items: list[InboxItem]
    next_cursor: int | None


def _own_inbox(actor: Actor, recipient: str) -> None:
    """An inbox is its owner's: ``unit:<code>:<duty|head>`` for the staff of that unit (the
    head's for its heads), ``citizen:<ref>`` for that citizen. Others: 404."""
    parts = recipient.split(":")
    if parts[0] == "unit" and len(parts) == 3:
        heads = (Role.dept_head, Role.township_head, Role.centre_supervisor)
        mine = actor.org_unit == parts[1] and (parts[2] != "head" or actor.role in heads)
    else:
        mine = actor.role is Role.citizen and actor.id == recipient
    not_found_unless(mine, f"inbox {recipient} of yours")


@router.get("/inbox/{recipient}", response_model=InboxPage, summary="In-app messages of a recipient (unit:<code>:duty, citizen:<ref>)")
async def read_inbox(
    recipient: str, uow: UowDep, ctx: ContextDep, actor: ActorDep, unread: bool = False, cursor: int = Query(0, ge=0, le=PG_BIGINT_MAX),
    limit: int = Query(50, ge=1, le=500),
) -> InboxPage:  # fmt: skip
    _own_inbox(actor, recipient)
    async with uow:
        rows = await repository.inbox(uow.session, recipient, after_id=cursor, limit=limit + 1, unread=unread)
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        InboxItem(id=r["id"], case_id=r["case_id"], kind=r["kind"], created_at=r["created_at"], read=r["read_at"] is not None,
                  text=ctx.keys.decrypt(r["body_enc"], context=BODY_CONTEXT))
        for r in rows
    ]  # fmt: skip
    return InboxPage(items=items, next_cursor=rows[-1]["id"] if more and rows else None)


@router.post("/inbox/{recipient}/{message_id}/read", summary="Mark an inbox message read", dependencies=[permit("notify.inbox_read")])
async def mark_read(recipient: str, message_id: RowId, uow: UowDep, ctx: ContextDep, actor: ActorDep) -> dict[str, Any]:
    _own_inbox(actor, recipient)
    await service.mark_read(uow, ctx, recipient, message_id)
    return {"id": message_id, "read": True}


# --------------------------------------------------------------------------- 12345 webhooks (operators)


class WebhookPage(BaseModel):
    items: list[MessageView]
    next_cursor: int | None


@router.get("/admin/webhooks", response_model=WebhookPage, summary="12345 status webhook deliveries (state=dead: the dead letters)")
async def list_webhooks(
    uow: UowDep, ctx: ContextDep, actor: ActorDep, state: Literal["queued", "sending", "failed", "delivered", "dead"] | None = None,
    cursor: int = Query(0, ge=0, le=PG_BIGINT_MAX), limit: int = Query(50, ge=1, le=500),
) -> WebhookPage:  # fmt: skip
    require_role(actor, WEBHOOK_ADMINS | {Role.auditor}, "read the 12345 webhook deliveries")
    async with uow:
        rows = await repository.webhooks(uow.session, state=state, after_id=cursor, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        tries = await repository.attempts_of(uow.session, [r["id"] for r in rows])
    return WebhookPage(items=[_message(ctx, r, tries[r["id"]]) for r in rows], next_cursor=rows[-1]["id"] if more and rows else None)


@router.post("/admin/webhooks/{message_id}/resend", status_code=202, summary="Re-send a dead-lettered webhook", dependencies=[permit("notify.webhook_resend")])
async def resend(message_id: RowId, uow: UowDep, ctx: ContextDep, actor: ActorDep) -> dict[str, Any]:
    return await service.resend_webhook(uow, ctx, message_id)


# --------------------------------------------------------------------------- the movable clock (demo/test only)


class ClockIn(BaseModel):
    now: AwareDatetime | None = Field(None, description="the moment notify should take as now; null resets")


@router.get("/admin/clock", summary="Notify's now")
async def get_clock(ctx: ContextDep, actor: ActorDep) -> dict[str, Any]:
    return {"now": ctx.now(), "movable": ctx.settings.test_clock}


@router.post("/admin/clock", summary="Move notify's clock (only with NOTIFY_TEST_CLOCK=true)", dependencies=[permit("notify.clock")])
async def set_clock(body: ClockIn, ctx: ContextDep, actor: ActorDep) -> dict[str, Any]:
    if not ctx.settings.test_clock:
        raise Problem(403, "the clock is fixed; set NOTIFY_TEST_CLOCK=true to move it (demos and tests only)")
    if body.now is None:
        ctx.clock.reset()
    else:
        ctx.clock.set(body.now)
    if ctx.sender_wakeup is not None:
        ctx.sender_wakeup.set()  # what is due at the new now goes at once (the clock is this process's own)
    return {"now": ctx.now()}
