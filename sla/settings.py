from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class SlaSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SLA_", extra="ignore", validate_default=True)

    service_name: str = "sla"
    port: int = Field(default=8003, ge=1, le=65535)
