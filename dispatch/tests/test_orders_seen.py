"""Who reads an order and what they see (issue #19, "What the roles could not do"): the
township that verifies sees each unit's order of its case — the answer, the work plan
(施工图), progress with photos, extensions — as does the centre; a department sees only its
own orders; and every reader's ``allowed_actions`` are exactly what the routes accept."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from shared.actors import actor_headers
from shared.events import CaseTriaged, FiveMatters, TriagedData, make_event, system_actor, utcnow
from shared.testing import AUDITOR, eventually, publish

from dispatch.tests.helpers import (
    CHENGGUAN, CLERK, DISPATCHER, GUARDRAIL, JTJ_CLERK, SLJ_CLERK, STREETLAMP, TONGWAN, WUXUAN, WX_DISPATCHER, WX_SLJ_CLERK,
    act,
    events_of, file_case, orders_of, reported_up,
)  # fmt: skip

QIANJIANG = actor_headers("qj-staff", "township_staff", "LB-XB-QJ")  # a township of another county (兴宾区)


def a_plan(days: int = 2) -> dict:
    return {"measures": "更换灯泡和线路", "planned_finish_at": (utcnow() + timedelta(days=days)).isoformat(),
            "responsible": "李工", "contact": "13800001111"}  # fmt: skip


async def read(service, path: str, headers: dict):
    return await service.client.get(f"/api/v1/{path}", headers=headers)


async def test_the_verifying_township_reads_the_departments_answer_plan_progress_and_extensions(dispatch):
    case_id = await file_case(dispatch, STREETLAMP)
    [order] = await orders_of(dispatch, case_id)
    no = order["order_no"]
    assert order["unit"] == "LB-XC-ZJJ"
    await act(dispatch, no, "sign", CLERK)
    plan = a_plan()
    assert (await act(dispatch, no, "plan", CLERK, plan)).status_code == 200
    progress = {"note": "已更换灯泡，线路检修中", "percent": 50, "attachments": ["att-lamp-1", "att-lamp-2"], "first_contact": True}
    assert (await act(dispatch, no, "progress", CLERK, progress)).status_code == 200
    first = (await act(dispatch, no, "extensions", CLERK, {"working_days": 3, "reason": "灯杆需更换，等待配件"})).json()
    decided = await dispatch.client.post(f"/api/v1/extensions/{first['detail']['request_id']}/decision", headers=DISPATCHER,
                                         json={"approve": True, "reason": "配件确需采购"})  # fmt: skip
    assert decided.status_code == 200, decided.text
    second = (await act(dispatch, no, "extensions", CLERK, {"working_days": 2, "reason": "仍在等待"})).json()
    assert (await act(dispatch, no, "resolve", CLERK, {"answer": "路灯已于次日晚修复"})).status_code == 200

    listed = await read(dispatch, f"cases/{case_id}/orders", CHENGGUAN)
    assert listed.status_code == 200, listed.text
    [seen] = listed.json()["orders"]
    single = await read(dispatch, f"orders/{no}", CHENGGUAN)
    assert single.status_code == 200, single.text
    for view in (seen, single.json()):
        assert view["order_no"] == no and view["unit_name"] == "忻城县住房和城乡建设局"
        assert view["answer"] == "路灯已于次日晚修复"
        filed = view["plan"]
        assert (filed["measures"], filed["responsible"], filed["contact"]) == ("更换灯泡和线路", "李工", "13800001111")
        assert datetime.fromisoformat(filed["planned_finish_at"]) == datetime.fromisoformat(plan["planned_finish_at"])
        [reported] = view["progress"]
        assert (reported["note"], reported["percent"], reported["attachments"], reported["first_contact"]) == (
            "已更换灯泡，线路检修中", 50, ["att-lamp-1", "att-lamp-2"], True)
        assert [(e["request_id"], e["working_days"], e["state"], e["decision_reason"]) for e in view["extensions"]] == [
            (first["detail"]["request_id"], 3, "approved", "配件确需采购"),
            (second["detail"]["request_id"], 2, "pending", None),
        ]
        assert view["allowed_actions"] == ["verify"], "城关镇 verifies; it does not act for the department"
    centre = (await read(dispatch, f"orders/{no}", DISPATCHER)).json()
    assert centre["answer"] == "路灯已于次日晚修复" and centre["plan"]["contact"] == "13800001111" and centre["progress"]
    clerk = (await read(dispatch, f"orders/{no}", CLERK)).json()
    assert clerk["plan"]["contact"] == "13800001111", "the work plan's contact is echoed when read back"
    assert clerk["allowed_actions"] == [], "resolved: the department waits for the township's verification"


async def test_the_calling_township_sees_every_order_of_its_case_a_department_only_its_own(dispatch, topic):
    case_id = await file_case(dispatch, GUARDRAIL)
    await reported_up(dispatch, case_id)
    whistle = await dispatch.client.post(f"/api/v1/cases/{case_id}/call", headers=TONGWAN, json={
        "units": ["LB-WX-JTJ", "LB-WX-SLJ"], "lead_unit": "LB-WX-JTJ", "reason": "鱼塘护栏涉及道路和水利",
    })  # fmt: skip
    assert whistle.status_code == 201, whistle.text
    by_unit = {o["unit"]: o for o in await orders_of(dispatch, case_id, 4, reader=WX_DISPATCHER)}
    jtj, slj = by_unit["LB-WX-JTJ"]["order_no"], by_unit["LB-WX-SLJ"]["order_no"]
    await act(dispatch, jtj, "sign", JTJ_CLERK)
    await act(dispatch, jtj, "plan", JTJ_CLERK, {**a_plan(4), "measures": "两日内勘测，四日内完成护栏安装"})
    await act(dispatch, jtj, "progress", JTJ_CLERK, {"note": "已完成现场勘测", "percent": 30, "attachments": ["att-pond-1"]})

    township = (await read(dispatch, f"cases/{case_id}/orders", TONGWAN)).json()["orders"]
    assert {o["unit"] for o in township} == {"LB-WX-TW-JL", "LB-WX-TW", "LB-WX-JTJ", "LB-WX-SLJ"}
    lead = (await read(dispatch, f"orders/{jtj}", TONGWAN)).json()
    assert lead["plan"]["measures"] == "两日内勘测，四日内完成护栏安装" and lead["plan"]["contact"] == "13800001111"
    assert lead["progress"][0]["attachments"] == ["att-pond-1"] and lead["allowed_actions"] == []

    # A department sees its own order of the case, never the other department's.
    own = (await read(dispatch, f"cases/{case_id}/orders", WX_SLJ_CLERK)).json()["orders"]
    assert [o["order_no"] for o in own] == [slj]
    assert (await read(dispatch, f"orders/{jtj}", WX_SLJ_CLERK)).status_code == 404
    assert (await read(dispatch, f"orders/{slj}", JTJ_CLERK)).status_code == 404
    # Another township of the county, and a township of another county: nothing.
    for stranger in (WUXUAN, QIANJIANG):
        assert (await read(dispatch, f"cases/{case_id}/orders", stranger)).status_code == 404
        assert (await read(dispatch, f"orders/{jtj}", stranger)).status_code == 404
    # The centre and the auditor see all four (the village's, reported up, the township's, the two called).
    for reader in (WX_DISPATCHER, AUDITOR):
        assert len((await read(dispatch, f"cases/{case_id}/orders", reader)).json()["orders"]) == 4

    # The departments called hear it from 通挽镇 by name, not by its code.
    [blown] = await events_of(topic, case_id, 1, types=("case.whistle_blown",))
    assert (blown.payload.township, blown.payload.township_name) == ("LB-WX-TW", "通挽镇")
    assert (blown.payload.lead_unit, blown.payload.lead_unit_name) == ("LB-WX-JTJ", "武宣县交通运输局")


async def test_a_county_call_names_the_calling_township(dispatch, topic):
    case_id = await file_case(dispatch, GUARDRAIL)
    await reported_up(dispatch, case_id)
    called = await dispatch.client.post(f"/api/v1/cases/{case_id}/call", headers=TONGWAN,
                                        json={"units": ["LB-WX-SLJ"], "reason": "需县水利局清理排水沟"})  # fmt: skip
    assert called.status_code == 201, called.text
    [event] = await events_of(topic, case_id, 1, types=("case.county_called",))
    assert (event.payload.township, event.payload.township_name) == ("LB-WX-TW", "通挽镇")


async def test_a_plan_filed_while_waiting_on_the_citizen_keeps_the_clocks_paused(dispatch):
    case_id = await file_case(dispatch, STREETLAMP)
    [order] = await orders_of(dispatch, case_id)
    no = order["order_no"]
    await act(dispatch, no, "sign", CLERK)
    assert (await act(dispatch, no, "suspend", CLERK, {"reason": "等待群众补充具体位置"})).status_code == 200
    assert (await act(dispatch, no, "plan", CLERK, a_plan())).status_code == 200
    twice = await act(dispatch, no, "suspend", CLERK, {"reason": "再等"})
    assert twice.status_code == 409 and twice.json()["allowed_actions"] == ["resume"], "still paused after the plan"
    view = (await read(dispatch, f"orders/{no}", CLERK)).json()
    assert view["suspended"] is True and view["plan"]["responsible"] == "李工"
    assert (await act(dispatch, no, "resume", CLERK)).status_code == 200


# --------------------------------------------------------------------------- allowed_actions = what the routes accept

ROLES = {"clerk": CLERK, "other_clerk": SLJ_CLERK, "centre": DISPATCHER, "township": CHENGGUAN, "auditor": AUDITOR}

# Each action's route and a valid body (each is accepted somewhere below, so a refusal is never a bad body).
ATTEMPTS = {
    "sign": ("orders/{no}/sign", {}),
    "return": ("orders/{no}/return", {"reason_code": "other", "reason": "该路灯不属本单位管理"}),
    "review_return": ("orders/{no}/review", {"upheld": False, "comment": "退单理由不成立"}),
    "survey": ("orders/{no}/survey", {"findings": "现场勘查：灯具损坏", "attachments": ["att_" + "5" * 32]}),
    "file_plan": ("orders/{no}/plan", None),
    "report_progress": ("orders/{no}/progress", {"note": "已联系群众"}),
    "request_extension": ("orders/{no}/extensions", {"working_days": 2, "reason": "等待配件"}),
    "decide_extension": ("extensions/{request_id}/decision", {"approve": True}),
    "resolve": ("orders/{no}/resolve", {"answer": "路灯已修复"}),
    "verify": ("cases/{case_id}/verify", {"passed": True}),
}

UNIT_WORK = {"survey", "file_plan", "report_progress", "request_extension", "resolve"}
# Who may do what in each state (the centre may act for the units it serves; the auditor reads only).
EXPECTED = {
    "dispatched": {"clerk": {"return", "sign"}, "centre": {"return", "sign"}},
    "returned": {"centre": {"review_return"}},
    "signed": {"clerk": UNIT_WORK, "centre": UNIT_WORK},
    "extension_pending": {"clerk": UNIT_WORK, "centre": UNIT_WORK | {"decide_extension"}},
    "resolved": {"township": {"verify"}, "centre": {"verify"}},
}


async def order_in(service, state: str) -> dict:
    """A fresh streetlamp order (住建局's, 城关镇's case) brought to ``state``."""
    case_id = await file_case(service, STREETLAMP)
    [order] = await orders_of(service, case_id)
    no, request_id = order["order_no"], None
    if state == "returned":
        assert (await act(service, no, "return", CLERK, ATTEMPTS["return"][1])).status_code == 200
    if state in ("signed", "extension_pending", "resolved"):
        assert (await act(service, no, "sign", CLERK)).status_code == 200
    if state == "extension_pending":
        asked = await act(service, no, "extensions", CLERK, {"working_days": 3, "reason": "灯杆需更换"})
        request_id = asked.json()["detail"]["request_id"]
    if state == "resolved":
        assert (await act(service, no, "resolve", CLERK, {"answer": "已修复"})).status_code == 200
    return {"case_id": case_id, "no": no, "request_id": request_id}


async def attempt(service, action: str, target: dict, headers: dict):
    path, body = ATTEMPTS[action]
    return await service.client.post(f"/api/v1/{path.format(**target)}", json=a_plan() if body is None else body, headers=headers)


async def allowed_for(service, target: dict, headers: dict) -> set[str]:
    answer = await read(service, f"orders/{target['no']}", headers)
    return set(answer.json()["allowed_actions"]) if answer.status_code == 200 else set()


async def test_every_role_is_offered_exactly_the_actions_its_routes_accept(dispatch):
    states = list(EXPECTED)
    targets = dict(zip(states, await asyncio.gather(*(order_in(dispatch, s) for s in states)), strict=True))
    trials = []
    for state, target in targets.items():
        before = (await read(dispatch, f"orders/{target['no']}", AUDITOR)).json()
        for role, headers in ROLES.items():
            allowed = await allowed_for(dispatch, target, headers)
            assert allowed == EXPECTED[state].get(role, set()), (state, role, allowed)
            for action in ATTEMPTS:
                if action == "decide_extension" and target["request_id"] is None:
                    continue  # nothing to decide: there is no request to name
                if action in allowed:
                    trials.append((state, role, action))
                    continue
                refused = await attempt(dispatch, action, target, headers)
                assert 400 <= refused.status_code < 500, (state, role, action, refused.status_code, refused.text)
                if action != "verify" and refused.status_code == 409 and "allowed_actions" in refused.json():
                    # An order's refusal names what this reader may do instead (verify answers for the case)
                    assert set(refused.json()["allowed_actions"]) == allowed, (state, role, action, refused.json())
        after = (await read(dispatch, f"orders/{target['no']}", AUDITOR)).json()
        assert (after["state"], after["version"]) == (before["state"], before["version"]), f"a refused action changed {state}"

    async def accepted(state: str, role: str, action: str) -> None:
        target = await order_in(dispatch, state)  # each allowed action on a fresh order of that state
        done = await attempt(dispatch, action, target, ROLES[role])
        assert done.status_code in (200, 201), (state, role, action, done.status_code, done.text)

    await asyncio.gather(*(accepted(*trial) for trial in trials))
    assert len(trials) == sum(len(actions) for by_role in EXPECTED.values() for actions in by_role.values())


async def test_the_township_that_called_keeps_seeing_the_orders_it_called_when_the_case_moves(dispatch):
    case_id = await file_case(dispatch, GUARDRAIL)
    await reported_up(dispatch, case_id)
    called = await dispatch.client.post(f"/api/v1/cases/{case_id}/call", headers=TONGWAN,
                                        json={"units": ["LB-WX-JTJ"], "reason": "需县交通运输局加装护栏"})  # fmt: skip
    assert called.status_code == 201, called.text
    [jtj] = called.json()["detail"]["orders"]
    # Intake places the case again, in 城关镇: the case is now 城关镇's to verify.
    moved = make_event(CaseTriaged, case_id=case_id, producer="intake", actor=system_actor("intake"), payload=TriagedData(
        category=FiveMatters.annoyance, subject_class="public_safety", location=STREETLAMP[3], confidence=0.9, region="LB-XC",
    ))  # fmt: skip
    await publish(dispatch.settings.kafka_bootstrap_servers, dispatch.settings.kafka_topic, moved)

    async def moved_to_chengguan():
        answer = await read(dispatch, f"cases/{case_id}/orders", CHENGGUAN)
        return answer.json()["orders"] if answer.status_code == 200 else None

    assert {o["unit"] for o in await eventually(moved_to_chengguan, what="城关镇 to own the case")} == {"LB-WX-TW-JL", "LB-WX-TW", "LB-WX-JTJ"}
    seen = await read(dispatch, f"cases/{case_id}/orders", TONGWAN)
    assert seen.status_code == 200, seen.text
    assert {o["order_no"] for o in seen.json()["orders"]} >= {jtj}, "通挽镇 still sees the order it called"
    assert (await read(dispatch, f"orders/{jtj}", TONGWAN)).status_code == 200
    assert (await dispatch.client.post(f"/api/v1/cases/{case_id}/verify", json={"passed": True}, headers=TONGWAN)).status_code == 404
