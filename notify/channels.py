"""Channel adapters behind one interface: ``await adapter.send(delivery) -> SendResult``.

- SMS gateway: HTTP POST ``{to, text, message_id}`` to NOTIFY_SMS_URL → sent (the gateway's
  receipt, POST /api/v1/messages/{id}/receipt, later says delivered or failed).
- WeChat subscribe message: HTTP POST to NOTIFY_WECHAT_URL (the mini-program backend) → sent.
- In-app inbox: the message row is the inbox entry → queued as delivered, the sender never sees it.
- 12345 status webhook: HTTP POST of the status JSON to NOTIFY_HOTLINE_WEBHOOK_URL, HMAC-signed
  with a timestamp (shared.signing) and idempotent by event id (``Idempotency-Key``) → delivered.

Endpoints are configured by URL only; in development they point at services/dev/receiver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import orjson

from shared.signing import signature_headers


@dataclass(frozen=True)
class Delivery:
    message_id: int
    event_id: str
    case_id: str | None
    recipient: str
    kind: str
    text: str
    payload: dict[str, Any] | None
    to: str | None  # the phone for SMS (the citizen's), else None


@dataclass(frozen=True)
class SendResult:
    state: str  # sent | delivered | retry | dead
    status_code: int | None = None
    error: str | None = None


class ChannelAdapter(Protocol):
    name: str

    async def send(self, delivery: Delivery) -> SendResult: ...


def _outcome(response: httpx.Response, ok_state: str) -> SendResult:
    if response.is_success:
        return SendResult(ok_state, response.status_code)
    # A 4xx other than 408/429 will not get better by trying again.
    permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 409, 425, 429)
    return SendResult("dead" if permanent else "retry", response.status_code, f"HTTP {response.status_code}")


async def _post(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], ok_state: str) -> SendResult:
    try:
        response = await client.post(url, content=body, headers={"Content-Type": "application/json", **headers})
    except httpx.HTTPError as exc:
        return SendResult("retry", None, f"{type(exc).__name__}: {exc}"[:300])
    return _outcome(response, ok_state)


class SmsAdapter:
    name = "sms"

    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self.client, self.url = client, url

    async def send(self, delivery: Delivery) -> SendResult:
        if not delivery.to:
            return SendResult("dead", None, "no phone number for this recipient")
        body = orjson.dumps({"to": delivery.to, "text": delivery.text, "message_id": delivery.message_id,
                             "kind": delivery.kind, "case_id": delivery.case_id})  # fmt: skip
        return await _post(self.client, self.url, body, {"Idempotency-Key": f"notify-{delivery.message_id}"}, "sent")


class WeChatAdapter:
    name = "wechat"

    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self.client, self.url = client, url

    async def send(self, delivery: Delivery) -> SendResult:
        # The mini-program backend maps our recipient (the citizen's reference) to an openid.
        body = orjson.dumps({"touser": delivery.recipient, "template": delivery.kind, "case_id": delivery.case_id,
                             "text": delivery.text, "message_id": delivery.message_id})  # fmt: skip
        return await _post(self.client, self.url, body, {"Idempotency-Key": f"notify-{delivery.message_id}"}, "sent")


class InboxAdapter:
    """An inbox message is queued as delivered (``domain.delivered_when_queued``); this
    delivers one still queued (queued by an older release, before an upgrade)."""

    name = "inbox"

    async def send(self, delivery: Delivery) -> SendResult:
        return SendResult("delivered")


class HotlineWebhookAdapter:
    name = "hotline"

    def __init__(self, client: httpx.AsyncClient, url: str, client_id: str, secret: bytes) -> None:
        self.client, self.url, self.client_id, self.secret = client, url, client_id, secret
        parts = urlsplit(url)
        # The signed path is the request target exactly as sent, with its query string.
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    async def send(self, delivery: Delivery) -> SendResult:
        body = orjson.dumps(delivery.payload or {})
        headers = signature_headers(self.client_id, self.secret, method="POST", path=self.path, body=body)
        # The same event always carries the same key: 12345 applies a status update once.
        headers |= {"Idempotency-Key": delivery.event_id, "X-Event-Id": delivery.event_id}
        return await _post(self.client, self.url, body, headers, "delivered")


def build_adapters(client: httpx.AsyncClient, settings: Any) -> dict[str, ChannelAdapter]:
    """The configured channels; one without a URL is left out (its messages wait)."""
    adapters: dict[str, ChannelAdapter] = {"inbox": InboxAdapter()}
    if settings.sms_url:
        adapters["sms"] = SmsAdapter(client, settings.sms_url)
    if settings.wechat_url:
        adapters["wechat"] = WeChatAdapter(client, settings.wechat_url)
    if settings.hotline_webhook_url:
        adapters["hotline"] = HotlineWebhookAdapter(
            client, settings.hotline_webhook_url, settings.hotline_client_id,
            settings.hotline_webhook_secret.get_secret_value().encode(),
        )  # fmt: skip
    return adapters
