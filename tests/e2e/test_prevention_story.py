"""未诉先办 end to end (issue #24, "done when"): every service as its own process, insight among them.

Citizens report the streetlamps of 城东路 (城东社区, 城关镇, 忻城县) again and again → insight finds
the same spot reported over and over (hotspot.detected, its own default thresholds) → the head
of 住建局, the unit that handles those appeals, finds the early warning (预警提醒) in notify's
inbox and acknowledges it → the county's centre turns the finding into a task (自上而下的任务,
``POST /api/v1/tasks``, the call the console makes) with an item for 住建局 and one for 城东社区
→ each signs (a village claims) and answers → 城关镇 verifies both (the department's item is
about its village's street, as the console sends it) → the task shows every item closed → scoring counts the items apart and the
appeals' figures do not move. Each step reads as the person doing it; a neighbouring village
(城西社区) and a neighbouring township (迁江镇) get 404 on the task and the warning.

Dates: the appeals are filed now and every period asked about is around now (Beijing), so the
test is green on any day. The rules are in docs/rules.md.
"""

from __future__ import annotations

import pytest

from shared.actors import actor_headers
from shared.testing import Infra, eventually
from tests.e2e.harness import SERVICE_NAMES, running_platform
from tests.e2e.test_roles import around_now, order_for, wait_for

pytestmark = pytest.mark.slow

CENTRE = actor_headers("demo-centre-dispatcher", "centre_dispatcher", "LB-XC-ZZZX")  # 忻城县综治中心
ZJJ_HEAD = actor_headers("demo-dept-head", "dept_head", "LB-XC-ZJJ")  # 住建局's head: the unit warned
ZJJ_CLERK = actor_headers("demo-dept-clerk", "dept_clerk", "LB-XC-ZJJ")
CHENGDONG = actor_headers("cd-staff", "village_staff", "LB-XC-CG-CD")  # 城东社区
CHENGGUAN = actor_headers("demo-township-staff-cg", "township_staff", "LB-XC-CG")  # 城关镇 verifies its villages
CHENGXI = actor_headers("cx-staff", "village_staff", "LB-XC-CG-CX")  # 城西社区: a neighbour with no item
QIANJIANG = actor_headers("xb-staff", "township_staff", "LB-XB-QJ")  # 迁江镇 (兴宾区): a neighbouring township

# Five citizens, five wordings of one trouble at one spot (the street is what travels: PIPL).
REPORTS = [
    ("城东路路灯不亮", "城东路一排路灯晚上不亮，走夜路很危险。"),
    ("城东路晚上没有路灯", "城东路的路灯坏了好几天，晚上一片漆黑。"),
    ("城东路路灯坏了没人修", "城东路路灯不亮，老人晚上出门摔了一跤。"),
    ("城东路路灯又不亮了", "城东路路灯修过又不亮，请尽快处理。"),
    ("反映城东路路灯问题", "城东路整排路灯不亮，孩子晚自习回家很不安全。"),
]


@pytest.fixture(scope="module")
async def platform(infra: Infra, tmp_path_factory):
    """The five case services and insight, each its own process on one fresh topic."""
    async with running_platform(infra, tmp_path_factory.mktemp("e2e-prevention-logs"), services=(*SERVICE_NAMES, "insight")) as started:
        yield started


async def county_figures(platform) -> dict:
    answer = await platform.scoring.get("/api/v1/stats/counties/LB-XC", params=around_now(), headers=CENTRE)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def caught_up(platform, service: str) -> dict:
    async def ready():
        checks = (await getattr(platform, service).get("/ready")).json().get("checks", {})
        return checks if checks.get("consumer_lag_total") == 0 else None

    return await eventually(ready, timeout=60, what=f"{service} caught up with the topic")


async def test_a_burst_at_one_spot_becomes_a_warning_and_a_task_worked_to_closure_and_scored_apart(platform):
    # ---- Citizens report, one after another (the app: no sign-in). Each is dispatched to 住建局
    # by the catalogue, or merged (并单) into an open one about the same lamps.
    dispatched: list[str] = []
    for n, (title, text) in enumerate(REPORTS):
        report = {"title": title, "description": text, "channel": "app",
                  "contact": {"name": f"市民{n}", "phone": f"1381234{n:04d}"},
                  "location": {"address": f"忻城县城关镇城东社区城东路{10 + n}号"}}  # fmt: skip
        created = await platform.intake.post("/api/v1/appeals", json=report)
        assert created.status_code == 201, created.text
        filed = created.json()
        if filed.get("status") == "merged":
            continue
        await wait_for(platform.dispatch, f"/api/v1/cases/{filed['case_id']}/orders", CENTRE,
                       lambda b: order_for(b, "LB-XC-ZJJ"), what=f"appeal {n}'s order to 住建局")  # fmt: skip
        dispatched.append(filed["case_id"])
    assert dispatched, "at least the first report is an appeal of its own"

    # ---- Insight: one finding about the spot, with its evidence, in the centre's list.
    async def same_spot():
        answer = await platform.insight.get("/api/v1/findings", headers=CENTRE)
        assert answer.status_code == 200, answer.text
        found = [f for f in answer.json()["items"] if f["kind"] == "same_spot"]
        return found or None

    [finding] = await eventually(same_spot, timeout=90, what="the same-spot finding")
    assert "城东路" in finding["street"] and finding["subject_class"] == "infrastructure"
    assert set(dispatched) <= set(finding["case_ids"]), "the evidence names the appeals"
    assert finding["unit"] == "LB-XC-ZJJ" and "城东路" in finding["explanation"]

    # ---- 预警提醒: 住建局's head finds it in the inbox, then the warning opened for 住建局.
    inbox = await wait_for(platform.notify, "/api/v1/inbox/unit:LB-XC-ZJJ:head", ZJJ_HEAD,
                           lambda b: [m for m in b["items"] if m["text"].startswith("未诉先办预警")],
                           what="the warning in 住建局's head's inbox")  # fmt: skip
    [message] = [m for m in inbox["items"] if m["text"].startswith("未诉先办预警")]
    assert finding["explanation"] in message["text"]
    # The centre's duty desk is told too (it may send work down); the unit's duty desk is not.
    await wait_for(platform.notify, "/api/v1/inbox/unit:LB-XC-ZZZX:duty", CENTRE,
                   lambda b: any(m["text"].startswith("未诉先办预警") for m in b["items"]), what="the centre's warning")  # fmt: skip
    warnings = await wait_for(platform.insight, "/api/v1/warnings", ZJJ_HEAD, lambda b: b["items"], what="住建局's warning")
    [warning] = [w for w in warnings["items"] if w["finding_id"] == finding["finding_id"]]
    assert (warning["unit"], warning["state"]) == ("LB-XC-ZJJ", "open") and "acknowledge" in warning["allowed_actions"]
    acknowledged = await platform.insight.post(f"/api/v1/warnings/{warning['warning_id']}/acknowledge", headers=ZJJ_HEAD)
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json()["state"] == "acknowledged"

    # ---- The appeals' figures before any task (scoring has read everything the appeals made).
    await caught_up(platform, "scoring")
    before = await county_figures(platform)
    assert before["counts"]["received"] >= len(dispatched) and before["tasks"]["counts"]["received"] == 0

    # ---- The centre sends work down from the finding, as the console's 下派任务 does.
    task_body = {
        "finding_id": finding["finding_id"], "title": "排查城东路沿线路灯",
        "instructions": "逐杆排查城东路路灯，损坏的登记并修复，社区组织夜间巡查。", "resolution_class": "complex",
        "items": [{"unit": "LB-XC-ZJJ", "place": "LB-XC-CG-CD", "street": "城东路"}, {"unit": "LB-XC-CG-CD", "street": "城东路"}],
    }  # fmt: skip
    assert (await platform.insight.post("/api/v1/tasks", json=task_body, headers=CHENGGUAN)).status_code == 403
    issued = await platform.insight.post("/api/v1/tasks", json=task_body, headers=CENTRE)
    assert issued.status_code == 201, issued.text
    task_id = issued.json()["task_id"]

    async def task_as(headers: dict) -> dict:
        answer = await platform.insight.get(f"/api/v1/tasks/{task_id}", headers=headers)
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def states(wanted: list[str]) -> dict:
        async def reached():
            task = await task_as(CENTRE)
            return task if [i["state"] for i in task["items"]] == wanted else None

        return await eventually(reached, timeout=60, what=f"the items {wanted}")

    task = await states(["dispatched", "dispatched"])
    assert task["finding_id"] == finding["finding_id"] and task["subject_class"] == "infrastructure"
    zjj, cd = task["items"]
    assert (zjj["unit"], cd["unit"]) == ("LB-XC-ZJJ", "LB-XC-CG-CD")

    # Who may read it: the centre, the units holding items, the township above 城东社区; not the neighbours.
    assert [i["unit"] for i in (await task_as(CHENGGUAN))["items"]] == ["LB-XC-ZJJ", "LB-XC-CG-CD"]
    listed = (await platform.insight.get("/api/v1/tasks", headers=ZJJ_CLERK)).json()["items"]
    assert [t["task_id"] for t in listed] == [task_id]
    for neighbour in (CHENGXI, QIANJIANG):
        assert (await platform.insight.get(f"/api/v1/tasks/{task_id}", headers=neighbour)).status_code == 404
        assert (await platform.insight.get(f"/api/v1/warnings/{warning['warning_id']}", headers=neighbour)).status_code == 404
        assert task_id not in str((await platform.insight.get("/api/v1/tasks", headers=neighbour)).json())

    # ---- Each unit finds its item in its to-sign queue, takes it and answers.
    post = platform.dispatch.post
    queue = await wait_for(platform.dispatch, "/api/v1/units/LB-XC-ZJJ/orders", ZJJ_CLERK,
                           lambda b: zjj["order_no"] in [o["order_no"] for o in b["items"]], params={"queue": "to_sign"},
                           what="the task item in 住建局's to-sign queue")  # fmt: skip
    assert next(o for o in queue["items"] if o["order_no"] == zjj["order_no"])["case_id"] == zjj["case_id"]
    assert (await post(f"/api/v1/orders/{zjj['order_no']}/sign", json={}, headers=ZJJ_CLERK)).status_code == 200
    assert (await post(f"/api/v1/orders/{cd['order_no']}/claim", json={}, headers=CHENGDONG)).status_code == 200
    await states(["signed", "signed"])
    done = await post(f"/api/v1/orders/{zjj['order_no']}/resolve", json={"answer": "已逐杆排查，更换灯具12盏。"}, headers=ZJJ_CLERK)
    assert done.status_code == 200, done.text
    done = await post(f"/api/v1/orders/{cd['order_no']}/resolve", json={"answer": "已组织夜间巡查，建立报修台账。"}, headers=CHENGDONG)
    assert done.status_code == 200, done.text
    await states(["resolved", "resolved"])

    # ---- 城关镇 verifies both: its village's item, and the department's item about its village's street.
    assert (await post(f"/api/v1/cases/{zjj['case_id']}/verify", json={"passed": True}, headers=CHENGXI)).status_code in (403, 404)
    verified = await post(f"/api/v1/cases/{cd['case_id']}/verify", json={"passed": True}, headers=CHENGGUAN)
    assert verified.status_code == 200, verified.text
    verified = await post(f"/api/v1/cases/{zjj['case_id']}/verify", json={"passed": True}, headers=CHENGGUAN)
    assert verified.status_code == 200, verified.text
    closed = await states(["closed", "closed"])
    for item in closed["items"]:
        assert [h["state"] for h in item["history"]] == ["issued", "dispatched", "signed", "resolved", "verified", "closed"]

    # ---- Scoring: the items counted as tasks, apart; the appeals' figures as they were.
    async def tasks_counted():
        figures = await county_figures(platform)
        return figures if figures["tasks"]["counts"]["resolved"] == 2 else None

    after = await eventually(tasks_counted, timeout=60, what="the task items in the county's task figures")
    assert (after["tasks"]["counts"]["received"], after["tasks"]["counts"]["orders"]) == (2, 2)
    assert after["counts"] == before["counts"] and after["rates"] == before["rates"]
    # No citizen behind a task: nobody is called back about its items.
    for item in closed["items"]:
        callbacks = await platform.notify.get(f"/api/v1/cases/{item['case_id']}/callbacks", headers=CENTRE)
        assert callbacks.status_code == 200 and callbacks.json() == [], callbacks.text
