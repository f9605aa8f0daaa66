"""Intake service: FastAPI app factory."""

import gc
import logging
import time
from pathlib import Path

from fastapi import FastAPI

from intake.admin import router as admin_router
from intake.api import router
from intake.attachments import router as attachments_router
from intake.grid import router as grid_router
from intake.grid_duties import router as grid_duties_router
from intake.handlers import HANDLES, make_batch_handler, record_own_events
from intake.open311 import install_open311_errors
from intake.open311 import router as open311_router
from intake.personal import router as personal_router
from intake.service import IntakeContext
from intake.settings import IntakeSettings
from shared.service import Runtime, ServiceSpec, build_app
from shared.settings import ServiceSettings, load_settings

log = logging.getLogger(__name__)


async def _start(runtime: Runtime) -> None:
    started = time.perf_counter()
    ctx: IntakeContext = runtime.context
    await ctx.store.open(runtime.uow)
    # The promoted version, rebuilt from its examples (well under a second for a few hundred).
    await ctx.routing.load(ctx.store.pool)
    settings: IntakeSettings = runtime.settings  # type: ignore[assignment]
    ctx.routing.start(ctx.store.pool, check_seconds=settings.model_check_seconds, retrain_every_hours=settings.retrain_every_hours)
    log.info("intake ready to route with model %s in %.2f s", ctx.routing.version.name, time.perf_counter() - started)
    await ctx.follower.start()
    runtime.org_follower = ctx.follower  # the org-scope rules read the same copy
    ctx.grid_checker.start(runtime)
    tune_garbage_collector()


def tune_garbage_collector() -> None:
    """What start-up built (org directory, schemas, routes, clients) lives as long as the
    process: freeze it out of the collector's sight, and collect young objects less often.
    With the defaults the collector took about a tenth of intake's CPU under load, most of
    it re-scanning those long-lived objects."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


async def _stop(runtime: Runtime) -> None:
    ctx: IntakeContext = runtime.context
    if ctx.grid_checker is not None:
        await ctx.grid_checker.stop()
    await ctx.routing.stop()
    await ctx.follower.stop()
    await ctx.store.close()


SPEC = ServiceSpec(
    name="intake",
    title="接诉即办 · Intake",
    description=(
        "Appeals in from every channel: app and WeChat mini-program backends (REST), the 12345 hotline "
        "(signed batch push), grid workers, windows and Open311 clients. Each appeal is accepted or declined "
        "with a reason, classified (五事 × subject), located, and merged with an open case about the same matter."
    ),
    settings_cls=IntakeSettings,
    router=router,
    handles=HANDLES,
    publishes=frozenset({"case.received", "case.accepted", "case.rejected", "case.merged", "case.triaged",
                         # closed on the spot at a window or in the grid (the citizen rates there)
                         "case.resolved", "case.closed", "case.rated", "grid.activity", "grid.warning"}),  # fmt: skip
    context=IntakeContext.from_settings,
    batch_handler=make_batch_handler,
    migrations=Path(__file__).parent / "migrations" / "versions",
    on_startup=_start,
    on_shutdown=_stop,
    extra_routers=(attachments_router, grid_router, grid_duties_router, open311_router, personal_router, admin_router),
    # Intake's own events go on the citizen's timeline in the transaction that files them.
    apply_own_events=record_own_events,
    # A photo may be 10 MB; the multipart envelope adds a little.
    body_limits=lambda settings: {"/api/v1/attachments": settings.attachment_max_bytes + 64 * 1024},
)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    app = build_app(SPEC, settings or load_settings(IntakeSettings))
    install_open311_errors(app)
    return app
