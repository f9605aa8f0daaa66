"""Whistles from below (issue #23 item 5, 网格吹哨、部门报到) and grid workers' village scope
(item 2) across services: dispatch, SLA and notify on one topic (real PostgreSQL, real
broker, real HTTP).

A grid worker blows the whistle on an emergency in its grid: the departments named get an
order each and a message in their inbox, must report (报到) within 30 minutes — the limit
dispatch computes once (shared.deadlines.response_minutes) and carries on the event — and
SLA cards the one that does not. The township and the county centre see it all; every role
reads only what it may.

Dispatch's clock is pinned (a Monday of November 2026, no holiday near) and SLA's now is moved
to it, so the test means the same on any day.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dispatch.app import create_app as dispatch_app
from dispatch.settings import DispatchSettings
from dispatch.tests.helpers import (DATANG, JIANGLONG, TONGWAN, WX_DISPATCHER, act, intake_events,
                                    orders_of, PinnedClock, pin_dispatch_clock)  # fmt: skip
from notify.app import create_app as notify_app
from notify.settings import NotifySettings
from notify.tests.conftest import serving_receiver
from shared.actors import actor_headers
from shared.events import Location, Urgency
from shared.testing import AUDITOR, Infra, eventually, inbox_owner, publish, running, service_settings, unique
from sla.app import create_app as sla_app
from sla.tests.conftest import sla_settings

BJ = ZoneInfo("Asia/Shanghai")
OPS = actor_headers("ops", "ops")
TOWNSHIP, VILLAGE, GRID, OTHER_GRID = "LB-WX-TW", "LB-WX-TW-JL", "LB-WX-TW-JL-G01", "LB-WX-TW-JL-G02"
LEAD, CO = "LB-WX-ZJJ", "LB-WX-SLJ"  # 武宣县住建局 leads, 水利局 co-handles
GRID_WORKER = actor_headers("demo-grid-worker-jl", "grid_worker", GRID)
OTHER_GRID_WORKER = actor_headers("jl-grid-2", "grid_worker", OTHER_GRID)  # the same village's other grid
DATANG_GRID_WORKER = actor_headers("dt-grid-1", "grid_worker", "LB-WX-TW-DT-G01")  # 大塘村, another village
LEAD_CLERK = actor_headers("demo-dept-clerk-wx", "dept_clerk", LEAD)
CO_CLERK = actor_headers("demo-dept-clerk-slj", "dept_clerk", CO)
XC_DISPATCHER = actor_headers("demo-centre-dispatcher", "centre_dispatcher", "LB-XC-ZZZX")  # 忻城县's centre
# An emergency met on patrol in 江龙村's first grid: the fish-pond bank gives way by the school path.
DYKE = ("鱼塘堤岸决口", "武宣县通挽镇江龙村第一网格鱼塘堤岸决口，水漫到上学的路上，情况紧急。", "public_safety",
        Location(township=TOWNSHIP, village=VILLAGE, grid=GRID, street="江龙村"))


@pytest.fixture(scope="module")
async def services(infra: Infra):
    topic = unique("lifecycle")
    d = service_settings(DispatchSettings, infra, topic=topic, database=unique("dispatch"), org_topic=unique("org"))
    s = sla_settings(infra, topic=topic, database=unique("sla"))
    async with serving_receiver() as receiver:
        n = service_settings(
            NotifySettings, infra, topic=topic, database=unique("notify"),
            sms_url=f"{receiver.url}/sms", wechat_url=f"{receiver.url}/wechat", test_clock=True,
        )  # fmt: skip
        async with running(dispatch_app(d), d) as dispatcher, running(sla_app(s), s) as sla, running(notify_app(n), n) as notify:
            yield dispatcher, sla, notify


@pytest.fixture
def clock(monkeypatch) -> PinnedClock:
    return pin_dispatch_clock(monkeypatch, datetime(2026, 11, 16, 9, tzinfo=BJ))  # Monday


async def file_emergency(dispatcher, at: datetime) -> str:
    """received → accepted → triaged as an emergency (急难事), as intake writes them."""
    events = intake_events(DYKE, at=at)
    triaged = events[-1]
    events[-1] = triaged.model_copy(update={"payload": triaged.payload.model_copy(update={"urgency": Urgency.emergency})})
    await publish(dispatcher.settings.kafka_bootstrap_servers, dispatcher.settings.kafka_topic, *events)
    return events[0].case_id


async def case_view(dispatcher, case_id: str, headers: dict):
    return await dispatcher.client.get(f"/api/v1/cases/{case_id}/orders", headers=headers)


async def test_a_grid_worker_blows_the_whistle_departments_report_within_30_minutes_and_each_role_reads_what_it_may(services, clock):
    dispatcher, sla, notify = services
    moved = await sla.client.post("/api/v1/admin/time", json={"now": clock.now.isoformat()}, headers=OPS)
    assert moved.status_code == 200, moved.text
    case_id = await file_emergency(dispatcher, clock.now)
    [village_order] = await orders_of(dispatcher, case_id, reader=WX_DISPATCHER)
    assert village_order["unit"] == VILLAGE  # 村级: the village holds it first

    # Who may whistle: the grid the case is in and its village; the township not over the
    # village's head; the village's other grid reads the case but does not whistle for it.
    allowed = {name: (await case_view(dispatcher, case_id, h)).json()["allowed_actions"]
               for name, h in {"grid": GRID_WORKER, "other grid": OTHER_GRID_WORKER, "village": JIANGLONG,
                               "township": TONGWAN}.items()}  # fmt: skip
    assert allowed == {"grid": ["whistle"], "other grid": [], "village": ["whistle"], "township": []}
    assert (await case_view(dispatcher, case_id, DATANG_GRID_WORKER)).status_code == 404

    url = f"/api/v1/cases/{case_id}/call"
    body = {"units": [LEAD, CO], "lead_unit": LEAD, "reason": "鱼塘决口，请住建、水利部门到场处置"}
    assert (await dispatcher.client.post(url, json=body, headers=OTHER_GRID_WORKER)).status_code == 403
    assert (await dispatcher.client.post(url, json=body, headers=DATANG_GRID_WORKER)).status_code == 404
    no_lead = await dispatcher.client.post(url, json={**body, "lead_unit": None}, headers=GRID_WORKER)
    assert no_lead.status_code == 422 and no_lead.json()["field"] == "lead_unit", no_lead.text
    # An emergency: 30 minutes, whatever longer limit the caller asks for.
    clock.now += timedelta(minutes=5)
    blown = await dispatcher.client.post(url, json={**body, "respond_within_minutes": 120}, headers=GRID_WORKER)
    assert blown.status_code == 201, blown.text
    whistled_at, due = clock.now, clock.now + timedelta(minutes=30)

    # Dispatch: the village's order ended, the departments got one each; the county centre
    # and the township see every order, each department only its own, another village nothing.
    orders = {o["unit"]: o for o in (await case_view(dispatcher, case_id, WX_DISPATCHER)).json()["orders"]}
    assert orders[VILLAGE]["state"] == "reassigned"
    assert (orders[LEAD]["role"], orders[CO]["role"]) == ("lead", "co")
    assert {o["unit"] for o in (await case_view(dispatcher, case_id, TONGWAN)).json()["orders"]} == {VILLAGE, LEAD, CO}
    assert [o["unit"] for o in (await case_view(dispatcher, case_id, LEAD_CLERK)).json()["orders"]] == [LEAD]
    assert {o["unit"] for o in (await case_view(dispatcher, case_id, OTHER_GRID_WORKER)).json()["orders"]} == {VILLAGE, LEAD, CO}
    assert (await case_view(dispatcher, case_id, DATANG)).status_code == 404
    assert (await case_view(dispatcher, case_id, XC_DISPATCHER)).status_code == 404  # another county's centre

    # The lead reports (签收) within the limit; the co-handler does not.
    clock.now = whistled_at + timedelta(minutes=20)
    assert (await act(dispatcher, orders[LEAD]["order_no"], "sign", LEAD_CLERK)).status_code == 200

    # SLA: a response clock per department, due 30 minutes after the whistle as dispatch set it.
    async def responses():
        answer = await sla.client.get(f"/api/v1/cases/{case_id}/clocks", headers=AUDITOR)
        found = {c["unit"]: c for c in answer.json()["clocks"] if c["name"] == "response"} if answer.status_code == 200 else {}
        return found if set(found) == {LEAD, CO} and found[LEAD]["state"] == "stopped" else None

    clocks = await eventually(responses, what="the response clocks of the whistle")
    assert {u: datetime.fromisoformat(c["due_at"]) for u, c in clocks.items()} == {LEAD: due, CO: due}
    assert clocks[LEAD]["on_time"] is True
    # SLA reads by place too: the village's other grid reads the clocks, another village's grid does not.
    assert (await sla.client.get(f"/api/v1/cases/{case_id}/clocks", headers=OTHER_GRID_WORKER)).status_code == 200
    assert (await sla.client.get(f"/api/v1/cases/{case_id}/clocks", headers=DATANG_GRID_WORKER)).status_code == 404

    # Late 报到: past the 30 minutes the co-handler is carded red, like any clock.
    moved = await sla.client.post("/api/v1/admin/time", json={"now": (due + timedelta(minutes=1)).isoformat()}, headers=OPS)
    assert moved.status_code == 200, moved.text

    async def inbox(recipient: str) -> list[dict]:
        answer = await notify.client.get(f"/api/v1/inbox/{recipient}", headers=inbox_owner(recipient))
        assert answer.status_code == 200, answer.text
        return [m for m in answer.json()["items"] if m["case_id"] == case_id]

    async def carded():
        items = await inbox(f"unit:{CO}:duty")
        return items if {m["kind"] for m in items} >= {"unit.whistle_blown", "unit.red_card"} else None

    co_inbox = await eventually(carded, what="the whistle and the red card in the co-handler's inbox")
    [whistle] = [m for m in co_inbox if m["kind"] == "unit.whistle_blown"]
    assert "江龙村第一网格" in whistle["text"] and "30分钟内报到" in whistle["text"], whistle["text"]
    assert "unit.red_card" not in {m["kind"] for m in await inbox(f"unit:{LEAD}:duty")}, "the lead reported in time"

    # Notify: the township hears of the whistle from below; it reads the case's clocks.
    async def township_told():
        return [m for m in await inbox(f"unit:{TOWNSHIP}:duty") if m["kind"] == "unit.whistle_blown.township"] or None

    [copy] = await eventually(township_told, what="the township copied on the whistle")
    assert "网格吹哨" in copy["text"] and "江龙村第一网格" in copy["text"]
    assert (await sla.client.get(f"/api/v1/cases/{case_id}/clocks", headers=TONGWAN)).status_code == 200
    assert (await notify.client.get(f"/api/v1/cases/{case_id}/callbacks", headers=OTHER_GRID_WORKER)).status_code == 200
    assert (await notify.client.get(f"/api/v1/cases/{case_id}/callbacks", headers=DATANG_GRID_WORKER)).status_code == 404
