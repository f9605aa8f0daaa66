"""Sla service: FastAPI app factory."""

from dataclasses import replace
from pathlib import Path

from fastapi import FastAPI

from sla.api import router
from sla.handlers import HANDLES, REQUIRES, make_batch_handler
from sla.service import SlaContext, start_ticker, stop_ticker
from sla.settings import SlaSettings
from shared.case_status import router as case_status_router
from shared.service import Runtime, ServiceSpec, build_app
from shared.settings import ServiceSettings, load_settings

SPEC = ServiceSpec(
    name="sla",
    title="接诉即办 · SLA",
    description="Working-day clocks per case and per unit, warnings, urging and escalation.",
    settings_cls=SlaSettings,
    router=router,
    handles=HANDLES,
    publishes=frozenset({"sla.warning", "sla.breached", "sla.urged", "sla.escalated"}),
    batch_handler=None,  # bound to the app's context in create_app
    migrations=Path(__file__).parent / "migrations" / "versions",
    on_startup=start_ticker,
    on_shutdown=stop_ticker,
    extra_routers=(case_status_router,),
    follow_org=True,
    requires=REQUIRES,
)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or load_settings(SlaSettings)
    ctx = SlaContext(settings)  # type: ignore[arg-type]

    async def start(runtime: Runtime) -> None:
        runtime.extras["sla"] = ctx
        await start_ticker(runtime)

    # The handler wakes the ticker of the same context when a batch starts or moves a clock.
    return build_app(replace(SPEC, batch_handler=make_batch_handler(ctx), on_startup=start), settings)
