"""The console's FastAPI app: static pages, sign-in, the forwarding API, the board and its live stream."""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from services.console import board as boards
from services.console.live import LiveHub
from services.console.mapdata import map_data
from services.console.riskmap import area_of_unit, open_warnings, risk_map, task_rows, task_units
from services.console.session import COOKIE, Session, decode_session, encode_session
from services.console.settings import SERVICES, ConsoleSettings
from services.console.upstream import FORWARDED_RESPONSE_HEADERS, Upstreams
from shared.auth import SignInMode, headers_mode_problem
from shared.ports import is_loopback
from shared.problems import Problem, install_problem_handlers, problem_response

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
# A header a cross-site form or <img> cannot send: every state-changing call must carry it (CSRF).
CSRF_HEADER = "X-Console"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def current_session(request: Request) -> Session:
    session = decode_session(request.cookies.get(COOKIE), request.app.state.secret, now=time.time())
    if session is None:
        raise Problem(401, "请先登录 (sign in first)", slug="not-signed-in")
    return session


SessionDep = Annotated[Session, Depends(current_session)]


def require_csrf(request: Request) -> None:
    if request.headers.get(CSRF_HEADER) != "1":
        raise Problem(403, f"missing the {CSRF_HEADER} header that the console's own page sends", slug="csrf")


Csrf = Depends(require_csrf)


def demo_sign_in_problem(settings: ConsoleSettings, auth: SignInMode) -> str | None:
    """Why the demo sign-in (开发环境登录: any demo user, token from the issuer) is off, or None.

    It is development sign-in: it signs anyone in as anyone, so it is served only when both
    the console and the issuer it asks listen on loopback (the development issuer does), or
    in a closed trial that already trusts headers from beyond loopback
    (AUTH_ALLOW_HEADERS_REMOTE=true). A console behind the province's identity provider
    mints no tokens."""
    if auth.allow_headers_remote:
        return None
    issuer_host = urlsplit(settings.issuer_url).hostname or ""
    if is_loopback(settings.host) and is_loopback(issuer_host):
        return None
    return (
        f"development sign-in is served on loopback only (console on {settings.host}, issuer {settings.issuer_url}); "
        "a deployed console needs the identity provider's own sign-in"
    )


def forwarding_problem(path: str) -> Problem | None:
    """Why ``path`` (after /api/<service>/, percent-decoded) is not forwarded, or None.

    The admin filter is decided on the path as the service will read it: a path that
    normalises to something else than it reads (``//admin``, ``%2Fadmin``, ``./admin``,
    ``a/../admin``, a trailing ``/``) or carries characters that change its meaning on the
    way (``?``, ``#``, ``%``, ``\\``, control characters) is refused outright, and any
    spelling of ``admin`` as the first segment is an administration call."""
    segments = path.split("/")
    if any(seg in ("", ".", "..") for seg in segments) or any(c in path for c in "?#%\\") or not path.isprintable():
        return Problem(400, "the console forwards only plain paths (no empty, '.' or '..' segments, no ?, #, % or \\)",
                       slug="not-forwarded")  # fmt: skip
    if segments[0].lower() == "admin":
        return Problem(403, "the console does not forward administration calls", slug="not-forwarded")
    return None


class Login(BaseModel):
    user: str = Field(min_length=1, max_length=128, description="a demo user id from GET /auth/users")


def create_app(settings: ConsoleSettings | None = None, *, transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    settings = settings or ConsoleSettings()
    secret = settings.session_secret.get_secret_value() if settings.session_secret else secrets.token_urlsafe(32)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        timeout = httpx.Timeout(settings.upstream_timeout_seconds)
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=40)
        async with httpx.AsyncClient(timeout=timeout, limits=limits, transport=transport) as client:
            upstreams = Upstreams(settings, client)
            org = boards.OrgCache(upstreams)

            async def collect(session: Session) -> dict[str, Any]:
                return await boards.collect_board(
                    upstreams, org, session, county=settings.county, window_days=settings.board_window_days,
                    max_cases=settings.board_max_cases,
                )  # fmt: skip

            app.state.upstreams, app.state.org = upstreams, org
            app.state.collect = collect
            app.state.hub = LiveHub(collect, settings.poll_seconds)
            try:
                yield
            finally:
                await app.state.hub.close()

    app = FastAPI(
        title="接诉即办 · 指挥中心工作台 (console)", version="1.0", lifespan=lifespan,
        description="The command-centre console: pages for centre staff, reading the services' public APIs as the signed-in user.",
    )  # fmt: skip
    # Headers mode: the services behind it trust the X-Actor-* headers it forwards, so it
    # refuses to listen beyond loopback exactly as they do (shared.auth).
    auth = SignInMode()
    refusal = headers_mode_problem(auth, settings.host)
    if refusal:
        raise SystemExit(f"console: {refusal}")
    sign_in_off = demo_sign_in_problem(settings, auth)
    install_problem_handlers(app)
    app.state.settings = settings
    app.state.secret = secret

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    # ------------------------------------------------------------------ pages

    @app.get("/health", include_in_schema=False)
    @app.get("/ready", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": "console"}

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/config", summary="What the page needs to know about this console")
    async def config() -> dict[str, Any]:
        return {"county": settings.county, "poll_seconds": settings.poll_seconds, "services": list(SERVICES),
                "sign_in": None if sign_in_off else "development"}  # fmt: skip

    # ------------------------------------------------------------------ sign-in

    def require_demo_sign_in() -> None:
        if sign_in_off:
            raise Problem(403, sign_in_off, slug="sign-in-off")

    @app.get("/auth/users", summary="The demo users to sign in as (from the issuer), by role; development sign-in only")
    async def users(request: Request) -> dict[str, Any]:
        require_demo_sign_in()
        got = await request.app.state.upstreams.issuer_users()
        if not got.ok:
            raise Problem(502, f"登录服务不可用: {got.error}", slug="upstream-unavailable", service="issuer")
        roles = {role: people for role, people in got.body.get("roles", {}).items() if role not in ("citizen", "system")}
        return {"sign_in": "development", "roles": roles}

    @app.post("/auth/login", summary="Sign in as a demo user: a token from the issuer, kept in a signed cookie",
              dependencies=[Csrf])  # fmt: skip
    async def login(body: Login, request: Request) -> JSONResponse:
        require_demo_sign_in()
        try:
            status, answer = await request.app.state.upstreams.issuer_token(body.user)
        except httpx.HTTPError as exc:
            raise Problem(502, f"登录服务不可用 (issuer: {type(exc).__name__})", slug="upstream-unavailable", service="issuer") from None
        if status != 200:
            return JSONResponse(answer, status_code=status, media_type="application/problem+json")
        who = answer["user"]
        expires_at = int(time.time()) + int(answer["expires_in"])
        session = Session(user_id=who["id"], name=who.get("name") or who["id"], role=who["role"], unit=who.get("unit"),
                          token=answer["access_token"], expires_at=expires_at)  # fmt: skip
        response = JSONResponse({"user": session.public()})
        response.set_cookie(
            COOKIE, encode_session(session, secret), max_age=int(answer["expires_in"]), httponly=True,
            samesite="strict", secure=settings.cookie_secure, path="/",
        )  # fmt: skip
        log.info("console sign-in: %s as %s", session.user_id, session.role)
        return response

    @app.post("/auth/logout", summary="Sign out", dependencies=[Csrf])
    async def logout() -> JSONResponse:
        response = JSONResponse({"signed_out": True})
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=settings.cookie_secure)
        return response

    @app.get("/auth/me", summary="The signed-in user")
    async def me(session: SessionDep) -> dict[str, Any]:
        return {"user": session.public()}

    # ------------------------------------------------------------------ board, live stream, map

    @app.get("/board", summary="The board snapshot now (the same document /live pushes)")
    async def board(session: SessionDep, request: Request) -> dict[str, Any]:
        return await request.app.state.collect(session)

    @app.get("/live", summary="Server-sent events: a board snapshot whenever it changes", response_class=StreamingResponse)
    async def live(session: SessionDep, request: Request) -> StreamingResponse:
        return StreamingResponse(
            request.app.state.hub.stream(session), media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )  # fmt: skip

    @app.get("/map", summary="Open cases as points, with the county's township and village outlines")
    async def map_view(session: SessionDep, request: Request) -> dict[str, Any]:
        units, org_error = await request.app.state.org.units()
        since = boards.day_start(datetime.now(UTC)) - timedelta(days=settings.board_window_days - 1)
        cases = await boards.all_cases(request.app.state.upstreams, session, since=since, max_cases=settings.board_max_cases)
        doc = map_data(units, cases.body if cases.ok else [], settings.county)
        doc["sources"] = {k: v for k, v in (("directory", org_error), ("intake", cases.error)) if v}
        return doc

    @app.get("/risk", summary="风险研判: the findings of the user's area on a schematic map (民情地图), as insight answers the user")
    async def risk_view(session: SessionDep, request: Request) -> dict[str, Any]:
        units, org_error = await request.app.state.org.units()
        # Findings of the board's window (Beijing days), so an old warning does not stay lit for ever.
        since = datetime.now(boards.BEIJING).date() - timedelta(days=settings.board_window_days - 1)
        found = await request.app.state.upstreams.get_json("insight", "findings", session, {"since": since.isoformat(), "limit": 500})
        items = found.body.get("items", []) if found.ok else []
        # The warnings the user may read (insight scopes them), with what the user may do to each.
        warned = await request.app.state.upstreams.get_json("insight", "warnings", session, {"limit": 500})
        # 自上而下的任务 the user may read (insight scopes them), cut to the items the user works or oversees.
        sent = await request.app.state.upstreams.get_json("insight", "tasks", session, {"limit": 50})
        root = area_of_unit({u["code"]: u for u in units}, session.unit, settings.county)
        doc = {"since": since.isoformat(), "map": risk_map(units, items, root), "findings": items,
               "warnings": open_warnings(warned.body.get("items", []) if warned.ok else [], units),
               "tasks": task_rows(sent.body.get("items", []) if sent.ok else [], units, root),
               # 下派任务 is the centre's: the units of its area it may send an item to (insight checks again).
               "task_units": task_units(units, root) if session.is_centre else []}  # fmt: skip
        doc["sources"] = {k: v for k, v in (("directory", org_error), ("insight", found.error or warned.error or sent.error)) if v}
        return doc

    # ------------------------------------------------------------------ the services' APIs, as the user

    async def forward(service: str, path: str, request: Request, session: Session) -> Response:
        if service not in SERVICES:
            raise Problem(404, f"no service {service!r}; one of: {', '.join(SERVICES)}", slug="unknown-service")
        refused = forwarding_problem(path)
        if refused is not None:
            raise refused
        try:
            answer = await request.app.state.upstreams.forward(
                service, path, method=request.method, query=request.url.query, body=await request.body(),
                headers=dict(request.headers), session=session,
            )  # fmt: skip
        except httpx.HTTPError as exc:
            return problem_response(
                502, f"{service} 服务暂不可用 ({type(exc).__name__})", slug="upstream-unavailable",
                instance=request.url.path, service=service,
            )  # fmt: skip
        headers = {k: v for k, v in answer.headers.items() if k.lower() in FORWARDED_RESPONSE_HEADERS}
        return Response(answer.content, status_code=answer.status_code, headers=headers)

    @app.get("/api/{service}/{path:path}", summary="GET a service's /api/v1/{path} as the signed-in user")
    async def forward_get(service: str, path: str, request: Request, session: SessionDep) -> Response:
        return await forward(service, path, request, session)

    @app.post("/api/{service}/{path:path}", summary="POST to a service's /api/v1/{path} as the signed-in user",
              dependencies=[Csrf])  # fmt: skip
    async def forward_post(service: str, path: str, request: Request, session: SessionDep) -> Response:
        return await forward(service, path, request, session)

    return app
