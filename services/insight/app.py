"""Insight service (未诉先办): FastAPI app factory.

It reads the lifecycle topic like the others, keeps its own projection of the appeals, and
publishes ``hotspot.detected`` — rising counts per area and class, the same spot reported
again and again, units whose same-class appeals stay high month after month — each with its
evidence and a Chinese sentence (``services.insight.detect``).
"""

from pathlib import Path

from fastapi import FastAPI

from services.insight.api import router
from services.insight.handlers import HANDLES, make_batch_handler
from services.insight.service import InsightContext
from services.insight.settings import InsightSettings
from services.insight.tasks_api import router as tasks_router
from services.insight.trends_api import router as trends_router
from services.insight.warning_api import router as warning_router
from shared.service import Runtime, ServiceSpec, build_app
from shared.settings import ServiceSettings, load_settings



async def start(runtime: Runtime) -> None:
    runtime.context.org = lambda: runtime.org  # the directory as the topic keeps it


SPEC = ServiceSpec(
    name="insight",
    title="接诉即办 · Insight (未诉先办)",
    description=(
        "Finds trouble before it is reported again: per area (grid, village, township) and subject class, counts "
        "above their own history over working days; the same spot reported again and again; units whose "
        "same-class appeals stay high month after month (反映同类问题居高不下). Each finding is published as "
        "hotspot.detected with its evidence and listed for the centre."
    ),
    settings_cls=InsightSettings,
    router=router,
    # 预警信息处置; trends and the monthly theme (每月一题); 自上而下的任务
    extra_routers=(warning_router, trends_router, tasks_router),
    handles=HANDLES,  # and sla's cards on a warning's clocks (sla.warning_signal)
    publishes=frozenset({
        "hotspot.detected", "warning.opened", "warning.acknowledged", "warning.handled", "warning.closed", "warning.reopened",
        "case.received", "case.accepted",  # a task's items (tasks.py)
    }),
    context=InsightContext.from_settings,
    batch_handler=make_batch_handler,
    migrations=Path(__file__).parent / "migrations" / "versions",
    on_startup=start,
    follow_org=True,
    follow_holidays=True,  # counts working days on the tables the directory publishes (shared.holidays)
)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    return build_app(SPEC, settings or load_settings(InsightSettings))
