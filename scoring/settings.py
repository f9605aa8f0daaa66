from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ScoringSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SCORING_", extra="ignore", validate_default=True)

    service_name: str = "scoring"
    port: int = Field(default=8004, ge=1, le=65535)
