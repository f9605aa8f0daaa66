"""A test-only service on the shared plumbing: it logs the order in which it handles
events, and fails on purpose on events whose note is "poison"."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from pydantic_settings import SettingsConfigDict
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, insert
from sqlalchemy.dialects.postgresql import UUID

from shared.db import UnitOfWork
from shared.events import EventBase, ProgressReportedData
from shared.case_status import case_status_many
from shared.service import ServiceSpec, build_app
from shared.settings import ServiceSettings

metadata = MetaData()
probe_log = Table(
    "probe_log",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("case_id", String(64), nullable=False),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("handled_by", String(32), nullable=False),
)


class ProbeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PROBE_", extra="ignore")
    service_name: str = "probe"
    instance: str = "a"


def make_batch_handler(instance: str):
    """The batch in one insert into ``probe_log`` (logged as handled by ``instance``) and its
    ``case_status``; a batch with a poison event in it fails as a whole."""

    async def handle_batch(uow: UnitOfWork, events: list[EventBase]) -> None:
        rows = []
        for event in events:
            payload: ProgressReportedData = event.payload  # type: ignore[attr-defined]
            if payload.note == "poison":
                raise ValueError("poisoned on purpose")
            rows.append({"case_id": event.case_id, "event_id": event.id, "seq": payload.percent or 0, "handled_by": instance})
        await uow.session.execute(insert(probe_log), rows)
        status = case_status_many(events)
        if status is not None:
            await uow.session.execute(*status)

    return handle_batch


def create_app(settings: ProbeSettings) -> FastAPI:
    spec = ServiceSpec(
        name="probe",
        title="probe",
        description="test-only",
        settings_cls=ProbeSettings,
        router=APIRouter(),
        handles=frozenset({"case.progress_reported"}),
        migrations=Path(__file__).parent / "versions",
        batch_handler=lambda _context: make_batch_handler(settings.instance),
    )
    return build_app(spec, settings)
