from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFY_", extra="ignore", validate_default=True)

    service_name: str = "notify"
    port: int = Field(default=8005, ge=1, le=65535)

    # Personal data. The contact ring opens the phone intake sealed into case.received
    # (NOTIFY_CONTACT_KEYS, or CONTACT_KEYS for every service); notify re-encrypts it under
    # its own ring (NOTIFY_PII_KEYS) to keep it. Without them development keys are used.
    contact_keys: SecretStr | None = Field(default=None, description="contact key ring shared with intake (shared.contact)")
    pii_keys: SecretStr | None = Field(default=None, description="notify's own key ring 'k1:<base64 32 bytes>,…'")

    # Channel endpoints (in development: the local receiver, services/dev/receiver). Unset → that
    # channel is not used and its messages wait (state queued) until it is configured.
    sms_url: str | None = Field(default=None, description="SMS gateway: POST JSON {to, text, message_id}")
    wechat_url: str | None = Field(default=None, description="WeChat subscribe-message backend: POST JSON")
    hotline_webhook_url: str | None = Field(default=None, description="12345 status webhook: POST JSON, HMAC-signed")
    hotline_client_id: str = Field(default="jiesu-notify", description="X-Client-Id notify signs webhook calls with")
    hotline_webhook_secret: SecretStr = Field(default=SecretStr("dev-notify-webhook-secret"))
    http_timeout_seconds: float = Field(default=5, gt=0, le=120)
    # Delivery receipts come from the gateways as HMAC-signed requests (shared.signing).
    gateway_clients: SecretStr = Field(
        default=SecretStr("sms-gateway:dev-sms-gateway-secret,wechat-backend:dev-wechat-gateway-secret"),
        description="'client-id:secret,…' of the SMS gateway and WeChat backend that post receipts",
    )

    # The sender loop: it sleeps until the next message falls due, woken at once by a commit
    # that queues one (in any replica); this is the longest it sleeps, a fallback only.
    sender_max_sleep_seconds: float = Field(default=30, gt=0, le=300)
    sender_batch_size: int = Field(default=50, ge=1, le=1000)
    send_lease_seconds: float = Field(default=60, gt=0, description="a claimed message is retried after this if the sender died")
    max_attempts: int = Field(default=6, ge=1, le=50, description="tries per message before it is dead-lettered")
    backoff_seconds: float = Field(default=2, gt=0, description="first retry delay; doubles per try")
    max_backoff_seconds: float = Field(default=3600, gt=0)
    # A circuit breaker per gateway (notify/breakers.py): this many failed tries in a row open
    # it; while open the channel's messages wait untried; after breaker_open_seconds one try
    # goes through and, if it succeeds, the rest follow.
    breaker_failures: int = Field(default=5, ge=1, le=1000, description="failed tries in a row that open a gateway's breaker")
    breaker_open_seconds: float = Field(default=30, gt=0, le=3600, description="how long an open breaker holds its channel")

    # Quiet hours (Asia/Shanghai): SMS held until the end unless urgent.
    quiet_start: str = Field(default="22:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    quiet_end: str = Field(default="07:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    # Per recipient and channel: at most rate_limit_count messages per window; later ones wait.
    rate_limit_count: int = Field(default=10, ge=1)
    rate_limit_window_seconds: int = Field(default=3600, ge=1)

    # Callbacks (回访) and ratings
    # The hour a callback falls due is not a setting: SLA shows the same due time (shared.callback).
    callback_max_attempts: int = Field(default=3, ge=1, le=10)
    # The citizen's page notify serves at /citizen/rate (notify/citizen_api.py); in production
    # the public address it is reached by (`make run` sets the local one).
    rating_url: str = Field(default="https://jiesu.example.cn/citizen/rate", description="link base in the closing notice")
    rating_token_days: int = Field(default=30, ge=1, description="a rating token expires after")
    questionnaire_every: int = Field(default=10, ge=1, description="questionnaire for 1 in N closed cases (by case id)")
    questionnaire_url: str = Field(default="https://jiesu.example.cn/survey")

    # The citizen's look-up by tracking number with a one-time SMS code (notify/citizen.py).
    lookup_code_minutes: int = Field(default=10, ge=1, le=60, description="a look-up code expires after")
    lookup_code_attempts: int = Field(default=3, ge=1, le=10, description="wrong tries that lock a look-up code")
    lookup_resend_seconds: int = Field(default=60, ge=0, le=3600, description="at most one code per appeal this often")
    lookup_codes_per_hour: int = Field(default=5, ge=1, le=100, description="codes per appeal per hour")

    # A movable clock for demos and tests (POST /api/v1/admin/clock); never in production.
    test_clock: bool = Field(default=False, description="allow moving notify's clock over the API")
