"""Domain errors are mapped at the edge, in one place: a use case raises ``shared.errors``
(no HTTP), and the shared app answers with the problem document a client always had."""

from __future__ import annotations

import ast
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from shared.errors import (
    Conflict, DomainError, Expired, Forbidden, Invalid, NotFound, PreconditionFailed, StaleVersion, Unavailable, WrongState,
)  # fmt: skip
from shared.problems import MEDIA_TYPE, PROBLEM_BASE, install_problem_handlers

ROOT = Path(__file__).resolve().parents[2]

RAISED: dict[str, DomainError] = {
    "missing": NotFound("no order BJ-1"),
    "forbidden": Forbidden("a auditor may not sign order BJ-1", code="forbidden", role="auditor", state="dispatched",
                           allowed_actions=[]),  # fmt: skip
    "invalid": Invalid("no unit X in the organisation directory", field="unit", unit="X"),
    "already": Conflict("X already holds an order for case C", code="already-dispatched"),
    "state": WrongState("cannot resume an order that is signed", state="signed", allowed_actions=["suspend"]),
    "refused": WrongState("past the return window", code="return-window-closed", state="signed", allowed_actions=["resolve"]),
    "no-actions": WrongState("case C is closed; nothing to call for", state="closed"),
    "stale": StaleVersion("order BJ-1 was changed by someone else; reload it", version=3),
    "expired": Expired("this rating link has expired", code="rating-token-expired", field="token"),
    "precondition": PreconditionFailed("the directory is at version 5, not 4", current_version=5, expected_version=4),
    "empty": Unavailable("the organisation directory has no version yet", code="directory-empty"),
    "several": Invalid("the answers do not fit the questionnaire", field=None,
                       errors=[{"field": "answers.overall", "message": "required"}]),  # fmt: skip
}


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/raise/{name}")
    async def raise_(name: str) -> None:
        raise RAISED[name]

    return app


async def _post(name: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://t") as client:
        return await client.post(f"/raise/{name}")


@pytest.mark.parametrize(
    ("name", "status", "body"),
    [
        ("missing", 404, {"type": PROBLEM_BASE + "not-found", "title": "Not found", "detail": "no order BJ-1"}),
        ("forbidden", 403, {"type": PROBLEM_BASE + "forbidden", "title": "Forbidden", "role": "auditor", "state": "dispatched",
                            "allowed_actions": []}),  # fmt: skip
        ("invalid", 422, {"type": PROBLEM_BASE + "validation", "title": "Validation failed", "field": "unit", "unit": "X"}),
        ("already", 409, {"type": PROBLEM_BASE + "already-dispatched", "title": "Conflict"}),
        ("state", 409, {"type": PROBLEM_BASE + "invalid-state", "state": "signed", "allowed_actions": ["suspend"]}),
        ("refused", 409, {"type": PROBLEM_BASE + "return-window-closed", "state": "signed", "allowed_actions": ["resolve"]}),
        ("no-actions", 409, {"type": PROBLEM_BASE + "invalid-state", "state": "closed"}),
        ("stale", 409, {"type": PROBLEM_BASE + "stale-version", "version": 3}),
        ("expired", 410, {"type": PROBLEM_BASE + "rating-token-expired", "title": "Error", "field": "token"}),
        ("precondition", 412, {"type": PROBLEM_BASE + "stale-version", "current_version": 5, "expected_version": 4}),
        ("empty", 503, {"type": PROBLEM_BASE + "directory-empty", "title": "Service unavailable"}),
        ("several", 422, {"type": PROBLEM_BASE + "validation", "errors": [{"field": "answers.overall", "message": "required"}]}),
    ],
)
async def test_each_kind_answers_with_its_status_type_and_facts(name, status, body):
    response = await _post(name)
    assert response.status_code == status
    assert response.headers["content-type"] == MEDIA_TYPE
    got = response.json()
    assert got["status"] == status and got["instance"] == f"/raise/{name}" and got["detail"] == RAISED[name].detail
    assert {key: got.get(key) for key in body} == body


async def test_a_wrong_state_without_known_actions_does_not_claim_there_are_none():
    assert "allowed_actions" not in (await _post("no-actions")).json()


async def test_a_failed_precondition_names_the_current_version_as_the_etag():
    assert (await _post("precondition")).headers["etag"] == '"5"'
    assert "etag" not in (await _post("stale")).headers


async def test_several_invalid_fields_are_listed_not_named_as_one():
    assert "field" not in (await _post("several")).json()


# The service layers converted to domain errors (issue #21 item 4): their use cases speak
# the domain, and the routes over them do not commit (the use case is the transaction).
USE_CASES = ["dispatch/service.py", "scoring/service.py", "notify/service.py", "notify/domain.py", "sla/service.py", "shared/scope.py"]
ROUTES = ["dispatch/api.py", "notify/api.py"]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


@pytest.mark.parametrize("module", USE_CASES)
def test_a_use_case_layer_raises_no_http_problem(module):
    assert "shared.problems.Problem" not in _imports(ROOT / module)


@pytest.mark.parametrize("module", ROUTES)
def test_routes_do_not_commit(module):
    assert "uow.commit()" not in (ROOT / module).read_text()
