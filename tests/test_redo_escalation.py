"""督办 after the third redo, through the running services over HTTP (docs/rules.md).

The citizen is not satisfied with 住建局's answer about the streetlamps three times: each
unsatisfied rating at the callback reopens the case (重办, dispatch), and the reopening of the
third redo is escalated to supervision (督办, SLA: ``sla.escalated``, reason ``redo_limit``) —
once, not again at the fourth. 住建局's duty inbox and its head are told, and so is the
command centre (综治中心) that serves it, which supervises from then on (notify).
"""

from __future__ import annotations

from shared.actors import actor_headers
from shared.testing import AUDITOR, Infra, TopicReader, eventually
from tests.test_first_responsibility import CHENGGUAN, CLERK, OPERATOR, OPS, STREETLAMP, inbox_kinds, platform

WINDOW = actor_headers("demo-village-staff-cd", "village_staff", "LB-XC-CG-CD")  # 城东社区, where the lamps are
HEAD = actor_headers("zjj-head", "dept_head", "LB-XC-ZJJ")
CENTRE = "unit:LB-XC-ZZZX:duty"  # 忻城县综治中心, the centre serving 住建局


async def handle_round(p, case_id: str, redo_round: int, *, rating: str) -> None:
    """住建局 signs and answers the round's order, 城关镇 verifies, the citizen rates at the callback."""

    async def order_of_round():
        answer = await p.dispatch.get(f"/api/v1/cases/{case_id}/orders", headers=CLERK)
        mine = [o for o in answer.json()["orders"] if o["redo_round"] == redo_round] if answer.status_code == 200 else []
        return mine[0] if mine else None

    order = await eventually(order_of_round, timeout=30, what=f"the order of round {redo_round}")
    assert order["unit"] == "LB-XC-ZJJ"
    no = order["order_no"]
    assert (await p.dispatch.post(f"/api/v1/orders/{no}/sign", json={}, headers=CLERK)).status_code == 200
    resolved = await p.dispatch.post(f"/api/v1/orders/{no}/resolve", json={"answer": f"第{redo_round}轮：已检修线路。"}, headers=CLERK)
    assert resolved.status_code == 200, resolved.text
    verified = await p.dispatch.post(f"/api/v1/cases/{case_id}/verify", headers=CHENGGUAN, json={"passed": True})
    assert verified.status_code == 200, verified.text

    async def callback():
        answer = await p.notify.get(f"/api/v1/cases/{case_id}/callbacks", headers=OPERATOR)
        tasks = [t for t in answer.json() if t["round"] == redo_round and t["state"] != "superseded"] if answer.status_code == 200 else []
        return tasks[-1] if tasks else None

    task = await eventually(callback, timeout=30, what=f"the callback of round {redo_round}")
    await p.notify.post("/api/v1/admin/clock", json={"now": task["opens_at"]}, headers=OPS)
    result = await p.notify.post(f"/api/v1/callbacks/{task['id']}/result", headers=OPERATOR, json={"reached": True, "rating": rating})
    assert result.status_code == 200, result.text


async def test_a_case_redone_three_times_is_escalated_once_and_the_centre_and_head_are_told(infra: Infra) -> None:
    async with platform(infra) as p:
        created = await p.intake.post("/api/v1/appeals", json=STREETLAMP, headers=WINDOW)
        assert created.status_code == 201, created.text
        case_id = created.json()["case_id"]

        for redo_round in range(3):  # rounds 0, 1, 2 rated 不满意: redo 1, 2, 3
            await handle_round(p, case_id, redo_round, rating="不满意")

        async with TopicReader(infra.bootstrap_servers, p.topic) as reader:

            async def escalations():
                found = await reader.events(case_id=case_id, types="sla.escalated")
                return found or None

            [escalated] = await eventually(escalations, timeout=30, what="督办 on the topic")
        assert escalated.payload.reason == "redo_limit" and escalated.payload.unit == "LB-XC-ZJJ"
        assert "redo round 3" in escalated.payload.detail

        async def told():
            centre = await inbox_kinds(p, CENTRE, OPERATOR)
            head = await inbox_kinds(p, "unit:LB-XC-ZJJ:head", HEAD)
            return (centre, head) if "unit.escalated.centre" in centre and "unit.escalated" in head else None

        centre, head = await eventually(told, timeout=30, what="the centre and 住建局's head told of the 督办")
        assert centre.count("unit.escalated.centre") == 1 and head.count("unit.escalated") == 1
        assert "unit.escalated" in await inbox_kinds(p, "unit:LB-XC-ZJJ:duty", CLERK)
        # Another department's staff cannot open the centre's inbox.
        assert (await p.notify.get(f"/api/v1/inbox/{CENTRE}", headers=CLERK)).status_code in (403, 404)

        # The fourth redo is not escalated again: one 督办 per case.
        await handle_round(p, case_id, 3, rating="不满意")

        async def fourth_round_open():
            answer = await p.dispatch.get(f"/api/v1/cases/{case_id}/orders", headers=CLERK)
            return any(o["redo_round"] == 4 for o in answer.json()["orders"]) or None

        await eventually(fourth_round_open, timeout=30, what="the fourth redo's order")

        async def sla_in_round_4():
            answer = await p.sla.get(f"/api/v1/cases/{case_id}/clocks", headers=AUDITOR)
            clocks = answer.json()["clocks"] if answer.status_code == 200 else []
            return any(c["name"] == "resolve" and c["round"] == 4 for c in clocks) or None

        await eventually(sla_in_round_4, timeout=30, what="SLA's resolve clock of the fourth redo")
        async with TopicReader(infra.bootstrap_servers, p.topic) as reader:
            await eventually(lambda: _reopened(reader, case_id, 4), timeout=30, what="the fourth reopening on the topic")
            assert len(await reader.events(case_id=case_id, types="sla.escalated")) == 1
        assert (await inbox_kinds(p, CENTRE, OPERATOR)).count("unit.escalated.centre") == 1


async def _reopened(reader, case_id: str, redo_round: int):
    return [e for e in await reader.events(case_id=case_id, types="case.reopened") if e.payload.redo_round == redo_round] or None
