
from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from shared.deadlines import (
    AFTER_SURVEY_WORKING_DAYS, ON_SITE_SUBJECT_CLASSES, RESOLVE_WORKING_DAYS, RETURN_WINDOW_WORKING_DAYS, SURVEY_WORKING_DAYS,
)  # fmt: skip
from shared.events import ResolutionClass
from shared.settings import ServiceSettings


class DispatchSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DISPATCH_", extra="ignore", validate_default=True)

    service_name: str = "dispatch"
    port: int = Field(default=8002, ge=1, le=65535)
    region_prefix: str = Field(default="XC", pattern=r"^[A-Z]{2,4}$", description="order-number prefix (JB-XC-2026-000042)")
    # Dispatch owns the order, so its deadlines are set here and nowhere else: they travel on
    # the events, and SLA's clocks follow them (shared.deadlines).
    resolve_working_days: dict[ResolutionClass, float] = Field(
        default_factory=lambda: dict(RESOLVE_WORKING_DAYS),
        description="办理时限 by resolution class; a class left out keeps the default (JSON, e.g. {\"general\": 4})",
    )
    return_window_working_days: float = Field(
        default=RETURN_WINDOW_WORKING_DAYS, gt=0, le=10, description="退单: only this long after dispatch"
    )
    survey_working_days: float = Field(
        default=SURVEY_WORKING_DAYS, gt=0, le=30, description="现场勘查: an on-site matter is surveyed this long after dispatch"
    )
    after_survey_working_days: float = Field(
        default=AFTER_SURVEY_WORKING_DAYS, gt=0, le=60, description="the work is done this long after the survey (never less than the class gives)"
    )
    on_site_subject_classes: frozenset[str] = Field(
        default=ON_SITE_SUBJECT_CLASSES, description="the subject classes surveyed on site (their orders run a survey clock)"
    )
    due_soon_working_days: float = Field(default=1, gt=0, description="an order is 'due soon' this close to its deadline")

    @field_validator("resolve_working_days")
    @classmethod
    def _every_class(cls, value: dict[ResolutionClass, float]) -> dict[ResolutionClass, float]:
        if any(days <= 0 or days > 260 for days in value.values()):
            raise ValueError("each resolution class needs a positive number of working days (at most 260)")
        return {**RESOLVE_WORKING_DAYS, **value}
