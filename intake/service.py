"""Filing an appeal: one path for every channel (REST, 12345 push, Open311, grid workers).

In one transaction: screen it (不予受理 with a reason, never silent), classify it, locate
it, look for an open case about the same matter nearby (并单), store it with the personal
data encrypted, and write the events — received, then accepted or rejected, then triaged
(or left for manual triage) and merged when it duplicates an open case.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from intake import domain, repository
from intake.classify import classify
from intake.dedup import Candidate, bounding_box, find_duplicate
from intake.locate import Located, locate
from intake.settings import IntakeSettings
from intake.storage import AttachmentStore, LocalDirectoryStore
from shared.crypto import KeyRing, LookupHasher, normalise_phone
from shared.db import UnitOfWork
from shared.events import (
    AcceptedData,
    Actor,
    CaseAccepted,
    CaseClosed,
    CaseMerged,
    CaseReceived,
    CaseRejected,
    CaseResolved,
    CaseTriaged,
    Channel,
    ClosedData,
    FiveMatters,
    GridActivity,
    GridActivityData,
    Location,
    MergedData,
    ReceivedData,
    RejectedData,
    ResolvedData,
    Role,
    TriagedData,
    make_event,
    system_actor,
    utcnow,
)
from shared.contact import contact_keyring, seal_phone
from shared.orgdata import OrgDirectory, load_org
from shared.orgfollow import OrgFollower
from shared.ratelimit import Rate, RateLimiter
from shared.privacy import mask_phone, scrub
from shared.signing import parse_client_secrets

log = logging.getLogger(__name__)

PHONE_CONTEXT = "intake.appeals.phone"
NAME_CONTEXT = "intake.appeals.contact_name"
ID_CONTEXT = "intake.appeals.id_number"
ADDRESS_CONTEXT = "intake.appeals.address"


@dataclass(frozen=True)
class IntakeContext:
    """What filing needs besides the database, built once at start-up."""

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

    @classmethod
    def from_settings(cls, settings: IntakeSettings) -> IntakeContext:
        if settings.pii_keys is None or settings.lookup_key is None:
            log.warning("INTAKE_PII_KEYS / INTAKE_LOOKUP_KEY not set: using the development keys (never in production)")
        dev_key = base64.b64encode(hashlib.sha256(b"jiesu development pii key").digest()).decode()
        keys = KeyRing.from_spec(settings.pii_keys.get_secret_value() if settings.pii_keys else f"dev:{dev_key}")
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
        )

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


@dataclass(frozen=True)
class Filed:
    case_id: str
    tracking_no: str
    status: str
    accept_due_at: datetime
    created: bool  # False when this was a retry of an appeal already filed
    merged_into: str | None = None
    rejection: str | None = None


class IdempotencyConflict(Exception):
    """The idempotency key was used before with a different request."""


def request_fingerprint(data: AppealInput) -> str:
    return hashlib.sha256(repr(data).encode()).hexdigest()


async def file_appeal(
    uow: UnitOfWork,
    ctx: IntakeContext,
    data: AppealInput,
    *,
    actor: Actor,
    idempotency_key: str | None = None,
) -> Filed:
    """File one appeal inside the caller's unit of work (the caller commits)."""
    fingerprint = request_fingerprint(data)
    session = uow.session
    if idempotency_key:
        existing = await repository.find_by_idempotency_key(session, idempotency_key)
        if existing is not None:
            if existing.request_hash != fingerprint:
                raise IdempotencyConflict(idempotency_key)
            return _filed_again(existing)
    if data.external_ref:
        existing = await repository.find_by_external_ref(session, data.channel.value, data.external_ref)
        if existing is not None:
            return _filed_again(existing)

    settings = ctx.settings
    now = utcnow()
    case_id = str(uuid.uuid4())
    tracking_no = domain.tracking_number(settings.region_prefix, now, await repository.next_sequence(session))
    accept_due = domain.accept_deadline(now, settings.accept_within_hours)

    rejection = domain.screen(data.title, data.description)
    found = classify(data.title, data.description, hinted_category=data.category, threshold=settings.triage_threshold)
    place = locate(ctx.org, lat=data.lat, lng=data.lng, address=data.address)
    duplicate = None if rejection else await _find_duplicate(session, ctx, data, place, now)
    needs_triage = found.needs_manual_triage or place.method == "none"

    status = "rejected" if rejection else "merged" if duplicate else "triage" if needs_triage else "triaged"
    if data.solved_on_spot and not rejection:
        status = "closed"
    inserted = await repository.insert_appeal(
        session,
        case_id=case_id,
        tracking_no=tracking_no,
        channel=data.channel.value,
        title=data.title,
        description=data.description,
        status=status,
        contact_name_enc=ctx.keys.encrypt(data.contact_name, context=NAME_CONTEXT),
        phone_enc=ctx.keys.encrypt(data.phone, context=PHONE_CONTEXT),
        phone_hash=ctx.phone_hash(data.phone),
        phone_masked=mask_phone(data.phone),
        id_number_enc=ctx.keys.encrypt(data.id_number, context=ID_CONTEXT) if data.id_number else None,
        address_enc=ctx.keys.encrypt(data.address, context=ADDRESS_CONTEXT) if data.address else None,
        street=place.street,
        lat=data.lat,
        lng=data.lng,
        county=place.county,
        township=place.township,
        village=place.village,
        grid=place.grid,
        category=found.category.value,
        subject_class=found.subject_class,
        urgency=found.urgency.value,
        confidence=found.confidence,
        triage="needed" if needs_triage else "auto",
        reject_reason=rejection.reason if rejection else None,
        merged_into=duplicate.case_id if duplicate else None,
        solved_on_spot=data.solved_on_spot,
        external_ref=data.external_ref,
        reporter_id=data.reporter_id,
        attachments=list(data.attachments),
        idempotency_key=idempotency_key,
        request_hash=fingerprint,
        accept_due_at=accept_due,
        created_at=now,
        updated_at=now,
    )
    if not inserted:
        # A concurrent retry (same idempotency key or ticket number) won the race. ON
        # CONFLICT DO NOTHING waited for it to commit; a fresh statement now sees its row.
        existing = None
        if idempotency_key:
            existing = await repository.find_by_idempotency_key(session, idempotency_key)
        if existing is None and data.external_ref:
            existing = await repository.find_by_external_ref(session, data.channel.value, data.external_ref)
        if existing is None:
            raise RuntimeError("appeal insert conflicted but no existing appeal was found")
        if idempotency_key and existing.request_hash != fingerprint:
            raise IdempotencyConflict(idempotency_key)
        return _filed_again(existing)

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
            contact_masked=mask_phone(data.phone),
            citizen_ref=ctx.phone_hash(data.phone),
            reporter_id=data.reporter_id,
            external_ref=data.external_ref,
            attachments=list(data.attachments),
            solved_on_spot=data.solved_on_spot,
            accept_due_at=accept_due,
            contact_sealed=seal_phone(ctx.contact_keys, data.phone),
        ),
    )
    uow.emit(received)
    intake_actor = system_actor("intake")
    if rejection:
        uow.emit(
            make_event(
                CaseRejected, producer="intake", actor=intake_actor, caused_by=received,
                payload=RejectedData(reason_code=rejection.code, reason=domain.rejection_notice(tracking_no, rejection)),
            )
        )
        return Filed(case_id, tracking_no, status, accept_due, created=True, rejection=rejection.reason)

    uow.emit(
        make_event(
            CaseAccepted, producer="intake", actor=intake_actor, caused_by=received,
            payload=AcceptedData(tracking_no=tracking_no, notice=domain.acceptance_notice(tracking_no, data.title)),
        )
    )
    # 并单 first: a service that dispatches on case.triaged must already know this case is a
    # duplicate that follows its main case.
    if duplicate:
        uow.emit(
            make_event(
                CaseMerged, producer="intake", actor=intake_actor, caused_by=received,
                payload=MergedData(into_case_id=duplicate.case_id, distance_m=duplicate.distance_m, similarity=duplicate.similarity),
            )
        )
    if not needs_triage:
        uow.emit(
            make_event(
                CaseTriaged, producer="intake", actor=intake_actor, caused_by=received,
                payload=TriagedData(
                    category=found.category, subject_class=found.subject_class, urgency=found.urgency,
                    location=location, confidence=found.confidence, region=place.county,
                ),
            )
        )
    if data.reporter_id:
        _emit_grid_report(uow, data, place, received, actor)
    return Filed(case_id, tracking_no, status, accept_due, created=True, merged_into=duplicate.case_id if duplicate else None)


async def _find_duplicate(session, ctx: IntakeContext, data: AppealInput, place: Located, now: datetime):
    settings = ctx.settings
    since = now - timedelta(days=settings.duplicate_window_days)
    box = bounding_box(data.lat, data.lng, settings.duplicate_distance_m) if data.lat is not None and data.lng is not None else None
    rows = await repository.open_cases_near(session, box=box, township=place.township, since=since)
    candidates = [
        Candidate(r.case_id, r.title, r.description, r.lat, r.lng, r.township, r.created_at) for r in rows
    ]
    return find_duplicate(
        data.title, data.description, data.lat, data.lng, place.township, now, candidates,
        max_distance_m=settings.duplicate_distance_m,
        min_similarity=settings.duplicate_similarity,
        window=timedelta(days=settings.duplicate_window_days),
    )


def _emit_grid_report(uow: UnitOfWork, data: AppealInput, place: Located, received: CaseReceived, actor: Actor) -> None:
    """A grid worker's report counts for their score; one solved on the spot (小事不出网格)
    is also answered and closed at grid level — recorded, counted, never dispatched."""
    grid = place.grid or place.village or place.township or "unknown"
    kind = "solved_on_spot" if data.solved_on_spot else "report"
    uow.emit(
        make_event(
            GridActivity, producer="intake", actor=actor, caused_by=received,
            payload=GridActivityData(worker_id=data.reporter_id or "", grid=grid, kind=kind, detail={"case_id": received.case_id}),
        )
    )
    if data.solved_on_spot:
        answer = f"网格员现场解决：{data.description[:200]}"
        uow.emit(
            make_event(
                CaseResolved, producer="intake", actor=actor, caused_by=received,
                payload=ResolvedData(order_no=f"GRID-{received.payload.tracking_no}", unit=grid, answer=scrub(answer)),
            )
        )
        uow.emit(
            make_event(
                CaseClosed, producer="intake", actor=actor, caused_by=received,
                payload=ClosedData(public_summary=f"{data.title}（网格内现场解决）"),
            )
        )


def _filed_again(row) -> Filed:
    return Filed(
        row.case_id, row.tracking_no, row.status, row.accept_due_at, created=False,
        merged_into=row.merged_into, rejection=row.reject_reason,
    )


def citizen_actor(phone: str) -> Actor:
    return Actor(id=f"citizen:{mask_phone(phone)}", role=Role.citizen)
