"""Insight through the topic and HTTP, against the real PostgreSQL and broker: appeals
published as intake and dispatch write them become a finding — an event on the topic with its
evidence, and a row in the centre's list. The days are pinned (November 2026), never today's."""

from __future__ import annotations

from datetime import datetime

from shared.actors import actor_headers
from shared.events import (
    CaseDispatched,
    CaseMerged,
    CaseReceived,
    CaseTriaged,
    DispatchedData,
    EventBase,
    FiveMatters,
    Location,
    MergedData,
    ReceivedData,
    TriagedData,
    make_event,
    system_actor,
)
from shared.testing import eventually, publish, unique
from shared.workdays import LOCAL

XC_CENTRE = actor_headers("xc-dispatcher", "centre_dispatcher", "LB-XC-ZZZX")  # 忻城县综治中心
WX_CENTRE = actor_headers("wx-dispatcher", "centre_dispatcher", "LB-WX-ZZZX")  # 武宣县: another county
CITIZEN = actor_headers("someone", "citizen")
ZJJ_HEAD = actor_headers("zjj-head", "dept_head", "LB-XC-ZJJ")
SPOT = Location(township="LB-XC-CG", village="LB-XC-CG-CZ", grid="LB-XC-CG-CZ-G01", street="西宁街")
# The rules under test, not the defaults (which the bench may move).
THRESHOLDS = {"spot_min": 3, "spot_window_days": 10, "min_count": 4, "max_p": 1e-4, "cooldown_days": 10}


def at(day: int, hour: int = 10) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=LOCAL)


def appeal(when: datetime, *, location: Location = SPOT, unit: str | None = "LB-XC-ZJJ") -> tuple[str, list[EventBase]]:
    """One streetlamp appeal as intake (received, triaged) and dispatch (its order) write it."""
    case_id = unique("case")

    def make(cls, payload, producer: str) -> EventBase:  # type: ignore[no-untyped-def]
        return make_event(cls, case_id=case_id, payload=payload, producer=producer, actor=system_actor(producer), occurred_at=when)

    events = [
        make(CaseReceived, ReceivedData(tracking_no=f"XC-{case_id[-8:]}", channel="app", title="西宁街路灯不亮",
                                        description="一排路灯一直不亮", location=location), "intake"),
        make(CaseTriaged, TriagedData(category=FiveMatters.worry, subject_class="infrastructure", location=location,
                                      confidence=0.9, region="LB-XC"), "intake"),
    ]  # fmt: skip
    if unit:
        events.append(make(CaseDispatched, DispatchedData(order_no=f"JB-{case_id[-8:]}", unit=unit), "dispatch"))
    return case_id, events


async def findings(insight, headers: dict[str, str]) -> list[dict]:
    response = await insight.client.get("/api/v1/findings", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_a_burst_of_same_spot_appeals_produces_one_finding_on_the_topic_and_in_the_centres_list(insight, topic, infra):
    first, e1 = appeal(at(16))
    second, e2 = appeal(at(17))
    await publish(infra.bootstrap_servers, insight.settings.kafka_topic, *e1, *e2)
    # Two reports of the spot are not yet a pattern; a third, merged into the first (并单), is.
    duplicate, e3 = appeal(at(18), unit=None)
    merged = make_event(CaseMerged, case_id=duplicate, payload=MergedData(into_case_id=first), producer="intake",
                        actor=system_actor("intake"), occurred_at=at(18, 11))  # fmt: skip
    await publish(infra.bootstrap_servers, insight.settings.kafka_topic, *e3, merged)

    async def hotspot() -> list[EventBase]:
        return await topic.events(types="hotspot.detected")

    [event] = await eventually(hotspot, what="hotspot.detected")
    p = event.payload  # type: ignore[attr-defined]
    assert event.case_id is None and event.producer == "insight"
    assert (p.kind, p.level, p.area, p.street, p.subject_class) == ("same_spot", "grid", "LB-XC-CG-CZ-G01", "西宁街", "infrastructure")
    assert sorted(p.case_ids) == sorted([first, second, duplicate])
    assert p.count == 4  # three appeals and the merge into the first
    assert (p.county, p.township, p.unit, p.centre) == ("LB-XC", "LB-XC-CG", "LB-XC-ZJJ", "LB-XC-ZZZX")  # who is warned
    assert p.window_end.isoformat() == "2026-11-18" and p.window_workdays == 10
    assert "西宁街" in p.explanation and "基础设施" in p.explanation and "4次" in p.explanation

    listed = await eventually(lambda: findings(insight, XC_CENTRE), what="finding listed")
    assert [(f["finding_id"], sorted(f["case_ids"])) for f in listed] == [(p.finding_id, sorted(p.case_ids))]
    assert listed[0]["explanation"] == p.explanation
    # The unit that handles the spot sees it; another county's centre does not; a citizen may not ask.
    assert [f["finding_id"] for f in await findings(insight, ZJJ_HEAD)] == [p.finding_id]
    assert await findings(insight, WX_CENTRE) == []
    one = await insight.client.get(f"/api/v1/findings/{p.finding_id}", headers=XC_CENTRE)
    assert one.status_code == 200 and one.json()["case_ids"] == listed[0]["case_ids"]
    # Another county's centre is told it does not exist, as for an id that never did.
    for finding_id in (p.finding_id, "no-such-finding"):
        assert (await insight.client.get(f"/api/v1/findings/{finding_id}", headers=WX_CENTRE)).status_code == 404
    refused = await insight.client.get("/api/v1/findings", headers=CITIZEN)
    assert refused.status_code == 403 and refused.headers["content-type"].startswith("application/problem+json")


async def test_one_spot_is_one_warning_until_its_cooldown_ends_and_redelivery_changes_nothing(insight, topic, infra):
    before = len(await topic.events(types="hotspot.detected"))
    # 城东社区, the neighbouring village: a spot of its own, apart from 城中社区's 西宁街 (SPOT).
    spot = Location(township="LB-XC-CG", village="LB-XC-CG-CD", street="城东路")  # no grid: the village is the spot
    cases = [appeal(at(day), location=spot) for day in (23, 24, 25)]
    events = [e for _, evs in cases for e in evs]
    await publish(infra.bootstrap_servers, insight.settings.kafka_topic, *events)

    async def new_ones() -> list[EventBase]:
        seen = await topic.events(types="hotspot.detected")
        return seen[before:] or []

    [found] = await eventually(new_ones, what="the second spot's finding")
    assert (found.payload.level, found.payload.area) == ("village", "LB-XC-CG-CD")  # type: ignore[attr-defined]
    # The same events again (a redelivery) and a fourth appeal two days later: still one warning.
    _, later = appeal(at(27), location=spot)
    await publish(infra.bootstrap_servers, insight.settings.kafka_topic, *events, *later)
    async with insight.runtime.uow() as uow:
        from sqlalchemy import text

        async def applied() -> int:
            return (await uow.session.execute(text("SELECT count(*) FROM appeals WHERE village = 'LB-XC-CG-CD'"))).scalar_one()

        await eventually(lambda: _equals(applied, 4), what="the fourth appeal applied")
        rows = (await uow.session.execute(text("SELECT count(*) FROM findings WHERE area = 'LB-XC-CG-CD'"))).scalar_one()
    assert rows == 1
    assert len(await new_ones()) == 1


async def _equals(check, expected: int) -> bool:  # type: ignore[no-untyped-def]
    return await check() == expected
