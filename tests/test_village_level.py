"""The village level across services (issue #23 item 2): dispatch, SLA and scoring on one
topic (real PostgreSQL, real broker, real HTTP).

A village's order runs its own clocks, which end when it reports the matter up (上报); the
township's order starts its own, with the deadline dispatch computed (shared.deadlines) and
carried on the event. Scoring counts the villages like townships: each village a unit, ranked
among its township's villages.

Dispatch's clock is pinned (a Monday and Tuesday of November 2026, no holiday near), and the
events carry those times, so SLA and scoring mean the same on any day.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dispatch.app import create_app as dispatch_app
from dispatch.settings import DispatchSettings
from dispatch.tests.helpers import GUARDRAIL, JIANGLONG, TONGWAN, WX_DISPATCHER, act, file_case, orders_of, PinnedClock, pin_dispatch_clock
from scoring.app import create_app as scoring_app
from scoring.settings import ScoringSettings
from shared.actors import actor_headers
from shared.testing import AUDITOR, Infra, eventually, running, service_settings, unique
from sla.app import create_app as sla_app
from sla.tests.conftest import sla_settings

BJ = ZoneInfo("Asia/Shanghai")
CHENGZHONG = actor_headers("demo-village-staff-cz", "village_staff", "LB-XC-CG-CZ")  # 城中社区, in 忻城县
OPS = actor_headers("ops", "ops")
VILLAGE, TOWNSHIP = "LB-WX-TW-JL", "LB-WX-TW"


@pytest.fixture(scope="module")
async def services(infra: Infra):
    topic = unique("lifecycle")
    d = service_settings(DispatchSettings, infra, topic=topic, database=unique("dispatch"), org_topic=unique("org"))
    s = sla_settings(infra, topic=topic, database=unique("sla"))
    c = service_settings(ScoringSettings, infra, topic=topic, database=unique("scoring"), test_clock="2026-11-17T04:00:00+00:00")
    async with running(dispatch_app(d), d) as dispatcher, running(sla_app(s), s) as sla, running(scoring_app(c), c) as scoring:
        yield dispatcher, sla, scoring


@pytest.fixture
def clock(monkeypatch) -> PinnedClock:
    return pin_dispatch_clock(monkeypatch, datetime(2026, 11, 16, 9, tzinfo=BJ))  # Monday


async def clocks_of(sla, case_id: str, ready) -> list[dict]:
    async def check():
        answer = await sla.client.get(f"/api/v1/cases/{case_id}/clocks", headers=AUDITOR)
        clocks = answer.json()["clocks"] if answer.status_code == 200 else []
        return clocks if ready(clocks) else None

    return await eventually(check, what=f"SLA's clocks of {case_id}")


async def test_reporting_up_ends_the_villages_clocks_and_starts_the_townships_and_villages_are_scored(services, clock):
    dispatcher, sla, scoring = services
    # SLA's now is the pinned day too (nothing goes overdue because the real day is later).
    moved = await sla.client.post("/api/v1/admin/time", json={"now": clock.now.isoformat()}, headers=OPS)
    assert moved.status_code == 200, moved.text
    reported = await file_case(dispatcher, GUARDRAIL, at=clock.now)
    [order] = await orders_of(dispatcher, reported, reader=WX_DISPATCHER)
    assert order["unit"] == VILLAGE

    # A second matter of 江龙村: the village claims it and answers it itself.
    clock.now += timedelta(minutes=30)
    solved = await file_case(dispatcher, GUARDRAIL, at=clock.now)
    [own] = await orders_of(dispatcher, solved, reader=WX_DISPATCHER)
    clock.now += timedelta(hours=1)
    assert (await act(dispatcher, own["order_no"], "claim", JIANGLONG)).status_code == 200
    clock.now += timedelta(hours=2)
    assert (await act(dispatcher, own["order_no"], "resolve", JIANGLONG, {"answer": "村里已加装护栏"})).status_code == 200

    clock.now = datetime(2026, 11, 16, 15, tzinfo=BJ)
    up = await act(dispatcher, order["order_no"], "report-up", JIANGLONG, {"reason": "村里无力加装，上报镇里"})
    assert up.status_code == 200, up.text
    township_order = (await dispatcher.client.get(f"/api/v1/orders/{up.json()['detail']['new_order']}", headers=TONGWAN)).json()

    # SLA: every clock of the village's order stopped when it reported up; the township's run
    # from then, the resolve clock due when dispatch says the township's order is due.
    def settled(clocks):
        units = {c["unit"] for c in clocks}
        return clocks if VILLAGE in units and TOWNSHIP in units and all(
            c["state"] == "stopped" for c in clocks if c["unit"] == VILLAGE) else None  # fmt: skip

    clocks = await clocks_of(sla, reported, settled)
    village = [c for c in clocks if c["unit"] == VILLAGE]
    assert {c["name"] for c in village} >= {"sign", "resolve", "return_window"}
    assert {datetime.fromisoformat(c["stopped_at"]) for c in village} == {clock.now}
    township = {c["name"]: c for c in clocks if c["unit"] == TOWNSHIP}
    assert township["resolve"]["state"] == "running" and township["sign"]["state"] == "running"
    assert datetime.fromisoformat(township["resolve"]["started_at"]) == clock.now
    assert datetime.fromisoformat(township["resolve"]["due_at"]) == datetime.fromisoformat(township_order["due_at"])

    # Scoring: 江龙村 is a unit with its two orders — one answered, one handed up (counted as
    # handed back, like a 退单) — ranked among 通挽镇's villages; the township's order is the township's.
    params = {"township": TOWNSHIP, "period": "day", "date": "2026-11-16"}

    async def ranked():
        answer = await scoring.client.get("/api/v1/scores/villages", params=params, headers=TONGWAN)
        assert answer.status_code == 200, answer.text
        units = {u["unit"]: u for u in answer.json()["units"]}
        jl = units.get(VILLAGE)
        return answer.json() if jl and jl["counts"]["returned"] == 1 and jl["counts"]["resolved_orders"] == 1 else None

    board = await eventually(ranked, what="江龙村 scored among 通挽镇's villages")
    units = board["units"]
    assert {u["kind"] for u in units} == {"village"}
    assert {u["unit"] for u in units} == {"LB-WX-TW-TW", "LB-WX-TW-DT", "LB-WX-TW-LN", VILLAGE}
    jl = next(u for u in units if u["unit"] == VILLAGE)
    assert (jl["rank"], jl["name"]) == (1, "江龙村"), "the only village with orders ranks first"
    counts = jl["counts"]
    assert (counts["orders"], counts["signed"], counts["resolved_orders"], counts["returned"]) == (2, 1, 1, 1)
    assert jl["rates"]["return_rate"] == "50.00%"
    assert all(u["score"] is None for u in units if u["unit"] != VILLAGE), "villages without orders have no score"

    # The village reads its own figures; a village of another county does not.
    own = await scoring.client.get(f"/api/v1/stats/units/{VILLAGE}", params={"period": "day", "date": "2026-11-16"}, headers=JIANGLONG)
    assert own.status_code == 200 and own.json()["counts"]["orders"] == 2, own.text
    assert (await scoring.client.get(f"/api/v1/stats/units/{VILLAGE}", params={"period": "day", "date": "2026-11-16"},
                                     headers=CHENGZHONG)).status_code == 404  # fmt: skip
    assert (await scoring.client.get("/api/v1/scores/villages", params=params, headers=CHENGZHONG)).status_code == 404
    not_a_township = await scoring.client.get("/api/v1/scores/villages", params={**params, "township": "LB-WX"}, headers=TONGWAN)
    assert not_a_township.status_code == 422
