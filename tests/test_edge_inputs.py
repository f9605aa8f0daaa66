"""No 500 on any input (issue #20): a NUL character in a path, query or form value, and dates
at the edges of the calendar, are refused at the edge as validation errors naming the field —
through HTTP against the running services — and the connection stays open for the next request.

Before, each of these reached PostgreSQL (which cannot store ``\\x00``) or date arithmetic
that leaves the calendar (``9999-12-31T23:59:59-14:00`` is the year 10000 in UTC; the week of
9999-12-31 ends in it), answered 500 and closed the keep-alive connection. The rule is in
``shared.edge``; see docs/rules.md ("Input at the edge").
"""

from __future__ import annotations

import contextlib
from typing import Any

import httpx
import pytest

from dispatch.app import create_app as create_dispatch
from dispatch.settings import DispatchSettings
from intake.app import create_app as create_intake
from intake.settings import IntakeSettings
from scoring.app import create_app as create_scoring
from scoring.settings import ScoringSettings
from shared.testing import AUDITOR, Infra, running, service_settings, unique
from sla.app import create_app as create_sla
from sla.settings import SlaSettings

SERVICES = {
    "intake": (IntakeSettings, create_intake),
    "dispatch": (DispatchSettings, create_dispatch),
    "sla": (SlaSettings, create_sla),
    "scoring": (ScoringSettings, create_scoring),
}


@pytest.fixture(scope="module")
async def services(infra: Infra):
    topic = unique("lifecycle")
    async with contextlib.AsyncExitStack() as stack:
        urls = {}
        for name, (settings_cls, create_app) in SERVICES.items():
            settings = service_settings(settings_cls, infra, topic=topic, database=unique(f"edge_{name}"))
            urls[name] = (await stack.enter_async_context(running(create_app(settings), settings))).url
        yield urls


# (service, method, path, query or form, the field the answer must name)
PROBLEM_CASES = [
    ("intake", "GET", "/api/v1/appeals/%00", None, "case_id"),
    ("dispatch", "GET", "/api/v1/orders/%00", None, "order_no"),
    ("sla", "GET", "/api/v1/cases/%00/clocks", None, "case_id"),
    ("intake", "GET", "/api/v1/cases", {"status": "open", "township": "a\x00b"}, "township"),
    ("dispatch", "GET", "/api/v1/public/closed", {"before": "9999-12-31T23:59:59-14:00"}, "before"),
    ("intake", "GET", "/api/v1/cases", {"since": "0001-01-01T00:00:00+14:00"}, "since"),
    ("intake", "GET", "/api/v1/cases", {"since": "0.5"}, "since"),  # not a Unix timestamp: ISO 8601 only
    ("scoring", "GET", "/api/v1/scores", {"county": "LB-XC", "period": "week", "date": "9999-12-31"}, "date"),
    ("scoring", "GET", "/api/v1/scores", {"county": "LB-XC", "date": "0001-01-01"}, "date"),
    ("scoring", "GET", "/api/v1/grid/scores", {"month": "9999-12"}, "month"),
]
# Open311 answers in the spec's own error format: a 400 listing the field.
OPEN311_CASES = [
    ("GET", "/open311/v2/requests/%00.json", None, "request_id"),
    ("GET", "/open311/v2/requests.json", {"start_date": "9999-12-31T23:59:59-14:00"}, "start_date"),
    (
        "POST", "/open311/v2/requests.json",
        {"service_code": "infrastructure", "description": "路灯不亮\x00", "lat": "23.9", "long": "108.6", "phone": "13800000000"},
        "description",
    ),
]  # fmt: skip


def local_port(response: httpx.Response) -> int:
    """The client-side port of the connection the answer came on."""
    return response.extensions["network_stream"].get_extra_info("socket").getsockname()[1]


async def send(client: httpx.AsyncClient, method: str, url: str, values: dict[str, Any] | None) -> httpx.Response:
    if method == "GET":
        return await client.get(url, params=values)
    return await client.post(url, data=values)


async def assert_connection_kept(client: httpx.AsyncClient, base: str, answer: httpx.Response) -> None:
    assert answer.headers.get("connection", "").lower() != "close"
    after = await client.get(f"{base}/health")
    assert after.status_code == 200
    assert local_port(after) == local_port(answer), "the server closed the connection after the answer"


@pytest.mark.parametrize(("service", "method", "path", "values", "field"), PROBLEM_CASES)
async def test_refused_as_a_problem_naming_the_field(services, service, method, path, values, field):
    base = services[service]
    async with httpx.AsyncClient(headers=AUDITOR, timeout=30) as client:
        answer = await send(client, method, base + path, values)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        body = answer.json()
        assert field in body["detail"]
        assert field in [error["field"] for error in body["errors"]]
        await assert_connection_kept(client, base, answer)


@pytest.mark.parametrize(("method", "path", "values", "field"), OPEN311_CASES)
async def test_open311_refuses_in_its_own_format_naming_the_field(services, method, path, values, field):
    base = services["intake"]
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await send(client, method, base + path, values)
        assert answer.status_code == 400, answer.text
        [error] = answer.json()
        assert error["code"] == 400 and field in error["description"]
        await assert_connection_kept(client, base, answer)


async def test_dates_inside_the_calendar_are_still_answered(services):
    """The bounds refuse only what leaves the calendar: ordinary dates and the bounds themselves pass."""
    async with httpx.AsyncClient(headers=AUDITOR, timeout=30) as client:
        closed = await client.get(f"{services['dispatch']}/api/v1/public/closed", params={"before": "9998-12-31T23:59:59+08:00"})
        cases = await client.get(f"{services['intake']}/api/v1/cases", params={"since": "2026-11-01T00:00:00+08:00"})
        grid = await client.get(f"{services['scoring']}/api/v1/grid/scores", params={"month": "9998-12"})
    assert closed.status_code == 200, closed.text
    assert cases.status_code == 200, cases.text
    assert grid.status_code == 200, grid.text
