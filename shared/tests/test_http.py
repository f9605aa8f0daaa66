"""Headers every service answers with, and CORS only for configured origins."""

import httpx
from fastapi import APIRouter

from shared.http import body_deadline
from shared.service import ServiceSpec, build_app
from shared.settings import ServiceSettings, load_settings

SPEC = ServiceSpec(
    name="probe-http", title="probe", description="headers", settings_cls=ServiceSettings,
    router=APIRouter(), handles=frozenset(), migrations=None,  # type: ignore[arg-type]  # lifespan never runs here
)


async def _get(path: str, *, cors: list[str] | None = None, **headers: str) -> httpx.Response:
    app = build_app(SPEC, load_settings(ServiceSettings, cors_origins=cors or []))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        return await client.get(path, headers=headers)


async def test_api_answers_cannot_be_sniffed_framed_cached_or_run():
    response = await _get("/health")
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert response.headers["cache-control"] == "no-store"


async def test_the_docs_page_keeps_working_without_the_api_policy():
    response = await _get("/docs")
    assert response.status_code == 200
    assert "content-security-policy" not in response.headers, "Swagger UI loads its script from a CDN"
    assert response.headers["x-frame-options"] == "DENY"


async def test_cors_answers_only_configured_origins():
    console = "https://console.xc.example.cn"
    closed = await _get("/health", Origin=console)
    assert "access-control-allow-origin" not in closed.headers, "no origin is allowed unless configured"

    allowed = await _get("/health", cors=[console], Origin=console)
    assert allowed.headers["access-control-allow-origin"] == console
    stranger = await _get("/health", cors=[console], Origin="https://evil.example.com")
    assert "access-control-allow-origin" not in stranger.headers


def test_the_body_deadline_grows_with_what_has_arrived():
    assert body_deadline(100.0, 0, 30, 5_000) == 130.0
    # A 10 MB photo at the minimum rate is still waited for; a byte now and then is not.
    assert body_deadline(100.0, 10_000_000, 30, 5_000) == 2130.0
    assert body_deadline(100.0, 5, 30, 5_000) < 130.01
