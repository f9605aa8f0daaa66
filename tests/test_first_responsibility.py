"""首问负责制 through the running services, over HTTP (docs/rules.md).

The unit that first learns of an appeal answers for getting it done and is held to account,
whoever handles it later: intake fixes it on case.received, every service carries it — the
case shows it (intake's and dispatch's views), that unit reads the case, its cards and
urgings are copied to that unit's inbox (notify), and scoring counts the cases it was first
asked about and how they ended.

The story: 城中社区's 五事 window takes down a matter of the neighbouring 城东社区 (a row of
streetlamps); the catalogue sends it to 忻城县住建局, which lets it run overdue; 城中社区 gets
the red card and the urging as copies, and its own figure counts the case.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

from shared.actors import actor_headers
from shared.testing import AUDITOR, Infra, eventually
from shared.workdays import LOCAL, WorkingCalendar
from tests.stack import platform

CHENGZHONG = actor_headers("demo-village-staff-cz", "village_staff", "LB-XC-CG-CZ")  # 城中社区's window
CHENGXI = actor_headers("cx-staff", "village_staff", "LB-XC-CG-CX")  # another village of the same township
CLERK = actor_headers("demo-dept-clerk", "dept_clerk", "LB-XC-ZJJ")
OTHER_DEPT = actor_headers("slj-clerk", "dept_clerk", "LB-XC-SLJ")
CHENGGUAN = actor_headers("cg-staff", "township_staff", "LB-XC-CG")
OPERATOR = actor_headers("callback-operator", "centre_dispatcher", "LB-XC-ZZZX")
OPS = {"X-Actor-Id": "test-ops", "X-Actor-Role": "ops"}
CZ_INBOX = "unit:LB-XC-CG-CZ:duty"

# A row of streetlamps in 城东社区, not 城中社区: the place must be another village of the same
# township than the window's, or the first unit would simply be the case's own village.
STREETLAMP = {
    "title": "城东路路灯一排不亮", "description": "城东路一排路灯晚上一直不亮，电话反映说是节能关了，群众到社区窗口反映。",
    "channel": "window", "contact": {"name": "韦某", "phone": "13800002222"},
    "location": {"address": "忻城县城关镇城东社区城东路12号"},
}  # fmt: skip


async def the_order(p: SimpleNamespace, case_id: str, reader: dict) -> dict:
    async def found():
        answer = await p.dispatch.get(f"/api/v1/cases/{case_id}/orders", headers=reader)
        return answer.json() if answer.status_code == 200 and answer.json()["orders"] else None

    return await eventually(found, timeout=30, what="the case's order")


async def inbox_kinds(p: SimpleNamespace, recipient: str, headers: dict) -> list[str]:
    answer = await p.notify.get(f"/api/v1/inbox/{recipient}", headers=headers)
    assert answer.status_code == 200, answer.text
    return [item["kind"] for item in answer.json()["items"]]


async def first_figure(p: SimpleNamespace, unit: str, reader: dict) -> dict:
    today = datetime.now(LOCAL).date()
    span = {"period": "custom", "from": (today - timedelta(days=1)).isoformat(), "to": (today + timedelta(days=1)).isoformat()}
    answer = await p.scoring.get(f"/api/v1/stats/units/{unit}", params=span, headers=reader)
    assert answer.status_code == 200, answer.text
    return answer.json()["first_responsibility"]


async def test_the_window_that_first_took_an_appeal_follows_it_to_the_end(infra: Infra) -> None:
    async with platform(infra) as p:
        created = await p.intake.post("/api/v1/appeals", json=STREETLAMP, headers=CHENGZHONG)
        assert created.status_code == 201, created.text
        case_id = created.json()["case_id"]

        # Shown on the case, and the first unit reads it although the matter is 城东社区's;
        # another village of the same township does not.
        view = await p.intake.get(f"/api/v1/appeals/{case_id}", headers=CHENGZHONG)
        assert view.status_code == 200, view.text
        assert (view.json()["first_unit"], view.json()["first_unit_name"]) == ("LB-XC-CG-CZ", "城中社区")
        assert view.json()["village"] == "LB-XC-CG-CD"
        assert (await p.intake.get(f"/api/v1/appeals/{case_id}", headers=CHENGXI)).status_code == 404
        listed = await p.intake.get("/api/v1/cases", headers=CHENGZHONG)
        assert listed.status_code == 200, listed.text
        assert case_id in [item["case_id"] for item in listed.json()["items"]]
        unlisted = await p.intake.get("/api/v1/cases", headers=CHENGXI)
        assert case_id not in [item["case_id"] for item in unlisted.json()["items"]]

        # Dispatch: the catalogue sends streetlamps to 住建局; the first unit follows the order.
        seen = await the_order(p, case_id, CHENGZHONG)
        assert seen["first_unit"] == "LB-XC-CG-CZ" and seen["first_unit_name"] == "城中社区"
        [order] = seen["orders"]
        assert order["unit"] == "LB-XC-ZJJ"
        assert (await p.dispatch.get(f"/api/v1/orders/{order['order_no']}", headers=CHENGZHONG)).status_code == 200
        assert (await p.dispatch.get(f"/api/v1/cases/{case_id}/orders", headers=CHENGXI)).status_code == 404
        assert (await p.dispatch.get(f"/api/v1/orders/{order['order_no']}", headers=OTHER_DEPT)).status_code == 404

        # 住建局 lets it run past its deadline: SLA cards it red and urges it. Both reach
        # 住建局 and are copied to 城中社区's inbox, which 城西社区 may not open.
        due = datetime.fromisoformat(order["due_at"])
        urged_at = WorkingCalendar().add_working_days(due, 1.5).due_at
        moved = await p.sla.post("/api/v1/admin/time", json={"now": urged_at.isoformat()}, headers=OPS)
        assert moved.status_code == 200, moved.text

        async def copies():
            kinds = await inbox_kinds(p, CZ_INBOX, CHENGZHONG)
            return kinds if {"unit.red_card.first_unit", "unit.urged.first_unit"} <= set(kinds) else None

        kinds = await eventually(copies, timeout=30, what="the red card and the urging copied to the first unit")
        assert not any(k in kinds for k in ("unit.red_card", "unit.urged"))  # copies, marked as such
        handler = await inbox_kinds(p, "unit:LB-XC-ZJJ:duty", CLERK)
        assert {"unit.red_card", "unit.urged"} <= set(handler)
        assert not any(k.endswith(".first_unit") for k in handler)
        assert (await p.notify.get(f"/api/v1/inbox/{CZ_INBOX}", headers=CHENGXI)).status_code in (403, 404)

        # Scoring: 城中社区 was first asked about one case, not yet closed.
        async def counted():
            figure = await first_figure(p, "LB-XC-CG-CZ", CHENGZHONG)
            return figure if figure["counts"]["first_asked"] == 1 else None

        figure = await eventually(counted, timeout=30, what="the first unit's figure")
        assert figure["counts"] == {"first_asked": 1, "closed": 0, "closed_on_time": 0, "rated": 0, "satisfied": 0}

        # Answered late, verified and closed by 城关镇, rated 满意 at the callback: closed, not on time, satisfied.
        no = order["order_no"]
        assert (await p.dispatch.post(f"/api/v1/orders/{no}/sign", json={}, headers=CLERK)).status_code == 200
        resolved = await p.dispatch.post(f"/api/v1/orders/{no}/resolve", json={"answer": "已更换灯具，路灯恢复照明。"}, headers=CLERK)
        assert resolved.status_code == 200, resolved.text
        verified = await p.dispatch.post(f"/api/v1/cases/{case_id}/verify", headers=CHENGGUAN,
                                         json={"passed": True, "public_summary": "城东路路灯已修复"})  # fmt: skip
        assert verified.status_code == 200, verified.text

        async def callback():
            answer = await p.notify.get(f"/api/v1/cases/{case_id}/callbacks", headers=OPERATOR)
            return answer.json()[-1] if answer.status_code == 200 and answer.json() else None

        task = await eventually(callback, timeout=30, what="the callback task")
        await p.notify.post("/api/v1/admin/clock", json={"now": task["opens_at"]}, headers=OPS)
        result = await p.notify.post(f"/api/v1/callbacks/{task['id']}/result", headers=OPERATOR,
                                     json={"reached": True, "rating": "满意"})  # fmt: skip
        assert result.status_code == 200, result.text

        async def ended():
            figure = await first_figure(p, "LB-XC-CG-CZ", CHENGZHONG)
            return figure if figure["counts"]["rated"] == 1 and figure["counts"]["closed"] == 1 else None

        figure = await eventually(ended, timeout=30, what="the case's end in the first unit's figure")
        assert figure["counts"] == {"first_asked": 1, "closed": 1, "closed_on_time": 0, "rated": 1, "satisfied": 1}
        # 忻城县 publishes as 来宾 does: one decimal (docs/rules.md, figures per county).
        assert figure["rates"] == {"closure": "100.0%", "on_time": "0.0%", "satisfaction": "100.0%"}
        # 住建局 was never first asked about it.
        assert (await first_figure(p, "LB-XC-ZJJ", CLERK))["counts"]["first_asked"] == 0
