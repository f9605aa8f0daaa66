"""Request guards every service uses: body size (413), body read time (408) and content type (415)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.problems import Problem, problem_response


class _BodyRefused(Exception):
    """Raised from ``receive`` when the request body breaks a limit (size, read time)."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


async def _serve_refusing(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Run ``app`` with a ``receive`` that may raise ``_BodyRefused``, and answer the refusal.

    The app cannot be trusted to pass the refusal on: FastAPI turns any error while it reads
    the body into its own 400 ("error parsing the body"), a route may catch it. So once the
    body is refused, whatever the app answers is dropped and the refusal is the answer."""
    refusal: _BodyRefused | None = None
    started = False

    async def watched_receive() -> Message:
        nonlocal refusal
        try:
            return await receive()
        except _BodyRefused as exc:
            refusal = exc
            raise

    async def guarded_send(message: Message) -> None:
        nonlocal started
        if refusal is not None and not started:
            return  # the app's answer to a body it could not read; ours follows
        started = True
        await send(message)

    try:
        await app(scope, watched_receive, guarded_send)
    except Exception:
        if refusal is None:
            raise
    if refusal is not None and not started:
        await problem_response(refusal.status, refusal.detail, instance=scope.get("path"), headers=refusal.headers)(
            scope, receive, send
        )


class BodySizeLimit:
    """Refuse bodies over ``max_bytes`` with 413 — by Content-Length up front, and by
    counting when the client streams without one (chunked): reading stops at the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int, per_path: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Exact paths allowed a different limit (an upload endpoint takes more than JSON does).
        self.per_path = dict(per_path or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope.get("path", ""), self.max_bytes)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await problem_response(413, f"request body over {limit} bytes")(scope, receive, send)
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyRefused(413, f"request body over {limit} bytes")
            return message

        await _serve_refusing(self.app, scope, counting_receive, send)


def body_deadline(started: float, received: int, timeout: float, min_rate: float) -> float:
    """When the rest of a request body must have arrived (monotonic seconds): ``timeout``
    after the first read, one second more for every ``min_rate`` bytes received — a large
    upload on a slow link keeps going, a client dripping a byte now and then does not."""
    return started + timeout + received / min_rate


class BodyReadTimeout:
    """408 when a client sends its request body too slowly (see ``body_deadline``): a slow
    client must not hold a connection and a request task for ever."""

    def __init__(self, app: ASGIApp, timeout: float, min_rate: float) -> None:
        self.app = app
        self.timeout = timeout
        self.min_rate = min_rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started: float | None = None
        received = 0
        complete = False

        async def timed_receive() -> Message:
            nonlocal started, received, complete
            if complete:
                return await receive()  # after the body: waiting for a disconnect is not a slow body
            loop = asyncio.get_running_loop()
            if started is None:
                started = loop.time()
            deadline = body_deadline(started, received, self.timeout, self.min_rate)
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                # No "Connection: close": closing at once, while the client still sends,
                # resets the connection and may destroy this answer before it is read. The
                # server drains the rest for a bounded time instead (shared/server.py).
                raise _BodyRefused(
                    408, f"the request body did not arrive in time ({received} bytes in {loop.time() - started:.0f} s)"
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
            else:
                complete = True
            return message

        await _serve_refusing(self.app, scope, timed_receive, send)


# Bounds of PostgreSQL's integer columns: a number past them in a path or query is a 422
# at the edge, not a 500 from the database.
PG_INT_MAX = 2**31 - 1
PG_BIGINT_MAX = 2**63 - 1


async def require_json(request: Request) -> None:
    """415 unless the body is declared as JSON; 422 when a text holds a NUL character, which
    no PostgreSQL text column can store (and no person types)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise Problem(415, f"send application/json, not {content_type or 'no content type'}")
    body = await request.body()
    if b"\\u0000" in body:
        with contextlib.suppress(ValueError):
            if _holds_nul(json.loads(body)):
                raise Problem(422, "text may not contain NUL characters (\\u0000)", slug="validation")


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


# Paths that serve the interactive API docs (Swagger UI loads its script and styles from a CDN).
_DOCS_PATHS = ("/docs", "/redoc", "/openapi.json")

_ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-site"),
)
# An API answer is data, never a page: nothing in it may run, nothing may frame it.
_API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")


class SecurityHeaders:
    """Security headers on every response; ``Cache-Control: no-store`` unless the route set
    its own (answers carry personal data: no shared cache may keep them)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_docs = scope.get("path", "").startswith(_DOCS_PATHS)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {name.lower() for name, _ in headers}
                extra = [h for h in _ALWAYS if h[0] not in present]
                if not is_docs and _API_CSP[0] not in present:
                    extra.append(_API_CSP)
                if b"cache-control" not in present:
                    extra.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers + extra}
            await send(message)

        await self.app(scope, receive, with_headers)
