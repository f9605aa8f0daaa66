"""Each story played as every role in it would, through the public APIs only.

Every step reads with the headers of the person doing it (never the auditor's), and asserts
what that person needs to see to act: the township sees the department's answer and plan
before it verifies; the operator sees the callback when it can be made; the citizen sees the
lifecycle in the order it happened; a unit of another county sees nothing. A defect of the
kind "a role cannot finish its job" fails here even when each service's own tests pass.
The rules these steps follow are written down in docs/rules.md.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from shared import deadlines
from shared.actors import actor_headers
from shared.signing import signature_headers
from shared.testing import OPS, eventually
from shared.workdays import LOCAL, WorkingCalendar
from tests.e2e.harness import APP_SECRET, PHOTO, upload_photo

pytestmark = pytest.mark.slow

GRID_WORKER = actor_headers("demo-grid-worker-cz", "grid_worker", "LB-XC-CG-CZ-G01")  # 城中社区, where the streetlamp is
CHENGZHONG_STAFF = actor_headers("demo-village-staff-cz", "village_staff", "LB-XC-CG-CZ")
# 城东社区 is kept as the neighbouring village of the same township: it must not see 城中社区's case.
NEIGHBOUR = actor_headers("demo-grid-worker", "grid_worker", "LB-XC-CG-CD-G01")
CENTRE = actor_headers("demo-centre-dispatcher", "centre_dispatcher", "LB-XC-ZZZX")
OPERATOR = actor_headers("callback-operator", "centre_dispatcher", "LB-XC-ZZZX")
ZJJ_CLERK = actor_headers("demo-dept-clerk", "dept_clerk", "LB-XC-ZJJ")
JTJ_CLERK = actor_headers("jtj-clerk", "dept_clerk", "LB-XC-JTJ")
CHENGGUAN = actor_headers("demo-township-staff-cg", "township_staff", "LB-XC-CG")
TONGWAN = actor_headers("demo-township-staff", "township_staff", "LB-WX-TW")
# The fishpond story is 武宣县's: 江龙村's window, 通挽镇, 武宣县's 水利局 and centre.
JIANGLONG_CLERK = actor_headers("demo-village-staff", "village_staff", "LB-WX-TW-JL")  # 江龙村's 五事 window
WX_SLJ_CLERK = actor_headers("demo-dept-clerk-slj", "dept_clerk", "LB-WX-SLJ")
WX_CENTRE = actor_headers("demo-centre-dispatcher-wx", "centre_dispatcher", "LB-WX-ZZZX")
DATANG_CLERK = actor_headers("demo-village-staff-dt", "village_staff", "LB-WX-TW-DT")  # 大塘村, another village of 通挽镇
OTHER_COUNTY = actor_headers("xb-staff", "township_staff", "LB-XB-QJ")  # 兴宾区迁江镇
OTHER_CENTRE = actor_headers("xb-centre", "centre_dispatcher", "LB-XB-ZZZX")

# The lifecycle as it happens; the citizen's timeline must show these in this order.
LIFECYCLE = [
    "case.received", "case.accepted", "case.triaged", "case.dispatched", "case.signed", "case.work_plan_filed",
    "case.progress_reported", "case.resolved", "case.verified", "case.closed", "case.callback_completed", "case.rated",
]  # fmt: skip


def around_now() -> dict[str, str]:
    """A custom period from yesterday to tomorrow (Beijing): the story's events fall inside it
    even when it runs across midnight."""
    today = datetime.now(UTC).astimezone(LOCAL).date()
    return {"period": "custom", "from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=2))}


def in_order(types: list[str], expected: list[str]) -> bool:
    """``expected`` appears in ``types`` as a subsequence, each step after the one before."""
    position = 0
    for step in expected:
        try:
            position = types.index(step, position) + 1
        except ValueError:
            return False
    return True


async def wait_for(client, path: str, headers: dict, check, *, what: str, params: dict | None = None, timeout: float = 60):
    """GET ``path`` as ``headers`` until ``check(body)`` holds; the body then."""

    async def once():
        answer = await client.get(path, headers=headers, params=params)
        if answer.status_code != 200:
            return None
        body = answer.json()
        return body if check(body) else None

    return await eventually(once, timeout=timeout, what=what)


def order_for(body: dict, unit: str) -> dict | None:
    found = [o for o in body.get("orders", []) if o["unit"] == unit]
    return found[-1] if found else None


async def citizen_reads(platform, path: str, phone: str) -> dict:
    """What the citizen's app shows: its backend signs the request and names the citizen (a GET
    signs the citizen's phone as its body, so neither can be changed under the signature)."""
    headers = signature_headers("appbackend", APP_SECRET, method="GET", path=path, body=phone.encode())
    answer = await platform.intake.get(path, headers={**headers, "X-Citizen-Phone": phone})
    assert answer.status_code == 200, answer.text
    return answer.json()


async def call_back(platform, case_id: str, rating: str, operator: dict = OPERATOR) -> dict:
    """The centre's operator works the callback queue: the task shows up when the call can be
    made, names the case, and the result is recorded."""
    task = await wait_for(
        platform.notify, f"/api/v1/cases/{case_id}/callbacks", operator, lambda tasks: tasks,
        what="the callback task",
    )  # fmt: skip
    task = task[-1]
    opens, due = datetime.fromisoformat(task["opens_at"]), datetime.fromisoformat(task["due_at"])
    assert opens < due, task
    moved = await platform.notify.post("/api/v1/admin/clock", json={"now": task["opens_at"]}, headers=OPS)
    assert moved.status_code == 200, moved.text
    queue = (await platform.notify.get("/api/v1/callbacks", params={"view": "due"}, headers=operator)).json()
    assert case_id in [t["case_id"] for t in queue["items"]], "the operator finds it among the calls due now"
    done = await platform.notify.post(f"/api/v1/callbacks/{task['id']}/result", headers=operator,
                                      json={"reached": True, "rating": rating, "comment": "已回访"})  # fmt: skip
    assert done.status_code == 200, done.text
    return task


async def test_streetlamp_as_every_role(platform):
    """数字平安忻城: grid worker → centre → 住建局 → 城关镇 verifies with the answer in view →
    the operator calls back → the citizen sees it all, in order, on the phone."""
    phone = "13812348111"
    report = {
        "title": "城中社区西宁街路灯不亮", "description": "网格员巡查发现：城中社区西宁街一排路灯从不亮灯，晚上很黑。",
        "channel": "grid", "reporter_id": "demo-grid-worker-cz", "contact": {"name": "韦先生", "phone": phone},
        "location": {"address": "忻城县城关镇城中社区西宁街12号"},
    }  # fmt: skip
    # The grid worker reports, signed in; the answer is what they tell the citizen on the spot.
    created = await platform.intake.post("/api/v1/appeals", json=report, headers=GRID_WORKER)
    assert created.status_code == 201, created.text
    filed = created.json()
    case_id, tracking_no = filed["case_id"], filed["tracking_no"]
    assert tracking_no and filed["accept_due_at"]

    # The centre sees it in its county's list and that the catalogue sent it to 住建局.
    listed = await wait_for(platform.intake, "/api/v1/cases", CENTRE, lambda b: case_id in str(b), what="the case in the centre's list")
    assert case_id in [c["case_id"] for c in listed["items"]]
    orders = await wait_for(platform.dispatch, f"/api/v1/cases/{case_id}/orders", CENTRE,
                            lambda b: order_for(b, "LB-XC-ZJJ"), what="住建局's order, as the centre")  # fmt: skip
    no = order_for(orders, "LB-XC-ZJJ")["order_no"]

    # 住建局's clerk: the order is in the to-sign queue; signs, plans, reports with a photo, answers.
    queue = await wait_for(platform.dispatch, "/api/v1/units/LB-XC-ZJJ/orders", ZJJ_CLERK,
                           lambda b: no in [o["order_no"] for o in b["items"]], params={"queue": "to_sign"},
                           what="the order in 住建局's to-sign queue")  # fmt: skip
    mine = next(o for o in queue["items"] if o["order_no"] == no)
    assert "sign" in mine["allowed_actions"] and "decide_extension" not in mine["allowed_actions"]
    post = platform.dispatch.post
    assert (await post(f"/api/v1/orders/{no}/sign", json={}, headers=ZJJ_CLERK)).status_code == 200
    plan = {"measures": "次日晚更换灯具并检修线路", "planned_finish_at": mine["due_at"], "responsible": "黄工", "contact": "0772-5512345"}
    assert (await post(f"/api/v1/orders/{no}/plan", json=plan, headers=ZJJ_CLERK)).status_code == 200
    photo = await upload_photo(platform, ZJJ_CLERK)
    progress = {"note": "灯具已更换，线路已检修", "percent": 100, "attachments": [photo]}
    assert (await post(f"/api/v1/orders/{no}/progress", json=progress, headers=ZJJ_CLERK)).status_code == 200
    answer = "已于次日晚更换灯具，路灯恢复照明。"
    assert (await post(f"/api/v1/orders/{no}/resolve", json={"answer": answer}, headers=ZJJ_CLERK)).status_code == 200

    # The village reads its case; other units do not see 住建局's order: another department, a
    # township of another county, the neighbouring village's grid worker.
    assert (await platform.intake.get(f"/api/v1/appeals/{case_id}", headers=CHENGZHONG_STAFF)).status_code == 200
    for stranger in (JTJ_CLERK, OTHER_COUNTY, OTHER_CENTRE, NEIGHBOUR):
        assert (await platform.dispatch.get(f"/api/v1/orders/{no}", headers=stranger)).status_code == 404
        assert (await platform.intake.get(f"/api/v1/appeals/{case_id}", headers=stranger)).status_code == 404

    # 城关镇 verifies with what 住建局 was asked and did in view: answer, plan, photo.
    seen = await wait_for(platform.dispatch, f"/api/v1/cases/{case_id}/orders", CHENGGUAN,
                          lambda b: (order_for(b, "LB-XC-ZJJ") or {}).get("answer"), what="住建局's answer, as 城关镇")  # fmt: skip
    order = order_for(seen, "LB-XC-ZJJ")
    assert order["answer"] == answer
    assert order["plan"] == {**plan, "planned_finish_at": order["plan"]["planned_finish_at"]}
    assert photo in [a for p in order["progress"] for a in p["attachments"]]
    assert "verify" in order["allowed_actions"]
    picture = await platform.intake.get(f"/api/v1/attachments/{photo}", headers=CHENGGUAN)
    assert picture.status_code == 200 and picture.content == PHOTO, "the township opens the photo"
    verified = await post(f"/api/v1/cases/{case_id}/verify", headers=CHENGGUAN,
                          json={"passed": True, "public_summary": "城中社区西宁街路灯已修复"})  # fmt: skip
    assert verified.status_code == 200, verified.text

    # The operator calls back when the call can be made; SLA's callback clock has the same deadline.
    task = await call_back(platform, case_id, "满意")
    clocks = await wait_for(platform.sla, f"/api/v1/cases/{case_id}/clocks", CENTRE,
                            lambda b: any(c["name"] == "callback" for c in b.get("clocks", [])), what="SLA's callback clock")  # fmt: skip
    callback_clock = next(c for c in clocks["clocks"] if c["name"] == "callback")
    assert datetime.fromisoformat(callback_clock["due_at"]) == datetime.fromisoformat(task["due_at"])

    # The citizen, on the phone: the appeal among their own, every step in the order it happened.
    page = await citizen_reads(platform, "/api/v1/appeals?mine=1", phone)
    assert case_id in [a["case_id"] for a in page["items"]]

    async def whole_timeline():
        view = await citizen_reads(platform, f"/api/v1/appeals/{case_id}", phone)
        types = [entry["type"] for entry in view["timeline"]]
        return view if "case.rated" in types else None

    view = await eventually(whole_timeline, timeout=60, what="the rating on the citizen's timeline")
    types = [entry["type"] for entry in view["timeline"]]
    assert in_order(types, LIFECYCLE), types
    assert view["status"] == "rated", "the citizen sees their rating taken"

    # The public list shows the result, and nothing of who asked.
    public = (await platform.dispatch.get("/api/v1/public/closed")).json()["items"]
    published = [p for p in public if p["summary"] == "城中社区西宁街路灯已修复"]
    assert published and phone not in json.dumps(published, ensure_ascii=False)


async def test_fishpond_as_every_role(platform):
    """武宣县: 江龙村's 五事 window → 江龙村 reports it up (上报) → 通挽镇 → 乡呼县应 to 水利局 → 水利局 plans and answers → 通挽镇 verifies
    with the plan and answer in view and rates 水利局 → 水利局 rates the call → the centre's
    figures count both ways."""
    appeal = {
        "title": "江龙村鱼塘边需要加装护栏", "description": "江龙村主路边鱼塘没有护栏，孩子上学路过很危险，村里解决不了。",
        "channel": "window", "contact": {"name": "甘先生", "phone": "13977710222"},
        "location": {"address": "武宣县通挽镇江龙村"},
    }  # fmt: skip
    # The village clerk registers it at the window.
    created = await platform.intake.post("/api/v1/appeals", json=appeal, headers=JIANGLONG_CLERK)
    assert created.status_code == 201, created.text
    case_id = created.json()["case_id"]

    # 江龙村 holds it first (村级): it cannot install a guardrail itself and reports it up (上报).
    held = await wait_for(platform.dispatch, f"/api/v1/cases/{case_id}/orders", JIANGLONG_CLERK,
                          lambda b: order_for(b, "LB-WX-TW-JL"), what="江龙村's order")  # fmt: skip
    village = order_for(held, "LB-WX-TW-JL")
    assert village["allowed_actions"] == ["claim", "report_up"]
    up = await platform.dispatch.post(f"/api/v1/orders/{village['order_no']}/report-up", headers=JIANGLONG_CLERK,
                                      json={"reason": "村里无力加装护栏，上报镇里"})  # fmt: skip
    assert up.status_code == 200, up.text

    # 通挽镇 finds its order, sees it is beyond it, and calls 水利局 (乡呼县应).
    orders = await wait_for(platform.dispatch, f"/api/v1/cases/{case_id}/orders", TONGWAN,
                            lambda b: order_for(b, "LB-WX-TW"), what="通挽镇's order")  # fmt: skip
    own = order_for(orders, "LB-WX-TW")
    assert own["state"] == "dispatched"
    called = await platform.dispatch.post(f"/api/v1/cases/{case_id}/call", headers=TONGWAN,
                                          json={"units": ["LB-WX-SLJ"], "reason": "村、镇无力加装，需县水利局勘测施工"})  # fmt: skip
    assert called.status_code == 201, called.text
    call_id = called.json()["detail"]["call_id"]

    # 水利局: the call is in its inbox by the township's name, the order in its queue.
    inbox = await wait_for(platform.notify, "/api/v1/inbox/unit:LB-WX-SLJ:duty",
                           actor_headers("slj-duty", "dept_clerk", "LB-WX-SLJ"),
                           lambda b: any("通挽镇" in (m.get("text") or "") for m in b["items"]), what="通挽镇's call in 水利局's inbox")  # fmt: skip
    assert not any("LB-WX-TW" in (m.get("text") or "") for m in inbox["items"]), "a name, not a code"
    queue = await wait_for(platform.dispatch, "/api/v1/units/LB-WX-SLJ/orders", WX_SLJ_CLERK,
                           lambda b: b["items"], params={"queue": "to_sign"}, what="the order in 水利局's queue")  # fmt: skip
    no = next(o["order_no"] for o in queue["items"] if o["case_id"] == case_id)
    post = platform.dispatch.post
    assert (await post(f"/api/v1/orders/{no}/sign", json={}, headers=WX_SLJ_CLERK)).status_code == 200
    plan = {"measures": "2日内现场勘查，4日内完成护栏安装", "planned_finish_at": queue["items"][0]["due_at"],
            "responsible": "韦工", "contact": "13907720001"}  # fmt: skip
    assert (await post(f"/api/v1/orders/{no}/plan", json=plan, headers=WX_SLJ_CLERK)).status_code == 200
    # The department's on-site survey (现场勘查) is a step of its own, as the township's would be.
    photo = await upload_photo(platform, WX_SLJ_CLERK)
    survey = {"findings": "鱼塘临路一侧约40米无护栏", "attachments": [photo]}
    assert (await post(f"/api/v1/orders/{no}/survey", json=survey, headers=WX_SLJ_CLERK)).status_code == 200
    progress = {"note": "护栏材料已进场", "percent": 60}
    assert (await post(f"/api/v1/orders/{no}/progress", json=progress, headers=WX_SLJ_CLERK)).status_code == 200
    # 交通运输局 was not called: it does not see 水利局's order.
    assert (await platform.dispatch.get(f"/api/v1/orders/{no}", headers=JTJ_CLERK)).status_code == 404

    # 通挽镇 follows the work before it is done: the plan, its contact, the survey and its photo.
    seen = await wait_for(platform.dispatch, f"/api/v1/orders/{no}", TONGWAN, lambda b: b.get("progress"),
                          what="水利局's progress, as 通挽镇")  # fmt: skip
    assert seen["plan"]["measures"] == plan["measures"] and seen["plan"]["contact"] == plan["contact"]
    assert seen["plan"]["responsible"] == "韦工" and seen["survey"]["attachments"] == [photo]
    assert seen["survey"]["findings"] == survey["findings"] and seen["survey"]["on_time"]
    answer = "护栏已安装，共40米"
    assert (await post(f"/api/v1/orders/{no}/resolve", json={"answer": answer}, headers=WX_SLJ_CLERK)).status_code == 200

    seen = await wait_for(platform.dispatch, f"/api/v1/cases/{case_id}/orders", TONGWAN,
                          lambda b: (order_for(b, "LB-WX-SLJ") or {}).get("answer"), what="水利局's answer, as 通挽镇")  # fmt: skip
    assert order_for(seen, "LB-WX-SLJ")["answer"] == answer
    verified = await post(f"/api/v1/cases/{case_id}/verify", headers=TONGWAN,
                          json={"passed": True, "public_summary": "江龙村鱼塘护栏已安装"})  # fmt: skip
    assert verified.status_code == 200, verified.text

    # Two-way: the township rates the department, the department rates the call.
    rating = {"case_id": case_id, "call_id": call_id, "unit": "LB-WX-SLJ", "rating": "满意", "comment": "四天完工"}

    async def rated():
        answer = await platform.scoring.post("/api/v1/ratings/departments", json=rating, headers=TONGWAN)
        return answer if answer.status_code == 201 else None  # 409 until scoring has the case closed

    await eventually(rated, timeout=60, what="通挽镇's rating of 水利局")
    back = await platform.scoring.post("/api/v1/ratings/calls", headers=WX_SLJ_CLERK,
                                       json={"case_id": case_id, "call_id": call_id, "justified": True, "complete": True})  # fmt: skip
    assert back.status_code == 201, back.text

    # The village clerk who registered it sees it closed.
    view = await wait_for(platform.intake, f"/api/v1/appeals/{case_id}", JIANGLONG_CLERK,
                          lambda b: b["status"] == "closed", what="the case closed, as 江龙村's clerk")  # fmt: skip
    assert in_order([e["type"] for e in view["timeline"]],
                    ["case.received", "case.dispatched", "case.reported_up", "case.dispatched", "case.county_called",
                     "case.work_plan_filed", "case.surveyed", "case.resolved",
                     "case.verified", "case.closed"])  # fmt: skip

    # The centre's figures: 水利局's own stats carry the township's rating, and the composite uses it.
    stats = await wait_for(platform.scoring, "/api/v1/stats/units/LB-WX-SLJ", WX_CENTRE,
                           lambda b: b["two_way"]["rated"] >= 1, params=around_now(), what="水利局's two-way figures")  # fmt: skip
    assert stats["two_way"]["favourable"] == stats["two_way"]["rated"] == 1
    scores = (await platform.scoring.get("/api/v1/scores", params={"county": "LB-WX", **around_now()}, headers=WX_CENTRE)).json()
    slj = next(u for u in scores["units"] if u["unit"] == "LB-WX-SLJ")
    assert slj["score"] is not None and slj["two_way"]["rated"] == 1


async def test_guardrail_as_told_the_township_surveys_and_installs(platform):
    """武宣县通挽镇江龙村, as the documents tell it: 甘长庆 reports at 江龙村's 五事 window that the
    fishpond by the main road has no guardrail → 江龙村 cannot solve it and reports it up (上报)
    → two days later 通挽镇 surveys on site (现场勘查, with photos; due within 2 working days of
    the order) → four days later the guardrail is installed (due 4 working days after the
    survey) → 通挽镇 verifies, closes and publishes (核验、销号、公示) → the callback and the
    citizen's rating. Each role reads what it needs to act, and nothing of another's."""
    phone = "13977710333"
    appeal = {
        "title": "江龙村主路边鱼塘没有护栏", "description": "江龙村村民甘长庆反映：村里主路边的鱼塘没有护栏，存在安全隐患。",
        "channel": "window", "contact": {"name": "甘长庆", "phone": phone}, "location": {"address": "武宣县通挽镇江龙村"},
    }  # fmt: skip
    calendar = WorkingCalendar()
    # The village clerk registers it at the 五事 window, and owns it there (谁接待、谁负责).
    created = await platform.intake.post("/api/v1/appeals", json=appeal, headers=JIANGLONG_CLERK)
    assert created.status_code == 201, created.text
    case_id = created.json()["case_id"]
    mine = (await platform.intake.get(f"/api/v1/appeals/{case_id}", headers=JIANGLONG_CLERK)).json()
    assert (mine["channel"], mine["received_by"]) == ("window", "demo-village-staff")

    # 江龙村 holds it first (村级) and cannot install a guardrail: it reports it up, with a reason.
    held = await wait_for(platform.dispatch, f"/api/v1/cases/{case_id}/orders", JIANGLONG_CLERK,
                          lambda b: order_for(b, "LB-WX-TW-JL"), what="江龙村's order")  # fmt: skip
    village = order_for(held, "LB-WX-TW-JL")
    assert village["allowed_actions"] == ["claim", "report_up"]
    up = await platform.dispatch.post(f"/api/v1/orders/{village['order_no']}/report-up", headers=JIANGLONG_CLERK,
                                      json={"reason": "村里无力加装护栏，上报镇里"})  # fmt: skip
    assert up.status_code == 200, up.text
    no = up.json()["detail"]["new_order"]

    # 通挽镇: its order is in its to-sign queue, with the survey due 2 working days after it came.
    queue = await wait_for(platform.dispatch, "/api/v1/units/LB-WX-TW/orders", TONGWAN,
                           lambda b: no in [o["order_no"] for o in b["items"]], params={"queue": "to_sign"},
                           what="the order in 通挽镇's to-sign queue")  # fmt: skip
    order = next(o for o in queue["items"] if o["order_no"] == no)
    dispatched = datetime.fromisoformat(order["dispatched_at"])
    assert datetime.fromisoformat(order["survey_due_at"]) == deadlines.survey_due(calendar, dispatched, "public_safety").due_at
    post = platform.dispatch.post
    assert (await post(f"/api/v1/orders/{no}/sign", json={}, headers=TONGWAN)).status_code == 200
    signed = (await platform.dispatch.get(f"/api/v1/orders/{no}", headers=TONGWAN)).json()
    assert "survey" in signed["allowed_actions"] and "verify" not in signed["allowed_actions"]

    # SLA runs the township's survey clock to the deadline dispatch set.
    clocks = await wait_for(platform.sla, f"/api/v1/cases/{case_id}/clocks", TONGWAN,
                            lambda b: [c for c in b.get("clocks", []) if c["name"] == "survey" and c["unit"] == "LB-WX-TW"],
                            what="通挽镇's survey clock")  # fmt: skip
    survey_clock = next(c for c in clocks["clocks"] if c["name"] == "survey" and c["unit"] == "LB-WX-TW")
    assert datetime.fromisoformat(survey_clock["due_at"]) == datetime.fromisoformat(order["survey_due_at"])

    # The township surveys on site, with photos (intake's attachments); the work's deadline
    # then counts 4 working days from the survey, never sooner than the class's (surveyed at
    # once here, it stays; tests/test_survey.py plays the two days on a pinned clock).
    site = [PHOTO + b"survey-1", PHOTO + b"survey-2"]  # two photos of the site (the same bytes would be one attachment)
    photos = [await upload_photo(platform, TONGWAN, content) for content in site]
    survey = {"findings": "主路边鱼塘临路一侧约30米无护栏，需加装钢制护栏", "attachments": photos}
    surveyed = await post(f"/api/v1/orders/{no}/survey", json=survey, headers=TONGWAN)
    assert surveyed.status_code == 200, surveyed.text
    seen = (await platform.dispatch.get(f"/api/v1/orders/{no}", headers=TONGWAN)).json()
    at = datetime.fromisoformat(seen["survey"]["at"])
    assert seen["survey"]["on_time"] and seen["survey"]["attachments"] == photos
    install_due = deadlines.after_survey_due(calendar, datetime.fromisoformat(order["due_at"]), at).due_at
    assert datetime.fromisoformat(seen["due_at"]) == install_due >= deadlines.after_survey_due(calendar, at, at).due_at
    plan = {"measures": "4个工作日内加装钢制护栏", "planned_finish_at": seen["due_at"], "responsible": "通挽镇村建站韦某"}
    assert (await post(f"/api/v1/orders/{no}/plan", json=plan, headers=TONGWAN)).status_code == 200
    # SLA: the survey clock stopped at the survey (the village's ended when it reported up), and
    # the township's resolve clock is on the work's deadline as dispatch computed it.
    clocks = await wait_for(platform.sla, f"/api/v1/cases/{case_id}/clocks", TONGWAN,
                            lambda b: {c["unit"]: c["state"] for c in b["clocks"] if c["name"] == "survey"}
                            == {"LB-WX-TW-JL": "stopped", "LB-WX-TW": "stopped"},
                            what="the survey clocks stopped")  # fmt: skip
    resolve = next(c for c in clocks["clocks"] if c["name"] == "resolve" and c["unit"] == "LB-WX-TW" and c["state"] == "running")
    assert datetime.fromisoformat(resolve["due_at"]) == install_due

    # 江龙村, where the case is, follows it: the survey and its photos are on the order; the
    # village neither surveys nor verifies the township's order. Another village sees nothing.
    followed = (await platform.dispatch.get(f"/api/v1/orders/{no}", headers=JIANGLONG_CLERK)).json()
    assert followed["survey"]["findings"] == survey["findings"] and followed["allowed_actions"] == []
    assert (await post(f"/api/v1/orders/{no}/survey", json=survey, headers=JIANGLONG_CLERK)).status_code == 403
    picture = await platform.intake.get(f"/api/v1/attachments/{photos[0]}", headers=JIANGLONG_CLERK)
    assert picture.status_code == 200 and picture.content == site[0], "the village opens the survey's photo"
    for stranger in (DATANG_CLERK, OTHER_COUNTY, WX_SLJ_CLERK):
        assert (await platform.dispatch.get(f"/api/v1/orders/{no}", headers=stranger)).status_code == 404

    # Installed (四天后护栏就安装好了): the township answers, then verifies, closes and publishes.
    answer = "已在鱼塘临路一侧加装钢制护栏30米"
    assert (await post(f"/api/v1/orders/{no}/progress", json={"note": "护栏安装中", "percent": 70}, headers=TONGWAN)).status_code == 200
    assert (await post(f"/api/v1/orders/{no}/resolve", json={"answer": answer}, headers=TONGWAN)).status_code == 200
    resolved = (await platform.dispatch.get(f"/api/v1/cases/{case_id}/orders", headers=TONGWAN)).json()
    assert order_for(resolved, "LB-WX-TW")["allowed_actions"] == ["verify"]
    verified = await post(f"/api/v1/cases/{case_id}/verify", headers=TONGWAN,
                          json={"passed": True, "public_summary": "江龙村主路边鱼塘护栏已加装"})  # fmt: skip
    assert verified.status_code == 200, verified.text
    public = (await platform.dispatch.get("/api/v1/public/closed")).json()["items"]
    published = [p for p in public if p["summary"] == "江龙村主路边鱼塘护栏已加装"]
    assert published and phone not in json.dumps(published, ensure_ascii=False), "公示 without who asked"

    # 武宣县's centre calls 甘长庆 back; he rates it.
    await call_back(platform, case_id, "满意", WX_CENTRE)

    # The citizen, on the phone: every step in the order it happened, the survey among them.
    async def whole_timeline():
        view = await citizen_reads(platform, f"/api/v1/appeals/{case_id}", phone)
        return view if "case.rated" in [e["type"] for e in view["timeline"]] else None

    view = await eventually(whole_timeline, timeout=60, what="the rating on 甘长庆's timeline")
    types = [e["type"] for e in view["timeline"]]
    assert in_order(types, [
        "case.received", "case.accepted", "case.dispatched", "case.reported_up", "case.dispatched", "case.signed",
        "case.surveyed", "case.work_plan_filed", "case.resolved", "case.verified", "case.closed", "case.callback_completed",
        "case.rated",
    ]), types  # fmt: skip
    assert "case.county_called" not in types, "the township did it itself"
    entry = next(e for e in view["timeline"] if e["type"] == "case.surveyed")
    assert entry["label"] == "已现场勘查" and view["status"] == "rated"
