from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class InsightSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INSIGHT_", extra="ignore", validate_default=True)

    service_name: str = "insight"
    port: int = Field(default=8009, ge=1, le=65535)
    # The detectors' thresholds (services.insight.detect.Thresholds) as JSON, e.g.
    # INSIGHT_THRESHOLDS='{"max_p": 1e-5, "spot_min": 4}'; what is not given keeps its default
    # (the defaults were chosen on the synthetic year of bench/insight.py; BENCHMARKS.md).
    thresholds: dict[str, float] = Field(default_factory=dict, description="detector thresholds that differ from the defaults")
