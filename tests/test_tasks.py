"""自上而下的任务 through the running services, over HTTP and the topic (issue #24 item 3).

The centre sends a task down with one item per place; insight puts each item into the
ordinary lifecycle (case.received with its task reference), dispatch sends it straight to the
item's unit, SLA runs the same clocks from the class deadline (no 受理 clock, no 回访 clock),
the township verifies, notify asks no citizen anything, and scoring counts the items apart:
the appeals' figures do not move.

The story: 忻城县综治中心 has 城中社区 and 城东社区 check the guardrails of their fishponds
beside the village road; both sign and answer; 城关镇 passes 城中社区's and sends 城东社区's
back, which is redone and passed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

from shared.actors import actor_headers
from shared.testing import Infra, eventually
from shared.workdays import LOCAL
from tests.stack import SERVICES, platform

CENTRE = actor_headers("xc-dispatcher", "centre_dispatcher", "LB-XC-ZZZX")  # 忻城县综治中心
CHENGZHONG = actor_headers("cz-staff", "village_staff", "LB-XC-CG-CZ")
CHENGDONG = actor_headers("cd-staff", "village_staff", "LB-XC-CG-CD")
CHENGGUAN = actor_headers("cg-staff", "township_staff", "LB-XC-CG")
CLERK = actor_headers("demo-dept-clerk", "dept_clerk", "LB-XC-ZJJ")
WX_CENTRE = actor_headers("wx-dispatcher", "centre_dispatcher", "LB-WX-ZZZX")  # another county's centre

STREETLAMP = {
    "title": "城东路路灯一排不亮", "description": "城东路一排路灯晚上一直不亮，群众到社区窗口反映。",
    "channel": "window", "contact": {"name": "韦某", "phone": "13800002222"},
    "location": {"address": "忻城县城关镇城东社区城东路12号"},
}  # fmt: skip
TASK = {
    "title": "排查村道旁鱼塘护栏", "instructions": "逐一排查村道旁鱼塘是否设置护栏，缺失的登记并补设。",
    "subject_class": "infrastructure", "resolution_class": "complex",
    "items": [{"unit": "LB-XC-CG-CZ"}, {"unit": "LB-XC-CG-CD", "street": "城东路"}],
}  # fmt: skip


async def township_figures(p: SimpleNamespace) -> dict:
    today = datetime.now(LOCAL).date()
    span = {"period": "custom", "from": (today - timedelta(days=1)).isoformat(), "to": (today + timedelta(days=1)).isoformat()}
    answer = await p.scoring.get("/api/v1/stats/townships/LB-XC-CG", params=span, headers=CHENGGUAN)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def item_states(p: SimpleNamespace, task_id: str, headers: dict = CENTRE) -> list[str]:
    answer = await p.insight.get(f"/api/v1/tasks/{task_id}", headers=headers)
    assert answer.status_code == 200, answer.text
    return [item["state"] for item in answer.json()["items"]]


async def until_states(p: SimpleNamespace, task_id: str, wanted: list[str]) -> None:
    async def reached():
        return await item_states(p, task_id) == wanted or None

    await eventually(reached, timeout=30, what=f"the items {wanted}")


async def test_a_task_sent_down_is_worked_like_appeals_and_counted_apart(infra: Infra) -> None:
    async with platform(infra, SERVICES, read_topic=True) as p:
        # An appeal first: its figures are what the task must not move.
        created = await p.intake.post("/api/v1/appeals", json=STREETLAMP, headers=CHENGZHONG)
        assert created.status_code == 201, created.text

        async def appeal_counted():
            figures = await township_figures(p)
            return figures if figures["counts"]["received"] == 1 and figures["counts"]["orders"] == 1 else None

        before = await eventually(appeal_counted, timeout=30, what="the appeal in the township's figures")

        # Only the centre sends work down, and only inside its county.
        assert (await p.insight.post("/api/v1/tasks", json=TASK, headers=CHENGGUAN)).status_code == 403
        outside = await p.insight.post("/api/v1/tasks", json=TASK, headers=WX_CENTRE)
        assert outside.status_code == 422, outside.text
        issued = await p.insight.post("/api/v1/tasks", json=TASK, headers=CENTRE)
        assert issued.status_code == 201, issued.text
        task_id = issued.json()["task_id"]

        # On the topic: one case.received per item, channel task, the item's unit and class carried.
        async def items_received():
            seen = [e for e in await p.reader.events(types="case.received") if e.payload.task and e.payload.task.task_id == task_id]
            return seen if len(seen) == 2 else None

        received = await eventually(items_received, timeout=30, what="the items' case.received")
        assert sorted((e.payload.task.item_no, e.payload.task.unit) for e in received) == [(1, "LB-XC-CG-CZ"), (2, "LB-XC-CG-CD")]
        assert {e.payload.channel.value for e in received} == {"task"}
        assert {e.producer for e in received} == {"insight"}

        # Dispatch sends each straight to its unit with the task's class (no catalogue guess).
        await until_states(p, task_id, ["dispatched", "dispatched"])
        task = (await p.insight.get(f"/api/v1/tasks/{task_id}", headers=CENTRE)).json()
        orders = {}
        for item in task["items"]:
            answer = await p.dispatch.get(f"/api/v1/cases/{item['case_id']}/orders", headers=CHENGGUAN)
            assert answer.status_code == 200, answer.text
            [order] = answer.json()["orders"]
            assert (order["unit"], order["resolution_class"]) == (item["unit"], "complex")
            orders[item["unit"]] = (item["case_id"], order["order_no"])
        cz_case, cz_order = orders["LB-XC-CG-CZ"]
        cd_case, cd_order = orders["LB-XC-CG-CD"]

        # SLA: the same sign and resolve clocks as an appeal, no 受理 clock.
        async def clocks(case_id: str) -> set[str] | None:
            answer = await p.sla.get(f"/api/v1/cases/{case_id}/clocks", headers=CHENGGUAN)
            names = {c["name"] for c in answer.json()["clocks"]} if answer.status_code == 200 else set()
            return names if {"sign", "resolve"} <= names else None

        assert "accept" not in await eventually(lambda: clocks(cz_case), timeout=30, what="the item's clocks")

        # The task is seen by the township of its items, not by a department with none.
        assert (await p.insight.get(f"/api/v1/tasks/{task_id}", headers=CHENGGUAN)).status_code == 200
        assert (await p.insight.get(f"/api/v1/tasks/{task_id}", headers=CLERK)).status_code == 404
        listed = await p.insight.get("/api/v1/tasks", headers=CHENGDONG)
        assert [t["task_id"] for t in listed.json()["items"]] == [task_id]

        # Both take it (a village's 签收 is its 认领) and answer.
        for (case_id, no), who in ((orders["LB-XC-CG-CZ"], CHENGZHONG), (orders["LB-XC-CG-CD"], CHENGDONG)):
            signed = await p.dispatch.post(f"/api/v1/orders/{no}/claim", json={}, headers=who)
            assert signed.status_code == 200, signed.text
            done = await p.dispatch.post(f"/api/v1/orders/{no}/resolve", json={"answer": "已排查，护栏齐全。"}, headers=who)
            assert done.status_code == 200, done.text
        await until_states(p, task_id, ["resolved", "resolved"])

        # 城关镇 passes one and sends the other back; it is redone and passed.
        passed = await p.dispatch.post(f"/api/v1/cases/{cz_case}/verify", json={"passed": True}, headers=CHENGGUAN)
        assert passed.status_code == 200, passed.text
        failed = await p.dispatch.post(f"/api/v1/cases/{cd_case}/verify", json={"passed": False, "comment": "两处鱼塘未设护栏"},
                                       headers=CHENGGUAN)  # fmt: skip
        assert failed.status_code == 200, failed.text
        await until_states(p, task_id, ["closed", "redo"])
        redone = await p.dispatch.post(f"/api/v1/orders/{cd_order}/resolve", json={"answer": "已补设两处护栏。"}, headers=CHENGDONG)
        assert redone.status_code == 200, redone.text
        await until_states(p, task_id, ["closed", "resolved"])
        passed = await p.dispatch.post(f"/api/v1/cases/{cd_case}/verify", json={"passed": True}, headers=CHENGGUAN)
        assert passed.status_code == 200, passed.text
        await until_states(p, task_id, ["closed", "closed"])
        history = (await p.insight.get(f"/api/v1/tasks/{task_id}", headers=CENTRE)).json()["items"][1]["history"]
        assert [h["state"] for h in history] == ["issued", "dispatched", "signed", "resolved", "redo", "resolved", "verified", "closed"]

        # Scoring: the task figures apart, the appeals' unchanged.
        async def tasks_counted():
            figures = await township_figures(p)
            return figures if figures["tasks"]["counts"]["resolved"] == 2 else None

        after = await eventually(tasks_counted, timeout=30, what="the task items in the township's task figures")
        assert after["counts"] == before["counts"] and after["rates"] == before["rates"]
        assert (after["tasks"]["counts"]["received"], after["tasks"]["counts"]["orders"]) == (2, 2)
        assert after["tasks"]["counts"]["signed"] == 2 and after["tasks"]["counts"]["rated"] == 0

        # No citizen: no callback task, no 回访 clock, no rating link for either item.
        for case_id in (cz_case, cd_case):
            callbacks = await p.notify.get(f"/api/v1/cases/{case_id}/callbacks", headers=CENTRE)
            assert callbacks.status_code == 200, callbacks.text
            assert callbacks.json() == []
            answer = await p.sla.get(f"/api/v1/cases/{case_id}/clocks", headers=CHENGGUAN)
            assert "callback" not in {c["name"] for c in answer.json()["clocks"]}

        # … because notify applied the items' closing and chose to ask nobody, not because it failed on them:
        # once it has caught up with the topic, nothing of theirs is parked as a dead letter.
        async def notify_caught_up():
            checks = (await p.notify.get("/ready")).json()["checks"]
            return checks if checks.get("consumer_lag_total") == 0 else None

        assert (await eventually(notify_caught_up, timeout=30, what="notify caught up"))["dead_letters_parked"] == 0


#: A task item for a department with no place: the whole county's building sites, not one township's.
SITES = {
    "title": "排查全县在建工地围挡", "instructions": "逐一排查在建工地围挡是否完好，破损的限期整改。",
    "subject_class": "infrastructure", "resolution_class": "complex", "items": [{"unit": "LB-XC-ZJJ"}],
}  # fmt: skip


async def county_figures(p: SimpleNamespace) -> dict:
    today = datetime.now(LOCAL).date()
    span = {"period": "custom", "from": (today - timedelta(days=1)).isoformat(), "to": (today + timedelta(days=1)).isoformat()}
    answer = await p.scoring.get("/api/v1/stats/counties/LB-XC", params=span, headers=CENTRE)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_a_department_item_without_place_belongs_to_the_issuing_county(infra: Infra) -> None:
    """An item for a county department lies in no township: it still belongs to the county of
    the centre that issued it — that centre alone verifies it, and it counts in the county's
    task figures."""
    async with platform(infra, SERVICES, read_topic=True) as p:
        issued = await p.insight.post("/api/v1/tasks", json=SITES, headers=CENTRE)
        assert issued.status_code == 201, issued.text
        task_id = issued.json()["task_id"]

        # On the topic: no township, but the county the item is in.
        async def item_received():
            seen = [e for e in await p.reader.events(types="case.received") if e.payload.task and e.payload.task.task_id == task_id]
            return seen or None

        [received] = await eventually(item_received, timeout=30, what="the item's case.received")
        assert (received.payload.location.township, received.payload.location.county) == (None, "LB-XC")

        await until_states(p, task_id, ["dispatched"])
        case_id = received.case_id
        answer = await p.dispatch.get(f"/api/v1/cases/{case_id}/orders", headers=CENTRE)
        assert answer.status_code == 200, answer.text
        [order] = answer.json()["orders"]
        assert order["unit"] == "LB-XC-ZJJ"
        signed = await p.dispatch.post(f"/api/v1/orders/{order['order_no']}/sign", headers=CLERK)
        assert signed.status_code == 200, signed.text
        done = await p.dispatch.post(f"/api/v1/orders/{order['order_no']}/resolve", json={"answer": "已排查，围挡完好。"}, headers=CLERK)
        assert done.status_code == 200, done.text
        await until_states(p, task_id, ["resolved"])

        # Only the issuing county's centre verifies it: not a township, not another county's centre.
        for other in (CHENGGUAN, WX_CENTRE):
            refused = await p.dispatch.post(f"/api/v1/cases/{case_id}/verify", json={"passed": True}, headers=other)
            assert refused.status_code == 404, refused.text
        passed = await p.dispatch.post(f"/api/v1/cases/{case_id}/verify", json={"passed": True}, headers=CENTRE)
        assert passed.status_code == 200, passed.text
        await until_states(p, task_id, ["closed"])

        # The county's task figures count it; the appeals' figures stay empty.
        async def counted():
            figures = await county_figures(p)
            return figures if figures["tasks"]["counts"]["resolved"] == 1 else None

        figures = await eventually(counted, timeout=30, what="the item in the county's task figures")
        assert (figures["tasks"]["counts"]["received"], figures["tasks"]["counts"]["orders"]) == (1, 1)
        assert figures["counts"]["received"] == 0

        # The county centre's task list shows it (and another county's does not).
        listed = await p.insight.get("/api/v1/tasks", headers=CENTRE)
        assert [t["task_id"] for t in listed.json()["items"]] == [task_id]
        elsewhere = await p.insight.get("/api/v1/tasks", headers=WX_CENTRE)
        assert task_id not in [t["task_id"] for t in elsewhere.json()["items"]]
