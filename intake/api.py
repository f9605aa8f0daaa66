"""Intake's REST API for app and mini-program backends (``/api/v1``)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header
from pydantic import BaseModel, Field

from intake import domain, repository
from shared.events import (
    AcceptedData,
    Actor,
    CaseAccepted,
    CaseReceived,
    Channel,
    FiveMatters,
    Location,
    ReceivedData,
    Role,
    make_event,
    utcnow,
)
from shared.privacy import mask_phone
from shared.problems import Problem
from shared.service import RuntimeDep, UowDep

router = APIRouter(prefix="/api/v1", tags=["appeals"])


class Contact(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    phone: str = Field(pattern=r"^\+?[0-9][0-9 -]{5,19}$")


class NewAppeal(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=5000)
    channel: Channel
    contact: Contact
    category: FiveMatters | None = None
    street: str | None = Field(default=None, max_length=200)


class AppealCreated(BaseModel):
    case_id: str
    tracking_no: str
    status: str
    accept_due_at: datetime


class TimelineEntry(BaseModel):
    type: str
    label: str
    occurred_at: datetime
    detail: str | None = None


class AppealView(BaseModel):
    case_id: str
    tracking_no: str
    title: str
    channel: str
    status: str
    created_at: datetime
    timeline: list[TimelineEntry]


def _request_hash(body: NewAppeal) -> str:
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


@router.post("/appeals", status_code=201, response_model=AppealCreated, summary="File an appeal (诉求)")
async def file_appeal(
    body: NewAppeal,
    runtime: RuntimeDep,
    uow: UowDep,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> AppealCreated:
    settings = runtime.settings
    request_hash = _request_hash(body)
    async with uow:
        if idempotency_key:
            existing = await repository.find_by_idempotency_key(uow.session, idempotency_key)
            if existing is not None:
                return _replay(existing, request_hash, settings.accept_within_hours)
        case_id = str(uuid.uuid4())
        now = utcnow()
        tracking_no = domain.tracking_number(settings.region_prefix, now, await repository.next_sequence(uow.session))
        accept_due = domain.accept_deadline(now, settings.accept_within_hours)
        received = make_event(
            CaseReceived,
            case_id=case_id,
            producer="intake",
            occurred_at=now,
            actor=Actor(id=f"citizen:{mask_phone(body.contact.phone)}", role=Role.citizen),
            payload=ReceivedData(
                tracking_no=tracking_no,
                channel=body.channel,
                title=body.title,
                description=body.description,
                category=body.category,
                location=Location(street=body.street) if body.street else None,
                contact_masked=mask_phone(body.contact.phone),
                accept_due_at=accept_due,
            ),
        )
        inserted = await repository.insert_appeal(
            uow.session,
            case_id=case_id,
            tracking_no=tracking_no,
            channel=body.channel.value,
            title=body.title,
            description=body.description,
            status="accepted",
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            created_at=received.occurred_at,
            updated_at=received.occurred_at,
        )
        if not inserted:  # a concurrent retry with the same key won the race
            await uow.session.rollback()
            existing = await repository.find_by_idempotency_key(uow.session, idempotency_key or "")
            return _replay(existing, request_hash, settings.accept_within_hours)
        uow.emit(received)
        uow.emit(
            make_event(
                CaseAccepted,
                producer="intake",
                actor=Actor(id="service:intake", role=Role.system),
                caused_by=received,
                payload=AcceptedData(tracking_no=tracking_no, notice=domain.acceptance_notice(tracking_no, body.title)),
            )
        )
        await uow.commit()
    return AppealCreated(case_id=case_id, tracking_no=tracking_no, status="accepted", accept_due_at=accept_due)


def _replay(existing: object, request_hash: str, within_hours: float) -> AppealCreated:
    if existing.request_hash != request_hash:  # type: ignore[attr-defined]
        raise Problem(409, "this Idempotency-Key was used with a different request body", slug="idempotency-key-reused")
    return AppealCreated(
        case_id=existing.case_id,  # type: ignore[attr-defined]
        tracking_no=existing.tracking_no,  # type: ignore[attr-defined]
        status=existing.status,  # type: ignore[attr-defined]
        accept_due_at=domain.accept_deadline(existing.created_at, within_hours),  # type: ignore[attr-defined]
    )


@router.get("/appeals/{case_id}", response_model=AppealView, summary="An appeal with its timeline")
async def get_appeal(case_id: str, uow: UowDep) -> AppealView:
    async with uow:
        row = await repository.get_appeal(uow.session, case_id)
        if row is None:
            raise Problem(404, f"no appeal {case_id}")
        entries = await repository.get_timeline(uow.session, case_id)
    return AppealView(
        case_id=row.case_id,
        tracking_no=row.tracking_no,
        title=row.title,
        channel=row.channel,
        status=row.status,
        created_at=row.created_at,
        timeline=[TimelineEntry(type=e.event_type, label=e.label, occurred_at=e.occurred_at, detail=e.detail) for e in entries],
    )
