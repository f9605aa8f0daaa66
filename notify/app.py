"""Notify service: FastAPI app factory."""

from pathlib import Path

from fastapi import FastAPI

from notify.api import router
from notify.handlers import HANDLERS
from notify.settings import NotifySettings
from shared.case_status import router as case_status_router
from shared.service import ServiceSpec, build_app
from shared.settings import ServiceSettings, load_settings

SPEC = ServiceSpec(
    name="notify",
    title="接诉即办 · Notify",
    description="Callbacks (回访), ratings, citizen and unit messages, status back to 12345.",
    settings_cls=NotifySettings,
    router=router,
    handlers=HANDLERS,
    migrations=Path(__file__).parent / "migrations" / "versions",
    extra_routers=(case_status_router,),
)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    return build_app(SPEC, settings or load_settings(NotifySettings))
