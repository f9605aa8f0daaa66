"""Object- and function-level access in dispatch (issue #9): the auditor reads and changes
nothing; another county's centre neither sees nor dispatches nor verifies; clerks do not
approve extensions."""

from __future__ import annotations

from shared.actors import actor_headers
from shared.testing import AUDITOR, OPS

from dispatch.tests.helpers import CLERK, DISPATCHER, STREETLAMP, TONGWAN, act, extension_asked, file_case, orders_of

XINGBIN = actor_headers("xb", "centre_dispatcher", "LB-XB-ZZZX")


async def test_the_auditor_reads_every_order_and_acts_on_none(dispatch):
    case_id = await file_case(dispatch, STREETLAMP)
    [order] = await orders_of(dispatch, case_id)
    no = order["order_no"]
    assert (await dispatch.client.get(f"/api/v1/orders/{no}", headers=AUDITOR)).status_code == 200
    assert (await dispatch.client.get(f"/api/v1/cases/{case_id}/orders", headers=AUDITOR)).status_code == 200
    assert (await dispatch.client.get("/api/v1/units/LB-XC-ZJJ/orders", headers=AUDITOR)).status_code == 200
    assert (await dispatch.client.get("/api/v1/board", headers=AUDITOR)).status_code == 200
    signed = await act(dispatch, no, "sign", AUDITOR)
    # The auditor's role changes nothing anywhere: refused by the table whatever the order (403).
    assert signed.status_code == 403 and "auditor" not in signed.json()["allowed_roles"]
    assert (await dispatch.client.get(f"/api/v1/orders/{no}", headers=OPS)).status_code == 404


async def test_another_countys_centre_sees_and_does_nothing_here(dispatch):
    case_id = await file_case(dispatch, STREETLAMP)
    [order] = await orders_of(dispatch, case_id)
    assert (await dispatch.client.get(f"/api/v1/orders/{order['order_no']}", headers=XINGBIN)).status_code == 404
    assert (await dispatch.client.get(f"/api/v1/cases/{case_id}/orders", headers=XINGBIN)).status_code == 404
    body = {"unit": "LB-XC-SLJ", "resolution_class": "general"}
    assert (await dispatch.client.post(f"/api/v1/cases/{case_id}/dispatch", json=body, headers=XINGBIN)).status_code == 404
    verify = {"passed": True}
    assert (await dispatch.client.post(f"/api/v1/cases/{case_id}/verify", json=verify, headers=XINGBIN)).status_code == 404
    board = (await dispatch.client.get("/api/v1/board", headers=XINGBIN)).json()
    assert all(item["case_id"] != case_id for item in board["unassigned"])
    # 通挽镇 is not this case's township: it may not call the county on it.
    call = {"units": ["LB-XC-JTJ"], "reason": "需要县里支持"}
    assert (await dispatch.client.post(f"/api/v1/cases/{case_id}/call", json=call, headers=TONGWAN)).status_code == 404


async def test_a_clerk_may_not_decide_an_extension_nor_dispatch_by_hand(dispatch):
    case_id, _no, request_id = await extension_asked(dispatch)
    decided = await dispatch.client.post(f"/api/v1/extensions/{request_id}/decision", json={"approve": True}, headers=CLERK)
    assert decided.status_code == 403
    by_hand = await dispatch.client.post(f"/api/v1/cases/{case_id}/dispatch", json={"unit": "LB-XC-SLJ"}, headers=CLERK)
    assert by_hand.status_code == 403
    assert (await dispatch.client.post(f"/api/v1/extensions/{request_id}/decision", json={"approve": False, "reason": "不同意"},
                                       headers=DISPATCHER)).status_code == 200
