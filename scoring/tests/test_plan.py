"""Scoring's handler (``scoring.plan``) against real PostgreSQL, however the events are cut
into batches: the rows a whole batch writes — ``case_status`` and every fact table — are
those of the same events in batches of one (how the consumer applies a failed batch again),
in any order of the events, onto empty tables and onto rows already there."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from scoring.handlers import HANDLES
from scoring.plan import apply_batch, plan_events_many
from scoring.tests.factory import DISPATCH, INTAKE, Case, grid_activity
from shared import events as ev
from shared.events import EventBase, make_event

T0 = datetime(2026, 10, 5, 1, 0, tzinfo=UTC)
ZJJ, SLJ, JTJ = "LB-XC-ZJJ", "LB-XC-SLJ", "LB-XC-JTJ"


def _cases() -> list[Case]:
    h = lambda n: T0 + timedelta(hours=n)  # noqa: E731
    cases = []

    # A whole life with a return, a county call naming a unit twice, a red card, two rounds
    # of answers (the same time twice: the later event wins), ratings and a redo.
    a = Case(township="LB-XC-CG", region="LB-XC").filed(h(0))
    first = a.dispatched(ZJJ, h(1))
    a.returned(first, ZJJ, h(2))
    order = a.dispatched(SLJ, h(3))
    a.breached(SLJ, "sign", h(4)).signed(order, SLJ, h(5))
    a.called("CALL-A", "LB-XC-CG", [JTJ, JTJ, SLJ], h(6))
    a.warned(SLJ, "resolve", h(30), h(20)).breached(SLJ, "resolve", h(30))
    a.resolved(order, SLJ, h(40), solved=False).resolved(order, SLJ, h(40), solved=True)
    a.closed(h(41)).rated("不满意", h(42)).reopened(SLJ, 1, h(43))
    redo = a.dispatched(SLJ, h(44), redo_round=1)
    a.signed(redo, SLJ, h(45)).resolved(redo, SLJ, h(46)).closed(h(47)).rated("满意", h(48), round=1)
    cases.append(a)

    # Out of order: triage (with its own place) and an answer arrive before the case is
    # received; an event older than the last one seen does not move the status back.
    b = Case(township="LB-WX-TW", region="LB-WX")
    b.triaged(h(2)).received(h(0)).accepted(h(1))
    order = b.dispatched(ZJJ, h(3))
    b.resolved(order, ZJJ, h(9)).signed(order, ZJJ, h(4)).closed(h(10))
    b.rated("满意", h(11)).rated("基本满意", h(11)).rated("满意", h(10), source="app")
    cases.append(b)

    # A card before anything else of its case (no status yet), then the case; and a
    # signature before its deadline read after the red card (order-sensitive batches).
    c = Case(township="LB-XC-CG")
    c.warned(ZJJ, "sign", h(3), h(2))
    c.filed(h(0))
    order = c.dispatched(ZJJ, h(1))
    c.breached(ZJJ, "sign", h(2)).signed(order, ZJJ, h(1.5))
    cases.append(c)

    # Rejected; merged into another (并单); a call as the only thing that names units.
    d = Case(township="LB-WX-TW").received(h(0))
    d.events.append(make_event(ev.CaseRejected, payload=ev.RejectedData(reason_code="out_of_scope", reason="不属于受理范围"),
                               producer="intake", actor=INTAKE, case_id=d.case_id, occurred_at=h(1)))
    cases.append(d)
    e = Case(township="LB-XC-CG").filed(h(0))
    e.events.append(make_event(ev.CaseMerged, payload=ev.MergedData(into_case_id=a.case_id), producer="intake",
                               actor=INTAKE, case_id=e.case_id, occurred_at=h(1)))
    e.events.append(make_event(ev.CaseClosed, payload=ev.ClosedData(public_summary="并单办结"), producer="dispatch",
                               actor=DISPATCH, case_id=e.case_id, occurred_at=h(2)))
    cases.append(e)
    f = Case(township="LB-XC-CG").called("CALL-F", "LB-XC-CG", [ZJJ, ZJJ], h(0))
    cases.append(f)
    # Two answers at the same time as the last ones: the later event decides 解决.
    g = Case(township="LB-WX-TW").filed(h(0))
    order = g.dispatched(JTJ, h(1))
    g.resolved(order, JTJ, h(5), solved=True).resolved(order, JTJ, h(5), solved=False)
    cases.append(g)
    return cases


def _all_events(cases: list[Case]) -> list[EventBase]:
    grid = [grid_activity("gw-plan-1", "LB-WX-TW-TW-G01", "patrol", T0), grid_activity("gw-plan-1", "LB-WX-TW-TW-G01", "report", T0)]
    return [e for case in cases for e in case.events] + grid


_SNAPSHOT = {
    "case_facts": "SELECT * FROM case_facts WHERE case_id = ANY(:ids) ORDER BY case_id",
    "unit_orders": "SELECT * FROM unit_orders WHERE case_id = ANY(:ids) ORDER BY order_no",
    "sla_cards": "SELECT * FROM sla_cards WHERE case_id = ANY(:ids) ORDER BY event_id",
    "case_ratings": "SELECT * FROM case_ratings WHERE case_id = ANY(:ids) ORDER BY case_id, round",
    "calls": "SELECT * FROM calls WHERE case_id = ANY(:ids) ORDER BY call_id",
    "grid_activity": "SELECT * FROM grid_activity WHERE worker_id = 'gw-plan-1' ORDER BY event_id",
    # units: the same units, duplicates included (the order of a DISTINCT is PostgreSQL's)
    "case_status": (
        "SELECT case_id, status, events_applied, last_event_type, last_event_at, county, township, village, grid,"
        " ARRAY(SELECT u FROM unnest(units) AS u ORDER BY u) AS units FROM case_status WHERE case_id = ANY(:ids) ORDER BY case_id"
    ),
}


async def _snapshot(session, ids: list[str]) -> dict:
    return {name: [tuple(r) for r in (await session.execute(text(q), {"ids": ids})).all()] for name, q in _SNAPSHOT.items()}


async def _one_by_one(uow, events: list[EventBase]) -> None:
    for event in events:
        await apply_batch(uow, [event])


async def test_a_batch_writes_what_its_events_write_in_batches_of_one(scoring):
    cases = _cases()
    ids = [case.case_id for case in cases]
    events = _all_events(cases)
    assert all(event.type in HANDLES for event in events)
    rng = random.Random(7)
    orders = [events, *[rng.sample(events, len(events)) for _ in range(4)]]
    for order in orders:
        for prefix in (0, len(order) // 3):
            # Both in transactions that are rolled back: the service's own tables stay as they were.
            async with scoring.runtime.uow() as uow:
                await _one_by_one(uow, order)
                expected = await _snapshot(uow.session, ids)
            async with scoring.runtime.uow() as uow:
                await _one_by_one(uow, order[:prefix])  # rows already there: the MERGEs' update side
                for statement, params in plan_events_many(order[prefix:]):
                    await uow.session.execute(statement, params)
                got = await _snapshot(uow.session, ids)
            assert got == expected, f"prefix {prefix} of {[e.type for e in order]}"
    # every case has its status; the one that was only called has no case facts
    assert len(expected["case_facts"]) == len(cases) - 1 and len(expected["case_status"]) == len(cases)
    assert any(row[-1] == [ZJJ, ZJJ] for row in expected["case_status"]), "a call naming a unit twice is kept as it came"
