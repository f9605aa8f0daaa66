"""Who may see and do what in notify (issue #9): callbacks by org scope, inboxes by owner,
webhook administration by role; what is not yours answers 404."""

from __future__ import annotations

from shared.actors import actor_headers
from shared.testing import AUDITOR, CENTRE, OPS

from notify.tests.helpers import closed_case, local

TONGWAN = actor_headers("tw-op", "township_staff", "LB-WX-TW")
CHENGGUAN = actor_headers("cg-op", "township_staff", "LB-XC-CG")
CLERK = actor_headers("clerk", "dept_clerk", "LB-XC-JTJ")
XINGBIN = actor_headers("xb", "centre_dispatcher", "LB-XB-ZZZX")
WX_CENTRE = actor_headers("wx-centre", "centre_dispatcher", "LB-WX-ZZZX")  # 通挽镇's county centre (武宣县)


async def test_callbacks_belong_to_their_township_and_centre(notify, infra, receiver) -> None:
    case, task = await closed_case(notify, infra, receiver, local(2026, 11, 23, 10), township="LB-WX-TW")
    for who in (TONGWAN, WX_CENTRE, AUDITOR):
        assert (await notify.client.get(f"/api/v1/callbacks/{task['id']}", headers=who)).status_code == 200, who
        assert (await notify.client.get(f"/api/v1/cases/{case.id}/callbacks", headers=who)).status_code == 200, who
    for who in (CHENGGUAN, CENTRE, CLERK, XINGBIN, OPS):  # CENTRE: 忻城县's, another county
        assert (await notify.client.get(f"/api/v1/callbacks/{task['id']}", headers=who)).status_code == 404, who
        assert (await notify.client.get(f"/api/v1/cases/{case.id}/callbacks", headers=who)).status_code == 404, who
        assert (await notify.client.get(f"/api/v1/cases/{case.id}/messages", headers=who)).status_code == 404, who

    # Another township's operator cannot record the result of this callback.
    result = {"reached": True, "rating": "满意"}
    assert (await notify.client.post(f"/api/v1/callbacks/{task['id']}/result", json=result, headers=CHENGGUAN)).status_code == 404
    # A department clerk is no callback operator, even for a case it may see.
    assert (await notify.client.post(f"/api/v1/callbacks/{task['id']}/result", json=result, headers=CLERK)).status_code in (403, 404)

    # Queues: a township sees its own callbacks only, whatever it asks for.
    async def queue(who, **params):
        answer = await notify.client.get("/api/v1/callbacks", params={"view": "all", "limit": 500, **params}, headers=who)
        assert answer.status_code == 200, answer.text
        return {item["id"] for item in answer.json()["items"]}

    assert task["id"] in await queue(TONGWAN)
    assert task["id"] not in await queue(CHENGGUAN)
    assert task["id"] not in await queue(CHENGGUAN, township="LB-WX-TW")
    assert task["id"] in await queue(WX_CENTRE)
    assert task["id"] not in await queue(CENTRE)
    assert task["id"] not in await queue(XINGBIN)
    assert (await notify.client.get("/api/v1/callbacks", headers=CLERK)).status_code == 403
    summary = (await notify.client.get("/api/v1/callbacks/summary", headers=CHENGGUAN)).json()["townships"]
    assert {row["township"] for row in summary} <= {"LB-XC-CG"}


async def test_an_inbox_is_read_by_its_owner_only(notify) -> None:
    duty = "unit:LB-XC-ZJJ:duty"
    own = actor_headers("zjj-duty", "dept_clerk", "LB-XC-ZJJ")
    assert (await notify.client.get(f"/api/v1/inbox/{duty}", headers=own)).status_code == 200
    for who in (CLERK, CENTRE, OPS, actor_headers("c", "citizen")):
        assert (await notify.client.get(f"/api/v1/inbox/{duty}", headers=who)).status_code == 404, who
    # The head's inbox: not for the clerk of the same unit.
    assert (await notify.client.get("/api/v1/inbox/unit:LB-XC-ZJJ:head", headers=own)).status_code == 404
    head = actor_headers("zjj-head", "dept_head", "LB-XC-ZJJ")
    assert (await notify.client.get("/api/v1/inbox/unit:LB-XC-ZJJ:head", headers=head)).status_code == 200
    # A citizen's inbox: that citizen only.
    me = actor_headers("citizen:abc123", "citizen")
    assert (await notify.client.get("/api/v1/inbox/citizen:abc123", headers=me)).status_code == 200
    assert (await notify.client.get("/api/v1/inbox/citizen:other", headers=me)).status_code == 404


async def test_webhook_administration_and_the_clock_are_for_ops_and_the_centre(notify) -> None:
    assert (await notify.client.get("/api/v1/admin/webhooks", headers=CLERK)).status_code == 403
    assert (await notify.client.get("/api/v1/admin/webhooks", headers=OPS)).status_code == 200
    assert (await notify.client.post("/api/v1/admin/webhooks/1/resend", headers=TONGWAN)).status_code == 403
    assert (await notify.client.post("/api/v1/admin/clock", json={"now": None}, headers=CLERK)).status_code == 403
