"""Two-way evaluation into composites, a redo, grid-worker ranking, the weekly bulletin of
忻城县 and a rebuild — against a running scoring service fed through the real topic."""

import csv
import io
from datetime import UTC, datetime, timedelta

from scoring.tests.factory import Case, grid_activity, publish_many
from shared.actors import actor_headers
from shared.events import Role
from shared.testing import CENTRE, AUDITOR, TopicReader, eventually

MON = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)  # Monday 09:00 Beijing, week 2026-W47
WEEK = {"period": "week", "date": "2026-11-18"}
TW = actor_headers("tw-staff", Role.township_staff, "LB-WX-TW")
CG = actor_headers("cg-staff", Role.township_staff, "LB-XC-CG")
ZJJ = actor_headers("zjj-clerk", Role.dept_clerk, "LB-XC-ZJJ")
# 通挽镇 is in 武宣县: it calls and rates 武宣县's departments; 武宣镇 is another township there.
WUXUAN = actor_headers("wx-staff", Role.township_staff, "LB-WX-WX")
WX_ZJJ = actor_headers("wx-zjj-clerk", Role.dept_clerk, "LB-WX-ZJJ")
WX_CENTRE = actor_headers("wx-centre", Role.centre_dispatcher, "LB-WX-ZZZX")
OPS = actor_headers("ops-1", Role.ops)


async def get(service, path, *, as_: dict = CENTRE, **params):
    response = await service.client.get(path, params=params, headers=as_)
    assert response.status_code == 200, response.text
    return response.json()


async def status_is(service, case_id, event_type):
    async def check():
        r = await service.client.get(f"/api/v1/cases/{case_id}/status", headers=AUDITOR)
        return r.status_code == 200 and r.json()["last_event_type"] == event_type
    await eventually(check, timeout=30, what=f"{case_id} at {event_type}")


async def applied(service, case):
    """Wait until scoring applied every event of ``case`` built so far."""
    async def check():
        r = await service.client.get(f"/api/v1/cases/{case.case_id}/status", headers=AUDITOR)
        return r.status_code == 200 and r.json()["events_applied"] == len(case.events)
    await eventually(check, timeout=30, what=f"{len(case.events)} events of {case.case_id} applied")


def by_unit(body):
    return {u["unit"]: u for u in body["units"]}


async def test_two_way_ratings_flow_into_composites(scoring, infra):
    topic = scoring.settings.kafka_topic
    # 鱼塘护栏: 通挽镇 calls 住建局 (lead) and 水利局 (co); 住建局 solves it, 水利局 never answers.
    case = Case(township="LB-WX-TW").filed(MON)
    case.called("CALL-1", "LB-WX-TW", ["LB-WX-ZJJ", "LB-WX-SLJ"], MON + timedelta(hours=1))
    lead = case.dispatched("LB-WX-ZJJ", MON + timedelta(hours=1), role="lead")
    co = case.dispatched("LB-WX-SLJ", MON + timedelta(hours=1), role="co")
    case.signed(lead, "LB-WX-ZJJ", MON + timedelta(hours=1, minutes=20)).signed(co, "LB-WX-SLJ", MON + timedelta(hours=1, minutes=30))
    case.resolved(lead, "LB-WX-ZJJ", MON + timedelta(days=2))
    await publish_many(infra.bootstrap_servers, topic, case.events)
    await status_is(scoring, case.case_id, "case.resolved")

    body = {"case_id": case.case_id, "call_id": "CALL-1", "unit": "LB-WX-ZJJ", "rating": "满意", "comment": "来得快"}
    early = await scoring.client.post("/api/v1/ratings/departments", json=body, headers=TW)
    assert early.status_code == 409 and early.json()["state"] == "open"

    closing = Case(case_id=case.case_id).closed(MON + timedelta(days=3)).rated("满意", MON + timedelta(days=4))
    await publish_many(infra.bootstrap_servers, topic, closing.events)
    await status_is(scoring, case.case_id, "case.rated")

    other = await scoring.client.post("/api/v1/ratings/departments", json=body, headers=WUXUAN)
    assert other.status_code == 403 and other.json()["type"].endswith("not-the-calling-township")
    first = await scoring.client.post("/api/v1/ratings/departments", json=body, headers=TW)
    assert first.status_code == 201, first.text
    assert first.json()["rater_unit"] == "LB-WX-TW" and first.json()["round"] == 0
    again = await scoring.client.post("/api/v1/ratings/departments", json={**body, "rating": "不满意"}, headers=TW)
    assert again.status_code == 409 and again.json()["type"].endswith("already-rated")
    poor = await scoring.client.post(
        "/api/v1/ratings/departments", json={**body, "unit": "LB-WX-SLJ", "rating": None, "score": 2}, headers=TW
    )
    assert poor.status_code == 201
    call = await scoring.client.post(
        "/api/v1/ratings/calls", json={"case_id": case.case_id, "call_id": "CALL-1", "justified": True, "complete": True},
        headers=WX_ZJJ,
    )
    assert call.status_code == 201 and call.json()["rated_unit"] == "LB-WX-TW"

    async with TopicReader(infra.bootstrap_servers, topic) as reader:
        async def rated_events():
            found = await reader.events(case_id=case.case_id, types="unit.rated")
            return found if len(found) == 3 else None
        events = await eventually(rated_events, what="three unit.rated events on the topic")
    assert {(e.payload.direction, e.payload.rated_unit) for e in events} == {
        ("township_rates_department", "LB-WX-ZJJ"), ("township_rates_department", "LB-WX-SLJ"),
        ("department_rates_call", "LB-WX-TW"),
    }

    shipped = by_unit(await get(scoring, "/api/v1/scores", as_=WX_CENTRE, county="LB-WX", **WEEK))
    # The shipped weights (version 2: 24 / 28 / 28 and the townships' rating 20). 住建局: signed on
    # time, solved, citizen satisfied, township satisfied → 100; 水利局: signed, nothing solved,
    # the township's poor rating → (24 + 28) / 100.
    assert (shipped["LB-WX-ZJJ"]["score"], shipped["LB-WX-SLJ"]["score"]) == ("100.00", "52.00")
    assert shipped["LB-WX-ZJJ"]["weights_version"] == 2
    assert shipped["LB-WX-SLJ"]["two_way"] == {"favourable": 0, "rated": 1, "rate": "0.00%"}
    # The department's rating of the call is the township's, shown and not weighed.
    assert shipped["LB-WX-TW"]["call_rating"] == {"favourable": 1, "rated": 1, "rate": "100.00%"}
    assert shipped["LB-WX-TW"]["two_way"]["rated"] == 0
    stats = await get(scoring, "/api/v1/stats/units/LB-WX-SLJ", as_=WX_CENTRE, **WEEK)
    assert stats["two_way"] == shipped["LB-WX-SLJ"]["two_way"] and stats["call_rating"]["rated"] == 0
    town = await get(scoring, "/api/v1/stats/units/LB-WX-TW", as_=WX_CENTRE, **WEEK)
    assert town["call_rating"] == shipped["LB-WX-TW"]["call_rating"]
    # Version 1, Zhungeer's 30 / 35 / 35 alone: the township's rating counted for nothing.
    v1 = by_unit(await get(scoring, "/api/v1/scores", as_=WX_CENTRE, county="LB-WX", weights_version=1, **WEEK))
    assert (v1["LB-WX-ZJJ"]["score"], v1["LB-WX-SLJ"]["score"]) == ("100.00", "65.00")

    denied = await scoring.client.post("/api/v1/weights", json={"response": 30, "resolution": 35, "satisfaction": 35,
                                                                "township_rating": 50}, headers=TW)
    assert denied.status_code == 403
    raised = await scoring.client.post("/api/v1/weights", json={"response": 30, "resolution": 35, "satisfaction": 35,
                                                                "township_rating": 50, "note": "乡镇评价权重提高"}, headers=OPS)
    assert raised.status_code == 201 and raised.json()["version"] == 3
    v3 = by_unit(await get(scoring, "/api/v1/scores", as_=WX_CENTRE, county="LB-WX", **WEEK))
    # The township's poor rating weighs more: 水利局 (30 + 35) / 150 = 43.33; 住建局 stays 100.
    assert (v3["LB-WX-ZJJ"]["score"], v3["LB-WX-SLJ"]["score"]) == ("100.00", "43.33")
    assert v3["LB-WX-SLJ"]["weights_version"] == 3 and v3["LB-WX-SLJ"]["rank"] > v3["LB-WX-ZJJ"]["rank"]

    published = await scoring.client.post("/api/v1/scores/publish", json={"county": "LB-WX", "period": "week", "date": "2026-11-18"}, headers=OPS)
    assert published.status_code == 201
    rows = {r["unit"]: r for r in published.json()["scores"]}
    assert rows["LB-WX-SLJ"]["score"] == "43.33" and rows["LB-WX-SLJ"]["weights_version"] == 3
    twice = await scoring.client.post("/api/v1/scores/publish", json={"county": "LB-WX", "period": "week", "date": "2026-11-18"}, headers=OPS)
    assert twice.status_code == 409


async def test_a_redo_counts_only_the_second_rating(scoring, infra):
    topic = scoring.settings.kafka_topic
    case = Case(township="LB-XC-CG").filed(MON)
    first = case.dispatched("LB-XC-CG", MON + timedelta(hours=1))
    case.signed(first, "LB-XC-CG", MON + timedelta(hours=1, minutes=10)).resolved(first, "LB-XC-CG", MON + timedelta(days=1))
    case.closed(MON + timedelta(days=1, hours=2)).rated("不满意", MON + timedelta(days=2))
    await publish_many(infra.bootstrap_servers, topic, case.events)
    await applied(scoring, case)
    first_round = len(case.events)
    before = await get(scoring, "/api/v1/stats/units/LB-XC-CG", **WEEK)
    assert (before["counts"]["rated"], before["counts"]["satisfied"], before["rates"]["satisfaction"]) == (1, 0, "0.0%")

    redo = case
    redo.reopened("LB-XC-CG", 1, MON + timedelta(days=2, hours=1))
    second = redo.dispatched("LB-XC-CG", MON + timedelta(days=2, hours=1), redo_round=1)
    redo.signed(second, "LB-XC-CG", MON + timedelta(days=2, hours=2)).resolved(second, "LB-XC-CG", MON + timedelta(days=3))
    redo.closed(MON + timedelta(days=3, hours=1)).rated("基本满意", MON + timedelta(days=4), round=1)
    redo.rated("不满意", MON + timedelta(days=4, hours=1), round=1, source="questionnaire")  # a survey, not the rating
    await publish_many(infra.bootstrap_servers, topic, redo.events[first_round:])
    await applied(scoring, case)

    after = await get(scoring, "/api/v1/stats/units/LB-XC-CG", **WEEK)
    assert (after["counts"]["rated"], after["counts"]["satisfied"], after["rates"]["satisfaction"]) == (1, 1, "100.0%")
    assert (after["counts"]["orders"], after["counts"]["reopened"], after["rates"]["reopen_rate"]) == (2, 1, "100.0%")
    town = await get(scoring, "/api/v1/stats/townships/LB-XC-CG", **WEEK)
    assert (town["counts"]["received"], town["counts"]["rated"], town["counts"]["satisfied"], town["counts"]["reopened"]) == (1, 1, 1, 1)


async def test_grid_workers_ranked_in_township_and_county(scoring, infra):
    at = MON
    events = [
        grid_activity("gw-tw-1", "LB-WX-TW-TW-G01", "login", at, count=30),  # 30 logins: capped at 22 points
        grid_activity("gw-tw-1", "LB-WX-TW-TW-G01", "report", at),
        grid_activity("gw-tw-2", "LB-WX-TW-DT-G01", "patrol", at, count=20),
        grid_activity("gw-tw-2", "LB-WX-TW-DT-G01", "solved_on_spot", at + timedelta(hours=1)),
        grid_activity("gw-wx-1", "LB-WX-WX-DX-G01", "event_handled", at, count=10),
        grid_activity("gw-wx-1", "LB-WX-WX-DX-G01", "report", datetime(2026, 10, 30, tzinfo=UTC)),  # October: not counted
    ]
    await publish_many(infra.bootstrap_servers, scoring.settings.kafka_topic, events)

    async def scored():
        body = await get(scoring, "/api/v1/grid/scores", as_=WX_CENTRE, month="2026-11", county="LB-WX")
        return body if len(body["workers"]) == 3 and sum(w["total"] for w in body["workers"]) == 27 + 68 + 50 else None
    body = await eventually(scored, what="three grid workers scored")
    workers = {w["worker_id"]: w for w in body["workers"]}
    assert [w["worker_id"] for w in body["workers"]] == ["gw-tw-2", "gw-wx-1", "gw-tw-1"]
    assert (workers["gw-tw-2"]["rank_in_county"], workers["gw-tw-2"]["rank_in_township"]) == (1, 1)
    assert (workers["gw-tw-1"]["rank_in_county"], workers["gw-tw-1"]["rank_in_township"]) == (3, 2)
    assert (workers["gw-wx-1"]["rank_in_county"], workers["gw-wx-1"]["rank_in_township"]) == (2, 1)
    # Version 2 (scoring_0007) is version 1 with the grid duties added (visits, mailbox, proxy services).
    assert workers["gw-tw-1"]["points"] == {"login": 22, "report": 5} and body["points_version"] == 2

    # Logins are worth more from version 3: the ranking follows the configuration.
    new = await scoring.client.post("/api/v1/grid/points", headers=OPS, json={
        "points": {"login": 3, "report": 5, "patrol": 3, "event_handled": 5, "solved_on_spot": 8, "info_update": 2},
        "caps": {"login": 90}, "note": "鼓励每日登录"})
    assert new.status_code == 201 and new.json()["version"] == 3
    again = await get(scoring, "/api/v1/grid/scores", as_=WX_CENTRE, month="2026-11", township="LB-WX-TW")
    assert [(w["worker_id"], w["total"], w["rank_in_township"]) for w in again["workers"]] == [
        ("gw-tw-1", 95, 1), ("gw-tw-2", 68, 2)]
    bad = await scoring.client.post("/api/v1/grid/points", headers=OPS, json={"points": {"selfies": 1}, "caps": {}})
    assert bad.status_code == 422 and "selfies" in bad.json()["detail"]


async def test_weekly_bulletin_of_xincheng(scoring, infra):
    # An overdue order: 交通运输局's resolve deadline passed (red card) before it answered.
    case = Case(township="LB-XC-CG", subject="transport").filed(MON + timedelta(hours=2))
    order = case.dispatched("LB-XC-JTJ", MON + timedelta(hours=3))
    case.signed(order, "LB-XC-JTJ", MON + timedelta(hours=3, minutes=30))
    case.warned("LB-XC-JTJ", "resolve", MON + timedelta(days=3), MON + timedelta(days=2))
    case.breached("LB-XC-JTJ", "resolve", MON + timedelta(days=3))
    case.resolved(order, "LB-XC-JTJ", MON + timedelta(days=4))
    await publish_many(infra.bootstrap_servers, scoring.settings.kafka_topic, case.events)
    await status_is(scoring, case.case_id, "case.resolved")

    doc = await get(scoring, "/api/v1/bulletins/LB-XC/weekly", date="2026-11-18")
    assert doc["title"] == "忻城县一周一通报（2026-W47）" and doc["period"]["from"] == "2026-11-16"
    units = {row["unit"]: row for row in doc["ranking"]}
    assert set(units) >= {"LB-XC-ZJJ", "LB-XC-SLJ", "LB-XC-JTJ", "LB-XC-CG"} and "LB-WX-TW" not in units
    ranked = [row["rank"] for row in doc["ranking"] if row["rank"] is not None]
    assert ranked == sorted(ranked) and ranked[0] == 1
    assert units["LB-XC-JTJ"]["counts"]["overdue"] == 1 and units["LB-XC-JTJ"]["rates"]["on_time_resolution"] == "0.0%"
    assert units["LB-XC-JTJ"]["counts"]["yellow"] == 1 and units["LB-XC-JTJ"]["counts"]["red"] == 1
    assert [o["order_no"] for o in doc["overdue"]] == [order]
    assert doc["topic_of_the_month"]["month"] == "2026-11"
    assert doc["summary"]["counts"]["received"] == 2  # this module's two 忻城 cases of the week (通挽镇's is 武宣县's)
    assert len(doc["trend"]) == 6 and doc["trend"][-1]["period"] == "2026-W47"
    assert doc["compared_with_previous"]["received"] == {"now": 2, "before": 0, "change": 2}

    response = await scoring.client.get("/api/v1/bulletins/LB-XC/weekly", params={"date": "2026-11-18", "format": "csv"}, headers=ZJJ)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert rows[0][:3] == ["排名", "单位代码", "单位"] and len(rows) == 1 + len(doc["ranking"])
    assert rows[1][0] == "1" and rows[1][1] == doc["ranking"][0]["unit"]

    page = await scoring.client.get("/api/v1/bulletins/LB-XC/weekly", params={"date": "2026-11-18", "format": "html"}, headers=CG)  # 城关镇: a township of 忻城县
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "<svg" in html and "<polyline" in html and "忻城县一周一通报" in html and "交通运输局" in html and order in html
    assert "<script" not in html


async def test_rebuild_gives_identical_numbers(scoring, infra):
    async def snapshot():
        return {
            "scores": await get(scoring, "/api/v1/scores", county="LB-XC", **WEEK),
            "cg": await get(scoring, "/api/v1/stats/townships/LB-XC-CG", period="month", date="2026-10-15"),
            "tw": await get(scoring, "/api/v1/stats/townships/LB-WX-TW", as_=WX_CENTRE, period="quarter", date="2026-09-15"),
            "unit": await get(scoring, "/api/v1/stats/units/LB-XC-CG", **WEEK),
            "grid": await get(scoring, "/api/v1/grid/scores", month="2026-11", county="LB-XC"),
            "bulletin": await get(scoring, "/api/v1/bulletins/LB-XC/weekly", date="2026-11-18"),
            "ratings": await get(scoring, "/api/v1/ratings", as_=WX_CENTRE, unit="LB-WX-TW"),
        }
    before = await snapshot()
    assert before["ratings"]["items"], "the two-way ratings are part of what gets rebuilt"

    denied = await scoring.client.post("/api/v1/admin/rebuild", headers=TW)
    assert denied.status_code == 403
    started = await scoring.client.post("/api/v1/admin/rebuild", headers=OPS)
    assert started.status_code == 202 and started.json()["state"] == "running"

    async def finished():
        status = (await scoring.client.get("/api/v1/admin/rebuild", headers=OPS)).json()
        return status if status["state"] != "running" else None
    status = await eventually(finished, timeout=120, interval=0.3, what="the rebuild to finish")
    assert status["state"] == "done", status
    assert status["events_read"] == status["highwater"] > 0 and status["events_failed"] == 0
    assert all(p["position"] == p["highwater"] for p in status["partitions"].values())

    assert await snapshot() == before
    # The live consumer runs again: a new event after the rebuild still lands.
    case = Case(township="LB-WX-TW").filed(MON + timedelta(days=1))
    await publish_many(infra.bootstrap_servers, scoring.settings.kafka_topic, case.events)
    await status_is(scoring, case.case_id, "case.triaged")
    after = await get(scoring, "/api/v1/stats/townships/LB-WX-TW", as_=WX_CENTRE, **WEEK)
    assert after["counts"]["received"] == 2
