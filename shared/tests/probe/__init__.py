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
from shared.case_status import track_case_status
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
    # Hand each partition batch to a batch handler (shared.consumer's batch_handler hook).
    batched: bool = False


def make_handler(instance: str):
    async def handle_progress(event: EventBase, uow: UnitOfWork) -> None:
        payload: ProgressReportedData = event.payload  # type: ignore[attr-defined]
        if payload.note == "poison":
            raise ValueError("poisoned on purpose")
        await uow.session.execute(
            insert(probe_log).values(case_id=event.case_id, event_id=event.id, seq=payload.percent or 0, handled_by=instance)
        )
        await track_case_status(event, uow)

    return handle_progress


def make_batch_handler(instance: str):
    """The per-event handler over the batch, logged as handled by ``<instance>:batch``."""
    one = make_handler(f"{instance}:batch")

    async def handle_batch(uow: UnitOfWork, events: list[EventBase]) -> None:
        for event in events:
            await one(event, uow)

    return handle_batch


def create_app(settings: ProbeSettings) -> FastAPI:
    spec = ServiceSpec(
        name="probe",
        title="probe",
        description="test-only",
        settings_cls=ProbeSettings,
        router=APIRouter(),
        handlers={"case.progress_reported": make_handler(settings.instance)},
        migrations=Path(__file__).parent / "versions",
        batch_handler=make_batch_handler(settings.instance) if settings.batched else None,
    )
    return build_app(spec, settings)
