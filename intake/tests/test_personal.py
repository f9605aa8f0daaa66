"""Contact details in clear only for the staff who handle the appeal, each view audited."""

from __future__ import annotations

from shared.testing import AUDITOR, CENTRE

from intake.tests.test_access import CHENGGUAN, OPS, ZJJ, staff
from intake.tests.test_intake_api import PHONE, STREETLAMP, post

WHY = {"reason": "电话回访核实路灯位置"}


async def test_a_handler_sees_the_contact_with_a_reason_and_the_view_is_logged(intake):
    case_id = (await post(intake, STREETLAMP)).json()["case_id"]
    url = f"/api/v1/appeals/{case_id}/contact"
    for who in (ZJJ, staff("township_head", "LB-WX-TW")):
        assert (await intake.client.post(url, json=WHY, headers=who)).status_code == 404, who  # not their case
    assert (await intake.client.post(url, json=WHY, headers=OPS)).status_code == 403  # ops sees no case, whatever the id
    assert (await intake.client.post(url, json=WHY, headers=AUDITOR)).status_code == 403  # reads the log, not the data
    assert (await intake.client.post(url, json={}, headers=CENTRE)).status_code == 422  # no reason, no view

    shown = await intake.client.post(url, json=WHY, headers=CHENGGUAN)
    assert shown.status_code == 200, shown.text
    details = shown.json()
    assert details["phone"] == PHONE and details["name"] == "韦先生" and details["id_number"] == "45132219800101123X"
    assert "西宁街12号" in details["address"]

    log = await intake.client.get("/api/v1/audit/contact-views", params={"case_id": case_id}, headers=AUDITOR)
    assert log.status_code == 200
    [entry] = log.json()["items"]
    assert (entry["actor_id"], entry["role"], entry["unit"], entry["reason"]) == (
        CHENGGUAN["X-Actor-Id"], "township_staff", "LB-XC-CG", WHY["reason"],
    )
    assert entry["id"] == details["view_id"]
    assert PHONE not in log.text  # the log says who looked, not what they saw
    assert (await intake.client.get("/api/v1/audit/contact-views", headers=CENTRE)).status_code == 403
