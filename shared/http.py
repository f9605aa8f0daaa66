"""Request guards every service uses: body size (413) and content type (415)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.problems import Problem, problem_response


class BodySizeLimit:
    """Refuse bodies over ``max_bytes`` with 413 — by Content-Length up front, and by
    counting when the client streams without one."""

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

        async def counting_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise Problem(413, f"request body over {limit} bytes")
            return message

        await self.app(scope, counting_receive, send)


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
