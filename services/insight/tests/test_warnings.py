"""预警信息处置 through the topic and HTTP, against the real PostgreSQL and broker: a burst of
same-spot appeals gives a finding, the finding opens a warning for the unit that handles the
spot; its head acknowledges it, reports what was done, the centre sends it back once and then
closes it; every step is an event on the topic with the deadlines; each role reads only what it
may; the figure and the supervision list add up. Appeal days pinned (November 2026)."""

from __future__ import annotations

from services.insight.tests.test_findings import appeal, at
from shared.actors import actor_headers
from shared.events import EventBase, Location
from shared.testing import eventually, publish
from shared.workdays import LOCAL

XC_CENTRE = actor_headers("xc-supervisor", "centre_supervisor", "LB-XC-ZZZX")  # 忻城县综治中心
WX_CENTRE = actor_headers("wx-dispatcher", "centre_dispatcher", "LB-WX-ZZZX")  # another county's
ZJJ_HEAD = actor_headers("zjj-head", "dept_head", "LB-XC-ZJJ")  # 忻城县住建局: handles the streetlamps
ZJJ_CLERK = actor_headers("zjj-clerk", "dept_clerk", "LB-XC-ZJJ")
SLJ_HEAD = actor_headers("slj-head", "dept_head", "LB-XC-SLJ")  # another department of the county
CG_HEAD = actor_headers("cg-head", "township_head", "LB-XC-CG")
AUDITOR = actor_headers("auditor", "auditor", "LB")
SPOT = Location(township="LB-XC-CG", village="LB-XC-CG-CZ", grid="LB-XC-CG-CZ-G02", street="土司练兵场路")


async def warnings_of(insight, headers) -> list[dict]:
    answer = await insight.client.get("/api/v1/warnings", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


async def test_a_finding_becomes_a_warning_acknowledged_handled_sent_back_and_closed_and_counted(insight, topic, infra):
    cases = [appeal(at(day), location=SPOT) for day in (16, 17, 18)]
    await publish(infra.bootstrap_servers, insight.settings.kafka_topic, *[e for _, evs in cases for e in evs])

    async def opened() -> list[EventBase]:
        return await topic.events(types="warning.opened")

    [event] = await eventually(opened, what="warning.opened")
    [hotspot] = await topic.events(types="hotspot.detected")
    p = event.payload  # type: ignore[attr-defined]
    assert (p.finding_id, p.unit, p.centre, p.state, p.round) == (hotspot.payload.finding_id, "LB-XC-ZJJ", "LB-XC-ZZZX", "open", 0)
    assert event.causation_id == hotspot.id
    assert hotspot.occurred_at < p.acknowledge_due_at < p.handle_due_at  # 1 and 5 working days (unit-tested)
    warning_id = p.warning_id
    url = f"/api/v1/warnings/{warning_id}"

    # Who reads it: the unit warned and the county's centre; not another department, not a
    # township, not another county's centre (404 as for an id that does not exist).
    [listed] = await warnings_of(insight, ZJJ_HEAD)
    assert listed["warning_id"] == warning_id and listed["allowed_actions"] == ["acknowledge"]
    assert [w["warning_id"] for w in await warnings_of(insight, XC_CENTRE)] == [warning_id]
    assert (await insight.client.get(url, headers=XC_CENTRE)).json()["allowed_actions"] == []  # the unit acts first
    for outsider in (SLJ_HEAD, CG_HEAD, WX_CENTRE):
        assert await warnings_of(insight, outsider) == []
        for probe in (url, "/api/v1/warnings/no-such-warning"):
            assert (await insight.client.get(probe, headers=outsider)).status_code == 404
    assert (await insight.client.post(f"{url}/acknowledge", headers=SLJ_HEAD)).status_code == 404
    refused = await insight.client.post(f"{url}/close", headers=ZJJ_HEAD)  # the unit may not close its own warning
    assert refused.status_code == 403
    assert (await insight.client.post(f"{url}/acknowledge", headers=XC_CENTRE)).status_code == 403  # the centre does not sign for it

    # Wrong state: handled before acknowledged → 409 naming the state and what is allowed.
    early = await insight.client.post(f"{url}/handle", headers=ZJJ_HEAD, json={"note": "已修复"})
    assert early.status_code == 409, early.text
    assert (early.json()["state"], early.json()["allowed_actions"]) == ("open", ["acknowledge"])

    signed = await insight.client.post(f"{url}/acknowledge", headers=ZJJ_CLERK)
    assert signed.status_code == 200, signed.text
    assert (signed.json()["state"], signed.json()["acknowledged_on_time"], signed.json()["allowed_actions"]) == ("acknowledged", True, ["handle"])
    handled = await insight.client.post(f"{url}/handle", headers=ZJJ_HEAD, json={"note": "已排查该路段全部路灯，更换线路"})
    assert handled.status_code == 200 and handled.json()["state"] == "handled"
    assert (await insight.client.get(url, headers=XC_CENTRE)).json()["allowed_actions"] == ["close", "reopen"]
    back = await insight.client.post(f"{url}/reopen", headers=XC_CENTRE, json={"note": "回访仍有两盏不亮"})
    assert back.status_code == 200 and (back.json()["state"], back.json()["round"]) == ("acknowledged", 1)
    again = await insight.client.post(f"{url}/handle", headers=ZJJ_HEAD, json={"note": "两盏灯已更换灯头"})
    assert again.status_code == 200
    closed = await insight.client.post(f"{url}/close", headers=XC_CENTRE)
    assert closed.status_code == 200 and closed.json()["state"] == "closed"
    late = await insight.client.post(f"{url}/reopen", headers=XC_CENTRE, json={"note": "再看看"})
    assert late.status_code == 409 and late.json()["allowed_actions"] == []

    # Each step on the topic, in order, carrying the deadlines.
    async def steps() -> list[EventBase] | None:
        seen = [e for e in await topic.events() if e.type.startswith("warning.")]
        return seen if len(seen) == 6 else None

    seen = await eventually(steps, what="six warning events")
    assert [(e.type, e.payload.state, e.payload.round) for e in seen] == [  # type: ignore[attr-defined]
        ("warning.opened", "open", 0), ("warning.acknowledged", "acknowledged", 0), ("warning.handled", "handled", 0),
        ("warning.reopened", "acknowledged", 1), ("warning.handled", "handled", 1), ("warning.closed", "closed", 1),
    ]  # fmt: skip
    assert [e.payload.on_time for e in seen] == [None, True, True, None, True, None]  # type: ignore[attr-defined]
    assert seen[1].actor.id == "zjj-clerk" and seen[3].payload.note == "回访仍有两盏不亮"  # type: ignore[attr-defined]
    assert seen[3].payload.handle_due_at > seen[2].payload.handle_due_at  # a new round, a new deadline  # type: ignore[attr-defined]

    # The figure, the centre's: one warning received, acknowledged and handled on time, closed, reopened once.
    day = hotspot.occurred_at.astimezone(LOCAL).date().isoformat()  # the local day it was opened on
    figures = await insight.client.get("/api/v1/warning-figures", params={"since": day, "until": day}, headers=XC_CENTRE)
    assert figures.status_code == 200, figures.text
    assert figures.json()["items"] == [{
        "unit": "LB-XC-ZJJ", "received": 1, "acknowledged_on_time": 1, "handled_on_time": 1, "closed": 1, "reopened": 1,
        "carded": 0, "acknowledged_on_time_rate": 100.0, "handled_on_time_rate": 100.0, "closed_rate": 100.0, "reopened_rate": 100.0,
        "carded_rate": 0.0,
    }]  # fmt: skip
    other = await insight.client.get("/api/v1/warning-figures", params={"since": day, "until": day}, headers=WX_CENTRE)
    assert other.status_code == 200 and other.json()["items"] == []
    assert (await insight.client.get("/api/v1/warning-figures", params={"since": day, "until": day}, headers=ZJJ_HEAD)).status_code == 403

    # The supervision list (督查): the unit's recurring problem, with the evidence; the centre's only.
    listed = await insight.client.get("/api/v1/supervision", params={"until": "2026-11-30", "months": 3}, headers=XC_CENTRE)
    assert listed.status_code == 200, listed.text
    assert listed.json()["since"] == "2026-09-01"
    [entry] = listed.json()["items"]
    assert (entry["unit"], entry["subject_class"], entry["findings"], entry["kinds"], entry["open_warnings"]) == (
        "LB-XC-ZJJ", "infrastructure", 1, {"same_spot": 1}, 0)
    assert entry["case_ids"] == sorted(case_id for case_id, _ in cases)
    assert (await insight.client.get("/api/v1/supervision", params={"until": "2026-11-30"}, headers=WX_CENTRE)).json()["items"] == []
    assert (await insight.client.get("/api/v1/supervision", params={"until": "2026-11-30"}, headers=ZJJ_HEAD)).status_code == 403
    audited = await insight.client.get("/api/v1/supervision", params={"until": "2026-11-30"}, headers=AUDITOR)
    assert [e["unit"] for e in audited.json()["items"]] == ["LB-XC-ZJJ"]
