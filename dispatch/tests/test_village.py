"""The village level (村级, issue #23 item 2): "村级范围能解决的,由各村积极认领…及时上报镇级".

A case located in a village is the village's first: it claims it (认领) and handles it with
its own order, or reports it up (上报) to its township with a reason; the township may pass
it down (下派) again. Each person reads what they may and is offered what they may do.
"""

from __future__ import annotations

from datetime import datetime

from dispatch.tests.helpers import (
    DATANG, GUARDRAIL, JIANGLONG, JIANGLONG_GRID, TONGWAN, WUXUAN, WX_DISPATCHER,
    act, events_of, file_case, orders_of, reported_up,
)  # fmt: skip
from shared.actors import actor_headers
from shared.events import Location
from shared.testing import AUDITOR, eventually

JIANGLONG_CENTRE = actor_headers("jl-centre", "centre_dispatcher", "LB-WX-TW-JL-ZZZX")  # 江龙村综治中心
TONGWAN_CENTRE = actor_headers("tw-centre", "centre_dispatcher", "LB-WX-TW-ZZZX")  # 通挽镇综治中心
# The guardrail placed down to 江龙村's first grid, for what its grid worker sees.
GUARDRAIL_IN_GRID = (*GUARDRAIL[:3], Location(township="LB-WX-TW", village="LB-WX-TW-JL", grid="LB-WX-TW-JL-G01", street="江龙村"))


async def read(dispatch, path: str, headers: dict):
    return await dispatch.client.get(f"/api/v1/{path}", headers=headers)


async def test_a_case_in_a_village_is_the_villages_it_claims_handles_answers_and_the_township_verifies(dispatch, topic):
    case_id = await file_case(dispatch, GUARDRAIL_IN_GRID)
    [order] = await orders_of(dispatch, case_id, reader=WX_DISPATCHER)
    assert (order["unit"], order["unit_name"], order["automatic"]) == ("LB-WX-TW-JL", "江龙村", True)
    no = order["order_no"]

    # Who reads it, and what each may do: the village claims or reports up; nobody signs or returns it.
    def offered(view):
        return view.json()["allowed_actions"]

    assert offered(await read(dispatch, f"orders/{no}", JIANGLONG)) == ["claim", "report_up"]
    assert offered(await read(dispatch, f"orders/{no}", JIANGLONG_CENTRE)) == ["claim", "report_up"]
    assert offered(await read(dispatch, f"orders/{no}", TONGWAN)) == [], "the township reads its village's order, acts on it not"
    assert offered(await read(dispatch, f"orders/{no}", JIANGLONG_GRID)) == [], "the grid worker follows the case in its grid"
    assert offered(await read(dispatch, f"orders/{no}", AUDITOR)) == []
    for stranger in (DATANG, WUXUAN):  # another village of the same township, another township
        assert (await read(dispatch, f"orders/{no}", stranger)).status_code == 404
        assert (await read(dispatch, f"cases/{case_id}/orders", stranger)).status_code == 404
    # The village's queue is its own to see.
    queue = (await read(dispatch, "units/LB-WX-TW-JL/orders?queue=to_sign", JIANGLONG)).json()
    assert no in [o["order_no"] for o in queue["items"]]
    assert (await read(dispatch, "units/LB-WX-TW-JL/orders", DATANG)).status_code == 404

    refused = await act(dispatch, no, "sign", JIANGLONG)
    assert refused.status_code == 403 and refused.json()["allowed_actions"] == ["claim", "report_up"], refused.text
    assert (await act(dispatch, no, "claim", TONGWAN)).status_code == 403, "认领 is the village's own act"

    claimed = await act(dispatch, no, "claim", JIANGLONG)
    assert claimed.status_code == 200, claimed.text
    [signed] = await events_of(topic, case_id, 1, types=("case.signed",))
    assert (signed.payload.order_no, signed.payload.unit, signed.payload.claimed) == (no, "LB-WX-TW-JL", True)
    view = (await read(dispatch, f"orders/{no}", JIANGLONG)).json()
    assert view["state"] == "signed" and view["signed_at"] is not None
    assert view["allowed_actions"] == ["file_plan", "report_progress", "report_up", "request_extension", "resolve", "survey"]
    assert (await act(dispatch, no, "claim", JIANGLONG)).status_code == 409

    # Its own order, clocks and answer, as a township's runs.
    assert (await act(dispatch, no, "progress", JIANGLONG, {"note": "村里组织人员用竹木临时围挡", "percent": 50})).status_code == 200
    assert (await act(dispatch, no, "resolve", JIANGLONG, {"answer": "村里已在鱼塘边加装护栏"})).status_code == 200
    [answered] = await events_of(topic, case_id, 1, types=("case.resolved",))
    assert answered.payload.unit == "LB-WX-TW-JL"
    # The township verifies, closes and publishes; the village does not verify its own answer.
    assert (await dispatch.client.post(f"/api/v1/cases/{case_id}/verify", json={"passed": True}, headers=JIANGLONG)).status_code == 403
    verified = await dispatch.client.post(f"/api/v1/cases/{case_id}/verify", json={"passed": True}, headers=TONGWAN)
    assert verified.status_code == 200, verified.text
    await events_of(topic, case_id, 1, types=("case.closed",))


async def test_the_village_reports_up_with_a_reason_and_the_township_passes_it_down_again(dispatch, topic):
    case_id = await file_case(dispatch, GUARDRAIL)
    [order] = await orders_of(dispatch, case_id, reader=WX_DISPATCHER)
    village_no = order["order_no"]
    assert (await act(dispatch, village_no, "report-up", JIANGLONG, {})).status_code == 422, "上报 needs a reason"
    assert (await act(dispatch, village_no, "report-up", TONGWAN, {"reason": "镇里收回"})).status_code == 403
    assert (await act(dispatch, village_no, "report-up", DATANG, {"reason": "上报"})).status_code == 404
    # The township cannot call the county over the head of a village that holds the case.
    over = await dispatch.client.post(f"/api/v1/cases/{case_id}/call", headers=TONGWAN,
                                      json={"units": ["LB-WX-JTJ"], "reason": "需县交通运输局加装护栏"})  # fmt: skip
    assert over.status_code == 409 and over.json()["type"].endswith("/village-holds"), over.text

    township_no = await reported_up(dispatch, case_id, "鱼塘护栏需镇里协调资金，村里无力解决")
    [up] = await events_of(topic, case_id, 1, types=("case.reported_up",))
    assert (up.payload.order_no, up.payload.village, up.payload.village_name) == (village_no, "LB-WX-TW-JL", "江龙村")
    assert (up.payload.township, up.payload.township_name, up.payload.new_order_no) == ("LB-WX-TW", "通挽镇", township_no)
    assert up.payload.reason == "鱼塘护栏需镇里协调资金，村里无力解决"
    dispatched = {e.payload.order_no: e for e in await events_of(topic, case_id, 2, types=("case.dispatched",))}
    new = dispatched[township_no].payload
    assert (new.unit, new.handover, dispatched[village_no].payload.handover) == ("LB-WX-TW", 1, 0)

    township_order = (await read(dispatch, f"orders/{township_no}", TONGWAN)).json()
    assert township_order["due_at"] is not None and township_order["instructions"].startswith("村级上报")
    assert new.due_at == datetime.fromisoformat(township_order["due_at"]), "the deadline dispatch stored is the one on the event"
    assert township_order["allowed_actions"] == ["pass_down", "return", "sign"]
    assert (await read(dispatch, f"orders/{village_no}", JIANGLONG)).json()["state"] == "reassigned"
    # The village follows its case up: it reads the township's order, and may do nothing to it.
    seen = await read(dispatch, f"orders/{township_no}", JIANGLONG)
    assert seen.status_code == 200 and seen.json()["allowed_actions"] == []
    assert (await read(dispatch, f"orders/{township_no}", DATANG)).status_code == 404
    assert (await act(dispatch, township_no, "pass-down", JIANGLONG, {"reason": "退回村里"})).status_code == 403
    assert "pass_down" in (await read(dispatch, f"orders/{township_no}", TONGWAN_CENTRE)).json()["allowed_actions"]

    # 下派: only to a village of the township, with a reason; by default the case's own.
    elsewhere = await act(dispatch, township_no, "pass-down", TONGWAN, {"reason": "由村里办理", "village": "LB-XC-CG-CZ"})
    assert elsewhere.status_code == 422 and elsewhere.json()["field"] == "village", elsewhere.text
    down = await act(dispatch, township_no, "pass-down", TONGWAN, {"reason": "资金已落实，由村里组织安装"})
    assert down.status_code == 200, down.text
    again_no = down.json()["detail"]["new_order"]
    [passed] = await events_of(topic, case_id, 1, types=("case.passed_down",))
    assert (passed.payload.township, passed.payload.village, passed.payload.new_order_no) == ("LB-WX-TW", "LB-WX-TW-JL", again_no)
    again = (await read(dispatch, f"orders/{again_no}", JIANGLONG)).json()
    assert (again["unit"], again["state"], again["allowed_actions"]) == ("LB-WX-TW-JL", "dispatched", ["claim", "report_up"])

    # And up once more: each handover is an order of its own.
    assert (await act(dispatch, again_no, "claim", JIANGLONG)).status_code == 200
    up_again = await act(dispatch, again_no, "report-up", JIANGLONG, {"reason": "施工需镇里审批"})
    assert up_again.status_code == 200, up_again.text

    async def four():
        orders = (await read(dispatch, f"cases/{case_id}/orders", TONGWAN)).json()["orders"]
        return orders if len(orders) == 4 else None

    orders = await eventually(four, what="four orders: village, township, village, township")
    assert [(o["unit"], o["state"]) for o in orders] == [
        ("LB-WX-TW-JL", "reassigned"), ("LB-WX-TW", "reassigned"), ("LB-WX-TW-JL", "reassigned"), ("LB-WX-TW", "dispatched"),
    ]
    events = await events_of(topic, case_id, 4, types=("case.dispatched",))
    assert [e.payload.handover for e in events] == [0, 1, 2, 3]
