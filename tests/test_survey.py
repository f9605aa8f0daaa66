"""The on-site survey (现场勘查) as a step of its own (issue #23 item 3), across dispatch and
SLA on one topic (real PostgreSQL, real broker, real HTTP).

An order of an on-site matter is due to be surveyed 2 working days after it reached the
unit; the survey (findings, photos) stops that clock and the work then has 4 working days
from the survey (never less than its class gave it). Dispatch computes both deadlines once
(shared.deadlines) and they travel on case.dispatched and case.surveyed; SLA's clocks show
the same times, and a survey not made in time gets the yellow and red cards.

Dispatch's clock is pinned (Monday 16 November 2026, no holiday near) and SLA's now is set
to the same moments, so the test means the same on any day.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dispatch.app import create_app as dispatch_app
from dispatch.settings import DispatchSettings
from dispatch.tests.helpers import DATANG, GUARDRAIL, JIANGLONG, STREETLAMP, TONGWAN, WX_DISPATCHER, act, file_case, orders_of, PinnedClock, pin_dispatch_clock
from shared import deadlines
from shared.actors import actor_headers
from shared.events import Location
from shared.testing import AUDITOR, Infra, eventually, running, service_settings, unique
from shared.workdays import WorkingCalendar
from sla.app import create_app as sla_app
from sla.tests.conftest import sla_settings

BJ = ZoneInfo("Asia/Shanghai")
OPS = actor_headers("ops", "ops")
VILLAGE, TOWNSHIP = "LB-WX-TW-JL", "LB-WX-TW"
CALENDAR = WorkingCalendar()
# A consultation of 江龙村: not a matter on site, so no survey clock.
QUESTION = ("咨询低保政策", "江龙村村民想了解低保申请条件。", "social_security", Location(township=TOWNSHIP, village=VILLAGE, street="江龙村"))


@pytest.fixture(scope="module")
async def services(infra: Infra):
    topic = unique("lifecycle")
    d = service_settings(DispatchSettings, infra, topic=topic, database=unique("dispatch"), org_topic=unique("org"))
    s = sla_settings(infra, topic=topic, database=unique("sla"))
    async with running(dispatch_app(d), d) as dispatcher, running(sla_app(s), s) as sla:
        yield dispatcher, sla


@pytest.fixture
def clock(monkeypatch) -> PinnedClock:
    return pin_dispatch_clock(monkeypatch, datetime(2026, 11, 16, 9, tzinfo=BJ))  # Monday


async def sla_now(sla, now: datetime) -> None:
    moved = await sla.client.post("/api/v1/admin/time", json={"now": now.isoformat()}, headers=OPS)
    assert moved.status_code == 200, moved.text


async def clocks_of(sla, case_id: str, ready) -> dict[tuple[str, str], dict]:
    """SLA's clocks of the case by (unit, name), once ``ready(them)`` holds."""

    async def check():
        answer = await sla.client.get(f"/api/v1/cases/{case_id}/clocks", headers=AUDITOR)
        clocks = {(c["unit"], c["name"]): c for c in answer.json()["clocks"]} if answer.status_code == 200 else {}
        return clocks if ready(clocks) else None

    return await eventually(check, what=f"SLA's clocks of {case_id}")


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_the_township_surveys_within_two_working_days_and_the_work_counts_four_from_the_survey(services, clock):
    dispatcher, sla = services
    await sla_now(sla, clock.now)
    case_id = await file_case(dispatcher, GUARDRAIL, at=clock.now)
    [village_order] = await orders_of(dispatcher, case_id, reader=WX_DISPATCHER)
    assert village_order["unit"] == VILLAGE
    assert at(village_order["survey_due_at"]) == datetime(2026, 11, 18, 9, tzinfo=BJ), "2 working days after dispatch"

    clock.now = datetime(2026, 11, 16, 15, tzinfo=BJ)
    up = await act(dispatcher, village_order["order_no"], "report-up", JIANGLONG, {"reason": "村里无力加装，上报镇里"})
    assert up.status_code == 200, up.text
    no = up.json()["detail"]["new_order"]
    order = (await dispatcher.client.get(f"/api/v1/orders/{no}", headers=TONGWAN)).json()
    assert at(order["survey_due_at"]) == datetime(2026, 11, 18, 15, tzinfo=BJ), "the township's own 2 days, from the report"
    assert order["survey"] is None and "survey" not in order["allowed_actions"], "signed first"

    # SLA: the village's survey clock ended with its order; the township's runs to dispatch's deadline.
    clocks = await clocks_of(sla, case_id, lambda c: (TOWNSHIP, "survey") in c and c.get((VILLAGE, "survey"), {}).get("state") == "stopped")
    assert at(clocks[(TOWNSHIP, "survey")]["due_at"]) == at(order["survey_due_at"])
    assert clocks[(TOWNSHIP, "survey")]["state"] == "running"

    clock.now += timedelta(hours=1)
    assert (await act(dispatcher, no, "sign", TONGWAN)).status_code == 200
    # Only the order's unit surveys: the village reads the order but does not act on it.
    survey = {"findings": "鱼塘临路一侧约30米无护栏，需加装钢制护栏", "attachments": ["att_" + "1" * 32, "att_" + "2" * 32]}
    assert (await act(dispatcher, no, "survey", JIANGLONG, survey)).status_code == 403
    assert (await act(dispatcher, no, "survey", TONGWAN, {**survey, "attachments": []})).status_code == 422, "with photos"

    clock.now = datetime(2026, 11, 18, 10, tzinfo=BJ)  # two days later (两天后镇里派人现场勘查)
    done = await act(dispatcher, no, "survey", TONGWAN, survey)
    assert done.status_code == 200, done.text
    install_due = deadlines.after_survey_due(CALENDAR, at(order["due_at"]), clock.now).due_at
    assert install_due == datetime(2026, 11, 24, 10, tzinfo=BJ), "4 working days after the survey"
    assert install_due > at(order["due_at"]), "later than the general class's 5 days from the report"
    assert at(done.json()["detail"]["due_at"]) == install_due
    again = await act(dispatcher, no, "survey", TONGWAN, survey)
    assert again.status_code == 409 and again.json()["type"].endswith("/already-surveyed"), again.text

    # Whoever may read the order sees the survey on it: the township, the village, the centre.
    for reader in (TONGWAN, JIANGLONG, WX_DISPATCHER):
        seen = (await dispatcher.client.get(f"/api/v1/orders/{no}", headers=reader)).json()
        assert (seen["survey"]["findings"], seen["survey"]["attachments"], seen["survey"]["on_time"]) == (
            survey["findings"], survey["attachments"], True)  # fmt: skip
        assert at(seen["due_at"]) == install_due
    # Another village of 通挽镇 does not read it at all.
    assert (await dispatcher.client.get(f"/api/v1/orders/{no}", headers=DATANG)).status_code == 404

    # SLA: the survey clock stopped at the survey, the resolve clock moved to the work's deadline
    # (SLA computes no such time itself: it can only have come on case.surveyed).
    def settled(c):
        return c if c[(TOWNSHIP, "survey")]["state"] == "stopped" and at(c[(TOWNSHIP, "resolve")]["due_at"]) == install_due else None

    clocks = await clocks_of(sla, case_id, settled)
    assert at(clocks[(TOWNSHIP, "survey")]["stopped_at"]) == clock.now
    assert clocks[(TOWNSHIP, "survey")]["signals_fired"] == []


async def test_a_survey_not_made_in_time_gets_the_yellow_and_red_cards_and_a_consultation_has_no_survey_clock(services, clock):
    dispatcher, sla = services
    await sla_now(sla, clock.now)
    case_id = await file_case(dispatcher, STREETLAMP, at=clock.now)  # infrastructure: surveyed on site
    question = await file_case(dispatcher, QUESTION, at=clock.now)
    [order] = await orders_of(dispatcher, case_id)
    [asked] = await orders_of(dispatcher, question, reader=WX_DISPATCHER)
    assert asked["survey_due_at"] is None
    due = at(order["survey_due_at"])
    assert due == datetime(2026, 11, 18, 9, tzinfo=BJ)
    clocks = await clocks_of(sla, case_id, lambda c: (order["unit"], "survey") in c)
    assert at(clocks[(order["unit"], "survey")]["due_at"]) == due
    plain = await clocks_of(sla, question, lambda c: (asked["unit"], "resolve") in c)
    assert (asked["unit"], "survey") not in plain, "no survey clock for a matter that is not on site"

    # The day after the survey's deadline: the yellow card (1 working day before) and the red.
    await sla_now(sla, due + timedelta(hours=2))

    def carded(c):
        fired = c[(order["unit"], "survey")]["signals_fired"]
        return c if {"yellow", "red"} <= set(fired) else None

    await clocks_of(sla, case_id, carded)
