"""The console backend against real services: sign-in through the issuer, the session cookie,
calls forwarded as the signed-in user (dispatch here verifies the Bearer token: AUTH_MODE=jwt),
problem+json passed through, the CSRF guard, the board and its live stream."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from dispatch.app import create_app as create_dispatch
from dispatch.settings import DispatchSettings
from intake.app import create_app as create_intake
from intake.settings import IntakeSettings
from services.console.app import create_app as create_console
from services.console.settings import ConsoleSettings
from services.dev.issuer.app import create_app as create_issuer
from services.dev.issuer.settings import IssuerSettings
from shared.auth import TokenVerifier
from shared.testing import Infra, eventually, free_port, running, service_settings, unique

CSRF = {"X-Console": "1"}
DEAD = "http://127.0.0.1:9"  # nothing listens there: the board must say so, not fail


@pytest.fixture(scope="module")
async def stack(infra: Infra, tmp_path_factory):
    topic = unique("lifecycle")
    issuer_settings = IssuerSettings(port=free_port())
    async with running(create_issuer(issuer_settings), issuer_settings) as issuer:  # type: ignore[arg-type]
        intake_settings = service_settings(
            IntakeSettings, infra, topic=topic, database=unique("intake"), org_topic=unique("org"),
            attachment_dir=tmp_path_factory.mktemp("attachments"),
        )  # fmt: skip
        dispatch_settings = service_settings(DispatchSettings, infra, topic=topic, database=unique("dispatch"), org_topic=unique("org"))
        dispatch_app = create_dispatch(dispatch_settings)
        # Signed-in mode for dispatch: only a valid Bearer token from the issuer counts.
        dispatch_app.state.token_verifier = TokenVerifier(
            f"{issuer.url}/.well-known/jwks.json", issuer=issuer.url, audience="jiesu"
        )
        async with running(create_intake(intake_settings), intake_settings) as intake, running(dispatch_app, dispatch_settings) as dispatch:
            settings = ConsoleSettings(
                port=free_port(), intake_url=intake.url, dispatch_url=dispatch.url, sla_url=DEAD, scoring_url=DEAD,
                notify_url=DEAD, directory_url=DEAD, issuer_url=issuer.url, poll_seconds=0.2,
                session_secret="a test secret that is long enough!!",  # type: ignore[arg-type]
            )  # fmt: skip
            async with running(create_console(settings), settings) as console:  # type: ignore[arg-type]
                yield {"console": console, "intake": intake, "dispatch": dispatch}


async def signed_in(console, user: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=console.url, timeout=30)
    answer = await client.post("/auth/login", json={"user": user}, headers=CSRF)
    assert answer.status_code == 200, answer.text
    return client


async def test_sign_in_sets_an_httponly_signed_cookie_and_never_shows_the_token(stack) -> None:
    console = stack["console"]
    async with httpx.AsyncClient(base_url=console.url) as client:
        users = (await client.get("/auth/users")).json()["roles"]
        assert "centre_dispatcher" in users and "citizen" not in users
        refused = await client.post("/auth/login", json={"user": "demo-centre-dispatcher"})
        assert refused.status_code == 403 and refused.json()["type"].endswith("/csrf")
        unknown = await client.post("/auth/login", json={"user": "nobody"}, headers=CSRF)
        assert unknown.status_code == 404 and "nobody" in unknown.json()["detail"], "the issuer's problem, passed on"
        assert (await client.get("/auth/me")).status_code == 401

        answer = await client.post("/auth/login", json={"user": "demo-centre-dispatcher"}, headers=CSRF)
        assert answer.status_code == 200
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        me = (await client.get("/auth/me")).json()["user"]
        assert me == {**me, "id": "demo-centre-dispatcher", "role": "centre_dispatcher", "unit": "LB-XC-ZZZX", "centre": True}
        assert "token" not in json.dumps(me)
        assert (await client.post("/auth/logout", headers=CSRF)).status_code == 200
        assert (await client.get("/auth/me")).status_code == 401


async def test_calls_go_to_the_services_as_the_signed_in_user(stack) -> None:
    console = stack["console"]
    async with httpx.AsyncClient(base_url=console.url) as anonymous:
        answer = await anonymous.get("/api/dispatch/board")
        assert answer.status_code == 401 and answer.headers["content-type"] == "application/problem+json"
    dispatcher = await signed_in(console, "demo-centre-dispatcher")
    clerk = await signed_in(console, "demo-dept-clerk")
    try:
        assert (await dispatcher.get("/api/dispatch/board")).status_code == 200
        refused = await clerk.get("/api/dispatch/board")
        assert refused.status_code == 403, "dispatch read the clerk's token and refused"
        assert refused.headers["content-type"] == "application/problem+json" and "centre" in refused.json()["detail"]
        assert (await clerk.get("/api/nosuch/thing")).status_code == 404
        assert (await dispatcher.get("/api/scoring/admin/rebuild")).status_code == 403, "no admin calls through the console"
        assert (await dispatcher.get("/api/sla/board")).status_code == 502, "an unreachable service is a 502 problem"

        # An appeal nobody's catalogue can place waits for the dispatcher, who sends it to 住建局 through the console.
        filed = await stack["intake"].client.post("/api/v1/appeals", json={
            "title": "反映情况", "description": "有事情需要政府帮忙协调", "channel": "app",
            "contact": {"name": "张三", "phone": "13800001234"},
        })  # fmt: skip
        assert filed.status_code == 201, filed.text
        case_id = filed.json()["case_id"]

        async def waiting():
            board = (await dispatcher.get("/api/dispatch/board")).json()
            return case_id in [c["case_id"] for c in board["unassigned"]]

        await eventually(waiting, timeout=30, what="the case on the dispatcher's board")
        body = {"unit": "LB-XC-ZJJ", "instructions": "请核实处理"}
        assert (await dispatcher.post(f"/api/dispatch/cases/{case_id}/dispatch", json=body)).status_code == 403, "no CSRF header"
        wrong = await clerk.post(f"/api/dispatch/cases/{case_id}/dispatch", json=body, headers=CSRF)
        assert wrong.status_code == 403 and wrong.json()["role"] == "dept_clerk"
        sent = await dispatcher.post(f"/api/dispatch/cases/{case_id}/dispatch", json=body, headers=CSRF)
        assert sent.status_code == 201, sent.text
        order_no = sent.json()["order_no"]
        stale = await clerk.post(f"/api/dispatch/orders/{order_no}/sign", json={}, headers={**CSRF, "If-Match": "99"})
        assert stale.status_code == 409, "If-Match is passed on"
        signed = await clerk.post(f"/api/dispatch/orders/{order_no}/sign", json={}, headers=CSRF)
        assert signed.status_code == 200, signed.text
        order = (await clerk.get(f"/api/dispatch/orders/{order_no}")).json()
        assert order["state"] == "signed" and order["history"][-1]["actor"] == "demo-dept-clerk"
        again = await clerk.post(f"/api/dispatch/orders/{order_no}/sign", json={}, headers=CSRF)
        assert again.status_code == 409 and "allowed_actions" in again.json(), "the service's rule, shown as it said it"
        view = (await dispatcher.get(f"/api/intake/appeals/{case_id}")).json()
        assert view["contact_phone"] != "13800001234", "the console shows only what intake shows: masked"
    finally:
        await dispatcher.aclose()
        await clerk.aclose()


async def test_the_board_and_its_live_stream_say_what_they_could_not_read(stack) -> None:
    dispatcher = await signed_in(stack["console"], "demo-centre-dispatcher")
    try:
        started = time.perf_counter()
        for _ in range(10):
            board = (await dispatcher.get("/board")).json()
        print(f"\nconsole: GET /board took {(time.perf_counter() - started) * 100:.0f} ms on average (10 calls)")
        assert set(board["totals"]) == {"received_today", "in_progress", "due_soon", "overdue", "closed", "waiting_dispatch", "returned"}
        assert "sla" in board["sources"] and "directory" in board["sources"], board["sources"]
        assert board["totals"]["received_today"] >= 1, "the appeal filed above, from intake's case list"
        assert any(c["title"] == "反映情况" for c in board["recent"])
        async with dispatcher.stream("GET", "/live") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = (line async for line in stream.aiter_lines() if line)
            assert await anext(lines) == "retry: 3000"
            event = [await anext(lines) for _ in range(3)]
        assert event[0] == "id: 1" and event[1] == "event: board"
        snapshot = json.loads(event[2].removeprefix("data: "))
        assert snapshot["county"] == "LB-XC" and "totals" in snapshot
    finally:
        await dispatcher.aclose()


async def test_a_grid_worker_works_their_grid_through_the_console(stack) -> None:
    """网格职责 page: the worker's own grid's month and register, a visit logged from it; the
    community's (城中社区) staff read it too; another grid's worker reads nothing of it."""
    intake, console = stack["intake"], stack["console"]
    grid, month = "LB-XC-CG-CZ-G01", "2026-10"
    community = {"X-Actor-Id": "demo-village-staff-cz", "X-Actor-Role": "village_staff", "X-Actor-Unit": "LB-XC-CG-CZ"}
    put = await intake.client.put("/api/v1/grid/register/CZ-H01", json={"grid": grid, "difficult": True, "organiser_id": "org-1",
                                  "effective_at": "2026-10-01T00:00:00+08:00"},  # on the register all October
                                  headers=community)  # fmt: skip
    assert put.status_code == 200, put.text
    worker = await signed_in(console, "demo-grid-worker-cz")
    staff = await signed_in(console, "demo-village-staff-cz")
    other = await signed_in(console, "demo-grid-worker")  # 覃某 of 城东社区: a neighbouring village's grid worker
    try:
        visit = {"household_ref": "CZ-H01", "visited_at": "2026-10-09T10:00:00+08:00"}
        assert (await worker.post("/api/intake/grid/visits", json=visit)).status_code == 403, "no CSRF header"
        assert (await worker.post("/api/intake/grid/visits", json=visit, headers=CSRF)).status_code == 201
        for reader in (worker, staff):
            duties = await reader.get("/api/intake/grid/duties", params={"grid": grid, "month": month})
            assert duties.status_code == 200, duties.text
            assert duties.json()["flagged_households"][0]["visits"] == 1 and duties.json()["visits_missed"] == []
            register = (await reader.get("/api/intake/grid/register", params={"grid": grid})).json()
            assert register["organisers"] == [{"organiser_id": "org-1", "households": 1}]
        assert (await other.get("/api/intake/grid/duties", params={"grid": grid, "month": month})).status_code == 404
        page = await worker.get("/static/js/grid.js")
        assert page.status_code == 200 and "grid/duties" in page.text
    finally:
        for client in (worker, staff, other):
            await client.aclose()
