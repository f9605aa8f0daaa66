"""The acting-person headers: accepted when complete, a clear problem otherwise."""

import httpx
import pytest
from fastapi import FastAPI

from shared.actors import ActorDep, actor_headers
from shared.events import Role
from shared.problems import install_problem_handlers


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/who")
    async def who(actor: ActorDep) -> dict:
        return actor.model_dump()

    return app


async def _get(headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://t") as client:
        return await client.get("/who", headers=headers)


async def test_a_clerk_of_a_unit_is_recorded_as_stated():
    response = await _get(actor_headers("clerk-7", Role.dept_clerk, "LB-XC-ZJJ"))
    assert response.status_code == 200
    assert response.json() == {"id": "clerk-7", "role": "dept_clerk", "org_unit": "LB-XC-ZJJ"}


@pytest.mark.parametrize(
    ("headers", "status", "says"),
    [
        ({}, 401, "X-Actor-Id"),
        ({"X-Actor-Id": "x", "X-Actor-Role": "mayor"}, 400, "unknown role 'mayor'"),
        ({"X-Actor-Id": "x", "X-Actor-Role": "system"}, 403, "services acting on their own"),
    ],
)
async def test_missing_or_wrong_actor_is_a_problem(headers, status, says):
    response = await _get(headers)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    assert says in response.json()["detail"]
