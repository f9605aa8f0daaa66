"""Scores and rates per handling person (个人绩效和评价结果挂钩, issue #23 item 8), from the
actors on the lifecycle events, read through HTTP: the unit's head and the centres above it
see them; the person's peers, other units' heads and everyone else are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scoring.tests.factory import Case, publish_many
from scoring.tests.test_flows import applied
from shared.actors import actor_headers
from shared.events import Actor, Role
from shared.testing import AUDITOR, OPS

ZJJ = "LB-XC-ZJJ"  # 忻城县住建局
LI = Actor(id="demo-dept-clerk", role=Role.dept_clerk, org_unit=ZJJ)  # 住建局办事员李某 in the directory
WANG = Actor(id="zjj-wang", role=Role.dept_clerk, org_unit=ZJJ)  # not in the directory: no name
MON = datetime(2026, 10, 5, 1, 0, tzinfo=UTC)
MONTH = {"period": "month", "date": "2026-10-15"}
PATH = f"/api/v1/units/{ZJJ}/people"

HEAD = actor_headers("demo-dept-head", "dept_head", ZJJ)
COUNTY_CENTRE = actor_headers("demo-centre-supervisor", "centre_supervisor", "LB-XC-ZZZX")
COUNTY_DISPATCHER = actor_headers("demo-centre-dispatcher", "centre_dispatcher", "LB-XC-ZZZX")
CITY_CENTRE = actor_headers("city", "centre_supervisor", "LB-ZZZX")
PEER = actor_headers(LI.id, "dept_clerk", ZJJ)
OTHER_HEAD = actor_headers("jtj-head", "dept_head", "LB-XC-JTJ")  # 交通局, same county
TOWNSHIP_HEAD = actor_headers("demo-township-head-cg", "township_head", "LB-XC-CG")
TOWNSHIP_CENTRE = actor_headers("cg-centre", "centre_supervisor", "LB-XC-CG-ZZZX")  # serves 城关镇, not 住建局
OTHER_COUNTY_CENTRE = actor_headers("wx", "centre_supervisor", "LB-WX-ZZZX")
CITIZEN = actor_headers("c", "citizen")


def work() -> list[Case]:
    """Five orders of 住建局 in October: 李某 signs and answers one (solved, 满意); 王某
    answers one 李某 signed late (not solved, 不满意), is sent the redo and solves it (基本满意),
    and returns a third; a fourth is signed and answered by a service (no person)."""
    one = Case(township="LB-XC-CG").filed(MON)
    o1 = one.dispatched(ZJJ, MON + timedelta(minutes=10))
    one.signed(o1, ZJJ, MON + timedelta(minutes=30), by=LI).resolved(o1, ZJJ, MON + timedelta(days=1), by=LI)
    one.closed(MON + timedelta(days=1, hours=1)).rated("满意", MON + timedelta(days=2))

    two = Case(township="LB-XC-CG").filed(MON)
    o2 = two.dispatched(ZJJ, MON + timedelta(minutes=10))
    two.breached(ZJJ, "sign", MON + timedelta(hours=1, minutes=10))
    two.signed(o2, ZJJ, MON + timedelta(hours=3), by=LI)
    two.resolved(o2, ZJJ, MON + timedelta(days=1), solved=False, by=WANG)
    two.closed(MON + timedelta(days=1, hours=1)).rated("不满意", MON + timedelta(days=2))
    two.reopened(ZJJ, 1, MON + timedelta(days=2, hours=1))
    redo = two.dispatched(ZJJ, MON + timedelta(days=2, hours=1), redo_round=1)
    two.signed(redo, ZJJ, MON + timedelta(days=2, hours=2), by=WANG).resolved(redo, ZJJ, MON + timedelta(days=3), by=WANG)
    two.closed(MON + timedelta(days=3, hours=1)).rated("基本满意", MON + timedelta(days=4), round=1)

    three = Case(township="LB-XC-CG").filed(MON + timedelta(days=1))
    o3 = three.dispatched(ZJJ, MON + timedelta(days=1, minutes=10))
    three.returned(o3, ZJJ, MON + timedelta(days=1, hours=2), by=WANG)

    four = Case(township="LB-XC-CG").filed(MON + timedelta(days=1))
    o4 = four.dispatched(ZJJ, MON + timedelta(days=1, minutes=10))
    four.signed(o4, ZJJ, MON + timedelta(days=1, minutes=20)).resolved(o4, ZJJ, MON + timedelta(days=2))
    return [one, two, three, four]


@pytest.fixture(scope="module")
async def people_applied(scoring, infra):
    cases = work()
    await publish_many(infra.bootstrap_servers, scoring.settings.kafka_topic, [e for c in cases for e in c.events])
    for case in cases:
        await applied(scoring, case)


async def test_each_handling_person_gets_the_units_measures(scoring, people_applied):
    answer = await scoring.client.get(PATH, params=MONTH, headers=HEAD)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    people = {p["person"]: p for p in body["people"]}
    assert list(people) == [LI.id, WANG.id]  # ranked: 李某 100, 王某 80

    li = people[LI.id]
    assert (li["rank"], li["name"], li["score"]) == (1, "住建局办事员李某", "100.0")  # 忻城县: half-up, one decimal
    assert (li["counts"]["orders"], li["counts"]["signed_on_time"], li["counts"]["resolved_on_time"]) == (1, 1, 1)
    assert (li["counts"]["rated"], li["counts"]["satisfied"]) == (1, 1)
    assert li["rates"]["satisfaction"] == "100.0%" and li["rates"]["reopen_rate"] == "0.0%"

    wang = people[WANG.id]
    assert (wang["rank"], wang["name"]) == (2, None)
    # The answer counts for who gave it: the order 李某 signed late is 王某's (he answered it).
    assert (wang["counts"]["orders"], wang["counts"]["signed_on_time"], wang["counts"]["returned"]) == (3, 1, 1)
    assert (wang["counts"]["accepted"], wang["counts"]["solved"], wang["counts"]["reopened"]) == (1, 1, 1)
    assert (wang["counts"]["rated"], wang["counts"]["satisfied"]) == (1, 1)  # only the redo's rating counts
    assert (wang["counts"]["red"], wang["counts"]["yellow"]) == (0, 0)  # cards are the unit's
    assert wang["rates"]["response"] == "33.3%" and wang["rates_exact"]["response"] == "1/3"
    assert wang["rates"]["return_rate"] == "33.3%" and wang["rates"]["reopen_rate"] == "100.0%"
    assert wang["score"] == "80.0" and wang["score_exact"] == "80/1"  # (24·⅓ + 28 + 28) / 80

    # Every order of the unit is someone's, or no person's (a service acted): nothing lost.
    unit = (await scoring.client.get(f"/api/v1/stats/units/{ZJJ}", params=MONTH, headers=HEAD)).json()
    assert body["orders_without_person"] == 1
    assert li["counts"]["orders"] + wang["counts"]["orders"] + body["orders_without_person"] == unit["counts"]["orders"] == 5


async def test_the_head_and_the_centres_above_read_them_no_one_else(scoring, people_applied):
    for who in (HEAD, COUNTY_CENTRE, COUNTY_DISPATCHER, CITY_CENTRE, AUDITOR):
        answer = await scoring.client.get(PATH, params=MONTH, headers=who)
        assert answer.status_code == 200, (who, answer.text)
        assert len(answer.json()["people"]) == 2
    for who in (PEER, OTHER_HEAD, TOWNSHIP_HEAD, TOWNSHIP_CENTRE, OTHER_COUNTY_CENTRE, CITIZEN, OPS):
        refused = await scoring.client.get(PATH, params=MONTH, headers=who)
        assert refused.status_code == 403, (who, refused.text)
        assert "people" not in refused.json()
    assert (await scoring.client.get(PATH, params=MONTH)).status_code == 401
    # A township's head reads the township's people (and its villages'), not a department's.
    own = await scoring.client.get("/api/v1/units/LB-XC-CG/people", params=MONTH, headers=TOWNSHIP_HEAD)
    assert own.status_code == 200 and own.json()["people"] == [], own.text
    assert (await scoring.client.get("/api/v1/units/LB-XC-NOPE/people", headers=HEAD)).status_code == 404
