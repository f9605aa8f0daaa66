"""Every service's OpenAPI says which errors each operation can answer, and in what shape.

The error answers are the problem documents of ``shared.problems`` (``application/problem+json``),
Open311's routes excepted (their errors are the spec's list, ``[{"code", "description"}]``).
Which statuses an operation documents is read from the route itself, once for every service:

- 422: any parameter or body (FastAPI's validation errors are rendered as problems too);
- 400, 401, 403, 404: a route behind an identity check (400 is an unknown role or a cursor
  or ``If-Match`` this API never gave out; 401 no or a bad sign-in; 403 a role or scope that
  may not; 404 what the caller may not see, answered like what does not exist);
- 404: a path parameter names something;  400: a ``cursor`` parameter;  412: an ``If-Match``
  header (a stale version);  403: a one-time ``token`` that is the credential;
- 400, 413 and 422 for a body, 415 where the body must be JSON (``require_json``) or is an upload;
- 409: an action (POST, PUT, PATCH, DELETE) that can meet a state that does not allow it;
- anything the route declares itself with ``responses=`` (429 where it is rate-limited).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from shared.problems import _TITLES, MEDIA_TYPE

#: Dependencies that check who calls (see tests/test_route_guards.py).
GUARDS = frozenset({"current_actor", "signed_client", "appeal_reader", "signed_gateway"})
ACTIONS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: For a route to declare that it is rate-limited: ``@router.post(..., responses=RATE_LIMITED)``.
RATE_LIMITED: dict[int | str, dict[str, Any]] = {429: {"description": "Too many requests; `Retry-After` says when to try again"}}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "a stable URI per kind of problem"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "description": "what is wrong, for a person"},
        "instance": {"type": "string"},
        "field": {"type": "string", "description": "the field at fault, when there is one"},
        "errors": {
            "type": "array",
            "description": "validation: each field with what is wrong",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "in": {"type": "string", "description": "path, query, header or body"},
                    "message": {"type": "string"},
                    "code": {"type": ["string", "null"]},
                },
            },
        },
    },
    "additionalProperties": True,
}
OPEN311_ERRORS_SCHEMA: dict[str, Any] = {
    "title": "Open311Errors",
    "description": "Open311 GeoReport v2 errors",
    "type": "array",
    "items": {
        "type": "object",
        "required": ["code", "description"],
        "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
    },
}
_OPEN311_PREFIX = "/open311/"


def api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, also inside routers FastAPI includes lazily."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from api_routes(route.original_router.routes)


def _dependency_names(dependant: Any) -> set[str]:
    names: set[str] = set()
    for sub in dependant.dependencies:
        names.add(getattr(sub.call, "__name__", ""))
        names |= _dependency_names(sub)
    return names


def _params(dependant: Any, kind: str) -> list[Any]:
    found = list(getattr(dependant, kind))
    for sub in dependant.dependencies:
        found += _params(sub, kind)
    return found


def error_statuses(route: APIRoute, method: str) -> set[int]:
    """The error statuses an operation can answer, from what the route is made of."""
    deps = _dependency_names(route.dependant)
    path_params = _params(route.dependant, "path_params")
    query_params = _params(route.dependant, "query_params")
    header_params = _params(route.dependant, "header_params")
    has_body = route.body_field is not None
    statuses: set[int] = set()
    if path_params or query_params or header_params or has_body:
        statuses.add(422)
    if deps & GUARDS:
        statuses |= {400, 401, 403, 404, 422}
    if path_params:
        statuses.add(404)
    if any(p.alias == "cursor" for p in query_params):
        statuses.add(400)
    if any(p.alias.lower() == "if-match" for p in header_params):
        statuses.add(412)  # the version read is no longer the current one
    if _carries_token(route, query_params):
        statuses.add(403)  # a one-time link's token is the credential: a wrong one is refused
    if has_body:
        statuses |= {400, 413, 422}
        if "require_json" in deps or _is_upload(route):
            statuses.add(415)
    if method in ACTIONS:
        statuses.add(409)
    return statuses


def _carries_token(route: APIRoute, query_params: list[Any]) -> bool:
    if any(p.alias == "token" for p in query_params):
        return True
    model = route.body_field.field_info.annotation if route.body_field else None
    return "token" in getattr(model, "model_fields", {})


def _is_upload(route: APIRoute) -> bool:
    schema_extra = getattr(route.body_field.field_info, "media_type", "") if route.body_field else ""
    return schema_extra == "multipart/form-data"


def _problem_answer(status: int, existing: dict[str, Any] | None) -> dict[str, Any]:
    description = (existing or {}).get("description") or _TITLES.get(status, "Error")
    if status == 422 and description == "Validation Error":
        description = _TITLES[422]
    return {"description": description, "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def _open311_answer(status: int, existing: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "description": (existing or {}).get("description") or _TITLES.get(status, "Error"),
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Open311Errors"}},
            "text/xml": {"schema": {"type": "string"}},
        },
    }


def _open311_statuses(route: APIRoute) -> set[int]:
    statuses = {400}  # the spec's answer to every invalid request
    if any(p.name != "fmt" for p in _params(route.dependant, "path_params")):
        statuses.add(404)  # a service code, request id or token that is not there
    return statuses


def document_errors(schema: dict[str, Any], routes: Iterable[APIRoute]) -> dict[str, Any]:
    """Add each operation's error answers to an OpenAPI document (in place; returned)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    for route in routes:
        if not route.include_in_schema:
            continue
        open311 = route.path.startswith(_OPEN311_PREFIX)
        for method in route.methods:
            operation = schema.get("paths", {}).get(route.path, {}).get(method.lower())
            if operation is None:
                continue
            answers = operation.setdefault("responses", {})
            declared = {int(code) for code in answers if str(code).isdigit() and int(code) >= 400}
            if open311:
                components["Open311Errors"] = OPEN311_ERRORS_SCHEMA
                answers.pop("422", None)  # Open311 answers validation errors as its 400
                for status in sorted((declared - {422}) | _open311_statuses(route)):
                    answers[str(status)] = _open311_answer(status, answers.get(str(status)))
                # Over the body limit the shared guard answers before Open311's code runs.
                if route.body_field is not None:
                    answers["413"] = _problem_answer(413, None)
                continue
            for status in sorted(declared | error_statuses(route, method)):
                answers[str(status)] = _problem_answer(status, answers.get(str(status)))
    _drop_unused(schema, ("HTTPValidationError", "ValidationError"))
    return schema


def _drop_unused(schema: dict[str, Any], names: tuple[str, ...]) -> None:
    components = schema.get("components", {}).get("schemas", {})
    for name in names:
        if name in components:
            rest = {k: v for k, v in components.items() if k != name}
            if f'"#/components/schemas/{name}"' not in json.dumps({"paths": schema.get("paths"), "schemas": rest}):
                del components[name]


def install_error_docs(app: FastAPI) -> None:
    """Make ``app.openapi()`` document every operation's error answers."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, openapi_version=app.openapi_version,
                description=app.description, routes=app.routes,
            )  # fmt: skip
            app.openapi_schema = document_errors(schema, api_routes(app.routes))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
