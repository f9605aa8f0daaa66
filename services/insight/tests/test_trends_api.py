"""Trends and the monthly theme (每月一题) through the topic and HTTP, against the real
PostgreSQL and broker: appeals published as intake and dispatch write them show in the
area's trend and make the month's proposal; each caller reads only its own area. The days
are pinned (November 2026), never today's: every request names its day (``on``)."""

from __future__ import annotations

import pytest

from services.insight.app import create_app
from services.insight.settings import InsightSettings
from services.insight.tests.test_findings import appeal, at
from shared.actors import actor_headers
from shared.events import CaseReopened, EventBase, Location, ReopenedData, make_event, system_actor
from shared.testing import Infra, eventually, publish, running, service_settings, unique

XC_CENTRE = actor_headers("xc-dispatcher", "centre_dispatcher", "LB-XC-ZZZX")  # 忻城县综治中心
WX_CENTRE = actor_headers("wx-dispatcher", "centre_dispatcher", "LB-WX-ZZZX")  # 武宣县: another county
CG_HEAD = actor_headers("cg-head", "township_head", "LB-XC-CG")  # 城关镇
TW_HEAD = actor_headers("tw-head", "township_head", "LB-WX-TW")  # 通挽镇, 武宣县
ZJJ_HEAD = actor_headers("zjj-head", "dept_head", "LB-XC-ZJJ")
CITIZEN = actor_headers("someone", "citizen")
EAST = Location(township="LB-XC-CG", village="LB-XC-CG-CD", street="城东路")  # 城东社区: a second village of 城关镇
FRIDAY = "2026-11-20"


@pytest.fixture(scope="module")
async def insight(infra: Infra):
    settings = service_settings(
        InsightSettings, infra, topic=unique("lifecycle"), database=unique("insight"), org_topic=unique("org"),
        thresholds={"spot_min": 50, "min_count": 50},  # no findings here: this module is about trends
    )  # fmt: skip
    async with running(create_app(settings), settings) as service:
        yield service


async def get(insight, path: str, headers: dict[str, str], **params: object):  # type: ignore[no-untyped-def]
    return await insight.client.get(f"/api/v1/{path}", headers=headers, params=params)


async def test_an_areas_trend_and_theme_from_appeals_on_the_topic_each_caller_its_own(insight, infra):
    # Streetlamps: one in the week of 11-09, four in the week of 11-16 (one redone after an
    # unsatisfied rating); one on 城东路 not handled by 住建局 (no order yet).
    published: list[EventBase] = []
    cases = []
    for when, location, unit in ((at(10), None, "LB-XC-ZJJ"), (at(16), None, "LB-XC-ZJJ"), (at(17), None, "LB-XC-ZJJ"),
                                 (at(18), None, "LB-XC-ZJJ"), (at(19), EAST, None)):  # fmt: skip
        case_id, events = appeal(when, unit=unit, **({"location": location} if location else {}))
        cases.append(case_id)
        published += events
    redo = make_event(CaseReopened, case_id=cases[1], payload=ReopenedData(redo_round=1, reason="群众不满意"),
                      producer="intake", actor=system_actor("intake"), occurred_at=at(19, 15))  # fmt: skip
    await publish(infra.bootstrap_servers, insight.settings.kafka_topic, *published, redo)

    async def trend() -> dict | None:
        answer = await get(insight, "trends", XC_CENTRE, on=FRIDAY, periods=3)
        assert answer.status_code == 200, answer.text
        doc = answer.json()
        return doc if doc["subjects"] and doc["subjects"][0]["current"] == 4 else None

    doc = await eventually(trend, what="the week's appeals in the county's trend")
    assert doc["area"] == "LB-XC" and doc["area_name"] == "忻城县" and doc["grain"] == "week"
    assert [(p["start"], p["end"], p["workdays"]) for p in doc["periods"]][-1] == ("2026-11-16", FRIDAY, 5)
    [lamps] = doc["subjects"]
    assert lamps["subject"] == "infrastructure" and lamps["counts"] == [0, 1, 4] and lamps["expected"] == 0.5
    assert "基础设施" in lamps["sentence"] and "上升" in lamps["sentence"]

    # The theme of the month: the lamps, with the figures, the places and the cases that show it.
    theme = (await get(insight, "theme", XC_CENTRE, on=FRIDAY)).json()
    p = theme["proposal"]
    assert (p["subject"], p["volume"], p["repeats"], theme["total"]) == ("infrastructure", 5, 1, 5)
    assert p["top_places"][0] == {"code": "LB-XC-CG-CZ", "name": "城中社区", "appeals": 4}
    assert set(p["sample_case_ids"]) == set(cases)
    assert "每月一题" in p["sentence"] and "城中社区4件" in p["sentence"] and "1件反复反映" in p["sentence"]

    # A township reads its own places, down to a village; the village filter holds.
    village = (await get(insight, "trends", CG_HEAD, on=FRIDAY, periods=3, area="LB-XC-CG-CD")).json()
    assert [s["counts"] for s in village["subjects"]] == [[0, 0, 1]]
    # 住建局 reads the appeals it handled (not the unassigned one on 城东路).
    dept = (await get(insight, "trends", ZJJ_HEAD, on=FRIDAY, periods=3)).json()
    assert [s["counts"] for s in dept["subjects"]] == [[0, 1, 3]]
    # Another county's centre sees nothing of 忻城县: its own area is empty, 城关镇 is "not found" like a made-up code.
    mine = await get(insight, "trends", WX_CENTRE, on=FRIDAY)
    assert mine.status_code == 200 and mine.json()["area"] == "LB-WX" and mine.json()["subjects"] == []
    other = (await get(insight, "theme", WX_CENTRE, on=FRIDAY)).json()
    assert other["area"] == "LB-WX" and other["proposal"] is None and other["total"] == 0
    for area in ("LB-XC-CG", "LB-NO-SUCH"):
        for who in (WX_CENTRE, TW_HEAD):
            assert (await get(insight, "trends", who, area=area)).status_code == 404
            assert (await get(insight, "theme", who, area=area)).status_code == 404
    assert (await get(insight, "trends", ZJJ_HEAD, area="LB-XC")).status_code == 404  # a department: its unit only
    refused = await get(insight, "theme", CITIZEN)
    assert refused.status_code == 403 and refused.headers["content-type"].startswith("application/problem+json")
    assert (await get(insight, "trends", XC_CENTRE, grain="year")).status_code == 422
