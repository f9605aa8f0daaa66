"""Who may read which appeal (issue #9): org scope, 404 for what is not yours, no mass assignment."""

from __future__ import annotations

import uuid
from datetime import timedelta

from shared.events import Actor, CaseDispatched, CaseSigned, DispatchedData, Role, SignedData, make_event
from shared.testing import AUDITOR, CENTRE, eventually, publish

from intake.tests.conftest import APP_SECRET
from intake.tests.test_intake_api import STREETLAMP, post, signed


def staff(role: str, unit: str | None = None) -> dict[str, str]:
    return {"X-Actor-Id": f"t-{role}", "X-Actor-Role": role, **({"X-Actor-Unit": unit} if unit else {})}


CHENGGUAN = staff("township_staff", "LB-XC-CG")
TONGWAN = staff("township_head", "LB-WX-TW")
ZJJ = staff("dept_clerk", "LB-XC-ZJJ")
XINGBIN_CENTRE = staff("centre_supervisor", "LB-XB-ZZZX")
OPS = staff("ops")
CITIZEN = staff("citizen")


async def read(intake, case_id: str, headers: dict[str, str]) -> int:
    return (await intake.client.get(f"/api/v1/appeals/{case_id}", headers=headers)).status_code


async def listed(intake, case_id: str, headers: dict[str, str]) -> bool:
    page = await intake.client.get("/api/v1/cases", params={"limit": 200}, headers=headers)
    assert page.status_code == 200, page.text
    return case_id in {item["case_id"] for item in page.json()["items"]}


async def dispatch_to(intake, case_id: str, order_no: str, unit_staff: dict[str, str]) -> CaseDispatched:
    """Dispatch's order of the case to the staff member's unit, once that unit can read the case."""
    order = make_event(
        CaseDispatched, case_id=case_id, producer="dispatch", actor=Actor(id="dispatch", role=Role.system),
        payload=DispatchedData(order_no=order_no, unit=unit_staff["X-Actor-Unit"], automatic=True),
    )
    await publish(intake.settings.kafka_bootstrap_servers, intake.settings.kafka_topic, order)

    async def seen():
        return await read(intake, case_id, unit_staff) == 200

    assert await eventually(seen)
    return order


async def test_an_appeal_is_seen_by_its_area_and_the_units_sent_to_it_and_404_for_everyone_else(intake):
    created = (await post(intake, STREETLAMP)).json()
    case_id = created["case_id"]
    assert (await intake.client.get(f"/api/v1/appeals/{case_id}", headers=AUDITOR)).json()["township"] == "LB-XC-CG"
    for who in (CENTRE, CHENGGUAN, AUDITOR):
        assert await read(intake, case_id, who) == 200, who
        assert await listed(intake, case_id, who), who
    for who in (TONGWAN, XINGBIN_CENTRE, ZJJ, OPS, CITIZEN):
        assert await read(intake, case_id, who) == 404, who  # the same answer as a made-up id
    for who in (TONGWAN, XINGBIN_CENTRE, ZJJ):
        assert not await listed(intake, case_id, who), who
    assert await read(intake, "no-such-case", CENTRE) == 404
    assert (await intake.client.get(f"/api/v1/appeals/{case_id}")).status_code == 401  # nobody said who they are
    for who in (OPS, CITIZEN):
        refused = await intake.client.get("/api/v1/cases", headers=who)
        assert refused.status_code == 403, refused.text

    # Dispatched to 住建局: from then on the department sees it, and the view names the handler.
    await dispatch_to(intake, case_id, "JB-XC-2026-000001", ZJJ)
    assert await listed(intake, case_id, ZJJ)
    view = (await intake.client.get(f"/api/v1/appeals/{case_id}", headers=ZJJ)).json()
    assert view["handler_unit"] == "LB-XC-ZJJ"
    other_department = staff("dept_head", "LB-XC-JTJ")
    assert await read(intake, case_id, other_department) == 404

    # Another appeal sent to 交通局: each department sees its own case only (a unit is
    # remembered on the case it was sent to, never on every appeal).
    second = (await post(intake, {**STREETLAMP, "title": "西宁街口红绿灯不亮"})).json()["case_id"]
    to_transport = await dispatch_to(intake, second, "JB-XC-2026-000002", other_department)
    assert await read(intake, case_id, other_department) == 404
    assert await read(intake, second, ZJJ) == 404

    # The status follows the latest report by event time, whatever the order of arrival: a
    # late copy of the order (an hour old) does not undo the signature that followed it.
    at = to_transport.occurred_at
    sign = make_event(CaseSigned, case_id=second, producer="dispatch", actor=Actor(id="dispatch", role=Role.system),
                      occurred_at=at + timedelta(minutes=1), payload=SignedData(order_no="JB-XC-2026-000002", unit="LB-XC-JTJ"))  # fmt: skip
    late = to_transport.model_copy(update={"id": uuid.uuid4(), "occurred_at": at - timedelta(hours=1)})
    await publish(intake.settings.kafka_bootstrap_servers, intake.settings.kafka_topic, sign)

    async def signed():
        return (await intake.client.get(f"/api/v1/appeals/{second}", headers=other_department)).json()["status"] == "in_progress"

    assert await eventually(signed)
    await publish(intake.settings.kafka_bootstrap_servers, intake.settings.kafka_topic, late)

    async def both_on_the_timeline():
        view = (await intake.client.get(f"/api/v1/appeals/{second}", headers=other_department)).json()
        return view if len([e for e in view["timeline"] if e["type"] == "case.dispatched"]) == 2 else None

    view = await eventually(both_on_the_timeline)
    assert view["status"] == "in_progress" and view["handler_unit"] == "LB-XC-JTJ"


async def test_the_app_backend_reads_its_own_citizens_appeal_and_no_one_elses(intake):
    phone = "13700004444"
    created = (await post(intake, {**STREETLAMP, "contact": {"name": "韦", "phone": phone}})).json()
    target = f"/api/v1/appeals/{created['case_id']}"
    mine = signed("appbackend", APP_SECRET, "GET", target, phone.encode(), **{"X-Citizen-Phone": phone})
    answer = await intake.client.get(target, headers=mine)
    assert answer.status_code == 200 and answer.json()["contact_phone"].startswith("137")
    assert phone not in answer.text  # masked even for its owner's app
    other = "13700005555"
    theirs = signed("appbackend", APP_SECRET, "GET", target, other.encode(), **{"X-Citizen-Phone": other})
    assert (await intake.client.get(target, headers=theirs)).status_code == 404
    forged = {**mine, "X-Citizen-Phone": other}  # the signature covers the phone: swapping it breaks it
    assert (await intake.client.get(target, headers=forged)).status_code == 401


async def test_an_appeal_body_cannot_set_what_only_the_system_decides(intake):
    body = {**STREETLAMP, "status": "closed", "handler_unit": "LB-XC-JTJ", "tracking_no": "XC-FAKE", "case_id": "mine"}
    created = await post(intake, body)
    assert created.status_code == 201, created.text
    view = (await intake.client.get(f"/api/v1/appeals/{created.json()['case_id']}", headers=AUDITOR)).json()
    assert view["status"] != "closed" and view["handler_unit"] is None
    assert view["tracking_no"] != "XC-FAKE" and view["case_id"] != "mine"


async def test_village_staff_and_grid_workers_see_their_own_village_only(intake):
    # Issue #23: "Village staff and grid workers see their village's cases" — a grid worker
    # every grid of its village's, none of another village's (read and list).
    created = (await post(intake, STREETLAMP)).json()
    view = (await intake.client.get(f"/api/v1/appeals/{created['case_id']}", headers=AUDITOR)).json()
    assert view["village"] == "LB-XC-CG-CZ"  # 城中社区, from the address
    assert await read(intake, created["case_id"], staff("village_staff", "LB-XC-CG-CZ")) == 200
    assert await read(intake, created["case_id"], staff("village_staff", "LB-XC-CG-CX")) == 404
    for grid in ("LB-XC-CG-CZ-G01", "LB-XC-CG-CZ-G02"):  # the case's grid and the village's other one
        assert await read(intake, created["case_id"], staff("grid_worker", grid)) == 200
        listed = (await intake.client.get("/api/v1/cases", headers=staff("grid_worker", grid))).json()
        assert created["case_id"] in [item["case_id"] for item in listed["items"]]
    assert await read(intake, created["case_id"], staff("grid_worker", "LB-XC-CG-CX-G01")) == 404  # 城西社区's grid
    listed = (await intake.client.get("/api/v1/cases", headers=staff("grid_worker", "LB-XC-CG-CX-G01"))).json()
    assert created["case_id"] not in [item["case_id"] for item in listed["items"]]


async def test_text_with_a_nul_character_is_refused_not_a_server_error(intake):
    # Found by fuzzing: PostgreSQL cannot store U+0000 in text; it is a 422 at the edge.
    answer = await post(intake, {**STREETLAMP, "description": "路灯\u0000坏了"})
    assert answer.status_code == 422 and "NUL" in answer.json()["detail"]
