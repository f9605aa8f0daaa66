from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFY_", extra="ignore", validate_default=True)

    service_name: str = "notify"
    port: int = Field(default=8005, ge=1, le=65535)
