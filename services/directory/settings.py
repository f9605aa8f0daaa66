from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.orgdata import DEMO_FILE
from shared.settings import ServiceSettings


class DirectorySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DIRECTORY_", extra="ignore", validate_default=True)

    service_name: str = "directory"
    port: int = Field(default=8006, ge=1, le=65535)
    seed_file: Path = Field(default=DEMO_FILE, description="org document loaded as version 1 on the first start")
    org_topic: str = Field(default="org-directory", min_length=1, description="where every version is published")
    publish_retry_seconds: float = Field(default=1.0, gt=0, le=300, description="wait before retrying a failed publish")
