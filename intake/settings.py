from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore", validate_default=True)

    service_name: str = "intake"
    port: int = Field(default=8001, ge=1, le=65535)
    region_prefix: str = Field(default="XC", pattern=r"^[A-Z]{2,4}$", description="tracking-number prefix (忻城: XC)")
    accept_within_hours: float = Field(default=24, gt=0, description="受理时限: accept and tell the citizen within")
