"""Feeding dispatch what intake would publish, and acting as the people who use it."""

from __future__ import annotations

import uuid
from datetime import datetime

from shared.actors import actor_headers
from shared.events import (
    AcceptedData,
    CaseAccepted,
    CaseMerged,
    CaseRated,
    CaseReceived,
    CaseTriaged,
    Channel,
    EventBase,
    FiveMatters,
    Location,
    MergedData,
    RatedData,
    ReceivedData,
    Satisfaction,
    TriagedData,
    make_event,
    system_actor,
    utcnow,
)
from shared.orgdata import load_org
from shared.testing import AUDITOR, eventually, publish

ORG = load_org()

INTAKE = system_actor("intake")
CLERK = actor_headers("demo-dept-clerk", "dept_clerk", "LB-XC-ZJJ")
SLJ_CLERK = actor_headers("slj-clerk", "dept_clerk", "LB-XC-SLJ")
DISPATCHER = actor_headers("demo-centre-dispatcher", "centre_dispatcher", "LB-XC-ZZZX")
CHENGGUAN = actor_headers("cg-staff", "township_staff", "LB-XC-CG")
# 通挽镇 is in 武宣县: the guardrail story is told with 武宣县's centre and departments.
TONGWAN = actor_headers("demo-township-staff", "township_staff", "LB-WX-TW")
WUXUAN = actor_headers("wx-staff", "township_staff", "LB-WX-WX")  # 武宣镇, another township of 武宣县
WX_DISPATCHER = actor_headers("demo-centre-dispatcher-wx", "centre_dispatcher", "LB-WX-ZZZX")
WX_SLJ_CLERK = actor_headers("demo-dept-clerk-slj", "dept_clerk", "LB-WX-SLJ")
JTJ_CLERK = actor_headers("demo-dept-clerk-jtj", "dept_clerk", "LB-WX-JTJ")
ZRZYJ_CLERK = actor_headers("zrzyj-clerk", "dept_clerk", "LB-WX-ZRZYJ")
# 江龙村 (a village of 通挽镇): its staff at the 五事 window, its grid worker, its 综治中心.
JIANGLONG = actor_headers("demo-village-staff", "village_staff", "LB-WX-TW-JL")
JIANGLONG_GRID = actor_headers("demo-grid-worker-jl", "grid_worker", "LB-WX-TW-JL-G01")
DATANG = actor_headers("dt-staff", "village_staff", "LB-WX-TW-DT")  # 大塘村, another village of 通挽镇

STREETLAMP = ("西宁街路灯不亮", "忻城县城关镇城中社区西宁街的路灯坏了三天，晚上很黑。", "infrastructure",
              Location(township="LB-XC-CG", village="LB-XC-CG-CZ", grid="LB-XC-CG-CZ-G01", street="西宁街"))
GUARDRAIL = ("鱼塘边没有护栏", "武宣县通挽镇江龙村鱼塘边没有护栏，孩子上学路过很危险，希望加装护栏。", "public_safety",
             Location(township="LB-WX-TW", village="LB-WX-TW-JL", street="江龙村"))


def intake_events(
    matter=STREETLAMP, *, case_id: str | None = None, at: datetime | None = None, triage: bool = True,
    merged_into: str | None = None, **received,
) -> list[EventBase]:  # fmt: skip
    """What intake writes for a new appeal: received → accepted → triaged, or received →
    merged → triaged for a second report of a matter (并单)."""
    title, text, subject, place = matter
    case_id = case_id or str(uuid.uuid4())
    at = at or utcnow()
    got = make_event(CaseReceived, case_id=case_id, producer="intake", actor=INTAKE, occurred_at=at, payload=ReceivedData(
        tracking_no=f"XC-{at:%Y%m%d}-{uuid.uuid4().int % 1_000_000:06d}", channel=Channel.app, title=title,
        description=text, location=place, **received,
    ))  # fmt: skip
    if merged_into is None:
        second = make_event(CaseAccepted, producer="intake", actor=INTAKE, caused_by=got, occurred_at=at,
                            payload=AcceptedData(tracking_no=got.payload.tracking_no, notice="已受理"))  # fmt: skip
    else:
        second = make_event(CaseMerged, producer="intake", actor=INTAKE, caused_by=got, occurred_at=at,
                            payload=MergedData(into_case_id=merged_into))  # fmt: skip
    events = [got, second]
    if triage:
        events.append(make_event(CaseTriaged, producer="intake", actor=INTAKE, caused_by=got, occurred_at=at, payload=TriagedData(
            category=FiveMatters.annoyance, subject_class=subject, location=place, confidence=0.9, region=ORG.county_of(place.township),
        )))  # fmt: skip
    return events


async def file_case(service, matter=STREETLAMP, *, at: datetime | None = None, triage: bool = True, **received) -> str:
    """received → accepted → triaged, as intake writes them; returns the case id."""
    events = intake_events(matter, at=at, triage=triage, **received)
    await publish(service.settings.kafka_bootstrap_servers, service.settings.kafka_topic, *events)
    return events[0].case_id


async def rate(service, case_id: str, rating: Satisfaction, round_: int = 0) -> None:
    await publish(service.settings.kafka_bootstrap_servers, service.settings.kafka_topic, make_event(
        CaseRated, case_id=case_id, producer="notify", actor=system_actor("notify"),
        payload=RatedData(rating=rating, round=round_, source="callback"),
    ))  # fmt: skip


async def orders_of(service, case_id: str, n: int = 1, reader: dict = DISPATCHER) -> list[dict]:
    """Wait until the case has at least ``n`` orders; the county's centre sees them all
    (``WX_DISPATCHER`` for a case of 武宣县 such as the guardrail)."""

    async def check():
        answer = await service.client.get(f"/api/v1/cases/{case_id}/orders", headers=reader)
        orders = answer.json()["orders"] if answer.status_code == 200 else []
        return orders if len(orders) >= n else None

    return await eventually(check, what=f"{n} order(s) for case {case_id}")


async def reported_up(service, case_id: str, reason: str = "村里无力加装护栏，上报镇里") -> str:
    """A case located in 江龙村 (the guardrail) is the village's first; its staff report it up
    (上报) to 通挽镇. Returns the township's new order number."""
    [village_order] = await orders_of(service, case_id, reader=WX_DISPATCHER)
    assert village_order["unit"] == "LB-WX-TW-JL", village_order
    answer = await act(service, village_order["order_no"], "report-up", JIANGLONG, {"reason": reason})
    assert answer.status_code == 200, answer.text
    return answer.json()["detail"]["new_order"]


async def act(service, order_no: str, action: str, headers: dict, body: dict | None = None, **extra):
    return await service.client.post(f"/api/v1/orders/{order_no}/{action}", json=body or {}, headers={**headers, **extra})


async def events_of(topic, case_id: str, n: int, types: tuple[str, ...] | None = None) -> list:
    async def check():
        found = await topic.events(case_id=case_id, types=types)
        return found if len(found) >= n else None

    return await eventually(check, what=f"{n} events of {case_id}")


async def merge(service, matter, *, into: str) -> str:
    """A second report of the same matter, as intake writes it: received, merged, triaged."""
    events = intake_events(matter, at=utcnow(), merged_into=into)
    case_id = events[0].case_id
    await publish(service.settings.kafka_bootstrap_servers, service.settings.kafka_topic, *events)

    async def known():
        answer = await service.client.get(f"/api/v1/cases/{case_id}/status", headers=AUDITOR)
        return answer.status_code == 200 and answer.json()["events_applied"] >= 3

    await eventually(known, what="dispatch to learn of the duplicate")
    return case_id


async def extension_asked(service, *, working_days: int = 3) -> tuple[str, str, str]:
    """A streetlamp case whose 住建局 order is signed and has an extension request pending:
    (case id, order number, request id)."""
    case_id = await file_case(service, STREETLAMP)
    [order] = await orders_of(service, case_id)
    no = order["order_no"]
    assert (await act(service, no, "sign", CLERK)).status_code == 200
    asked = await act(service, no, "extensions", CLERK, {"working_days": working_days, "reason": "材料未到"})
    assert asked.status_code == 201, asked.text
    return case_id, no, asked.json()["detail"]["request_id"]


class PinnedClock:
    """Dispatch's now, set by the test (dispatch stamps every action with ``utcnow()``)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def pin_dispatch_clock(monkeypatch, now: datetime) -> PinnedClock:
    """Pins dispatch's now for its routes and for the catalogue's automatic orders."""
    import dispatch.batch
    import dispatch.service

    pinned = PinnedClock(now)
    monkeypatch.setattr(dispatch.service, "utcnow", pinned)
    monkeypatch.setattr(dispatch.batch, "utcnow", pinned)
    return pinned
