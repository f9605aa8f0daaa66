"""Intake's REST API for app and mini-program backends and the 12345 hotline (``/api/v1``).

Thin routes over ``intake.service``: a route parses the request, calls the use case and
answers. The use cases refuse with domain errors (``shared.errors``) that the shared app maps
to problem+json; ``Problem`` is left for the edge itself (signatures, rate limits, batch size).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field, SkipValidation, TypeAdapter, ValidationError, model_validator

from intake import domain, repository, service
from intake.service import (
    AppealInput,
    Filed,
    IntakeContext,
    case_scope,
    check_channel,
    citizen_actor,
    file_appeal,
    file_batch,
    reporting_worker,
)
from shared.events import Actor, Channel, FiveMatters, Role, Routing, Satisfaction, Urgency
from shared.actors import ActorDep, actor_of
from shared.edge import IsoDateTime
from shared.http import require_json
from shared.permissions import permit
from shared.openapi import RATE_LIMITED
from shared.problems import Problem
from shared.privacy import redact_for_public, round_coordinate
from shared.scope import may_open_contact, may_see_case, not_found_unless
from shared.paging import decode_cursor, encode_cursor
from shared.ratelimit import retry_after_header
from shared.service import UowDep, service_context
from shared.signing import SignatureError, SignedRequest, verify

router = APIRouter(prefix="/api/v1", tags=["appeals"])
JsonBody = Depends(require_json)


ContextDep = Annotated[IntakeContext, Depends(service_context)]


# --------------------------------------------------------------------------- shapes


class Contact(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    phone: str = Field(pattern=domain.PHONE_PATTERN, description="shown masked everywhere but to the handler")
    id_number: str | None = Field(default=None, pattern=r"^\d{17}[\dXx]$")


class Place(BaseModel):
    address: str | None = Field(default=None, max_length=300)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lng: float | None = Field(default=None, ge=-180, le=180)

    @model_validator(mode="after")
    def _both_or_neither(self) -> Place:
        if (self.lat is None) != (self.lng is None):
            raise ValueError("give both lat and lng, or neither")
        return self


class NewAppeal(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=5000)
    channel: Literal["app", "wechat", "hotline", "grid", "window", "mailbox"]
    contact: Contact
    location: Place | None = None
    category: FiveMatters | None = Field(default=None, description="五事 hint from the citizen; intake still classifies")
    attachments: list[str] = Field(default_factory=list, max_length=9, description="ids from POST /api/v1/attachments")
    reporter_id: str | None = Field(default=None, max_length=64, description="grid worker who reports it")
    solved_on_spot: bool = Field(default=False, description="小事不出网格: a grid worker solved it on the spot")
    simple: bool = Field(
        default=False,
        description="1小时诉求服务模式 (window only): a simple matter the receiver answers within one hour, "
        "closed on the spot with the citizen present (POST /api/v1/appeals/{case_id}/close-on-spot)",
    )

    @model_validator(mode="after")
    def _simple_at_a_window(self) -> NewAppeal:
        if self.simple and self.channel != "window":
            raise ValueError("only a window appeal runs in the 1-hour mode (simple)")
        return self


class AppealCreated(BaseModel):
    case_id: str
    tracking_no: str
    status: str
    accept_due_at: datetime
    merged_into: str | None = None
    rejection_reason: str | None = None


class TimelineEntry(BaseModel):
    type: str
    label: str
    occurred_at: datetime
    detail: str | None = None
    attachments: list[str] = Field(default_factory=list, description="photos of the step (a survey's): ids; GET /api/v1/attachments/{id}")


class AppealView(BaseModel):
    case_id: str
    tracking_no: str
    title: str
    description: str
    channel: str
    status: str
    category: str | None
    subject_class: str | None
    urgency: str | None
    township: str | None
    village: str | None
    grid: str | None
    street: str | None
    contact_phone: str = Field(description="masked")
    merged_into: str | None
    rejection_reason: str | None
    accept_due_at: datetime
    created_at: datetime
    attachments: list[str] = Field(default_factory=list, description="ids; GET /api/v1/attachments/{id}")
    handler_unit: str | None = Field(None, description="the unit handling it now (from dispatch's events)")
    first_unit: str | None = Field(
        None, description="首问负责制: the unit that first learned of it, answerable for it whoever handles it (may read it)"
    )
    first_unit_name: str | None = None
    received_by: str | None = Field(None, description="谁接待、谁负责: who received this window appeal and owns it")
    resolve_due_at: datetime | None = Field(None, description="1小时诉求服务模式: a simple window appeal's deadline")
    routing: Routing | None = Field(
        None, description="staff only: why the model proposed the subject — its words (not for the auditor), probability, version, catalogue line",
    )
    timeline: list[TimelineEntry]


class AppealSummary(BaseModel):
    case_id: str
    tracking_no: str
    title: str
    status: str
    created_at: datetime


class AppealPage(BaseModel):
    items: list[AppealSummary]
    next_cursor: str | None


class ManualTriage(BaseModel):
    category: FiveMatters
    subject_class: str = Field(min_length=1, max_length=32)
    urgency: Urgency = Urgency.normal
    township: str = Field(min_length=1, max_length=64)
    village: str | None = Field(default=None, max_length=64)
    grid: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=500, description="why this class (kept with the training example)")


def _to_input(body: NewAppeal) -> AppealInput:
    place = body.location or Place()
    return AppealInput(
        title=body.title,
        description=body.description,
        channel=Channel(body.channel),
        contact_name=body.contact.name,
        phone=body.contact.phone,
        id_number=body.contact.id_number,
        address=place.address,
        lat=place.lat,
        lng=place.lng,
        category=body.category,
        attachments=list(body.attachments),
        reporter_id=body.reporter_id,
        solved_on_spot=body.solved_on_spot,
        simple=body.simple,
    )


def _created(filed: Filed) -> AppealCreated:
    return AppealCreated(
        case_id=filed.case_id, tracking_no=filed.tracking_no, status=filed.status, accept_due_at=filed.accept_due_at,
        merged_into=filed.merged_into, rejection_reason=filed.rejection,
    )


# --------------------------------------------------------------------------- appeals


@router.post(
    "/appeals", status_code=201, response_model=AppealCreated, dependencies=[JsonBody],
    responses={**RATE_LIMITED, 403: {"description": "a grid worker's report (`reporter_id`) filed signed in as someone else"}},
    summary="File an appeal (诉求)",
    description="Retries with the same `Idempotency-Key` return the original answer; the same key with another body is a 409.",
)
async def post_appeal(
    body: NewAppeal,
    request: Request,
    idempotency_key: Annotated[str | None, Header(max_length=128, pattern=r"^[\x21-\x7e]+$")] = None,
) -> AppealCreated:
    # The same context as ContextDep's, called rather than declared: on the busiest route,
    # FastAPI's solving of more dependency levels cost more than filing's own rules.
    ctx: IntakeContext = await service_context(request)
    refuse_if_flooding(ctx, request, body.contact.phone)
    reporter = await grid_reporter(request, body)
    filer = await channel_filer(request, body, reporter)
    data = _to_input(body) if reporter is None else replace(_to_input(body), reporter_id=reporter.id)
    if filer is not None:
        # 首问负责制 and 谁接待、谁负责: the staff member signed in took the appeal down.
        data = replace(data, filer_role=filer.role.value, filer_unit=filer.org_unit,
                       received_by=filer.id if body.channel == "window" else None)  # fmt: skip
    actor = reporter or citizen_actor(body.contact.phone)
    return _created(await file_appeal(ctx, data, actor=actor, idempotency_key=idempotency_key))


async def grid_reporter(request: Request, body: NewAppeal) -> Actor | None:
    """The grid worker signed in, for a report that names one or closes itself on the spot
    (``service.reporting_worker``). Citizens' appeals carry neither and pay nothing for it."""
    if not body.reporter_id and not body.solved_on_spot:
        return None
    return reporting_worker(await actor_of(request), body.reporter_id)


async def channel_filer(request: Request, body: NewAppeal, reporter: Actor | None) -> Actor | None:
    """The staff member who files on a staff channel (``service.check_channel``; None on a
    citizen's own channel). Who is signed in is asked only for the staff channels."""
    if domain.CHANNEL_FILERS.get(body.channel, frozenset()) is None:
        return None
    signed_in = reporter is not None or "authorization" in request.headers or "x-actor-id" in request.headers
    actor = reporter or (await actor_of(request) if signed_in else None)
    check_channel(body.channel, actor)
    return actor


@dataclass(frozen=True)
class Reader:
    """Who reads an appeal: staff (an actor) or the app backend for a citizen (signed)."""

    actor: Actor | None = None
    citizen_phone_hash: str | None = None

    def may_see(self, ctx: IntakeContext, row: Any) -> bool:
        if self.citizen_phone_hash is not None:
            return row.phone_hash == self.citizen_phone_hash
        return self.actor is not None and may_see_case(ctx.org, self.actor, case_scope(row))

    def routing(self, routing: dict[str, Any] | None) -> Routing | None:
        """Staff see why it was routed; the citizen does not, and the auditor not the words (pieces of the text)."""
        if routing is None or self.actor is None:
            return None
        return Routing(**(routing if may_open_contact(self.actor) else {**routing, "words": []}))

    def text(self, value: str | None) -> str | None:
        """Free text as filed for the citizen who filed it and for staff who may open the
        contact anyway; masked for whoever may not (the auditor)."""
        return value if self.citizen_phone_hash is not None or may_open_contact(self.actor) else redact_for_public(value)


async def appeal_reader(request: Request, ctx: ContextDep, uow: UowDep) -> Reader:
    """Staff are who their token (or X-Actor-* headers) says; an app backend signs the
    request (see ``signed_client``) and names its citizen in ``X-Citizen-Phone``."""
    headers = request.headers
    if "X-Client-Id" in headers:
        await signed_client(request, ctx, uow)
        phone = headers.get("X-Citizen-Phone")
        if not phone:
            raise Problem(401, "a signed request reads an appeal for a citizen: send X-Citizen-Phone", slug="bad-signature")
        return Reader(citizen_phone_hash=ctx.phone_hash(phone))
    return Reader(actor=await actor_of(request))


@router.get(
    "/appeals/{case_id}", response_model=AppealView, summary="An appeal with its timeline",
    description=(
        "Staff see the appeals of their area, or sent to their unit (others answer 404). An app or "
        "mini-program backend reads its citizen's appeal with a signed request (X-Client-Id, X-Timestamp, "
        "X-Signature) naming the citizen in X-Citizen-Phone. Staff who may not open the contact (the auditor) "
        "read title, description and timeline with personal data masked."
    ),
)
async def get_appeal(case_id: str, ctx: ContextDep, uow: UowDep, reader: Annotated[Reader, Depends(appeal_reader)]) -> AppealView:
    async with uow:
        await repository.one_snapshot(uow.session)
        row = await repository.get_appeal(uow.session, case_id)
        not_found_unless(row is not None and reader.may_see(ctx, row), f"appeal {case_id}")
        entries = await repository.get_timeline(uow.session, case_id)
    return AppealView(
        case_id=row.case_id, tracking_no=row.tracking_no, title=reader.text(row.title), description=reader.text(row.description),
        channel=row.channel, status=row.status, category=row.category, subject_class=row.subject_class,
        urgency=row.urgency, township=row.township, village=row.village, grid=row.grid, street=row.street,
        contact_phone=row.phone_masked, merged_into=row.merged_into, rejection_reason=row.reject_reason,
        accept_due_at=row.accept_due_at, created_at=row.created_at, attachments=list(row.attachments or []),
        handler_unit=row.handler_unit, first_unit=row.first_unit,
        first_unit_name=ctx.org.unit(row.first_unit).name if row.first_unit and ctx.org.has_unit(row.first_unit) else None,
        received_by=row.received_by, resolve_due_at=row.resolve_due_at, routing=reader.routing(row.routing), timeline=[TimelineEntry(type=e.event_type, label=e.label, occurred_at=e.occurred_at, detail=reader.text(e.detail), attachments=list(e.attachments or [])) for e in entries],
    )


class CaseItem(BaseModel):
    case_id: str
    tracking_no: str
    title: str
    status: str
    channel: str
    category: str | None
    subject_class: str | None
    urgency: str | None
    county: str | None
    township: str | None
    village: str | None
    grid: str | None
    lat: float | None
    lng: float | None
    handler_unit: str | None
    merged_into: str | None
    created_at: datetime
    updated_at: datetime


class CasePage(BaseModel):
    items: list[CaseItem]
    next_cursor: str | None


@router.get(
    "/cases", response_model=CasePage, tags=["staff"],
    summary="Appeals for staff: those of the caller's area or sent to its unit, newest first",
    description="A centre sees its county, a township its township, village staff and grid workers their village, a department what was sent or called to it, the auditor everything — its titles with personal data masked and places rounded, as it may not open the contact.",
)
async def staff_cases(
    ctx: ContextDep,
    uow: UowDep,
    actor: ActorDep,
    status: Annotated[str | None, Query(max_length=24, pattern=r"^[a-z_]+$")] = None,
    township: Annotated[str | None, Query(max_length=64)] = None,
    since: IsoDateTime | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CasePage:
    rows = await service.staff_cases(
        uow, ctx, actor, status=status, township=township, since=since, before=decode_cursor(cursor), limit=limit + 1
    )
    page, more = rows[:limit], len(rows) > limit
    return CasePage(
        items=[CaseItem.model_validate(row._asdict() if may_open_contact(actor) else masked_item(row._asdict())) for row in page],
        next_cursor=encode_cursor(page[-1].created_at, page[-1].case_id) if more else None,
    )


def masked_item(item: dict[str, Any]) -> dict[str, Any]:
    """A list row for staff who may not open the contact: the title masked, the place rounded."""
    return {**item, "title": redact_for_public(item["title"]), "lat": round_coordinate(item["lat"]), "lng": round_coordinate(item["lng"])}


@router.post(
    "/appeals/{case_id}/triage", response_model=AppealCreated, dependencies=[permit("intake.triage"), JsonBody],
    summary="Manual triage: set what and where when intake could not tell",
)
async def triage_appeal(case_id: str, body: ManualTriage, ctx: ContextDep, uow: UowDep, actor: ActorDep) -> AppealCreated:
    row = await service.triage(
        uow, ctx, actor, case_id, category=body.category, subject_class=body.subject_class, urgency=body.urgency,
        township=body.township, village=body.village, grid=body.grid, reason=body.reason,
    )
    return AppealCreated(case_id=case_id, tracking_no=row.tracking_no, status="triaged", accept_due_at=row.accept_due_at)


class OnSpotClose(BaseModel):
    answer: str = Field(min_length=2, max_length=2000, description="答复: what was done at the window")
    rating: Satisfaction = Field(description="the citizen's rating, taken at the window with the citizen present")
    comment: str | None = Field(default=None, max_length=500)


@router.post(
    "/appeals/{case_id}/close-on-spot", response_model=AppealCreated, dependencies=[permit("intake.close_on_spot"), JsonBody],
    summary="谁接待、谁负责: the window's receiver resolves and closes the appeal on the spot, with the citizen's rating",
    description=(
        "Only the person who received a simple window appeal (its `received_by`; 1小时诉求服务模式), while it is open "
        "and sent to no unit; "
        "the citizen rates it there (满意 or 基本满意 — a citizen not satisfied has not had it solved on the spot: "
        "422, hand it on). Writes case.resolved, case.closed and case.rated (source `window`)."
    ),
)
async def close_on_spot(case_id: str, body: OnSpotClose, ctx: ContextDep, uow: UowDep, actor: ActorDep) -> AppealCreated:
    row = await service.close_on_spot(uow, ctx, actor, case_id, answer=body.answer, rating=body.rating, comment=body.comment)
    return AppealCreated(case_id=case_id, tracking_no=row.tracking_no, status="closed", accept_due_at=row.accept_due_at)


# --------------------------------------------------------------------------- signed machine clients


async def signed_client(request: Request, ctx: ContextDep, uow: UowDep) -> str:
    """Verify the HMAC signature of a machine client (see shared.signing); refuse replays.

    The signed path is the request target with its query string. A GET carries no body,
    so when it names a citizen (``X-Citizen-Phone``) that header's value is what is signed
    as the body: neither the query nor the citizen can be changed under a signature.
    """
    headers = request.headers
    body = await request.body()
    if request.method == "GET":
        body = headers.get("X-Citizen-Phone", "").encode()
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    missing = [h for h in ("X-Client-Id", "X-Timestamp", "X-Signature") if h not in headers]
    if missing:
        raise Problem(401, f"missing header {missing[0]}", slug="bad-signature")
    signed = SignedRequest(
        client_id=headers["X-Client-Id"], timestamp=headers["X-Timestamp"], nonce=headers.get("X-Nonce", ""),
        signature=headers["X-Signature"], method=request.method, path=target, body=body,
    )
    window = ctx.settings.signature_window_seconds
    try:
        client = verify(signed, ctx.machine_clients, now=time.time(), window_s=window)
    except SignatureError as exc:
        raise Problem(401, f"signature refused: {exc.reason}", slug="bad-signature") from None
    # Replay: the same (client, nonce) — or, without a nonce, the same signature — twice.
    nonce = signed.nonce or signed.signature
    async with uow:
        fresh = await repository.remember_nonce(
            uow.session, client, nonce, datetime.now(UTC) + timedelta(seconds=2 * window)
        )
        await uow.commit()
    if not fresh:
        raise Problem(401, "signature refused: replayed request", slug="bad-signature")
    return client


SignedClient = Annotated[str, Depends(signed_client)]


@router.get(
    "/appeals", response_model=AppealPage,
    summary="A citizen's own appeals (signed app / mini-program backend, citizen phone in X-Citizen-Phone)",
)
async def my_appeals(
    client: SignedClient,
    ctx: ContextDep,
    uow: UowDep,
    x_citizen_phone: Annotated[str, Header(pattern=domain.PHONE_PATTERN)],
    mine: Annotated[int, Query(ge=1, le=1)] = 1,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> AppealPage:
    before = decode_cursor(cursor)
    async with uow:
        rows = await repository.list_by_phone_hash(uow.session, ctx.phone_hash(x_citizen_phone), before=before, limit=limit + 1)
    page, more = rows[:limit], len(rows) > limit
    return AppealPage(
        items=[AppealSummary(case_id=r.case_id, tracking_no=r.tracking_no, title=r.title, status=r.status, created_at=r.created_at) for r in page],
        next_cursor=encode_cursor(page[-1].created_at, page[-1].case_id) if more else None,
    )


def refuse_if_flooding(ctx: IntakeContext, request: Request, phone: str) -> None:
    """429 with Retry-After when this client address or this citizen files too fast."""
    over = ctx.too_many(phone=phone, client=request.client.host if request.client else "unknown")
    if over is not None:
        who, wait = over
        detail = (
            "too many appeals from this client; try again later" if who == "client"
            else "too many appeals from this phone number; try again later (同一号码提交过于频繁，请稍后再试)"
        )
        raise Problem(429, detail, slug="rate-limited", headers=retry_after_header(wait), limited=who)


# --------------------------------------------------------------------------- 12345 hotline push


class HotlineTicket(BaseModel):
    """One 12345 ticket (工单) as the hotline system pushes it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ticket_no": "GX12345-20261122-0042",
                    "title": "西宁街路灯不亮",
                    "description": "忻城县城关镇城中社区西宁街的路灯坏了三天，晚上很黑，老人出门不安全。",
                    "caller_name": "韦先生",
                    "caller_phone": "13800000000",
                    "address": "忻城县城关镇城中社区西宁街12号",
                    "lat": 24.0685,
                    "lng": 108.661,
                    "category": "操心事",
                }
            ]
        }
    )

    ticket_no: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
        description="12345's own ticket number (letters, digits, '-' and '_'; at most 64): a ticket pushed again "
        "with the same number is answered `duplicate` with the case it already made",
    )  # fmt: skip
    title: str = Field(min_length=1, max_length=200, description="the matter in a few words (诉求标题)")
    description: str = Field(min_length=1, max_length=5000, description="what the caller said (诉求内容)")
    caller_name: str = Field(min_length=1, max_length=64, description="the caller's name; stored encrypted")
    caller_phone: str = Field(
        pattern=domain.PHONE_PATTERN,
        description="the caller's phone, for the callback (回访); stored encrypted, shown masked (138****8000)",
    )
    address: str | None = Field(default=None, max_length=300, description="where the matter is, as the caller said it")
    lat: float | None = Field(default=None, ge=-90, le=90, description="latitude (WGS-84), when 12345 has it")
    lng: float | None = Field(default=None, ge=-180, le=180, description="longitude (WGS-84), when 12345 has it")
    category: FiveMatters | None = Field(default=None, description="五事 as 12345 sorted it; a hint, intake still classifies")


class TicketBatch(BaseModel):
    # The schema advertises a ticket's fields; validation is per ticket in the route
    # (``_TICKET``), so one bad ticket is answered `rejected` and never sinks the batch.
    tickets: list[SkipValidation[HotlineTicket]] = Field(
        min_length=1, description="up to INTAKE_HOTLINE_BATCH_MAX (500); each validated and answered on its own"
    )


class TicketResult(BaseModel):
    index: int
    ticket_no: str | None
    result: Literal["created", "duplicate", "rejected"]
    case_id: str | None = None
    tracking_no: str | None = None
    status: str | None = None
    errors: list[dict[str, str]] = Field(default_factory=list)


class BatchAnswer(BaseModel):
    created: int
    duplicate: int
    rejected: int
    results: list[TicketResult]


_TICKET = TypeAdapter(HotlineTicket)


@router.post(
    "/hotline/tickets", response_model=BatchAnswer, dependencies=[JsonBody], tags=["12345 hotline"],
    summary="12345 pushes a batch of tickets (HMAC-signed; see shared/signing.py for the scheme)",
)
async def push_tickets(body: TicketBatch, client: SignedClient, ctx: ContextDep) -> BatchAnswer:
    if len(body.tickets) > ctx.settings.hotline_batch_max:
        raise Problem(413, f"at most {ctx.settings.hotline_batch_max} tickets per batch", slug="batch-too-large")
    results: list[TicketResult | None] = []
    valid: list[tuple[int, HotlineTicket]] = []
    # Each ticket is still the JSON 12345 sent (``SkipValidation``): validated here, one by one.
    for index, raw in enumerate(body.tickets):
        try:
            valid.append((index, _TICKET.validate_python(raw)))
            results.append(None)  # answered once the batch is filed
        except ValidationError as exc:
            results.append(
                TicketResult(
                    index=index, ticket_no=str(raw.get("ticket_no")) if isinstance(raw, dict) and raw.get("ticket_no") else None,
                    result="rejected",
                    errors=[{"field": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in exc.errors()],
                )
            )
    # The valid tickets in one go: one look-up, one statement, one transaction.
    filed_all = await file_batch(
        ctx,
        [
            AppealInput(
                title=ticket.title, description=ticket.description, channel=Channel.hotline,
                contact_name=ticket.caller_name, phone=ticket.caller_phone, address=ticket.address,
                lat=ticket.lat, lng=ticket.lng, category=ticket.category, external_ref=ticket.ticket_no,
            )
            for _, ticket in valid
        ],
        actor=Actor(id=f"client:{client}", role=Role.system),
    ) if valid else []
    for (index, ticket), filed in zip(valid, filed_all, strict=True):
        results[index] = TicketResult(
            index=index, ticket_no=ticket.ticket_no, result="created" if filed.created else "duplicate",
            case_id=filed.case_id, tracking_no=filed.tracking_no, status=filed.status,
        )
    answered = [r for r in results if r is not None]
    counts = {kind: sum(r.result == kind for r in answered) for kind in ("created", "duplicate", "rejected")}
    return BatchAnswer(**counts, results=answered)
