
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class DispatchSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DISPATCH_", extra="ignore", validate_default=True)

    service_name: str = "dispatch"
    port: int = Field(default=8002, ge=1, le=65535)
    region_prefix: str = Field(default="XC", pattern=r"^[A-Z]{2,4}$", description="order-number prefix (JB-XC-2026-000042)")
    return_window_working_days: float = Field(default=2, gt=0, le=10, description="退单: only this long after dispatch")
    due_soon_working_days: float = Field(default=1, gt=0, description="an order is 'due soon' this close to its deadline")
