"""RFC 9457 problem details: every error a client sees is ``application/problem+json``.

A stable ``type`` URI per kind of problem, a Chinese/English ``title``, and for validation
errors the list of fields with what is wrong — never a stack trace. Use cases raise the
domain errors of ``shared.errors``; ``DOMAIN_STATUSES`` below is the one place that turns
them into answers. ``Problem`` is for the edge itself (guards, parsing a request).
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.errors import Conflict, DomainError, Expired, Forbidden, Invalid, NotFound, PreconditionFailed, Unavailable
from shared.outage import RETRY_AFTER_SECONDS, DatabaseOutage, database_unavailable

log = logging.getLogger(__name__)

# Errors a database outage surfaces as (SQLAlchemy's wrapping, raw asyncpg, a refused socket).
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.DBAPIError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, ConnectionError,
)

PROBLEM_BASE = "https://jiesu.example.cn/problems/"
MEDIA_TYPE = "application/problem+json"

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Validation failed",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}
_SLUGS = {
    400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found",
    405: "method-not-allowed", 408: "request-timeout", 409: "conflict", 413: "payload-too-large",
    415: "unsupported-media-type", 422: "validation", 429: "rate-limited",
    500: "internal", 503: "unavailable",
}  # fmt: skip


# The one mapping from the services' domain errors (shared.errors) to HTTP statuses.
DOMAIN_STATUSES: dict[type[DomainError], int] = {
    NotFound: 404, Forbidden: 403, Invalid: 422, Conflict: 409, Expired: 410, PreconditionFailed: 412, Unavailable: 503,
}


def domain_status(exc: DomainError) -> int:
    """The status a domain error answers with: its nearest kind's (a bare DomainError: 400)."""
    for kind in type(exc).__mro__:
        if kind in DOMAIN_STATUSES:
            return DOMAIN_STATUSES[kind]
    return 400


class Problem(Exception):
    """Raise at the edge (a guard, a route parsing its request) to answer with a problem
    document; a use case raises a ``shared.errors`` domain error instead."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug or _SLUGS.get(status, "error")
        self.title = title or _TITLES.get(status, "Error")
        self.headers = headers
        self.extra = extra


def problem_response(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (slug or _SLUGS.get(status, "error")),
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        where = loc[0] if loc else "body"
        name = ".".join(loc[1:]) if len(loc) > 1 else where
        out.append({"field": name, "in": where, "message": err.get("msg", "invalid"), "code": err.get("type")})
    return out


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            exc.status, exc.detail, slug=exc.slug, title=exc.title, instance=request.url.path,
            headers=exc.headers, **exc.extra,
        )

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        # A failed If-Match also says, as the ETag, which version is current.
        current = exc.facts.get("current_version") if isinstance(exc, PreconditionFailed) else None
        headers = {"ETag": f'"{current}"'} if current is not None else None
        return problem_response(
            domain_status(exc), exc.detail, slug=exc.code, instance=request.url.path, headers=headers, **exc.facts
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _field_errors(exc)
        fields = ", ".join(e["field"] for e in errors)
        return problem_response(
            422, f"invalid request: {fields}", instance=request.url.path, errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
        return problem_response(
            exc.status_code, detail, instance=request.url.path, headers=getattr(exc, "headers", None)
        )

    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if database_unavailable(exc):
            outage(request).failed(exc)  # logs the first of an outage only
            return problem_response(
                503, "the database is unavailable; try again shortly", slug="database-unavailable",
                instance=request.url.path, headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(500, "an unexpected error occurred; it has been logged", instance=request.url.path)

    # The database's errors are handled by class, inside the app, so that an outage is
    # answered without Starlette's catch-all re-raising it to the server's log each time;
    # anything else still reaches the catch-all below.
    for kind in DATABASE_ERRORS:
        app.add_exception_handler(kind, _unexpected)
    app.add_exception_handler(Exception, _unexpected)


def outage(request: Request) -> DatabaseOutage:
    """The app's database outage state (``app.state.db_outage``, made on first use)."""
    state = request.app.state
    if getattr(state, "db_outage", None) is None:
        state.db_outage = DatabaseOutage(getattr(getattr(state, "spec", None), "name", request.app.title))
    return state.db_outage
