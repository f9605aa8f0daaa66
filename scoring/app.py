"""Scoring service: FastAPI app factory."""

from pathlib import Path

from fastapi import FastAPI

from scoring import org
from scoring.api import router
from scoring.context import ScoringContext
from scoring.handlers import HANDLES
from scoring.plan import BatchPlan, apply_batch
from scoring.rebuild import Rebuild
from scoring.schedule import BulletinSchedule
from scoring.settings import ScoringSettings
from shared.case_status import router as case_status_router
from shared.service import Runtime, ServiceSpec, build_app
from shared.settings import ServiceSettings, load_settings


async def on_startup(runtime: Runtime) -> None:
    context: ScoringContext = runtime.context
    settings = context.settings
    org.follow(lambda: runtime.org)  # handlers read the directory as the topic keeps it
    context.schedule = BulletinSchedule(runtime, context.clock.now, settings.bulletin_check_seconds, settings.trend_periods)
    context.rebuild = Rebuild(runtime, HANDLES, batch_size=settings.rebuild_batch_size, planner=BatchPlan)
    context.schedule.start()


async def on_shutdown(runtime: Runtime) -> None:
    context: ScoringContext = runtime.context
    if context.schedule is not None:
        await context.schedule.stop()
    if context.rebuild is not None:
        await context.rebuild.stop()


SPEC = ServiceSpec(
    name="scoring",
    title="接诉即办 · Scoring",
    description="Two-way performance evaluation, grid-worker scores, bulletins and rankings.",
    settings_cls=ScoringSettings,
    router=router,
    handles=HANDLES,
    publishes=frozenset({"unit.rated"}),
    context=ScoringContext.from_settings,
    # Scoring's rules read nothing of the context (the directory comes from scoring.org).
    batch_handler=lambda _context: apply_batch,
    migrations=Path(__file__).parent / "migrations" / "versions",
    on_startup=on_startup,
    on_shutdown=on_shutdown,
    extra_routers=(case_status_router,),
    follow_org=True,
)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    return build_app(SPEC, settings or load_settings(ScoringSettings))
