"""Dispatch service: FastAPI app factory."""

from pathlib import Path

from fastapi import FastAPI

from dispatch.api import router
from dispatch.handlers import HANDLERS
from dispatch.settings import DispatchSettings
from shared.case_status import router as case_status_router
from shared.service import ServiceSpec, build_app
from shared.settings import ServiceSettings, load_settings

SPEC = ServiceSpec(
    name="dispatch",
    title="接诉即办 · Dispatch",
    description="乡呼县应: dispatch orders, sign/return, township calls and whistles, work plans, verification and redo.",
    settings_cls=DispatchSettings,
    router=router,
    handlers=HANDLERS,
    migrations=Path(__file__).parent / "migrations" / "versions",
    extra_routers=(case_status_router,),
)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    return build_app(SPEC, settings or load_settings(DispatchSettings))
