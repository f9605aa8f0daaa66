"""Calls to the services' public HTTP APIs, always as the signed-in user."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from services.console.session import Session
from services.console.settings import ConsoleSettings

# Request headers worth passing on from the browser; everything else (cookies above all) stays here.
FORWARDED_REQUEST_HEADERS = ("content-type", "if-match", "accept", "idempotency-key")
FORWARDED_RESPONSE_HEADERS = ("content-type", "content-disposition", "etag", "retry-after", "cache-control")


@dataclass(frozen=True)
class Fetched:
    """A JSON answer from a service, or why there is none (for the board's "sources" line)."""

    service: str
    status: int
    body: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and 200 <= self.status < 300


class Upstreams:
    def __init__(self, settings: ConsoleSettings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.client = client

    def url(self, service: str, path: str) -> str:
        return f"{self.settings.service_url(service)}/api/v1/{path.lstrip('/')}"

    async def get_json(self, service: str, path: str, session: Session | None, params: dict[str, Any] | None = None) -> Fetched:
        headers = session.actor_headers() if session else {}
        try:
            answer = await self.client.get(self.url(service, path), params=params, headers=headers)
        except httpx.HTTPError as exc:
            return Fetched(service, 502, error=f"{service} 不可达: {type(exc).__name__}")
        try:
            body = answer.json()
        except ValueError:
            body = None
        if answer.status_code >= 400:
            detail = body.get("detail") if isinstance(body, dict) else None
            return Fetched(service, answer.status_code, body, error=f"{service} {answer.status_code}: {detail or answer.reason_phrase}")
        return Fetched(service, answer.status_code, body)

    async def forward(
        self, service: str, path: str, *, method: str, query: str, body: bytes, headers: dict[str, str], session: Session
    ) -> httpx.Response:
        """Pass one browser request on to a service; raises httpx.HTTPError when it cannot be reached."""
        outgoing = {k: v for k, v in headers.items() if k.lower() in FORWARDED_REQUEST_HEADERS}
        outgoing.update(session.actor_headers())
        url = self.url(service, path) + (f"?{query}" if query else "")
        return await self.client.request(method, url, content=body or None, headers=outgoing)

    async def issuer_users(self) -> Fetched:
        try:
            answer = await self.client.get(f"{self.settings.issuer_url}/users")
        except httpx.HTTPError as exc:
            return Fetched("issuer", 502, error=f"issuer 不可达: {type(exc).__name__}")
        return Fetched("issuer", answer.status_code, answer.json()) if answer.status_code == 200 else Fetched(
            "issuer", answer.status_code, error=f"issuer {answer.status_code}"
        )

    async def issuer_token(self, user: str) -> tuple[int, dict[str, Any]]:
        """(status, body) of the issuer's POST /token; raises httpx.HTTPError when it cannot be reached."""
        answer = await self.client.post(f"{self.settings.issuer_url}/token", json={"user": user})
        try:
            return answer.status_code, answer.json()
        except ValueError:
            return answer.status_code, {"detail": answer.text[:200]}
