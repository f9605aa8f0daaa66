"""A whistle from below in scoring (issue #23 item 5, 网格吹哨、部门报到): dispatch and scoring on
one topic (real PostgreSQL, real broker, real HTTP).

When 江龙村 blows the whistle on a case of its own, the call is the village's, not 通挽镇's:
the departments' ratings of the call (县评乡) count in the village's figures, and the village —
not the township — rates the departments it called (乡评县).

Dispatch's clock is pinned (a Monday of November 2026) and scoring runs on a test clock the day
after, so the period asked for means the same on any day.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dispatch.app import create_app as dispatch_app
from dispatch.settings import DispatchSettings
from dispatch.tests.helpers import JIANGLONG, TONGWAN, WX_DISPATCHER, intake_events, orders_of, PinnedClock, pin_dispatch_clock
from scoring.app import create_app as scoring_app
from scoring.settings import ScoringSettings
from shared.actors import actor_headers
from shared.events import Location, Urgency
from shared.testing import Infra, eventually, publish, running, service_settings, unique

BJ = ZoneInfo("Asia/Shanghai")
TOWNSHIP, VILLAGE, GRID = "LB-WX-TW", "LB-WX-TW-JL", "LB-WX-TW-JL-G01"
LEAD, CO = "LB-WX-ZJJ", "LB-WX-SLJ"
LEAD_CLERK = actor_headers("demo-dept-clerk-wx", "dept_clerk", LEAD)
DYKE = ("鱼塘堤岸决口", "武宣县通挽镇江龙村第一网格鱼塘堤岸决口，水漫到上学的路上，情况紧急。", "public_safety",
        Location(township=TOWNSHIP, village=VILLAGE, grid=GRID, street="江龙村"))
MONTH = {"period": "month", "date": "2026-11-16"}


@pytest.fixture(scope="module")
async def services(infra: Infra):
    topic = unique("lifecycle")
    d = service_settings(DispatchSettings, infra, topic=topic, database=unique("dispatch"), org_topic=unique("org"))
    c = service_settings(ScoringSettings, infra, topic=topic, database=unique("scoring"), test_clock="2026-11-17T04:00:00+00:00")
    async with running(dispatch_app(d), d) as dispatcher, running(scoring_app(c), c) as scoring:
        yield dispatcher, scoring


@pytest.fixture
def clock(monkeypatch) -> PinnedClock:
    return pin_dispatch_clock(monkeypatch, datetime(2026, 11, 16, 9, tzinfo=BJ))  # Monday


async def test_a_villages_whistle_is_credited_to_the_village_not_its_township(services, clock):
    dispatcher, scoring = services
    events = intake_events(DYKE, at=clock.now)
    triaged = events[-1]
    events[-1] = triaged.model_copy(update={"payload": triaged.payload.model_copy(update={"urgency": Urgency.emergency})})
    await publish(dispatcher.settings.kafka_bootstrap_servers, dispatcher.settings.kafka_topic, *events)
    case_id = events[0].case_id
    [village_order] = await orders_of(dispatcher, case_id, reader=WX_DISPATCHER)
    assert village_order["unit"] == VILLAGE

    clock.now += timedelta(minutes=5)
    body = {"units": [LEAD, CO], "lead_unit": LEAD, "reason": "鱼塘决口，请住建、水利部门到场处置"}
    blown = await dispatcher.client.post(f"/api/v1/cases/{case_id}/call", json=body, headers=JIANGLONG)
    assert blown.status_code == 201, blown.text
    call_id = blown.json()["detail"]["call_id"]

    # The lead department rates the call (县评乡) once scoring has seen it.
    rating = {"case_id": case_id, "call_id": call_id, "justified": True, "complete": True}

    async def rated():
        answer = await scoring.client.post("/api/v1/ratings/calls", json=rating, headers=LEAD_CLERK)
        return answer if answer.status_code != 404 else None

    answer = await eventually(rated, what="scoring's copy of the whistle")
    assert answer.status_code == 201, answer.text
    assert (answer.json()["rater_unit"], answer.json()["rated_unit"]) == (LEAD, VILLAGE)

    async def call_rating(code: str, headers: dict) -> dict:
        stats = await scoring.client.get(f"/api/v1/stats/units/{code}", params=MONTH, headers=headers)
        assert stats.status_code == 200, stats.text
        return stats.json()["call_rating"]

    assert (await call_rating(VILLAGE, JIANGLONG))["rated"] == 1
    assert (await call_rating(TOWNSHIP, TONGWAN))["rated"] == 0

    # 乡评县 is the blower's: the village may rate the departments it called (after 销号: the
    # case is still open, so 409), the township, which did not call, may not.
    dept = {"case_id": case_id, "call_id": call_id, "unit": LEAD, "rating": "满意"}
    by_village = await scoring.client.post("/api/v1/ratings/departments", json=dept, headers=JIANGLONG)
    assert by_village.status_code == 409 and by_village.json()["type"].endswith("case-not-closed"), by_village.text
    by_township = await scoring.client.post("/api/v1/ratings/departments", json=dept, headers=TONGWAN)
    assert by_township.status_code == 403 and by_township.json()["type"].endswith("not-the-calling-township"), by_township.text
