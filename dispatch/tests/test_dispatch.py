"""Dispatch over real HTTP with real PostgreSQL and a real broker: the 乡呼县应 loop."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from shared.events import Satisfaction, utcnow
from shared.testing import eventually
from shared.workdays import WorkingCalendar

from dispatch.tests.helpers import (
    CHENGGUAN, CLERK, DISPATCHER, GUARDRAIL, JTJ_CLERK, SLJ_CLERK, STREETLAMP, TONGWAN, WX_DISPATCHER, WX_SLJ_CLERK,
    ZRZYJ_CLERK,
    act, events_of, file_case, orders_of, rate, reported_up,
)  # fmt: skip


async def test_streetlamp_is_dispatched_by_the_catalogue_worked_verified_and_published(dispatch, topic):
    case_id = await file_case(dispatch, STREETLAMP)
    [order] = await orders_of(dispatch, case_id)
    assert (order["unit"], order["unit_name"], order["automatic"]) == ("LB-XC-ZJJ", "忻城县住房和城乡建设局", True)
    assert order["state"] == "dispatched" and order["allowed_actions"] == ["return", "sign"]
    assert order["order_no"].startswith("JB-XC-")
    no = order["order_no"]

    assert (await act(dispatch, no, "sign", CLERK)).status_code == 200
    plan = {"measures": "更换灯泡和线路", "planned_finish_at": (utcnow() + timedelta(days=1)).isoformat(), "responsible": "李工"}
    assert (await act(dispatch, no, "plan", CLERK, plan)).status_code == 200
    assert (await act(dispatch, no, "progress", CLERK, {"note": "已电话联系群众", "first_contact": True})).status_code == 200
    assert (await act(dispatch, no, "resolve", CLERK, {"answer": "路灯已于次日晚修复，请联系13812348000反馈"})).status_code == 200

    verified = await dispatch.client.post(f"/api/v1/cases/{case_id}/verify", headers=CHENGGUAN,
                                          json={"passed": True, "public_summary": "城中社区村口路灯已修复"})  # fmt: skip
    assert verified.status_code == 200, verified.text
    types = [e.type for e in await events_of(topic, case_id, 9)]
    assert types[-7:] == ["case.dispatched", "case.signed", "case.work_plan_filed", "case.progress_reported",
                          "case.resolved", "case.verified", "case.closed"]  # fmt: skip
    resolved = (await topic.events(case_id=case_id, types="case.resolved"))[0]
    assert "13812348000" not in resolved.payload.answer, "personal data masked on the topic"

    public = (await dispatch.client.get("/api/v1/public/closed")).json()["items"]
    assert any(item["summary"] == "城中社区村口路灯已修复" for item in public)
    final = (await dispatch.client.get(f"/api/v1/orders/{no}", headers=CLERK)).json()
    assert final["state"] == "closed"
    assert [h["action"] for h in final["history"]] == ["dispatch", "sign", "file_plan", "report_progress", "resolve", "verify"]


async def test_guardrail_village_to_township_to_county_and_back(dispatch, topic):
    """江龙村 reports the matter up to 通挽镇; the township calls the county; the unit surveys,
    plans, finishes; the township verifies, closes and publishes."""
    case_id = await file_case(dispatch, GUARDRAIL)
    township_order = await reported_up(dispatch, case_id)

    called = await dispatch.client.post(f"/api/v1/cases/{case_id}/call", headers=TONGWAN,
                                        json={"units": ["LB-WX-JTJ"], "reason": "需县交通运输局加装护栏"})  # fmt: skip
    assert called.status_code == 201, called.text
    orders = await orders_of(dispatch, case_id, 3, reader=WX_DISPATCHER)
    by_unit = {o["unit"]: o for o in orders}
    assert (by_unit["LB-WX-TW"]["order_no"], by_unit["LB-WX-TW"]["state"]) == (township_order, "reassigned")
    county = by_unit["LB-WX-JTJ"]
    assert county["call_id"] == called.json()["detail"]["call_id"]
    no = county["order_no"]
    await act(dispatch, no, "sign", JTJ_CLERK)
    plan = {"measures": "两日内勘测，四日内完成护栏安装", "planned_finish_at": (utcnow() + timedelta(days=4)).isoformat(),
            "responsible": "韦工", "contact": "13800001111"}  # fmt: skip
    assert (await act(dispatch, no, "plan", JTJ_CLERK, plan)).status_code == 200
    await act(dispatch, no, "progress", JTJ_CLERK, {"note": "已完成现场勘测", "percent": 30})
    await act(dispatch, no, "resolve", JTJ_CLERK, {"answer": "护栏已安装完毕"})
    assert (await dispatch.client.post(f"/api/v1/cases/{case_id}/verify", headers=TONGWAN, json={"passed": True})).status_code == 200

    events = await events_of(topic, case_id, 1, types=("case.county_called",))
    assert events[0].payload.township == "LB-WX-TW" and events[0].payload.units == ["LB-WX-JTJ"]
    plan_event = (await topic.events(case_id=case_id, types="case.work_plan_filed"))[0]
    assert plan_event.payload.contact_masked == "138****1111"
    await events_of(topic, case_id, 1, types=("case.closed",))


async def test_a_return_is_reviewed_and_redispatched(dispatch, topic):
    case_id = await file_case(dispatch, STREETLAMP)
    [order] = await orders_of(dispatch, case_id)
    body = {"reason_code": "not_our_duty", "reason": "该路段路灯由水利局管理", "suggested_unit": "LB-XC-SLJ"}
    assert (await act(dispatch, order["order_no"], "return", CLERK, body)).status_code == 200
    again = await act(dispatch, order["order_no"], "return", CLERK, body)
    assert again.status_code == 409 and again.json()["state"] == "returned"

    board = (await dispatch.client.get("/api/v1/board", headers=DISPATCHER)).json()
    assert order["order_no"] in [o["order_no"] for o in board["returned"]]
    assert (await act(dispatch, order["order_no"], "review", CLERK, {"upheld": True, "redispatch_to": "LB-XC-SLJ"})).status_code == 403
    reviewed = await act(dispatch, order["order_no"], "review", DISPATCHER, {"upheld": True, "redispatch_to": "LB-XC-SLJ"})
    assert reviewed.status_code == 200, reviewed.text
    orders = {o["unit"]: o for o in await orders_of(dispatch, case_id, 2)}
    assert orders["LB-XC-ZJJ"]["state"] == "reassigned" and orders["LB-XC-SLJ"]["state"] == "dispatched"
    assert (await act(dispatch, orders["LB-XC-SLJ"]["order_no"], "sign", SLJ_CLERK)).status_code == 200
    review = (await events_of(topic, case_id, 1, types=("case.return_reviewed",)))[0]
    assert review.payload.upheld and review.payload.redispatch_to == "LB-XC-SLJ"


async def test_a_whistle_has_a_lead_and_two_co_handlers_and_the_lead_resolves_last(dispatch, topic):
    case_id = await file_case(dispatch, GUARDRAIL)
    await reported_up(dispatch, case_id)
    whistle = await dispatch.client.post(f"/api/v1/cases/{case_id}/call", headers=TONGWAN, json={
        "units": ["LB-WX-JTJ", "LB-WX-SLJ", "LB-WX-ZRZYJ"], "lead_unit": "LB-WX-JTJ", "reason": "鱼塘护栏涉及道路、水利和用地",
        "respond_within_minutes": 30,
    })  # fmt: skip
    assert whistle.status_code == 201, whistle.text
    orders = {o["unit"]: o for o in await orders_of(dispatch, case_id, 5, reader=WX_DISPATCHER) if o["call_id"]}
    assert {u: o["role"] for u, o in orders.items()} == {"LB-WX-JTJ": "lead", "LB-WX-SLJ": "co", "LB-WX-ZRZYJ": "co"}
    lead, slj, zrzyj = orders["LB-WX-JTJ"]["order_no"], orders["LB-WX-SLJ"]["order_no"], orders["LB-WX-ZRZYJ"]["order_no"]
    for no, who in ((lead, JTJ_CLERK), (slj, WX_SLJ_CLERK), (zrzyj, ZRZYJ_CLERK)):
        assert (await act(dispatch, no, "sign", who)).status_code == 200

    early = await act(dispatch, lead, "resolve", JTJ_CLERK, {"answer": "护栏已装"})
    assert early.status_code == 409 and set(early.json()["waiting"]) == {"LB-WX-SLJ", "LB-WX-ZRZYJ"}
    co_resolve = await act(dispatch, slj, "resolve", WX_SLJ_CLERK, {"answer": "水利部分完成"})
    assert co_resolve.status_code == 409 and co_resolve.json()["allowed_actions"] == ["report_progress"]
    await act(dispatch, slj, "progress", WX_SLJ_CLERK, {"note": "排水沟已清理", "part_done": True})
    await act(dispatch, zrzyj, "progress", ZRZYJ_CLERK, {"note": "用地手续已办", "part_done": True})
    assert (await act(dispatch, lead, "resolve", JTJ_CLERK, {"answer": "护栏已装，各部门均已完成"})).status_code == 200
    event = (await events_of(topic, case_id, 1, types=("case.whistle_blown",)))[0]
    assert event.payload.lead_unit == "LB-WX-JTJ" and event.payload.respond_within_minutes == 30


async def test_extensions_within_the_limits_are_approved_and_beyond_them_refused(dispatch, topic):
    case_id = await file_case(dispatch, STREETLAMP)
    [order] = await orders_of(dispatch, case_id)
    no = order["order_no"]
    await act(dispatch, no, "sign", CLERK)
    too_long = await act(dispatch, no, "extensions", CLERK, {"working_days": 12, "reason": "需采购"})
    assert too_long.status_code == 422 and "at most 10" in too_long.json()["detail"]

    asked = await act(dispatch, no, "extensions", CLERK, {"working_days": 3, "reason": "灯杆需更换，等待配件"})
    assert asked.status_code == 201
    request_id = asked.json()["detail"]["request_id"]
    assert (await dispatch.client.post(f"/api/v1/extensions/{request_id}/decision", json={"approve": True}, headers=CLERK)).status_code == 403
    decided = await dispatch.client.post(f"/api/v1/extensions/{request_id}/decision", json={"approve": True}, headers=DISPATCHER)
    assert decided.status_code == 200 and decided.json()["detail"]["new_due_at"]
    twice = await dispatch.client.post(f"/api/v1/extensions/{request_id}/decision", json={"approve": False}, headers=DISPATCHER)
    assert twice.status_code == 409

    approved = (await events_of(topic, case_id, 1, types=("case.extension_approved",)))[0]
    assert approved.payload.working_days == 3
    assert approved.payload.new_due_at == WorkingCalendar().add_working_days(order_due(order), 3).due_at
    for _ in range(2):
        rid = (await act(dispatch, no, "extensions", CLERK, {"working_days": 3, "reason": "仍在等待"})).json()["detail"]["request_id"]
        await dispatch.client.post(f"/api/v1/extensions/{rid}/decision", json={"approve": True}, headers=DISPATCHER)
    fourth = await act(dispatch, no, "extensions", CLERK, {"working_days": 1, "reason": "再延一天"})
    assert fourth.status_code == 422 and "at most 3 extensions" in fourth.json()["detail"]


def order_due(order: dict) -> datetime:
    return datetime.fromisoformat(order["due_at"])


async def test_a_failed_verification_sends_the_order_back_and_a_redo_follows_an_unsatisfied_rating(dispatch, topic):
    case_id = await file_case(dispatch, STREETLAMP)
    [order] = await orders_of(dispatch, case_id)
    no = order["order_no"]
    await act(dispatch, no, "sign", CLERK)
    await act(dispatch, no, "resolve", CLERK, {"answer": "已修"})
    failed = await dispatch.client.post(f"/api/v1/cases/{case_id}/verify", headers=CHENGGUAN,
                                        json={"passed": False, "comment": "现场核查路灯仍不亮"})  # fmt: skip
    assert failed.status_code == 200
    back = (await dispatch.client.get(f"/api/v1/orders/{no}", headers=CLERK)).json()
    assert back["state"] == "in_progress" and "resolve" in back["allowed_actions"]
    await act(dispatch, no, "resolve", CLERK, {"answer": "已更换整条线路"})
    assert (await dispatch.client.post(f"/api/v1/cases/{case_id}/verify", headers=CHENGGUAN, json={"passed": True})).status_code == 200

    await rate(dispatch, case_id, Satisfaction.unsatisfied, round_=0)
    orders = await orders_of(dispatch, case_id, 2)
    redo = [o for o in orders if o["redo_round"] == 1]
    assert len(redo) == 1 and redo[0]["unit"] == "LB-XC-ZJJ" and redo[0]["state"] == "dispatched"
    reopened = (await events_of(topic, case_id, 1, types=("case.reopened",)))[0]
    assert reopened.payload.redo_round == 1 and reopened.payload.unit == "LB-XC-ZJJ"
    # The same rating delivered again, or a satisfied one, starts nothing more.
    await rate(dispatch, case_id, Satisfaction.unsatisfied, round_=0)
    await rate(dispatch, case_id, Satisfaction.satisfied, round_=1)
    await asyncio.sleep(1)
    assert len(await orders_of(dispatch, case_id, 2)) == 2


async def test_out_of_turn_concurrent_and_foreign_actions_are_refused(dispatch):
    case_id = await file_case(dispatch, STREETLAMP)
    [order] = await orders_of(dispatch, case_id)
    no = order["order_no"]
    early = await act(dispatch, no, "resolve", CLERK, {"answer": "已修"})
    assert early.status_code == 409
    assert early.json()["state"] == "dispatched" and early.json()["allowed_actions"] == ["return", "sign"]

    foreign = await act(dispatch, no, "sign", SLJ_CLERK)
    assert foreign.status_code == 404, "another unit's order answers as if it did not exist"

    both = await asyncio.gather(*(act(dispatch, no, "sign", CLERK, **{"If-Match": str(order["version"])}) for _ in range(2)))
    assert sorted(r.status_code for r in both) == [200, 409], "two clerks at once: one wins"
    stale = await act(dispatch, no, "progress", CLERK, {"note": "x"}, **{"If-Match": str(order["version"])})
    assert stale.status_code == 409 and stale.json()["version"] == order["version"] + 1


async def test_queues_count_by_state_and_the_board_shows_what_waits(dispatch):
    case_id = await file_case(dispatch, STREETLAMP)
    await orders_of(dispatch, case_id)
    queue = (await dispatch.client.get("/api/v1/units/LB-XC-ZJJ/orders?queue=to_sign", headers=CLERK)).json()
    assert queue["counts"]["to_sign"] >= 1 and any(i["case_id"] == case_id for i in queue["items"])
    assert set(queue["counts"]) == {"to_sign", "in_progress", "due_soon", "overdue", "returned", "resolved"}
    assert (await dispatch.client.get("/api/v1/units/LB-XC-ZJJ/orders", headers=SLJ_CLERK)).status_code == 404

    untriaged = await file_case(dispatch, STREETLAMP, triage=False)
    on_spot = await file_case(dispatch, STREETLAMP, solved_on_spot=True)

    async def waiting():
        board = (await dispatch.client.get("/api/v1/board", headers=DISPATCHER)).json()
        return {c["case_id"] for c in board["unassigned"]} if untriaged in {c["case_id"] for c in board["unassigned"]} else None

    unassigned = await eventually(waiting, what="the untriaged case on the board")
    assert on_spot not in unassigned, "solved on the spot (小事不出网格): never dispatched"
    by_hand = await dispatch.client.post(f"/api/v1/cases/{untriaged}/dispatch", headers=DISPATCHER,
                                         json={"unit": "LB-XC-ZJJ", "instructions": "请尽快处理"})  # fmt: skip
    assert by_hand.status_code == 201
    assert (await dispatch.client.post(f"/api/v1/cases/{untriaged}/dispatch", headers=DISPATCHER, json={"unit": "LB-XC-ZJJ"})).status_code == 409


async def test_a_duplicate_follows_its_main_case_and_closes_with_it(dispatch, topic):
    from dispatch.tests.helpers import merge

    main = await file_case(dispatch, STREETLAMP)
    [order] = await orders_of(dispatch, main)
    duplicate = await merge(dispatch, STREETLAMP, into=main)
    no = order["order_no"]
    await act(dispatch, no, "sign", CLERK)
    await act(dispatch, no, "resolve", CLERK, {"answer": "已修复"})
    assert (await dispatch.client.post(f"/api/v1/cases/{main}/verify", headers=CHENGGUAN, json={"passed": True})).status_code == 200
    closed = await events_of(topic, duplicate, 1, types=("case.closed",))
    assert closed[0].payload.public_summary
    assert await topic.events(case_id=duplicate, types="case.dispatched") == [], "a duplicate gets no order of its own"


async def test_an_order_waiting_on_the_citizen_is_suspended_and_resumed(dispatch, topic):
    case_id = await file_case(dispatch, STREETLAMP)
    [order] = await orders_of(dispatch, case_id)
    no = order["order_no"]
    assert (await act(dispatch, no, "suspend", CLERK, {"reason": "等待群众补充具体位置"})).status_code == 409, "sign first"
    await act(dispatch, no, "sign", CLERK)
    assert (await act(dispatch, no, "suspend", CLERK, {"reason": "等待群众补充具体位置"})).status_code == 200
    twice = await act(dispatch, no, "suspend", CLERK, {"reason": "再等"})
    assert twice.status_code == 409 and twice.json()["allowed_actions"] == ["resume"]
    assert (await act(dispatch, no, "resume", CLERK)).status_code == 200
    types = [e.type for e in await events_of(topic, case_id, 2, types=("case.suspended", "case.resumed"))]
    assert types == ["case.suspended", "case.resumed"]
