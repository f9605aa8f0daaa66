"""The console's own guards, against a running console, issuer and receiver (issue #20):
the admin filter is decided on the path as the service will read it, the demo sign-in is
development sign-in (loopback only, and it says so), and in headers mode the console
refuses to listen beyond loopback as the services do."""

from __future__ import annotations

import httpx
import pytest

from services.console.app import create_app as create_console
from services.console.settings import SERVICES, ConsoleSettings
from services.dev.issuer.app import create_app as create_issuer
from services.dev.issuer.settings import IssuerSettings
from services.dev.receiver.app import create_app as create_receiver
from shared.testing import free_port, running

CSRF = {"X-Console": "1"}
SECRET = "a test secret that is long enough!!"


class _Plain:
    """Enough of a settings object for shared.testing.running (a bare app, no database)."""

    def __init__(self, port: int) -> None:
        self.host, self.port, self.service_name = "127.0.0.1", port, "receiver"


@pytest.fixture(scope="module")
async def stack():
    issuer_settings = IssuerSettings(port=free_port())
    receiver = _Plain(free_port())
    async with running(create_issuer(issuer_settings), issuer_settings) as issuer, \
            running(create_receiver(), receiver) as sink:  # type: ignore[arg-type]  # fmt: skip
        # Every service is the receiver: whatever the console forwards is stored there.
        urls = {f"{name}_url": sink.url for name in SERVICES}
        settings = ConsoleSettings(port=free_port(), issuer_url=issuer.url, session_secret=SECRET, **urls)  # type: ignore[arg-type]
        async with running(create_console(settings), settings) as console:  # type: ignore[arg-type]
            yield {"console": console, "sink": sink, "issuer": issuer}


async def test_admin_calls_are_refused_however_the_path_is_spelt(stack) -> None:
    console, sink = stack["console"], stack["sink"]
    async with httpx.AsyncClient(base_url=console.url, timeout=10) as client:
        assert (await client.post("/auth/login", json={"user": "demo-centre-supervisor"}, headers=CSRF)).status_code == 200
        await sink.client.delete("/messages")
        # A plain path is forwarded: the receiver stores it.
        plain = await client.post("/api/notify/cases/c-1/questionnaire", json={}, headers=CSRF)
        assert plain.status_code == 200, plain.text
        spellings = [
            "/api/notify/admin/webhooks/1/resend", "/api/notify//admin/webhooks/1/resend",
            "/api/notify/%2Fadmin/webhooks/1/resend", "/api/notify/%2fadmin/webhooks/1/resend",
            "/api/notify/./admin/webhooks/1/resend", "/api/notify/%2E/admin/webhooks/1/resend",
            "/api/notify/x/%2E%2E/admin/webhooks/1/resend", "/api/notify/ADMIN/webhooks/1/resend",
            "/api/notify/Admin/webhooks/1/resend", "/api/notify/%252Fadmin/webhooks/1/resend",
            "/api/notify/cases%3F/../admin/webhooks/1/resend", "/api/notify/admin%2Fwebhooks/1/resend",
            "/api/notify/%5Cadmin/webhooks/1/resend",
        ]
        for path in spellings:
            # Sent as written: httpx would otherwise tidy the path before it leaves.
            request = client.build_request("POST", console.url, json={}, headers=CSRF)
            request.url = request.url.copy_with(raw_path=path.encode())
            answer = await client.send(request)
            assert answer.status_code in (400, 403), (path, answer.status_code, answer.text)
            assert answer.headers["content-type"] == "application/problem+json", path
        stored = (await sink.client.get("/messages")).json()["items"]
        assert [m["path"] for m in stored] == ["/api/v1/cases/c-1/questionnaire"], stored


async def test_the_demo_sign_in_says_it_is_development_sign_in(stack) -> None:
    async with httpx.AsyncClient(base_url=stack["console"].url, timeout=10) as client:
        assert (await client.get("/config")).json()["sign_in"] == "development"
        assert (await client.get("/auth/users")).json()["sign_in"] == "development"


async def test_beyond_loopback_the_console_mints_no_tokens(stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """A console listening beyond loopback (AUTH_MODE=jwt, so it may start) or asking an
    issuer that is not on loopback signs nobody in as a demo user."""
    monkeypatch.setenv("AUTH_MODE", "jwt")
    issuer = stack["issuer"].url
    for host, issuer_url in (("0.0.0.0", issuer), ("127.0.0.1", issuer.replace("127.0.0.1", "localhost.invalid"))):
        settings = ConsoleSettings(host=host, port=free_port(), issuer_url=issuer_url, session_secret=SECRET)  # type: ignore[arg-type]
        async with running(create_console(settings), settings) as console, \
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.port}", timeout=10) as client:  # type: ignore[arg-type]  # fmt: skip
            assert console.url
            login = await client.post("/auth/login", json={"user": "demo-centre-supervisor"}, headers=CSRF)
            assert login.status_code == 403 and login.json()["type"].endswith("/sign-in-off"), login.text
            assert "set-cookie" not in login.headers
            assert (await client.get("/auth/users")).status_code == 403
            assert (await client.get("/config")).json()["sign_in"] is None


def test_in_headers_mode_the_console_refuses_to_listen_beyond_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTH_MODE", raising=False)
    monkeypatch.delenv("AUTH_ALLOW_HEADERS_REMOTE", raising=False)
    for host in ("0.0.0.0", "::", "192.168.1.10"):
        with pytest.raises(SystemExit) as stopped:
            create_console(ConsoleSettings(host=host))
        assert "AUTH_MODE=headers" in str(stopped.value), host
    assert create_console(ConsoleSettings(host="127.0.0.1")) is not None
    monkeypatch.setenv("AUTH_ALLOW_HEADERS_REMOTE", "true")
    assert create_console(ConsoleSettings(host="0.0.0.0")) is not None, "a closed trial may"
