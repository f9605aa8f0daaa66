"""Dispatch service: FastAPI app factory."""

from pathlib import Path

from fastapi import FastAPI

from dispatch.api import router
from dispatch.batch import make_batch_handler
from dispatch.handlers import HANDLES
from dispatch.service import DispatchContext, follow_holiday_tables
from dispatch.settings import DispatchSettings
from shared.case_status import router as case_status_router
from shared.service import Runtime, ServiceSpec, build_app
from shared.settings import ServiceSettings, load_settings
from shared.tasks import stop_task

async def start(runtime: Runtime) -> None:
    ctx: DispatchContext = runtime.context
    await ctx.follower.start()
    runtime.org_follower = ctx.follower  # the org-scope rules read the same copy
    follow_holiday_tables(runtime, ctx)


async def stop(runtime: Runtime) -> None:
    for task in list(runtime.context.moves):
        await stop_task(task)
    await runtime.context.follower.stop()


SPEC = ServiceSpec(
    name="dispatch",
    title="接诉即办 · Dispatch",
    description=(
        "乡呼县应: dispatch orders (交办单) by the catalogue or by hand, sign / return and its review, township calls "
        "to the county and whistles (吹哨报到), work plans (施工图), progress, extensions (延期), answers, the "
        "township's verification and publication (核验、销号、公示), and redo (重办)."
    ),
    settings_cls=DispatchSettings,
    router=router,
    handles=HANDLES,
    publishes=frozenset({
        "case.dispatched", "case.signed", "case.returned", "case.return_reviewed", "case.work_plan_filed",
        "case.progress_reported", "case.extension_requested", "case.extension_approved", "case.extension_denied",
        "case.suspended", "case.resumed", "case.resolved", "case.verified", "case.verification_failed",
        "case.closed", "case.county_called", "case.whistle_blown", "case.reopened",
        "case.reported_up", "case.passed_down", "case.surveyed", "case.deadline_moved",
    }),  # fmt: skip
    context=DispatchContext.from_settings,
    follow_holidays=True,  # the order's deadlines count working days on the tables the directory publishes
    batch_handler=make_batch_handler,
    migrations=Path(__file__).parent / "migrations" / "versions",
    on_startup=start,
    on_shutdown=stop,
    extra_routers=(case_status_router,),
)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    return build_app(SPEC, settings or load_settings(DispatchSettings))
