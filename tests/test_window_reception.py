"""谁接待、谁负责 at a walk-in window, through the running services over HTTP (docs/rules.md).

A window appeal is owned by the person who received it: the case names them. A simple one
runs on the 1-hour clock (1小时诉求服务模式: the deadline computed once by intake and carried
on case.received to SLA), is not sent on by the catalogue, and is closed on the spot by its
receiver with the citizen present, who rates it there. A window appeal that is not simple is
dispatched as any other.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.actors import actor_headers
from shared.testing import AUDITOR, Infra, eventually
from tests.test_first_responsibility import first_figure, platform

RECEIVER = actor_headers("demo-village-staff", "village_staff", "LB-WX-TW-JL")  # 江龙村's 五事 window
COLLEAGUE = actor_headers("jl-staff-2", "village_staff", "LB-WX-TW-JL")  # the same window, not the receiver
TONGWAN = actor_headers("demo-township-staff", "township_staff", "LB-WX-TW")

SIMPLE = {
    "title": "咨询低保申请需要哪些材料", "description": "村民到村五事窗口咨询：家里老人想申请低保，需要准备哪些材料、到哪里办。",
    "channel": "window", "contact": {"name": "甘长庆", "phone": "13800003333"},
    "location": {"address": "武宣县通挽镇江龙村"}, "simple": True,
}  # fmt: skip
NOT_SIMPLE = {**SIMPLE, "title": "江龙村鱼塘边没有护栏", "simple": False, "contact": {"name": "甘长庆", "phone": "13800003334"},
              "description": "村里主路边的鱼塘没有护栏，孩子上学经过很危险，希望安装护栏。"}  # fmt: skip


async def test_a_simple_window_appeal_is_its_receivers_closed_on_the_spot_within_the_hour(infra: Infra) -> None:
    async with platform(infra) as p:
        # Only a window appeal runs in the 1-hour mode.
        assert (await p.intake.post("/api/v1/appeals", json={**SIMPLE, "channel": "app"})).status_code == 422

        created = await p.intake.post("/api/v1/appeals", json=SIMPLE, headers=RECEIVER)
        assert created.status_code == 201, created.text
        case_id = created.json()["case_id"]
        control = await p.intake.post("/api/v1/appeals", json=NOT_SIMPLE, headers=RECEIVER)
        assert control.status_code == 201, control.text

        # The receiver is on the case as its owner; the deadline is one hour after it came in.
        view = (await p.intake.get(f"/api/v1/appeals/{case_id}", headers=RECEIVER)).json()
        assert view["received_by"] == "demo-village-staff" and view["first_unit"] == "LB-WX-TW-JL"
        due = datetime.fromisoformat(view["resolve_due_at"])
        assert due == datetime.fromisoformat(view["created_at"]) + timedelta(hours=1)
        assert (await p.intake.get(f"/api/v1/appeals/{control.json()['case_id']}", headers=RECEIVER)).json()["resolve_due_at"] is None

        # SLA runs the receiver's unit's resolve clock on the carried deadline.
        async def resolve_clock():
            answer = await p.sla.get(f"/api/v1/cases/{case_id}/clocks", headers=AUDITOR)
            clocks = answer.json()["clocks"] if answer.status_code == 200 else []
            return next((c for c in clocks if c["name"] == "resolve"), None)

        clock = await eventually(resolve_clock, timeout=30, what="the 1-hour resolve clock")
        assert (clock["unit"], clock["state"], datetime.fromisoformat(clock["due_at"])) == ("LB-WX-TW-JL", "running", due)

        # Dispatch knows the receiver and sends the simple one nowhere, the other one on by the catalogue.
        async def dispatch_case(cid: str, done):
            answer = await p.dispatch.get(f"/api/v1/cases/{cid}/orders", headers=TONGWAN)
            return answer.json() if answer.status_code == 200 and done(answer.json()) else None

        await eventually(lambda: dispatch_case(control.json()["case_id"], lambda c: c["orders"]), timeout=30,
                         what="the control appeal dispatched")  # fmt: skip
        held = await eventually(lambda: dispatch_case(case_id, lambda c: c["received_by"]), timeout=30, what="dispatch's case")
        assert (held["received_by"], held["stage"], held["orders"]) == ("demo-village-staff", "received", [])

        # Only the receiver closes it on the spot, and only with a citizen who is satisfied.
        close = {"answer": "已当场告知低保申请材料清单和办理地点，并代为预约。", "rating": "满意"}
        for other in (COLLEAGUE, TONGWAN):
            refused = await p.intake.post(f"/api/v1/appeals/{case_id}/close-on-spot", json=close, headers=other)
            assert refused.status_code == 404, refused.text
        unsatisfied = await p.intake.post(f"/api/v1/appeals/{case_id}/close-on-spot", json={**close, "rating": "不满意"}, headers=RECEIVER)
        assert unsatisfied.status_code == 422, unsatisfied.text
        closed = await p.intake.post(f"/api/v1/appeals/{case_id}/close-on-spot", json=close, headers=RECEIVER)
        assert closed.status_code == 200, closed.text
        assert closed.json()["status"] == "closed"
        again = await p.intake.post(f"/api/v1/appeals/{case_id}/close-on-spot", json=close, headers=RECEIVER)
        assert again.status_code == 409, again.text
        # The not-simple one goes to a unit by the catalogue: never the window's to close on the spot.
        handed = await p.intake.post(f"/api/v1/appeals/{control.json()['case_id']}/close-on-spot", json=close, headers=RECEIVER)
        assert handed.status_code == 409, handed.text

        timeline = [e["type"] for e in (await p.intake.get(f"/api/v1/appeals/{case_id}", headers=RECEIVER)).json()["timeline"]]
        assert timeline[-3:] == ["case.resolved", "case.closed", "case.rated"]

        # SLA: met within the hour. Dispatch: closed. Scoring: closed, on time, satisfied.
        async def stopped():
            found = await resolve_clock()
            return found if found["state"] == "stopped" else None

        assert (await eventually(stopped, timeout=30, what="the resolve clock stopped"))["on_time"] is True
        await eventually(lambda: dispatch_case(case_id, lambda c: c["stage"] == "closed"), timeout=30, what="dispatch's case closed")

        async def counted():
            figure = await first_figure(p, "LB-WX-TW-JL", RECEIVER)
            return figure if figure["counts"]["rated"] == 1 else None

        figure = await eventually(counted, timeout=30, what="the window's figure")
        assert figure["counts"] == {"first_asked": 2, "closed": 1, "closed_on_time": 1, "rated": 1, "satisfied": 1}


async def test_a_window_appeal_intake_cannot_place_in_a_village_is_the_receiving_villages(infra: Infra) -> None:
    """An address that names only the township (or nothing intake knows) does not send a 五事
    window appeal up to the township: the citizen walked into 江龙村's window, so 江龙村 holds it
    first (claim or report up), as any of its matters."""
    async with platform(infra) as p:
        vague = {**NOT_SIMPLE, "contact": {"name": "甘长庆", "phone": "13800003335"}, "location": {"address": "武宣县通挽镇"}}
        created = await p.intake.post("/api/v1/appeals", json=vague, headers=RECEIVER)
        assert created.status_code == 201, created.text
        case_id = created.json()["case_id"]
        view = (await p.intake.get(f"/api/v1/appeals/{case_id}", headers=RECEIVER)).json()
        assert (view["township"], view["village"]) == ("LB-WX-TW", "LB-WX-TW-JL"), view

        async def first_order():
            answer = await p.dispatch.get(f"/api/v1/cases/{case_id}/orders", headers=TONGWAN)
            return answer.json()["orders"] if answer.status_code == 200 and answer.json()["orders"] else None

        [order] = await eventually(first_order, timeout=30, what="the window appeal's first order")
        assert order["unit"] == "LB-WX-TW-JL"
        claimed = await p.dispatch.post(f"/api/v1/orders/{order['order_no']}/claim", json={}, headers=RECEIVER)
        assert claimed.status_code == 200, claimed.text
