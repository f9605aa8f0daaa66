"""Scoring service: FastAPI app factory."""

from pathlib import Path

from fastapi import FastAPI

from scoring.api import router
from scoring.handlers import HANDLERS
from scoring.settings import ScoringSettings
from shared.case_status import router as case_status_router
from shared.service import ServiceSpec, build_app
from shared.settings import ServiceSettings, load_settings

SPEC = ServiceSpec(
    name="scoring",
    title="接诉即办 · Scoring",
    description="Two-way performance evaluation, grid-worker scores, bulletins and rankings.",
    settings_cls=ScoringSettings,
    router=router,
    handlers=HANDLERS,
    migrations=Path(__file__).parent / "migrations" / "versions",
    extra_routers=(case_status_router,),
)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    return build_app(SPEC, settings or load_settings(ScoringSettings))
