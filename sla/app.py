"""Sla service: FastAPI app factory."""

from pathlib import Path

from fastapi import FastAPI

from sla.api import router
from sla.handlers import HANDLES, REQUIRES, make_batch_handler
from sla.service import SlaContext, start_ticker, stop_ticker
from sla.settings import SlaSettings
from shared.case_status import router as case_status_router
from shared.service import ServiceSpec, build_app
from shared.settings import ServiceSettings, load_settings

SPEC = ServiceSpec(
    name="sla",
    title="接诉即办 · SLA",
    description="Working-day clocks per case and per unit, warnings, urging and escalation.",
    settings_cls=SlaSettings,
    router=router,
    handles=HANDLES,
    publishes=frozenset({"sla.warning", "sla.breached", "sla.urged", "sla.escalated", "sla.warning_signal"}),
    context=SlaContext,
    # The handler wakes the ticker of the same context when a batch starts or moves a clock.
    batch_handler=make_batch_handler,
    migrations=Path(__file__).parent / "migrations" / "versions",
    on_startup=start_ticker,
    on_shutdown=stop_ticker,
    extra_routers=(case_status_router,),
    follow_org=True,
    follow_holidays=True,  # counts working days on the tables the directory publishes (shared.holidays)
    requires=REQUIRES,
)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    return build_app(SPEC, settings or load_settings(SlaSettings))
