from collections.abc import Mapping
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from shared.orgdata import SUBJECT_CLASSES
from shared.ratelimit import Rate
from shared.settings import ServiceSettings

# What the Open311 feed publishes: county code → the subject classes it publishes ("*": all).
Publishing = Mapping[str, frozenset[str]]


def parse_publishing(spec: str | None) -> Publishing | None:
    """``INTAKE_OPEN311_PUBLISH``: ``"LB-XC=*;LB-WX=infrastructure,environment"`` — the counties
    that publish, each with the subject classes it publishes. Unset: every county publishes
    every class (None); empty: none publishes. A ValueError names an unknown class."""
    if spec is None:
        return None
    publishing: dict[str, frozenset[str]] = {}
    for entry in filter(None, (part.strip() for part in spec.split(";"))):
        county, sep, classes = entry.partition("=")
        chosen = frozenset(c.strip() for c in classes.split(",") if c.strip())
        unknown = sorted(chosen - set(SUBJECT_CLASSES) - {"*"})
        if not sep or not county.strip() or not chosen or unknown:
            raise ValueError(f"'{entry}': write COUNTY=* or COUNTY=class,class (unknown: {', '.join(unknown) or 'none'})")
        publishing[county.strip()] = chosen
    return publishing


# Development's signed clients (README, "Personal data"): never in production.
DEV_MACHINE_CLIENTS = "hotline12345:dev-hotline-secret,appbackend:dev-appbackend-secret"


class IntakeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore", validate_default=True)

    service_name: str = "intake"
    port: int = Field(default=8001, ge=1, le=65535)
    region_prefix: str = Field(default="XC", pattern=r"^[A-Z]{2,4}$", description="tracking-number prefix (忻城: XC)")
    accept_within_hours: float = Field(default=24, gt=0, description="受理时限: accept and tell the citizen within")

    # Personal data. Without keys a fixed development key is used and a warning logged:
    # set both in every real deployment (see README, "Personal data").
    pii_keys: SecretStr | None = Field(default=None, description="key ring 'k1:<base64 32 bytes>,k2:…'; the last encrypts")
    lookup_key: SecretStr | None = Field(default=None, description="HMAC key for phone look-up hashes")
    contact_keys: SecretStr | None = Field(default=None, description="contact key ring shared with notify (shared.contact)")

    # Machine clients that sign their requests: 'hotline12345:<secret>,appbackend:<secret>,…'.
    # The default is for development only: 12345 and the app backend, with known secrets.
    hotline_clients: SecretStr = Field(default=SecretStr(DEV_MACHINE_CLIENTS))
    signature_window_seconds: int = Field(default=300, ge=30, le=3600)
    hotline_batch_max: int = Field(default=500, ge=1, le=5000)

    # Abuse limits, per replica (see shared/ratelimit.py); "0/1" turns one off.
    citizen_rate_limit: str = Field(default="20/1h", description="appeals one phone may file per window")
    client_rate_limit: str = Field(default="3000/60s", description="appeals one client address may file per window")

    # Classification, location, duplicates
    # The subject model's calibrated probability below which a person triages (人工分拨): with
    # 20-odd classes the best one is rarely above 0.5; 0.3 sends about one real message in ten
    # to a person (make bench, section classify).
    triage_threshold: float = Field(default=0.3, ge=0, le=1)
    model_check_seconds: float = Field(default=60, ge=0, description="how often a replica looks for a newly promoted model (0: never)")
    retrain_every_hours: float = Field(default=24, ge=0, description="retrain on the county's examples this often (0: only by command)")
    grid_check_minutes: float = Field(
        default=60, ge=0, description="check every grid for missed visits and mailbox openings this often (0: only by POST /grid/checks)"
    )
    duplicate_distance_m: float = Field(default=300, ge=0)
    duplicate_similarity: float = Field(default=0.6, ge=0, le=1)
    duplicate_window_days: float = Field(default=7, ge=0)
    attachment_dir: Path = Field(default=Path(".run/attachments"), description="where uploaded files are kept (a volume in production)")
    attachment_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, description="largest photo or PDF accepted")
    open311_publish: str | None = Field(
        default=None, max_length=4000,
        description="what the public Open311 feed shows: 'LB-XC=*;LB-WX=infrastructure,environment'; unset: every county",
    )  # fmt: skip

    @field_validator("open311_publish")
    @classmethod
    def _a_publishing(cls, value: str | None) -> str | None:
        parse_publishing(value)  # fail at start with the variable named
        return value

    @property
    def open311_publishing(self) -> Publishing | None:
        return parse_publishing(self.open311_publish)

    @field_validator("citizen_rate_limit", "client_rate_limit")
    @classmethod
    def _a_rate(cls, value: str) -> str:
        Rate.parse(value)  # fail at start with the variable named, not at the first appeal
        return value
