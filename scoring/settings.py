from pydantic import AwareDatetime, Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ScoringSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SCORING_", extra="ignore", validate_default=True)

    service_name: str = "scoring"
    port: int = Field(default=8004, ge=1, le=65535)
    # Demos and tests only: the service's "now" (default periods, rating times), movable at
    # POST /api/v1/admin/clock. Unset in production: the system clock.
    test_clock: AwareDatetime | None = None
    # events per transaction of a rebuild: 4,000 replayed ~9% faster than 2,000 (bench), 40 MiB more
    rebuild_batch_size: int = Field(default=4000, ge=1, le=50_000)
    trend_periods: int = Field(default=6, ge=2, le=24, description="periods shown in a bulletin's trend")
    bulletin_check_seconds: float = Field(
        default=300, ge=0, description="how often to look whether a weekly/monthly bulletin is due (0: on demand only)"
    )
