"""Intake service: FastAPI app factory."""

from pathlib import Path

from fastapi import FastAPI

from intake.api import router
from intake.handlers import HANDLERS
from intake.settings import IntakeSettings
from shared.service import ServiceSpec, build_app
from shared.settings import ServiceSettings, load_settings

SPEC = ServiceSpec(
    name="intake",
    title="接诉即办 · Intake",
    description="Appeals in from every channel: app, WeChat mini-program, 12345 hotline, grid workers, windows, Open311.",
    settings_cls=IntakeSettings,
    router=router,
    handlers=HANDLERS,
    migrations=Path(__file__).parent / "migrations" / "versions",
)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    return build_app(SPEC, settings or load_settings(IntakeSettings))
