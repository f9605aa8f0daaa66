"""Intake's refusals as a client reads them (issue #21 item 4).

The use cases raise the domain errors of ``shared.errors`` and ``shared.problems`` answers
them, in one place; these pin the whole answer — status, problem ``type``, the ``field`` or
the ``errors`` list — of each refusal that moved out of intake's routes, so that moving it
changed nothing a client sees."""

import hashlib
from datetime import timedelta

from intake.grid_rules import month_bounds, month_of
from shared.actors import actor_headers
from shared.events import utcnow
from shared.problems import MEDIA_TYPE, PROBLEM_BASE
from shared.testing import CENTRE, OPS

GRID = "LB-XC-CG-CD-G01"  # 城东社区's first grid
WORKER = actor_headers("gw-cd-1", "grid_worker", GRID)
OTHER_WORKER = actor_headers("gw-cd-2", "grid_worker", "LB-XC-CG-CD-G02")
COMMUNITY = actor_headers("cd-staff", "village_staff", "LB-XC-CG-CD")
RECEIVER = actor_headers("rf-receiver", "village_staff", "LB-WX-TW-JL")  # 江龙村's 五事 window
COLLEAGUE = actor_headers("rf-colleague", "village_staff", "LB-WX-TW-JL")


def _appeal(phone: str, **changes) -> dict:
    return {
        "title": "城东路路灯不亮", "description": "城东路的路灯坏了三天，晚上很黑。", "channel": "app",
        "contact": {"name": "韦先生", "phone": phone}, "location": {"address": "忻城县城关镇城东社区城东路12号"}, **changes,
    }  # fmt: skip


def _refused(answer, status: int, slug: str, **members) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(MEDIA_TYPE)
    document = answer.json()
    assert (document["type"], document["status"]) == (PROBLEM_BASE + slug, status)
    for name, value in members.items():
        assert document[name] == value, (name, document)
    return document


def _in_body(field: str, message: str) -> list[dict[str, str]]:
    return [{"field": field, "in": "body", "message": message}]


async def test_filing_refusals_name_the_reporter_the_channel_the_attachments_and_the_place(intake):
    client = intake.client
    named = await client.post("/api/v1/appeals", json=_appeal("13800005101", channel="grid", reporter_id="gw-cd-1"), headers=OTHER_WORKER)
    _refused(named, 403, "not-the-reporter", field="reporter_id")

    window = await client.post("/api/v1/appeals", json=_appeal("13800005102", channel="window"))
    message = window.json()["detail"]
    _refused(window, 422, "validation", errors=_in_body("channel", message))

    unknown = await client.post("/api/v1/appeals", json=_appeal("13800005103", attachments=["no-such-file"]))
    _refused(unknown, 422, "validation", detail="attachments must be ids from POST /api/v1/attachments",
             errors=_in_body("attachments.0", "no attachment no-such-file"))  # fmt: skip

    # A grid worker reports what is in their own township (城关镇), not 通挽镇 in another county.
    away = _appeal("13800005104", channel="grid", reporter_id="gw-cd-1", location={"address": "武宣县通挽镇江龙村"})
    outside = await client.post("/api/v1/appeals", json=away, headers=WORKER)
    _refused(outside, 422, "validation", errors=_in_body("location", outside.json()["detail"]))


async def test_staff_refusals_on_a_filed_appeal(intake):
    client = intake.client
    _refused(await client.get("/api/v1/cases", headers=OPS), 403, "role-not-allowed")

    filed = await client.post("/api/v1/appeals", json=_appeal("13800005105"))
    assert filed.status_code == 201, filed.text
    case_id = filed.json()["case_id"]
    triage = {"category": "操心事", "subject_class": "市政设施", "township": "LB-WX-TW"}
    _refused(await client.post(f"/api/v1/appeals/{case_id}/triage", json=triage, headers=CENTRE), 422, "validation", field="township")
    _refused(await client.post("/api/v1/appeals/no-such-case/triage", json=triage, headers=CENTRE), 404, "not-found")


async def test_closing_on_the_spot_is_the_receivers_with_a_satisfied_citizen_while_open(intake):
    client = intake.client
    simple = _appeal("13800005106", channel="window", simple=True, location={"address": "武宣县通挽镇江龙村"},
                     title="咨询低保申请需要哪些材料", description="村民到村五事窗口咨询低保申请需要哪些材料。")  # fmt: skip
    filed = await client.post("/api/v1/appeals", json=simple, headers=RECEIVER)
    assert filed.status_code == 201, filed.text
    case_id = filed.json()["case_id"]
    close = {"answer": "已当场告知所需材料和办理地点", "rating": "满意"}
    url = f"/api/v1/appeals/{case_id}/close-on-spot"

    _refused(await client.post(url, json=close, headers=COLLEAGUE), 404, "not-found", detail=f"no appeal {case_id} received by you")
    _refused(await client.post(url, json={**close, "rating": "不满意"}, headers=RECEIVER), 422, "validation", field="rating")
    assert (await client.post(url, json=close, headers=RECEIVER)).status_code == 200
    again = await client.post(url, json=close, headers=RECEIVER)
    _refused(again, 409, "invalid-state", detail="the appeal is closed; nothing to close")
    # New with the domain error (WrongState): the answer also names the state it is in, as triage's did.
    assert again.json()["state"] == "closed"


async def test_grid_refusals(intake):
    client = intake.client
    not_a_grid = actor_headers("gw-lost", "grid_worker", "LB-XC-CG-CD")
    _refused(await client.post("/api/v1/grid/logins", headers=not_a_grid), 403, "no-grid")

    # 24.0° to 25.0° north along one meridian: about 111 km, past what one patrol covers.
    patrol = {"started_at": "2026-10-05T08:00:00+08:00", "ended_at": "2026-10-05T11:00:00+08:00", "route": [[24.0, 108.6], [25.0, 108.6]]}
    long_one = await client.post("/api/v1/grid/patrols", json=patrol, headers=WORKER)
    _refused(long_one, 422, "validation", errors=_in_body("route", long_one.json()["detail"]))

    unknown_item = await client.post("/api/v1/grid/services", json={"item": "NO-99"}, headers=WORKER)
    _refused(unknown_item, 422, "validation", errors=_in_body("item", "NO-99 is not an item of the proxy-service catalogue"))
    _refused(await client.post("/api/v1/grid/visits", json={"household_ref": "RF-NONE"}, headers=WORKER), 404, "not-found")

    ahead = (utcnow() + timedelta(days=1)).isoformat()
    future = await client.post("/api/v1/grid/mailbox/openings", json={"letters": 1, "opened_at": ahead}, headers=WORKER)
    _refused(future, 422, "validation", errors=_in_body("opened_at", "opened_at is in the future"))

    next_month = month_of(month_bounds(month_of(utcnow()))[1])
    early = await client.post("/api/v1/grid/checks", json={"month": next_month}, headers=OPS)
    _refused(early, 422, "validation", errors=_in_body("month", f"{next_month} has not begun"))


async def test_register_refusals(intake):
    client = intake.client
    ref = "RF-" + hashlib.sha256(str(utcnow()).encode()).hexdigest()[:8]
    other = await client.put(f"/api/v1/grid/register/{ref}", json={"grid": "LB-XC-CG-CD-G02"}, headers=WORKER)
    _refused(other, 422, "validation", errors=_in_body("grid", "LB-XC-CG-CD-G02 is not a grid you keep the register of"))

    since = {"grid": GRID, "effective_at": "2026-10-10T08:00:00+08:00"}
    assert (await client.put(f"/api/v1/grid/register/{ref}", json=since, headers=WORKER)).status_code == 200
    earlier = {"grid": GRID, "difficult": True, "effective_at": "2026-10-01T08:00:00+08:00"}
    before = await client.put(f"/api/v1/grid/register/{ref}", json=earlier, headers=WORKER)
    _refused(before, 422, "validation", errors=_in_body("effective_at", before.json()["detail"]))
    moved = await client.put(f"/api/v1/grid/register/{ref}", json={"grid": "LB-XC-CG-CD-G02"}, headers=OTHER_WORKER)
    _refused(moved, 409, "conflict", detail=f"household {ref} is on another grid's register")

    _refused(await client.get(f"/api/v1/grid/register/{ref}/history", headers=OTHER_WORKER), 404, "not-found")
    _refused(await client.get("/api/v1/grid/register", params={"grid": "LB-XC-CG-CD-G02"}, headers=WORKER), 404, "not-found")


async def test_attachment_refusals(intake):
    client = intake.client
    empty = await client.post("/api/v1/attachments", files={"file": ("empty.jpg", b"", "image/jpeg")})
    _refused(empty, 422, "empty-attachment", field="file")
    _refused(await client.get("/api/v1/attachments/no-such-file", headers=COMMUNITY), 404, "not-found")
