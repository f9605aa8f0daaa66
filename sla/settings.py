from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class SlaSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SLA_", extra="ignore", validate_default=True)

    service_name: str = "sla"
    port: int = Field(default=8003, ge=1, le=65535)
    # Records fetched per poll (over all partitions): sla applies each partition's share as a
    # set (sla.handlers.apply_batch), so a larger batch costs fewer round trips per event.
    consumer_batch_size: int = Field(default=2000, ge=1, le=10_000)

    # The ticker: how many clocks one transaction claims, and the longest it sleeps. It sleeps
    # until the earliest next threshold, woken early by a commit that starts or moves a clock
    # (in any replica): the longest sleep is only a fallback (a wake-up lost with a connection).
    ticker_enabled: bool = True
    tick_batch: int = Field(default=100, ge=1, le=10_000)
    tick_max_sleep_seconds: float = Field(default=30.0, gt=0, le=60)
    # A unit's "due soon" list and the board's yellow count: due within this many working days.
    due_soon_working_days: float = Field(default=1, gt=0, le=30)
    # POST /api/v1/admin/time moves this service's now (tests, demos); never in production.
    time_travel: bool = False
