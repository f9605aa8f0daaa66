"""Every rate is a fraction of the same things (issue #19): no history makes a part exceed its
whole, and every stats, scores and bulletin answer is 200.

(a) a fast property over the pure counting (``scoring.rates``) with fact rows of any flags,
    around a Beijing week and month boundary; (b) lifecycle histories built from the event
    contract (returns, county calls, whistles, extensions, cards, up to 3 redos, ratings from
    the callback and the app, cases across the boundary) fed through the real topic to a
    running scoring service; (c) the concrete regression: a case redone twice answered 500.

All dates are pinned: the service's clock and every event time are fixed below.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st

from scoring.periods import period_of
from scoring.rates import (
    FIRST_ASKED_PARTS,
    DEPARTMENT_RATES_CALL,
    RATE_PARTS,
    TOWNSHIP_RATES_DEPARTMENT,
    CardRow,
    CaseRow,
    OrderRow,
    RatingRow,
    TwoWayRow,
    area_counts,
    rank,
    rates,
    two_way_rate,
    unit_counts,
    unit_score,
)
from scoring.domain import Weights
from scoring.tests.factory import Case, publish_many
from shared.actors import actor_headers
from shared.events import Role
from shared.testing import AUDITOR, CENTRE, Infra, eventually, running, service_settings, unique

import pytest

from scoring.app import create_app
from scoring.settings import ScoringSettings

# Monday 2026-11-30 00:00 Beijing starts week 2026-W49, Tuesday 2026-12-01 00:00 starts December:
# both boundaries fall inside the histories (e.g. 23:30 UTC on 30 November is 1 December in Beijing).
MONTH_START = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
CLOCK = "2026-12-03T04:00:00+00:00"  # the service's now: the two-way ratings are given then
PERIODS = [("week", "2026-11-25"), ("week", "2026-12-01"), ("month", "2026-11-15"), ("month", "2026-12-01")]
TOWNSHIPS = ("LB-WX-TW", "LB-WX-WX")  # 武宣县: 通挽镇 and 武宣镇
DEPARTMENTS = ("LB-WX-ZJJ", "LB-WX-SLJ", "LB-WX-JTJ")
WX_CENTRE = actor_headers("wx-centre", Role.centre_dispatcher, "LB-WX-ZZZX")  # reads 武宣县's figures
UNITS = (*DEPARTMENTS, *TOWNSHIPS)
RATINGS = ("满意", "基本满意", "不满意")


def parts_within_wholes(counts: dict[str, int] | Any) -> int:
    """Asserts 0 ≤ part ≤ whole for every rate; returns how many pairs it checked."""
    get = counts.get if isinstance(counts, dict) else (lambda name: getattr(counts, name))
    for name, (part, whole) in RATE_PARTS.items():
        assert 0 <= get(part) <= get(whole), f"{name}: {part} {get(part)} > {whole} {get(whole)} in {counts}"
    return len(RATE_PARTS)


# --------------------------------------------------------------------------- (a) pure, any rows

moments = st.integers(-10 * 24 * 60, 10 * 24 * 60).map(lambda m: MONTH_START + timedelta(minutes=m))
case_ids = st.sampled_from([f"c{i}" for i in range(6)])
units = st.sampled_from(UNITS)
flag = st.booleans()

order_rows = st.builds(
    OrderRow, order_no=st.uuids().map(str), case_id=case_ids, unit=units, dispatched_at=moments,
    redo_round=st.integers(0, 3), role=st.sampled_from(["sole", "lead", "co"]), signed=flag, sign_late=flag,
    returned=flag, resolved=flag, solved=flag, resolve_late=flag, reopened=flag,
)
case_rows = st.builds(
    CaseRow, case_id=case_ids, county=st.just("LB-WX"), township=st.sampled_from(TOWNSHIPS), received_at=moments,
    accepted=flag, rejected=flag, resolved=flag, solved=flag, reopened=flag,
)
rating_rows = st.builds(
    RatingRow, case_id=case_ids, round=st.integers(0, 3), rating=st.sampled_from(RATINGS), rated_at=moments,
    units=st.lists(units, max_size=2).map(tuple),
)
card_rows = st.builds(CardRow, case_id=case_ids, unit=st.none() | units, level=st.sampled_from(["yellow", "red"]), occurred_at=moments)
two_way_rows = st.builds(
    TwoWayRow, direction=st.sampled_from([TOWNSHIP_RATES_DEPARTMENT, DEPARTMENT_RATES_CALL]), rater_unit=units,
    rated_unit=units, rated_at=moments, rating=st.none() | st.sampled_from(RATINGS), score=st.none() | st.integers(1, 5),
    justified=st.none() | flag, complete=st.none() | flag,
)


@settings(max_examples=200, deadline=None)
@given(
    cases=st.lists(case_rows, max_size=8), orders=st.lists(order_rows, max_size=14), ratings=st.lists(rating_rows, max_size=6),
    cards=st.lists(card_rows, max_size=4), two_way=st.lists(two_way_rows, max_size=6),
)
def test_no_rows_make_a_part_exceed_its_whole(cases, orders, ratings, cards, two_way):
    for kind, day in PERIODS:
        period = period_of(kind, datetime.fromisoformat(day).date())
        parts_within_wholes(area_counts(period, cases, orders, ratings, cards))
        scores = []
        for unit in UNITS:
            counts = unit_counts(unit, period, orders, ratings, cards)
            parts_within_wholes(counts)
            rated = rates(counts)
            assert all(v is None or 0 <= v <= 1 for v in rated.__dict__.values())
            favourable, total = two_way_rate(unit, period, two_way)
            assert 0 <= favourable <= total
            call_favourable, call_total = two_way_rate(unit, period, two_way, DEPARTMENT_RATES_CALL)
            assert 0 <= call_favourable <= call_total
            scores.append(unit_score(unit, counts, (favourable, total), Weights(), (call_favourable, call_total)))
        for s in rank(scores):
            assert s.score is None or 0 <= s.score <= 100


# --------------------------------------------------------------------------- (b) lifecycles through the service


@pytest.fixture(scope="module")
async def scoring(infra: Infra):
    settings_ = service_settings(
        ScoringSettings, infra, topic=unique("lifecycle"), database=unique("scoring"), test_clock=CLOCK,
    )
    async with running(create_app(settings_), settings_) as service:
        yield service


class History:
    """A case's events within the lifecycle's rules, and the county calls a township may rate."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self.calls: list[tuple[str, str, list[str]]] = []  # call id, township, units
        self.closed = False


@st.composite
def histories(draw) -> History:
    township = draw(st.sampled_from(TOWNSHIPS))
    case = Case(township=township, region="LB-WX")
    history = History(case)
    t = MONTH_START + timedelta(minutes=draw(st.integers(-4 * 24 * 60, 24 * 60)))

    def later(most: int = 20 * 60) -> datetime:
        nonlocal t
        t += timedelta(minutes=draw(st.integers(1, most)))
        return t

    case.filed(t)
    how = draw(st.sampled_from(["township", "department", "call", "whistle"]))
    if how == "township":
        handlers = [(township, "sole")]
    elif how == "department":
        handlers = [(draw(st.sampled_from(DEPARTMENTS)), "sole")]
    elif how == "call":
        unit = draw(st.sampled_from(DEPARTMENTS))
        call_id = f"CALL-{case.case_id}"
        case.called(call_id, township, [unit], later())
        history.calls.append((call_id, township, [unit]))
        handlers = [(unit, "sole")]
    else:
        lead, *co = draw(st.lists(st.sampled_from(DEPARTMENTS), min_size=2, max_size=3, unique=True))
        call_id = f"CALL-{case.case_id}"
        case.whistled(call_id, township, lead, co, later())
        history.calls.append((call_id, township, [lead, *co]))
        handlers = [(lead, "lead"), *((u, "co") for u in co)]

    for redo_round in range(4):  # round 0 and up to 3 redos
        lead_order = lead_unit = None
        for unit, role in handlers:
            order = case.dispatched(unit, later(), role=role, redo_round=redo_round)
            if role == "sole" and how == "department" and redo_round == 0 and draw(st.booleans()):
                case.returned(order, unit, later(120))  # 退单: the centre sends it to another department
                unit = draw(st.sampled_from([d for d in DEPARTMENTS if d != unit]))
                order = case.dispatched(unit, later(), role=role)
            dispatched_at = t
            sign_due = dispatched_at + timedelta(hours=1)
            signed_at = later(180)
            if signed_at > sign_due:
                case.breached(unit, "sign", sign_due)  # the red card comes before the late signature
            case.signed(order, unit, signed_at)
            if role != "co":
                lead_order, lead_unit = order, unit
        if draw(st.booleans()):
            case.extended(lead_order, lead_unit, later())
        resolve_due = t + timedelta(hours=draw(st.integers(1, 48)))
        if resolve_due - timedelta(minutes=30) > t and draw(st.booleans()):
            case.warned(lead_unit, "resolve", resolve_due, resolve_due - timedelta(minutes=30))  # yellow card
        answered_at = later(72 * 60)
        if answered_at > resolve_due:
            case.breached(lead_unit, "resolve", resolve_due)
        case.resolved(lead_order, lead_unit, answered_at, solved=draw(st.booleans()))
        if draw(st.integers(0, 9)) == 0:
            return history  # still waiting for verification when the figures are read
        case.closed(later())
        history.closed = True
        # Unsatisfied ratings and redos are drawn often: two or three rounds of one unit in a
        # period are what broke the figures.
        unhappy = st.sampled_from(["不满意", "不满意", "满意", "基本满意"])
        rating = draw(unhappy)
        source = draw(st.sampled_from(["callback", "app"]))
        case.rated(rating, later(), round=redo_round, source=source)
        if draw(st.integers(0, 3)) == 0:  # the app's rating and the callback's of one round: the later counts
            rating = draw(unhappy)
            case.rated(rating, later(), round=redo_round, source="app" if source == "callback" else "callback")
        if rating != "不满意" or redo_round == 3 or draw(st.integers(0, 3)) == 0:
            return history
        case.reopened(lead_unit, redo_round + 1, later())  # 重办: back to the unit that answered
        history.closed = False
        handlers = [(lead_unit, "sole")]
    return history


def _headers(unit: str) -> dict[str, str]:
    role = Role.township_staff if unit in TOWNSHIPS else Role.dept_clerk
    return actor_headers(f"staff-{unit}", role, unit)


async def _answer(service, path: str, *, as_: dict = CENTRE, **params) -> dict:
    response = await service.client.get(path, params=params, headers=as_)
    assert response.status_code == 200, f"{path} {params}: {response.status_code} {response.text}"
    return response.json()


def _check(doc: Any) -> int:
    """Every counts block and two-way figure in an answer, wherever it sits; the number checked."""
    checked = 0
    if isinstance(doc, dict):
        if isinstance(doc.get("counts"), dict) and "first_asked" in doc["counts"]:
            # 首问负责制's own counts: each rate's part within its whole too.
            counts = doc["counts"]
            for part, whole in FIRST_ASKED_PARTS.values():
                assert 0 <= counts[part] <= counts[whole], f"{part} {counts[part]} > {whole} {counts[whole]} in {counts}"
            checked += len(FIRST_ASKED_PARTS)
        elif isinstance(doc.get("counts"), dict):
            checked += parts_within_wholes(doc["counts"])
            for exact in doc["rates_exact"].values():
                assert exact is None or 0 <= Fraction(exact) <= 1
        if {"favourable", "rated"} <= doc.keys():
            assert 0 <= doc["favourable"] <= doc["rated"]
            checked += 1
        if "rate_parts" in doc:
            assert doc["rate_parts"] == {k: {"part": p, "whole": w} for k, (p, w) in RATE_PARTS.items()}
        checked += sum(_check(v) for v in doc.values())
    elif isinstance(doc, list):
        checked += sum(_check(v) for v in doc)
    return checked


async def _applied(service, case: Case) -> None:
    async def check():
        r = await service.client.get(f"/api/v1/cases/{case.case_id}/status", headers=AUDITOR)
        return r.status_code == 200 and r.json()["events_applied"] == len(case.events)
    await eventually(check, timeout=30, what=f"{len(case.events)} events of {case.case_id} applied")


async def _every_answer_within(service) -> None:
    checked = 0
    for kind, day in PERIODS:
        for unit in UNITS:
            stats = await _answer(service, f"/api/v1/stats/units/{unit}", as_=WX_CENTRE, period=kind, date=day)
            assert {"two_way", "call_rating"} <= stats.keys()
            checked += _check(stats)
        for township in TOWNSHIPS:
            checked += _check(await _answer(service, f"/api/v1/stats/townships/{township}", as_=WX_CENTRE, period=kind, date=day))
        checked += _check(await _answer(service, "/api/v1/stats/counties/LB-WX", as_=WX_CENTRE, period=kind, date=day))
        checked += _check(await _answer(service, "/api/v1/scores", as_=WX_CENTRE, county="LB-WX", period=kind, date=day))
        bulletin = "weekly" if kind == "week" else "monthly"
        checked += _check(await _answer(service, f"/api/v1/bulletins/LB-WX/{bulletin}", as_=WX_CENTRE, date=day))
    assert checked > 100  # the answers were read, not skipped


async def _feed(service, infra: Infra, histories: list[History]) -> None:
    await publish_many(infra.bootstrap_servers, service.settings.kafka_topic, [e for h in histories for e in h.case.events])
    for h in histories:
        await _applied(service, h.case)
    for i, h in enumerate(histories):  # 乡评县 and 县评乡 on the closed cases' calls
        for call_id, township, called in h.calls if h.closed else ():
            for unit in called:
                body = {"case_id": h.case.case_id, "call_id": call_id, "unit": unit, "rating": RATINGS[i % 3]}
                given_ = await service.client.post("/api/v1/ratings/departments", json=body, headers=_headers(township))
                assert given_.status_code == 201, given_.text
            answer = {"case_id": h.case.case_id, "call_id": call_id, "justified": i % 2 == 0, "complete": True}
            given_ = await service.client.post("/api/v1/ratings/calls", json=answer, headers=_headers(called[0]))
            assert given_.status_code == 201, given_.text


async def test_lifecycle_histories_give_200_and_parts_within_wholes(scoring, infra):
    """Hypothesis draws in a worker thread (it runs synchronous tests); each example's I/O runs
    on the test's event loop, where the service and its client live."""
    loop = asyncio.get_running_loop()

    @settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(histories(), min_size=1, max_size=4))
    def example(drawn: list[History]) -> None:
        async def run() -> None:
            await _feed(scoring, infra, drawn)
            await _every_answer_within(scoring)
        asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=240)

    await asyncio.to_thread(example)


# --------------------------------------------------------------------------- (c) the regression


async def test_a_unit_whose_case_is_redone_twice_still_has_figures(scoring, infra):
    """Issue #19: two redos of one case in a period made the unit's stats, the county's scores
    and its bulletins answer 500 (2 reopened orders over 1 answered case)."""
    mon = datetime(2026, 10, 5, 1, 0, tzinfo=UTC)  # Monday 09:00 Beijing, week 2026-W41
    case = Case(township="LB-XC-CG", region="LB-XC").filed(mon)
    at = mon
    for redo_round in range(3):
        if redo_round:
            case.reopened("LB-XC-ZJJ", redo_round, at + timedelta(minutes=10))
        order = case.dispatched("LB-XC-ZJJ", at + timedelta(minutes=20), redo_round=redo_round)
        case.signed(order, "LB-XC-ZJJ", at + timedelta(minutes=30)).resolved(order, "LB-XC-ZJJ", at + timedelta(hours=5))
        case.closed(at + timedelta(hours=6)).rated("不满意" if redo_round < 2 else "满意", at + timedelta(hours=8), round=redo_round)
        at += timedelta(days=1)
    await publish_many(infra.bootstrap_servers, scoring.settings.kafka_topic, case.events)
    await _applied(scoring, case)

    week = {"period": "week", "date": "2026-10-07"}
    stats = await _answer(scoring, "/api/v1/stats/units/LB-XC-ZJJ", **week)
    assert (stats["counts"]["orders"], stats["counts"]["resolved"], stats["counts"]["reopened"]) == (3, 1, 1)
    assert stats["rates"]["reopen_rate"] == "100.0%" and stats["rates"]["satisfaction"] == "100.0%"
    scores = await _answer(scoring, "/api/v1/scores", county="LB-XC", **week)
    assert {u["unit"]: u for u in scores["units"]}["LB-XC-ZJJ"]["counts"]["reopened"] == 1
    await _answer(scoring, "/api/v1/bulletins/LB-XC/weekly", date="2026-10-07")
    await _answer(scoring, "/api/v1/bulletins/LB-XC/monthly", date="2026-10-07")
