from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class DispatchSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DISPATCH_", extra="ignore", validate_default=True)

    service_name: str = "dispatch"
    port: int = Field(default=8002, ge=1, le=65535)
