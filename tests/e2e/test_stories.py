"""The practice's two stories (docs/rules.md), and the cases around them, through every service as its own process, over HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from shared.actors import actor_headers
from shared.testing import AUDITOR, OPS, eventually, inbox_owner
from tests.e2e.harness import upload_photo

pytestmark = pytest.mark.slow

GRID_WORKER = "demo-grid-worker-cz"
CLERK = actor_headers("demo-dept-clerk", "dept_clerk", "LB-XC-ZJJ")
CHENGGUAN = actor_headers("cg-staff", "township_staff", "LB-XC-CG")
DISPATCHER = actor_headers("demo-centre-dispatcher", "centre_dispatcher", "LB-XC-ZZZX")
OPERATOR = actor_headers("callback-operator", "centre_dispatcher", "LB-XC-ZZZX")
# The fishpond story is 武宣县's: 通挽镇 and its 江龙村, 武宣县's centre and departments.
TONGWAN = actor_headers("demo-township-staff", "township_staff", "LB-WX-TW")
JIANGLONG_CLERK = actor_headers("demo-village-staff", "village_staff", "LB-WX-TW-JL")  # 江龙村's 五事 window
JTJ_CLERK = actor_headers("demo-dept-clerk-jtj", "dept_clerk", "LB-WX-JTJ")
WX_DISPATCHER = actor_headers("demo-centre-dispatcher-wx", "centre_dispatcher", "LB-WX-ZZZX")


async def the_order(platform, case_id: str, unit: str, reader: dict = DISPATCHER) -> dict:
    async def check():
        answer = await platform.dispatch.get(f"/api/v1/cases/{case_id}/orders", headers=reader)
        orders = [o for o in answer.json().get("orders", []) if o["unit"] == unit] if answer.status_code == 200 else []
        return orders[-1] if orders else None

    return await eventually(check, timeout=60, what=f"an order for {unit}")


async def any_order(platform, case_id: str, reader: dict = DISPATCHER) -> dict:
    async def check():
        answer = await platform.dispatch.get(f"/api/v1/cases/{case_id}/orders", headers=reader)
        orders = answer.json().get("orders", []) if answer.status_code == 200 else []
        return orders[0] if orders else None

    return await eventually(check, timeout=60, what=f"an order for case {case_id}")


async def timeline(platform, case_id: str, last: str) -> list[str]:
    return await timeline_until(platform, case_id, lambda types: last in types, what=f"{last} on the citizen's timeline")


async def timeline_until(platform, case_id: str, done, *, what: str) -> list[str]:
    """The event types on the citizen's timeline, once ``done(types)`` holds (intake reads the
    topic on its own time: a read right after another service acted may not show it yet)."""

    async def check():
        view = (await platform.intake.get(f"/api/v1/appeals/{case_id}", headers=AUDITOR)).json()
        types = [entry["type"] for entry in view["timeline"]]
        return types if done(types) else None

    return await eventually(check, timeout=60, what=what)


async def notify_callbacks(platform, case_id: str) -> list[dict]:
    """The case's callbacks as the centre's operator sees them (404 until notify has the case)."""
    answer = await platform.notify.get(f"/api/v1/cases/{case_id}/callbacks", headers=OPERATOR)
    return answer.json() if answer.status_code == 200 else []


async def callback_and_rate(platform, case_id: str, rating: str) -> dict:
    async def task():
        tasks = await notify_callbacks(platform, case_id)
        return tasks[-1] if tasks else None

    callback = await eventually(task, timeout=60, what="a callback task")
    await platform.notify.post("/api/v1/admin/clock", json={"now": callback["opens_at"]}, headers=OPS)  # 09:00, the next working day
    result = await platform.notify.post(f"/api/v1/callbacks/{callback['id']}/result", headers=OPERATOR,
                                        json={"reached": True, "rating": rating, "comment": "路灯亮了"})  # fmt: skip
    assert result.status_code == 200, result.text
    return callback


async def test_streetlamp_from_a_grid_worker_to_a_rated_answer(platform):
    """数字平安忻城: a grid worker reports a broken streetlamp; the centre's catalogue sends it to
    住建局; fixed the next evening; 城关镇 verifies; the citizen is called back and rates it."""
    report = {
        "title": "城中社区西宁街路灯不亮", "description": "网格员巡查发现：城中社区西宁街路灯坏了三天，晚上很黑，老人出门不安全。",
        "channel": "grid", "reporter_id": GRID_WORKER, "contact": {"name": "韦先生", "phone": "13812348000"},
        "location": {"address": "忻城县城关镇城中社区西宁街12号"},
    }  # fmt: skip
    worker = actor_headers(GRID_WORKER, "grid_worker", "LB-XC-CG-CZ-G01")  # the worker reports signed in
    created = await platform.intake.post("/api/v1/appeals", json=report, headers=worker)
    assert created.status_code == 201, created.text
    case_id = created.json()["case_id"]

    order = await the_order(platform, case_id, "LB-XC-ZJJ")
    assert order["automatic"] and order["unit_name"] == "忻城县住房和城乡建设局"
    queue = (await platform.dispatch.get("/api/v1/units/LB-XC-ZJJ/orders?queue=to_sign", headers=CLERK)).json()
    assert order["order_no"] in [o["order_no"] for o in queue["items"]], "the department sees it in its queue"
    no = order["order_no"]
    assert (await platform.dispatch.post(f"/api/v1/orders/{no}/sign", json={}, headers=CLERK)).status_code == 200
    answer = {"answer": "已于次日晚更换灯具，路灯恢复照明。"}
    assert (await platform.dispatch.post(f"/api/v1/orders/{no}/resolve", json=answer, headers=CLERK)).status_code == 200
    # 城关镇 verifies with 住建局's answer in view.
    [seen] = (await platform.dispatch.get(f"/api/v1/cases/{case_id}/orders", headers=CHENGGUAN)).json()["orders"]
    assert (seen["order_no"], seen["answer"], seen["allowed_actions"]) == (no, answer["answer"], ["verify"])
    verified = await platform.dispatch.post(f"/api/v1/cases/{case_id}/verify", headers=CHENGGUAN,
                                            json={"passed": True, "public_summary": "城中社区西宁街路灯已修复"})  # fmt: skip
    assert verified.status_code == 200, verified.text

    callback = await callback_and_rate(platform, case_id, "满意")
    assert callback["round"] == 0

    types = await timeline(platform, case_id, "case.rated")
    assert types[:3] == ["case.received", "case.accepted", "case.triaged"]
    for step in ("case.dispatched", "case.signed", "case.resolved", "case.verified", "case.closed",
                 "case.callback_completed", "case.rated"):  # fmt: skip
        assert step in types, f"the citizen sees {step}"
    view = (await platform.intake.get(f"/api/v1/appeals/{case_id}", headers=AUDITOR)).json()
    labels = [entry["label"] for entry in view["timeline"]]
    assert any("住房和城乡建设局" in (entry["detail"] or "") for entry in view["timeline"]), labels

    # The citizen was told by SMS that it was accepted, and given the answer.
    async def texts_to_the_citizen():
        sms = (await platform.receiver.get("/messages", params={"path": "/sms"})).json()["items"]
        mine = [m["json"]["text"] for m in sms if m["json"] and m["json"].get("to") == "13812348000"]
        return mine if any("受理" in t for t in mine) and any("办结" in t or "答复" in t for t in mine) else None

    await eventually(texts_to_the_citizen, timeout=30, what="the acceptance and the answer by SMS")
    public = (await platform.dispatch.get("/api/v1/public/closed")).json()["items"]
    assert any(p["summary"] == "城中社区西宁街路灯已修复" for p in public)


async def test_fishpond_guardrail_village_calls_township_township_calls_the_county(platform):
    """武宣县通挽镇江龙村: a villager reports at the village's 五事 window that the fishpond by the
    main road has no guardrail; the village reports it up to the township, which calls 武宣县交通运输局 (乡呼县应);
    the department surveys on site (现场勘查, a step of its own), plans, finishes; the township
    verifies and publishes. (The township surveying and installing itself, as the documents
    tell it: tests/e2e/test_roles.py.)"""
    appeal = {
        "title": "江龙村鱼塘边需要加装护栏", "description": "通挽镇江龙村村道旁的鱼塘边没有护栏，孩子上学路过很危险，村里解决不了。",
        "channel": "window", "contact": {"name": "甘先生", "phone": "13977710002"},
        "location": {"address": "武宣县通挽镇江龙村"},
    }  # fmt: skip
    created = await platform.intake.post("/api/v1/appeals", json=appeal, headers=JIANGLONG_CLERK)  # registered at the window
    assert created.status_code == 201, created.text
    case_id = created.json()["case_id"]
    # 江龙村 holds it first (村级) and, unable to solve it, reports it up to the township (上报).
    village_order = await the_order(platform, case_id, "LB-WX-TW-JL", JIANGLONG_CLERK)
    up = await platform.dispatch.post(f"/api/v1/orders/{village_order['order_no']}/report-up", headers=JIANGLONG_CLERK,
                                      json={"reason": "村里无力加装护栏，上报镇里"})  # fmt: skip
    assert up.status_code == 200, up.text
    township_order = await the_order(platform, case_id, "LB-WX-TW", WX_DISPATCHER)
    assert township_order["state"] == "dispatched"

    called = await platform.dispatch.post(f"/api/v1/cases/{case_id}/call", headers=TONGWAN,
                                          json={"units": ["LB-WX-JTJ"], "reason": "村、镇无力加装，需县交通运输局"})  # fmt: skip
    assert called.status_code == 201, called.text
    order = await the_order(platform, case_id, "LB-WX-JTJ", WX_DISPATCHER)
    no = order["order_no"]
    post = platform.dispatch.post
    assert (await post(f"/api/v1/orders/{no}/sign", json={}, headers=JTJ_CLERK)).status_code == 200
    assert order["survey_due_at"], "an on-site matter: the department's survey is due too"
    site = await upload_photo(platform, JTJ_CLERK)  # the survey's photo, uploaded as the department's clerk
    survey = {"findings": "鱼塘临路一侧约30米无护栏", "attachments": [site]}
    assert (await post(f"/api/v1/orders/{no}/survey", json=survey, headers=JTJ_CLERK)).status_code == 200
    surveyed = (await platform.dispatch.get(f"/api/v1/orders/{no}", headers=JTJ_CLERK)).json()
    plan = {"measures": "4日内完成护栏安装", "planned_finish_at": surveyed["due_at"], "responsible": "韦工"}
    assert (await post(f"/api/v1/orders/{no}/plan", json=plan, headers=JTJ_CLERK)).status_code == 200
    assert (await post(f"/api/v1/orders/{no}/progress", json={"note": "护栏安装中", "percent": 60}, headers=JTJ_CLERK)).status_code == 200
    assert (await post(f"/api/v1/orders/{no}/resolve", json={"answer": "护栏已安装"}, headers=JTJ_CLERK)).status_code == 200
    # 通挽镇 sees what 交通运输局 was asked, surveyed, planned, reported and answered.
    seen = (await platform.dispatch.get(f"/api/v1/orders/{no}", headers=TONGWAN)).json()
    assert (seen["answer"], seen["plan"]["measures"], seen["progress"][0]["note"]) == ("护栏已安装", plan["measures"], "护栏安装中")
    assert seen["survey"]["findings"] == survey["findings"]
    assert (await post(f"/api/v1/cases/{case_id}/verify", json={"passed": True, "public_summary": "江龙村鱼塘护栏已安装"},
                       headers=TONGWAN)).status_code == 200  # fmt: skip

    types = await timeline(platform, case_id, "case.closed")
    assert "case.county_called" in types and "case.surveyed" in types and "case.work_plan_filed" in types

    # 县乡双向考核: the township rates the department it called, once the case is closed.
    call_id = called.json()["detail"]["call_id"]
    rating = {"case_id": case_id, "call_id": call_id, "unit": "LB-WX-JTJ", "rating": "满意", "comment": "响应快，四天完工"}

    async def rated():
        answer = await platform.scoring.post("/api/v1/ratings/departments", json=rating, headers=TONGWAN)
        return answer if answer.status_code == 201 else None  # 409 until scoring has seen the case closed

    await eventually(rated, timeout=60, what="the township's rating of 交通运输局")
    again = await platform.scoring.post("/api/v1/ratings/departments", json=rating, headers=TONGWAN)
    assert again.status_code == 409, "once per case, call and round"
    ratings = (await platform.scoring.get("/api/v1/ratings", params={"case_id": case_id}, headers=TONGWAN)).json()
    assert "LB-WX-JTJ" in str(ratings) and "满意" in str(ratings)
    unit_rated = await eventually(lambda: platform.reader.events(case_id=case_id, types="unit.rated"), what="unit.rated")
    assert [e.payload.rated_unit for e in unit_rated] == ["LB-WX-JTJ"]

    # The scores 武宣县 would see today: 交通运输局 has the township's favourable rating and the
    # order it resolved counted; 通挽镇's case is counted as resolved in its area.
    async def scored():
        answer = await platform.scoring.get("/api/v1/scores", params={"county": "LB-WX", "period": "day"}, headers=WX_DISPATCHER)
        units = {u["unit"]: u for u in answer.json()["units"]} if answer.status_code == 200 else {}
        jtj = units.get("LB-WX-JTJ")
        return units if jtj and jtj["two_way"]["rated"] >= 1 else None

    units = await eventually(scored, timeout=60, what="交通运输局's composite with the township's rating")
    jtj = units["LB-WX-JTJ"]
    assert jtj["two_way"]["favourable"] >= 1 and jtj["counts"]["orders"] >= 1 and jtj["score"] is not None
    township = (await platform.scoring.get("/api/v1/stats/townships/LB-WX-TW", params={"period": "day"}, headers=TONGWAN)).json()
    assert township["counts"]["received"] >= 1 and township["counts"]["resolved"] >= 1


async def test_an_unsatisfied_citizen_gets_a_redo_and_rates_the_second_round(platform):
    """不满意 → 重办: the same unit works the case again as round 1; its callback is round 1."""
    report = {
        "title": "城西社区路灯又坏了", "description": "忻城县城关镇城西社区路灯修了以后又不亮了。",
        "channel": "app", "contact": {"name": "覃先生", "phone": "13812349999"},
        "location": {"address": "忻城县城关镇城西社区"},
    }  # fmt: skip
    case_id = (await platform.intake.post("/api/v1/appeals", json=report)).json()["case_id"]
    post = platform.dispatch.post

    async def work_round(round_: int) -> None:
        async def order_of_round():
            answer = await platform.dispatch.get(f"/api/v1/cases/{case_id}/orders", headers=DISPATCHER)
            found = [o for o in answer.json().get("orders", []) if o["redo_round"] == round_] if answer.status_code == 200 else []
            return found[0] if found else None

        order = await eventually(order_of_round, timeout=60, what=f"the order of round {round_}")
        assert order["unit"] == "LB-XC-ZJJ", "the redo goes back to the unit that handled it"
        no = order["order_no"]
        assert (await post(f"/api/v1/orders/{no}/sign", json={}, headers=CLERK)).status_code == 200
        assert (await post(f"/api/v1/orders/{no}/resolve", json={"answer": f"第{round_ + 1}次维修完成"}, headers=CLERK)).status_code == 200

        async def verified():
            answer = await post(f"/api/v1/cases/{case_id}/verify", json={"passed": True}, headers=CHENGGUAN)
            return answer if answer.status_code == 200 else None

        await eventually(verified, timeout=30, what=f"verification of round {round_}")

    await work_round(0)
    first = await callback_and_rate(platform, case_id, "不满意")
    await work_round(1)

    async def second_callback():
        tasks = await notify_callbacks(platform, case_id)
        return [t for t in tasks if t["round"] == 1] or None

    [task] = await eventually(second_callback, timeout=60, what="the round-1 callback")
    assert task["id"] != first["id"]
    await platform.notify.post("/api/v1/admin/clock", json={"now": task["opens_at"]}, headers=OPS)  # when the call can be made
    done = await platform.notify.post(f"/api/v1/callbacks/{task['id']}/result", headers=OPERATOR,
                                      json={"reached": True, "rating": "满意"})  # fmt: skip
    assert done.status_code == 200, done.text
    # Wait for the second close itself: case.reopened is on the timeline long before it.
    types = await timeline_until(platform, case_id, lambda t: t.count("case.closed") >= 2, what="the second case.closed on the timeline")
    assert "case.reopened" in types
    assert types.count("case.dispatched") == 2 and types.count("case.closed") == 2


async def test_an_overdue_order_gets_yellow_and_red_cards_urging_and_supervision(platform):
    """黄牌 → 红牌 → 催办 → 督办: the department hears of each in its inbox, its head of the red card."""
    report = {
        "title": "西宁街市政道路路灯不亮", "description": "忻城县城关镇城中社区西宁街路灯不亮已一周。",
        "channel": "app", "contact": {"name": "韦先生", "phone": "13812347777"},
        "location": {"address": "忻城县城关镇城中社区西宁街"},
    }  # fmt: skip
    case_id = (await platform.intake.post("/api/v1/appeals", json=report)).json()["case_id"]
    order = await the_order(platform, case_id, "LB-XC-ZJJ")
    due = order["due_at"]
    supervisor = actor_headers("sup", "centre_supervisor", "LB-XC-ZZZX")

    async def resolve_clock():
        clocks = (await platform.sla.get(f"/api/v1/cases/{case_id}/clocks", headers=DISPATCHER)).json().get("clocks", [])
        found = [c for c in clocks if c.get("unit") == "LB-XC-ZJJ" and "resolve" in (c.get("kind") or c.get("name") or "")]
        return found[0] if found else None

    clock = await eventually(resolve_clock, timeout=60, what="SLA's resolve clock for 住建局")
    assert clock["due_at"] == due, "SLA and dispatch agree on the deadline"
    later = datetime.fromisoformat(due) + timedelta(days=10)  # well past the due time and N working days more
    moved = await platform.sla.post("/api/v1/admin/time", json={"now": later.isoformat()}, headers=supervisor)
    assert moved.status_code == 200, moved.text

    async def cards():
        events = await platform.reader.events(case_id=case_id)
        kinds = {e.type for e in events if e.type.startswith("sla.")}
        return kinds if {"sla.warning", "sla.breached", "sla.urged", "sla.escalated"} <= kinds else None

    await eventually(cards, timeout=60, what="yellow, red, urging and escalation on the topic")

    async def inbox(role: str, want: int):
        found = (await platform.notify.get(f"/api/v1/inbox/unit:LB-XC-ZJJ:{role}", headers=inbox_owner(f"unit:LB-XC-ZJJ:{role}"))).json()["items"]
        return found if len(found) >= want else None

    duty = await eventually(lambda: inbox("duty", 4), timeout=60, what="the duty person's messages")
    head = await eventually(lambda: inbox("head", 1), timeout=60, what="the head's red-card message")
    assert any("红牌" in (m.get("text") or m.get("body") or "") for m in head), head
    assert len(duty) >= 4
    board = (await platform.sla.get("/api/v1/board", headers=DISPATCHER)).json()
    assert "LB-XC-ZJJ" in str(board)


async def test_two_reports_of_one_matter_are_merged_and_close_with_the_main_case(platform):
    """Two villagers report the same rubbish heap in 六纳村 within minutes: the second is
    merged (并单) into the first, is never dispatched itself, and closes when the first does."""
    place = {"address": "武宣县通挽镇六纳村"}
    first = {"title": "六纳村村口垃圾成堆", "description": "六纳村村口垃圾堆放多日无人清理，气味难闻。", "channel": "app",
             "contact": {"name": "韦大姐", "phone": "13977720001"}, "location": place}  # fmt: skip
    second = {"title": "六纳村村口垃圾成堆没人管", "description": "六纳村村口垃圾堆放多日无人清理，气味很难闻。", "channel": "wechat",
              "contact": {"name": "覃师傅", "phone": "13977720002"}, "location": place}  # fmt: skip
    main_id = (await platform.intake.post("/api/v1/appeals", json=first)).json()["case_id"]
    merged = (await platform.intake.post("/api/v1/appeals", json=second)).json()
    assert merged["status"] == "merged" and merged["merged_into"] == main_id
    assert "case.merged" in await timeline(platform, merged["case_id"], "case.merged")

    order = await any_order(platform, main_id, WX_DISPATCHER)  # whoever the catalogue gives it to
    # 六纳村 holds a matter of its own first (村级) and claims it (认领); a township or a department signs.
    role = {"LB-WX-TW": "township_staff", "LB-WX-TW-LN": "village_staff"}.get(order["unit"], "dept_clerk")
    handler = actor_headers("handler", role, order["unit"])
    no = order["order_no"]
    post = platform.dispatch.post
    take = "claim" if role == "village_staff" else "sign"
    assert (await post(f"/api/v1/orders/{no}/{take}", json={}, headers=handler)).status_code == 200
    assert (await post(f"/api/v1/orders/{no}/resolve", json={"answer": "已组织清运"}, headers=handler)).status_code == 200
    verified = await post(f"/api/v1/cases/{main_id}/verify", json={"passed": True, "public_summary": "六纳村村口垃圾已清运"},
                          headers=TONGWAN)  # fmt: skip
    assert verified.status_code == 200, verified.text

    # The duplicate had no order of its own, and closes with its main case.
    orders = (await platform.dispatch.get(f"/api/v1/cases/{merged['case_id']}/orders", headers=WX_DISPATCHER))
    assert orders.status_code == 404 or orders.json()["orders"] == []
    await timeline(platform, merged["case_id"], "case.closed")
    view = (await platform.intake.get(f"/api/v1/appeals/{merged['case_id']}", headers=TONGWAN)).json()
    assert view["status"] == "closed" and view["merged_into"] == main_id


async def test_a_return_reviewed_and_redispatched_then_an_extension_moves_the_deadline(platform):
    """住建局 returns a ditch inside a village as not its duty; the centre upholds it and
    re-dispatches to 城关镇, which asks for 3 more working days; the centre approves and
    SLA's resolve deadline for the township moves; 住建局's return is counted."""
    appeal = {"title": "板江村排水沟淤塞", "description": "城关镇板江村屯内排水沟淤塞发臭，请求清理。", "channel": "app",
              "contact": {"name": "莫先生", "phone": "13977730003"}, "location": {"address": "忻城县城关镇板江村"}}  # fmt: skip
    case_id = (await platform.intake.post("/api/v1/appeals", json=appeal)).json()["case_id"]
    first = await the_order(platform, case_id, "LB-XC-ZJJ")
    post = platform.dispatch.post
    returned = await post(f"/api/v1/orders/{first['order_no']}/return", headers=CLERK, json={
        "reason_code": "not_our_duty", "reason": "屯内排水沟属村级设施，应由镇村组织清理", "suggested_unit": "LB-XC-CG"})
    assert returned.status_code == 200, returned.text
    clerk_tries_to_approve = await post(f"/api/v1/orders/{first['order_no']}/review", headers=CLERK,
                                        json={"upheld": True, "redispatch_to": "LB-XC-CG"})  # fmt: skip
    assert clerk_tries_to_approve.status_code == 403  # the centre reviews, not the unit
    reviewed = await post(f"/api/v1/orders/{first['order_no']}/review", headers=DISPATCHER,
                          json={"upheld": True, "comment": "属实", "redispatch_to": "LB-XC-CG"})  # fmt: skip
    assert reviewed.status_code == 200, reviewed.text

    order = await the_order(platform, case_id, "LB-XC-CG")
    no = order["order_no"]
    assert (await post(f"/api/v1/orders/{no}/sign", json={}, headers=CHENGGUAN)).status_code == 200

    async def resolve_clock():
        answer = await platform.sla.get(f"/api/v1/cases/{case_id}/clocks", headers=DISPATCHER)
        clocks = answer.json().get("clocks", []) if answer.status_code == 200 else []
        found = [c for c in clocks if c["name"] == "resolve" and c["unit"] == "LB-XC-CG"]
        return found[0] if found else None

    before = await eventually(resolve_clock, timeout=60, what="the township's resolve clock")
    asked = await post(f"/api/v1/orders/{no}/extensions", headers=CHENGGUAN, json={"working_days": 3, "reason": "需协调挖掘机"})
    assert asked.status_code == 201, asked.text
    request_id = asked.json()["detail"]["request_id"]
    approved = await post(f"/api/v1/extensions/{request_id}/decision", json={"approve": True}, headers=DISPATCHER)
    assert approved.status_code == 200, approved.text

    async def moved():
        clock = await resolve_clock()
        return clock if clock and clock["due_at"] > before["due_at"] else None

    after = await eventually(moved, timeout=60, what="SLA to move the deadline")
    assert datetime.fromisoformat(after["due_at"]) - datetime.fromisoformat(before["due_at"]) >= timedelta(days=3)
    types = await timeline(platform, case_id, "case.extension_approved")
    assert {"case.returned", "case.return_reviewed", "case.extension_requested"} <= set(types)

    # Scoring counts the return against 住建局 (退单率).
    async def return_counted():
        stats = await platform.scoring.get("/api/v1/stats/units/LB-XC-ZJJ", params={"period": "day"}, headers=DISPATCHER)
        counts = stats.json()["counts"] if stats.status_code == 200 else {}
        return counts if counts.get("returned", 0) >= 1 else None

    await eventually(return_counted, timeout=60, what="the return counted for 住建局")
