"""Filing an appeal: one path for every channel (REST, 12345 push, Open311, grid workers).

In one transaction: screen it (不予受理 with a reason, never silent), classify it, locate
it, look for an open case about the same matter nearby (并单), store it with the personal
data encrypted, and write the events — received, then accepted or rejected, then triaged
(or left for manual triage) and merged when it duplicates an open case.

The deciding is pure (``_plan``, ``_prepare``); the reading is a few statements of
``intake.appeal_store``, the writing one statement in the service's unit of work — for one
appeal (shared with the appeals filed at the same moment), or for a whole 12345 batch at once.

Besides filing, what staff do to a filed appeal (manual triage, closing on the spot, the
case list). Every use case refuses with the domain errors of ``shared.errors`` — never an
HTTP answer — and a change is one transaction (``shared.db.transactional``).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from intake import domain, learning, repository
from intake.appeal_store import NEAR_LIMIT, AppealStore, NearQuery, StoredAppeal, asyncpg_dsn, candidate_of
from intake.classify import Classification, classify
from intake.dedup import Candidate, Match, bounding_box, find_duplicate
from shared.lifecycle import timeline_entry  # the row record_own_events writes
from intake.learning import ModelHolder
from intake.locate import Located, at_window, locate
from intake.settings import DEV_MACHINE_CLIENTS, IntakeSettings
from intake.storage import AttachmentStore, LocalDirectoryStore
from shared.db import UnitOfWork, transactional
from shared.errors import Conflict, Forbidden, Invalid, WrongState
from shared.crypto import KeyRing, LookupHasher, normalise_phone
from shared.events import (
    AcceptedData,
    Actor,
    CaseAccepted,
    CaseClosed,
    CaseMerged,
    CaseRated,
    CaseReceived,
    CaseRejected,
    CaseResolved,
    CaseTriaged,
    Channel,
    ClosedData,
    EventBase,
    FiveMatters,
    GridActivity,
    GridActivityData,
    Location,
    MergedData,
    ReceivedData,
    RatedData,
    RejectedData,
    ResolvedData,
    Routing,
    Role,
    Satisfaction,
    TriagedData,
    Urgency,
    make_event,
    system_actor,
    utcnow,
)
from shared import deadlines
from shared.contact import contact_keyring, seal_phone
from shared.orgdata import SUBJECT_CLASSES, OrgDirectory, load_org
from shared.orgfollow import OrgFollower
from shared.ratelimit import Rate, RateLimiter
from shared.privacy import mask_phone, redact_for_public, scrub
from shared.scope import CaseScope, area_of, list_scope, may_see_case, not_found_unless, placement_problem
from shared.signing import parse_client_secrets

log = logging.getLogger(__name__)

PHONE_CONTEXT = "intake.appeals.phone"
NAME_CONTEXT = "intake.appeals.contact_name"
ID_CONTEXT = "intake.appeals.id_number"
ADDRESS_CONTEXT = "intake.appeals.address"


def pii_key_spec(settings: IntakeSettings) -> str:
    """INTAKE_PII_KEYS, or the development key when it is unset (never in production)."""
    if settings.pii_keys is not None:
        return settings.pii_keys.get_secret_value()
    return "dev:" + base64.b64encode(hashlib.sha256(b"jiesu development pii key").digest()).decode()


def _grid_checker(settings: IntakeSettings) -> Any:
    # Imported here: intake.grid_duties imports the routes, which import this module.
    from intake.grid_duties import GridChecker

    return GridChecker(settings.grid_check_minutes)


@dataclass(frozen=True)
class IntakeContext:
    """What filing needs besides the database, built once at start-up (not frozen: the grid
    checker needs the runtime, so it is set when the service starts, like sla's ticker)."""

    settings: IntakeSettings
    keys: KeyRing
    hasher: LookupHasher
    follower: OrgFollower  # the org directory, kept current from the topic org-directory
    machine_clients: dict[str, bytes]
    contact_keys: KeyRing
    attachment_store: AttachmentStore
    attachment_spool: Path
    citizen_limiter: RateLimiter
    client_limiter: RateLimiter
    store: AppealStore  # opened at start-up (it needs the event loop)
    routing: ModelHolder  # the subject model that routes: the newest promoted version (intake.learning)
    grid_checker: Any = None  # intake.grid_duties.GridChecker, built here, started at start-up

    @classmethod
    def from_settings(cls, settings: IntakeSettings) -> IntakeContext:
        if settings.pii_keys is None or settings.lookup_key is None:
            log.warning("INTAKE_PII_KEYS / INTAKE_LOOKUP_KEY not set: using the development keys (never in production)")
        if settings.hotline_clients.get_secret_value() == DEV_MACHINE_CLIENTS:
            log.warning("INTAKE_HOTLINE_CLIENTS not set: the development clients and secrets are accepted (never in production)")
        keys = cls.keyring(settings)
        lookup = settings.lookup_key.get_secret_value().encode() if settings.lookup_key else b"jiesu development lookup key"
        return cls(
            settings=settings,
            keys=keys,
            hasher=LookupHasher(lookup),
            follower=OrgFollower(settings.kafka_bootstrap_servers, settings.org_topic, initial=load_org(settings.org_file)),
            machine_clients=parse_client_secrets(settings.hotline_clients.get_secret_value()),
            contact_keys=contact_keyring(settings.contact_keys.get_secret_value() if settings.contact_keys else None),
            **_attachment_storage(settings.attachment_dir),
            citizen_limiter=RateLimiter(Rate.parse(settings.citizen_rate_limit)),
            client_limiter=RateLimiter(Rate.parse(settings.client_rate_limit)),
            store=AppealStore(asyncpg_dsn(settings.async_database_url), pool_size=settings.database_pool_size),
            routing=ModelHolder(settings.triage_threshold),
            grid_checker=_grid_checker(settings),
        )

    @staticmethod
    def keyring(settings: IntakeSettings) -> KeyRing:
        """The key ring personal data is sealed with (INTAKE_PII_KEYS; the last key encrypts)."""
        return KeyRing.from_spec(pii_key_spec(settings))

    @property
    def org(self) -> OrgDirectory:
        """The newest directory version seen (the seed file until one arrives): read on
        the hot path as an attribute, never a call to the directory service."""
        return self.follower.current

    def phone_hash(self, phone: str) -> str:
        return self.hasher.digest(phone, normalise=normalise_phone)

    def too_many(self, *, phone: str, client: str) -> tuple[str, float] | None:
        """(who, seconds to wait) when this client or this citizen is over its limit."""
        now = time.monotonic()
        wait = self.client_limiter.check(client, now)
        if wait is not None:
            return "client", wait
        if self.citizen_limiter.rate.off:
            return None  # no hash to compute
        wait = self.citizen_limiter.check(self.phone_hash(phone), now)
        return None if wait is None else ("citizen", wait)


def _attachment_storage(root: Path) -> dict[str, Any]:
    spool = root / ".incoming"
    spool.mkdir(parents=True, exist_ok=True)
    return {"attachment_store": LocalDirectoryStore(root), "attachment_spool": spool}


@dataclass(frozen=True)
class AppealInput:
    """A new appeal from any channel, already validated for shape."""

    title: str
    description: str
    channel: Channel
    contact_name: str
    phone: str
    id_number: str | None = None
    address: str | None = None
    lat: float | None = None
    lng: float | None = None
    category: FiveMatters | None = None
    attachments: list[str] = field(default_factory=list)
    reporter_id: str | None = None
    external_ref: str | None = None
    solved_on_spot: bool = False
    filer_role: str | None = None  # the staff member who took it down (None: the citizen, 12345)
    filer_unit: str | None = None
    received_by: str | None = None  # 谁接待、谁负责: who received it at a window
    simple: bool = False  # 1小时诉求服务模式 (window only)


@dataclass(frozen=True)
class Filed:
    case_id: str
    tracking_no: str
    status: str
    accept_due_at: datetime
    created: bool  # False when this was a retry of an appeal already filed
    merged_into: str | None = None
    rejection: str | None = None


def refused_field(field: str, message: str) -> Invalid:
    """A value of the request's body the rules refuse, answered as intake always has: in
    ``errors``, the list request validation answers with too, naming the field."""
    return Invalid(message, field=None, errors=[{"field": field, "in": "body", "message": message}])


class OutsideOwnArea(Invalid):
    """A grid worker's report of a place outside their township (``domain.grid_report_refusal``)."""

    def __init__(self, refusal: str) -> None:
        super().__init__(refusal, field=None, errors=[{"field": "location", "in": "body", "message": refusal}])


class IdempotencyConflict(Conflict):
    """The idempotency key was used before with a different request."""

    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was used with a different request", code="idempotency-key-reused")


def reporting_worker(actor: Actor, reporter_id: str | None) -> Actor:
    """A report that names a grid worker or closes itself on the spot (小事不出网格) counts
    for that worker's score and closes a case: only that worker, signed in, files it."""
    if actor.role is not Role.grid_worker or (reporter_id and actor.id != reporter_id):
        raise Forbidden("a grid worker's report (reporter_id, solved_on_spot) is filed signed in as that worker",
                        code="not-the-reporter", field="reporter_id")  # fmt: skip
    return actor


def check_channel(channel: str, filer: Actor | None) -> None:
    """The channel is the filer's own (``domain.channel_refusal``; None: not signed in)."""
    refusal = domain.channel_refusal(channel, filer.role.value if filer else None)
    if refusal:
        raise refused_field("channel", refusal)


def request_fingerprint(data: AppealInput) -> str:
    return hashlib.sha256(repr(data).encode()).hexdigest()


async def file_appeal(
    ctx: IntakeContext,
    data: AppealInput,
    *,
    actor: Actor,
    idempotency_key: str | None = None,
) -> Filed:
    """File one appeal: stored with its events and timeline in one statement of a unit of
    work shared with concurrent filings (see ``intake.appeal_store``), or found again when
    it was filed before."""
    missing = await ctx.store.unknown_attachments(data.attachments)
    if missing:
        raise Invalid("attachments must be ids from POST /api/v1/attachments", field=None, errors=[
            {"field": f"attachments.{data.attachments.index(i)}", "in": "body", "message": f"no attachment {i}"} for i in missing
        ])  # fmt: skip
    fingerprint = request_fingerprint(data)
    plan = _plan(ctx, data)
    if data.reporter_id:
        own = ctx.org.nearest(actor.org_unit, "township") if actor.org_unit and ctx.org.has_unit(actor.org_unit) else None
        refusal = domain.grid_report_refusal(own, plan.place.township, solved_on_spot=data.solved_on_spot)
        if refusal:
            raise OutsideOwnArea(refusal)
    candidates = (await ctx.store.open_cases_near([plan.near]))[0]
    (sequence,) = await ctx.store.sequence_numbers(1)
    duplicate = _duplicate_of(ctx, data, plan, candidates)
    stored, filed = _prepare(ctx, data, plan, actor=actor, sequence=sequence, duplicate=duplicate,
                             idempotency_key=idempotency_key, fingerprint=fingerprint)
    if await ctx.store.file(stored):
        return filed
    # A retry (same idempotency key or ticket number) was filed first. ON CONFLICT DO
    # NOTHING waited for it to commit; a fresh statement now sees its row.
    existing = await ctx.store.by_idempotency_key(idempotency_key) if idempotency_key else None
    if existing is None and data.external_ref:
        existing = (await ctx.store.by_external_refs(data.channel.value, [data.external_ref])).get(data.external_ref)
    if existing is None:
        raise RuntimeError("appeal insert conflicted but no existing appeal was found")
    if idempotency_key and existing["request_hash"] != fingerprint:
        raise IdempotencyConflict()
    return _filed_again(existing)


async def file_batch(ctx: IntakeContext, items: list[AppealInput], *, actor: Actor, attempts: int = 3) -> list[Filed]:
    """File a batch (a 12345 push: every item has its ticket number as ``external_ref``).

    Tickets filed before are answered as they were (one look-up for the batch); the rest
    are stored by one statement in one transaction. An appeal duplicating an earlier
    ticket of the same batch is merged into it (并单), as if they had come one by one.
    When a concurrent push files one of the tickets first, the batch is rolled back and
    filed again: its tickets are then found as filed before.
    """
    for _ in range(attempts):
        results = await _try_batch(ctx, items, actor=actor)
        if results is not None:
            return results
    raise RuntimeError(f"a batch of {len(items)} kept colliding with concurrent pushes")


async def _try_batch(ctx: IntakeContext, items: list[AppealInput], *, actor: Actor) -> list[Filed] | None:
    store = ctx.store
    channels = {item.channel for item in items}
    if len(channels) > 1 or any(not item.external_ref for item in items):
        raise ValueError("a batch has one channel and a ticket number on every item")
    channel = next(iter(channels)).value if channels else ""
    known = await store.by_external_refs(channel, list(dict.fromkeys(item.external_ref or "" for item in items)))
    results: list[Filed | None] = [None] * len(items)
    first_of: dict[str, int] = {}  # ticket number -> index of its first new appearance
    new: list[int] = []
    for index, item in enumerate(items):
        ref = item.external_ref or ""
        if ref in known:
            results[index] = _filed_again(known[ref])
        elif ref in first_of:
            continue  # the same ticket twice in one batch: answered below as a duplicate
        else:
            first_of[ref] = index
            new.append(index)
    plans = {index: _plan(ctx, items[index]) for index in new}
    near = await store.open_cases_near([plans[index].near for index in new])
    sequences = await store.sequence_numbers(len(new))
    batch_open: list[Candidate] = []  # this batch's open cases so far, oldest first
    prepared: list[StoredAppeal] = []
    for position, index in enumerate(new):
        item, plan = items[index], plans[index]
        candidates = _with_batch(plan, near[position], batch_open)
        duplicate = _duplicate_of(ctx, item, plan, candidates)
        stored, filed = _prepare(ctx, item, plan, actor=actor, sequence=sequences[position], duplicate=duplicate,
                                 idempotency_key=None, fingerprint=request_fingerprint(item))
        prepared.append(stored)
        results[index] = filed
        if filed.status in repository.OPEN_STATUSES:
            batch_open.append(candidate_of(stored.row))
    if prepared:
        async with store.uow() as uow:
            inserted = await store.store(uow, prepared)
            if len(inserted) < len(prepared):
                # A concurrent push took some of these tickets: roll back (leaving the block
                # without a commit; an appeal here may have been merged into one of them)
                # and file again from the top.
                log.info("a concurrent push filed some of these %d tickets first: filing the batch again", len(items))
                return None
            await uow.commit()
    for index, item in enumerate(items):
        if results[index] is None:  # a repeated ticket number in this batch
            first = results[first_of[item.external_ref or ""]]
            assert first is not None
            results[index] = replace(first, created=False)
    return [r for r in results if r is not None]


@dataclass(frozen=True)
class _Plan:
    """What filing decides before it reads anything: when, screened, classified, located."""

    now: datetime
    rejection: domain.Rejection | None
    found: Classification
    place: Located
    near: NearQuery | None  # where to look for duplicates (None: not looked for)
    routing: dict[str, Any]  # why the subject: shown to staff on the case and carried on case.triaged


def _plan(ctx: IntakeContext, data: AppealInput) -> _Plan:
    settings = ctx.settings
    now = utcnow()
    rejection = domain.screen(data.title, data.description)
    found = classify(
        data.title, data.description, ctx.routing.model, hinted_category=data.category, threshold=settings.triage_threshold
    )
    place = at_window(
        ctx.org, locate(ctx.org, lat=data.lat, lng=data.lng, address=data.address),
        channel=data.channel, filer_unit=data.filer_unit,
    )
    routing = routing_of(ctx.org, found, place, f"{data.title}\n{data.description}")
    near = None
    if rejection is None:
        box = (
            bounding_box(data.lat, data.lng, settings.duplicate_distance_m)
            if data.lat is not None and data.lng is not None else None
        )
        since = now - timedelta(days=settings.duplicate_window_days)
        near = NearQuery(box=box, township=place.township, since=since) if box or place.township else None
    return _Plan(now, rejection, found, place, near, routing)


def routing_of(org: OrgDirectory, found: Classification, place: Located, text: str) -> dict[str, Any]:
    """Why the case goes where it goes: the model's deciding words, its probability and version,
    and the catalogue line (事项 and owner) that owns the subject where the appeal is — the line
    dispatch reads too, so a dispatcher who overrides it sees both halves of the decision."""
    routing: dict[str, Any] = {
        "words": list(found.words), "probability": found.confidence, "model_version": found.model_version,
        "catalogue_matter": None, "catalogue_owner": None,
    }  # fmt: skip
    area = place.grid or place.village or place.township or place.county
    if area and org.has_unit(area):
        try:
            entry = org.entry_for(found.subject_class, area, text)
        except LookupError:
            return routing  # no line covers it here: the centre decides
        routing["catalogue_matter"] = entry.matter
        routing["catalogue_owner"] = entry.owner
    return routing


def _with_batch(plan: _Plan, stored: list[Candidate], batch_open: list[Candidate]) -> list[Candidate]:
    """The database's candidates plus this batch's earlier open cases that the same query
    would have returned, newest first and at most as many as the query returns."""
    if plan.near is None:
        return stored
    box, township = plan.near.box, plan.near.township
    ours = [
        c for c in reversed(batch_open)
        if c.received_at >= plan.near.since and (
            (box is not None and c.lat is not None and c.lng is not None
             and box[0] <= c.lat <= box[1] and box[2] <= c.lng <= box[3])
            or (township is not None and c.township == township)
        )
    ]
    return (ours + stored)[:NEAR_LIMIT]


def _duplicate_of(ctx: IntakeContext, data: AppealInput, plan: _Plan, candidates: list[Candidate]):
    if plan.near is None or not candidates:
        return None
    settings = ctx.settings
    return find_duplicate(
        data.title, data.description, data.lat, data.lng, plan.place.township, plan.now, candidates,
        max_distance_m=settings.duplicate_distance_m,
        min_similarity=settings.duplicate_similarity,
        window=timedelta(days=settings.duplicate_window_days),
    )


def _prepare(
    ctx: IntakeContext,
    data: AppealInput,
    plan: _Plan,
    *,
    actor: Actor,
    sequence: int,
    duplicate: Match | None,
    idempotency_key: str | None,
    fingerprint: str,
) -> tuple[StoredAppeal, Filed]:
    """The appeal's row (personal data encrypted) and its events: received, then accepted
    or rejected, then merged and triaged (or left for manual triage), then the grid
    worker's report. No I/O."""
    settings = ctx.settings
    now, rejection, found, place = plan.now, plan.rejection, plan.found, plan.place
    case_id = str(uuid.uuid4())
    tracking_no = domain.tracking_number(settings.region_prefix, now, sequence)
    accept_due = domain.accept_deadline(now, settings.accept_within_hours)
    needs_triage = found.needs_manual_triage or place.method == "none"
    status = "rejected" if rejection else "merged" if duplicate else "triage" if needs_triage else "triaged"
    if data.solved_on_spot and not rejection:
        status = "closed"
    phone_hash = ctx.phone_hash(data.phone)
    phone_masked = mask_phone(data.phone)
    first_unit = domain.first_responsible_unit(
        ctx.org, channel=data.channel.value, filer_role=data.filer_role, filer_unit=data.filer_unit,
        county=place.county, township=place.township, village=place.village,
    )  # fmt: skip
    resolve_due = deadlines.window_simple_due(now) if data.simple and not rejection else None
    row = {
        "case_id": case_id,
        "tracking_no": tracking_no,
        "channel": data.channel.value,
        "title": data.title,
        "description": data.description,
        "status": status,
        "contact_name_enc": ctx.keys.encrypt(data.contact_name, context=NAME_CONTEXT),
        "phone_enc": ctx.keys.encrypt(data.phone, context=PHONE_CONTEXT),
        "phone_hash": phone_hash,
        "phone_masked": phone_masked,
        "id_number_enc": ctx.keys.encrypt(data.id_number, context=ID_CONTEXT) if data.id_number else None,
        "address_enc": ctx.keys.encrypt(data.address, context=ADDRESS_CONTEXT) if data.address else None,
        "street": place.street,
        "lat": data.lat,
        "lng": data.lng,
        "county": place.county,
        "township": place.township,
        "village": place.village,
        "grid": place.grid,
        "category": found.category.value,
        "subject_class": found.subject_class,
        "urgency": found.urgency.value,
        "confidence": found.confidence,
        "triage": "needed" if needs_triage else "auto",
        "routing": None if rejection else plan.routing,
        "reject_reason": rejection.reason if rejection else None,
        "merged_into": duplicate.case_id if duplicate else None,
        "solved_on_spot": data.solved_on_spot,
        "external_ref": data.external_ref,
        "reporter_id": data.reporter_id,
        "attachments": list(data.attachments),
        "first_unit": first_unit,
        "received_by": data.received_by,
        "resolve_due_at": resolve_due,
        "idempotency_key": idempotency_key,
        "request_hash": fingerprint,
        "accept_due_at": accept_due,
        "created_at": now,
        "updated_at": now,
    }
    events: list[EventBase] = []
    location = Location(
        township=place.township, village=place.village, grid=place.grid, street=place.street, lat=data.lat, lng=data.lng
    )
    received = make_event(
        CaseReceived,
        case_id=case_id,
        producer="intake",
        actor=actor,
        occurred_at=now,
        payload=ReceivedData(
            tracking_no=tracking_no,
            channel=data.channel,
            title=scrub(data.title),
            description=scrub(data.description),
            category=found.category,
            subject_class=found.subject_class,
            location=location,
            contact_masked=phone_masked,
            citizen_ref=phone_hash,
            reporter_id=data.reporter_id,
            external_ref=data.external_ref,
            attachments=list(data.attachments),
            solved_on_spot=data.solved_on_spot,
            accept_due_at=accept_due,
            contact_sealed=seal_phone(ctx.contact_keys, data.phone),
            first_unit=first_unit,
            first_unit_name=ctx.org.unit(first_unit).name if first_unit else None,
            received_by=data.received_by,
            resolve_due_at=resolve_due,
        ),
    )
    events.append(received)
    intake_actor = system_actor("intake")
    if rejection:
        events.append(
            make_event(
                CaseRejected, producer="intake", actor=intake_actor, caused_by=received,
                payload=RejectedData(reason_code=rejection.code, reason=domain.rejection_notice(tracking_no, rejection)),
            )
        )
        filed = Filed(case_id, tracking_no, status, accept_due, created=True, rejection=rejection.reason)
        return _stored(row, events), filed

    events.append(
        make_event(
            CaseAccepted, producer="intake", actor=intake_actor, caused_by=received,
            payload=AcceptedData(tracking_no=tracking_no, notice=domain.acceptance_notice(tracking_no, data.title)),
        )
    )
    # 并单 first: a service that dispatches on case.triaged must already know this case is a
    # duplicate that follows its main case.
    if duplicate:
        events.append(
            make_event(
                CaseMerged, producer="intake", actor=intake_actor, caused_by=received,
                payload=MergedData(into_case_id=duplicate.case_id, distance_m=duplicate.distance_m, similarity=duplicate.similarity),
            )
        )
    if not needs_triage:
        events.append(
            make_event(
                CaseTriaged, producer="intake", actor=intake_actor, caused_by=received,
                payload=TriagedData(
                    category=found.category, subject_class=found.subject_class, urgency=found.urgency,
                    location=location, confidence=found.confidence, region=place.county,
                    routing=Routing(**plan.routing),
                ),
            )
        )
    if data.reporter_id:
        events.extend(_grid_report(data, place, received, actor))
    filed = Filed(case_id, tracking_no, status, accept_due, created=True, merged_into=duplicate.case_id if duplicate else None)
    return _stored(row, events), filed


def _stored(row: dict[str, Any], events: list[EventBase]) -> StoredAppeal:
    # Intake's own events go on the citizen's timeline in the statement that files them,
    # exactly as ``record_own_events`` writes them for intake's other events.
    return StoredAppeal(row, events, [timeline_entry(e) for e in events if e.case_scoped])


def _grid_report(data: AppealInput, place: Located, received: CaseReceived, actor: Actor) -> list[EventBase]:
    """A grid worker's report counts for their score; one solved on the spot (小事不出网格)
    is also answered and closed at grid level — recorded, counted, never dispatched."""
    grid = place.grid or place.village or place.township or "unknown"
    kind = "solved_on_spot" if data.solved_on_spot else "report"
    events: list[EventBase] = [
        make_event(
            GridActivity, producer="intake", actor=actor, caused_by=received,
            payload=GridActivityData(worker_id=data.reporter_id or "", grid=grid, kind=kind, detail={"case_id": received.case_id}),
        )
    ]
    if data.solved_on_spot:
        answer = f"网格员现场解决：{data.description[:200]}"
        events.append(
            make_event(
                CaseResolved, producer="intake", actor=actor, caused_by=received,
                payload=ResolvedData(order_no=f"GRID-{received.payload.tracking_no}", unit=grid, answer=scrub(answer)),
            )
        )
        events.append(
            make_event(
                CaseClosed, producer="intake", actor=actor, caused_by=received,
                payload=ClosedData(public_summary=f"{data.title}（网格内现场解决）"),
            )
        )
    return events


def _filed_again(row) -> Filed:
    return Filed(
        row["case_id"], row["tracking_no"], row["status"], row["accept_due_at"], created=False,
        merged_into=row["merged_into"], rejection=row["reject_reason"],
    )


def citizen_actor(phone: str) -> Actor:
    return Actor(id=f"citizen:{mask_phone(phone)}", role=Role.citizen)


# --------------------------------------------------------------------------- staff on a filed appeal


def case_scope(row: Any) -> CaseScope:
    # The first-responsible unit (首问负责制) reads the case as a unit asked to handle it does.
    units = {*(row.handler_units or ()), *([row.first_unit] if row.first_unit else [])}
    return CaseScope(places=(row.county, row.township, row.village, row.grid), units=frozenset(units))


async def visible_appeal(uow: UnitOfWork, ctx: IntakeContext, actor: Actor, case_id: str) -> Any:
    """The appeal a staff member acts on; another area's or unit's answers 404 like a made-up id."""
    row = await repository.get_appeal(uow.session, case_id)
    not_found_unless(row is not None and may_see_case(ctx.org, actor, case_scope(row)), f"appeal {case_id}")
    return row


async def staff_cases(
    uow: UnitOfWork, ctx: IntakeContext, actor: Actor, *, status: str | None, township: str | None,
    since: datetime | None, before: Any, limit: int,
) -> list[Any]:
    """The appeals of the caller's area or sent to its unit, newest first (``shared.scope.list_scope``)."""
    scope = list_scope(ctx.org, actor)
    if scope is None:
        raise Forbidden(f"a {actor.role.value} has no case list; staff of a unit and the auditor do", code="role-not-allowed")
    async with uow:
        return await repository.staff_list(
            uow.session,
            places=None if scope.everything else [(column, list(codes)) for column, codes in scope.places],
            units=None if scope.everything else list(scope.units), unplaced=scope.unplaced,
            status=status, township=township, since=since, before=before, limit=limit,
        )  # fmt: skip


@transactional
async def triage(
    uow: UnitOfWork, ctx: IntakeContext, actor: Actor, case_id: str, *, category: FiveMatters, subject_class: str,
    urgency: Urgency, township: str, village: str | None, grid: str | None, reason: str | None,
) -> Any:
    """Manual triage (人工分拨): the centre sets what and where when intake could not tell;
    the appeal (before the change) is returned."""
    row = await visible_appeal(uow, ctx, actor, case_id)
    if row.status in ("rejected", "merged", "closed"):
        raise WrongState(f"appeal {case_id} is {row.status}; nothing to triage", state=row.status)
    # The place must exist and be the centre's to give: else the case leaves every view.
    problem = placement_problem(ctx.org, area_of(ctx.org, actor), township, village, grid)
    if problem is not None:
        raise Invalid(problem[1], field=problem[0])
    await repository.set_triage(
        uow.session, case_id, category=category.value, subject_class=subject_class, urgency=urgency.value,
        township=township, village=village, grid=grid, triage="manual", status="triaged",
    )
    triaged = make_event(
        CaseTriaged, case_id=case_id, producer="intake", actor=actor,
        payload=TriagedData(
            category=category, subject_class=subject_class, urgency=urgency, confidence=1.0, manual=True,
            location=Location(township=township, village=village, grid=grid, street=row.street),
        ),
    )
    # The centre's decision teaches the model (intake.learning): the class chosen, by whom, why.
    if subject_class in SUBJECT_CLASSES:
        await learning.add_example(
            uow.session, event_id=triaged.id, case_id=case_id, title=row.title, description=row.description,
            subject_class=subject_class, proposed_class=row.subject_class, source=learning.MANUAL_TRIAGE,
            actor_id=actor.id, reason=reason,
        )
    uow.emit(triaged)
    return row


@transactional
async def close_on_spot(
    uow: UnitOfWork, ctx: IntakeContext, actor: Actor, case_id: str, *, answer: str, rating: Satisfaction, comment: str | None,
) -> Any:
    """谁接待、谁负责: the window's receiver resolves and closes a simple appeal on the spot
    with the citizen's rating (``domain.on_spot_refusal`` says who and when); writes
    case.resolved, case.closed and case.rated. The appeal (before the change) is returned."""
    row = await repository.get_appeal(uow.session, case_id, lock=True)
    not_found_unless(row is not None, f"appeal {case_id}")
    refusal = domain.on_spot_refusal(
        case_id=case_id, channel=row.channel, status=row.status, received_by=row.received_by, actor_id=actor.id,
        simple=row.resolve_due_at is not None, handled_by_unit=bool(row.handler_units), rating=rating.value,
    )  # fmt: skip
    if refusal is not None:
        raise refusal
    unit = row.first_unit or actor.org_unit or "window"
    resolved = make_event(
        CaseResolved, case_id=case_id, producer="intake", actor=actor,
        payload=ResolvedData(order_no=f"WIN-{row.tracking_no}", unit=unit, answer=scrub(answer)),
    )
    closed = make_event(
        CaseClosed, producer="intake", actor=actor, caused_by=resolved,
        payload=ClosedData(public_summary=f"{redact_for_public(row.title)}（窗口现场办结）"),
    )
    rated = make_event(
        CaseRated, producer="intake", actor=actor, caused_by=resolved,
        payload=RatedData(rating=rating, source="window", comment=comment and scrub(comment), units=[unit]),
    )
    await repository.set_triage(uow.session, case_id, status="closed")
    for event in (resolved, closed, rated):
        uow.emit(event)
    return row
