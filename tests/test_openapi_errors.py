"""Every service's OpenAPI documents the error answers its operations give (issue #20), as
``application/problem+json`` with the Problem schema — the shape ``shared.problems`` sends,
FastAPI's own validation errors included — so that a fuzzer's "undocumented status" check
can fail on a status a route really should not answer.
"""

from __future__ import annotations

import importlib

import pytest

from services.ops.registry import SERVICES as REGISTRY
from shared.openapi import GUARDS, api_routes
from shared.problems import MEDIA_TYPE

# Every service that builds its app with shared.service (the ops registry names them).
SERVICES = {name: entry.app for name, entry in REGISTRY.items()}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def operations(service: str):
    app = importlib.import_module(SERVICES[service]).create_app()
    schema = app.openapi()
    for route in api_routes(app.routes):
        if not route.include_in_schema:
            continue  # a page (the citizen's), not an operation of the API
        deps = set()
        stack = list(route.dependant.dependencies)
        while stack:
            sub = stack.pop()
            deps.add(getattr(sub.call, "__name__", ""))
            stack += sub.dependencies
        for method in route.methods:
            yield schema, route, method, deps, schema["paths"][route.path][method.lower()]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_error_answer_is_documented_as_a_problem(service):
    checked = 0
    for schema, route, method, deps, operation in operations(service):
        answers = operation["responses"]
        errors = {code: answer for code, answer in answers.items() if int(code) >= 400}
        if route.path.startswith("/open311/"):
            assert "400" in errors and "422" not in errors, f"{method} {route.path}"
            continue
        for code, answer in errors.items():
            assert answer["content"] == {MEDIA_TYPE: {"schema": PROBLEM_REF}}, f"{method} {route.path} {code}"
        if operation.get("parameters") or "requestBody" in operation:
            assert "422" in errors, f"{method} {route.path}"
        if deps & GUARDS:
            assert {"400", "401", "403", "404"} <= errors.keys(), f"{method} {route.path}"
        if method in {"POST", "PUT", "DELETE"}:
            assert "409" in errors, f"{method} {route.path}"
        if "requestBody" in operation:
            assert "413" in errors, f"{method} {route.path}"
        checked += 1
    assert checked >= 5
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert schema["components"]["schemas"]["Problem"]["required"] == ["type", "title", "status", "detail"]


def test_rate_limited_and_json_only_routes_say_so():
    answers = {
        (method, route.path): operation["responses"] for _, route, method, _, operation in operations("intake")
    }
    assert "429" in answers[("POST", "/api/v1/appeals")]
    assert "415" in answers[("POST", "/api/v1/appeals")]  # JSON only
    assert "415" in answers[("POST", "/api/v1/attachments")]  # the type is read from the content
    assert {"201", "400", "429"} <= answers[("POST", "/open311/v2/requests.{fmt}")].keys()
    assert "404" in answers[("GET", "/open311/v2/requests/{request_id}.{fmt}")]
    assert "415" not in answers[("GET", "/api/v1/cases")]
