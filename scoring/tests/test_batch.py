"""The rules that let scoring's handler apply thousands of events per statement with the
result of applying them in batches of one (pure logic; the rebuild itself is in test_flows)."""

from datetime import UTC, datetime, timedelta

from scoring.batch import rounds
from scoring.handlers import BATCH_ORDER, FACTS, facts, order_sensitive
from scoring.plan import CASE_WRITES
from scoring.tests.factory import Case
from shared import events as ev
from shared.events import make_event, system_actor

T0 = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)


def test_rounds_put_each_key_once_per_part_and_keep_its_order():
    rows = [{"k": "a", "n": 1}, {"k": "b", "n": 2}, {"k": "a", "n": 3}, {"k": "a", "n": 4}, {"k": "c", "n": 5}]
    parts = rounds(rows, ("k",))
    assert [[r["n"] for r in part] for part in parts] == [[1, 2, 5], [3], [4]]
    for part in parts:
        assert len({r["k"] for r in part}) == len(part)


def test_every_write_an_event_makes_is_a_case_fact_or_in_the_batch_order():
    case = Case(township="LB-WX-TW").filed(T0)
    order = case.dispatched("LB-WX-ZJJ", T0 + timedelta(hours=1))
    case.signed(order, "LB-WX-ZJJ", T0 + timedelta(hours=2)).resolved(order, "LB-WX-ZJJ", T0 + timedelta(days=1))
    writes = {write.name for event in case.events for write, _ in facts(event)}
    assert writes <= {write.name for write in BATCH_ORDER} | CASE_WRITES
    assert set(FACTS) >= {event.type for event in case.events if event.type != "case.progress_reported"}


def _breach(case: Case, clock: str, due: datetime) -> ev.EventBase:
    event = make_event(
        ev.SlaBreached, payload=ev.SlaBreachedData(clock_id=f"{case.case_id}:{clock}", clock=ev.ClockKind(clock), unit="LB-XC-ZJJ", due_at=due),
        producer="sla", actor=system_actor("sla"), case_id=case.case_id, occurred_at=due,
    )
    case.events.append(event)
    return event


def test_a_batch_in_lifecycle_order_is_applied_write_by_write():
    case = Case(township="LB-WX-TW").filed(T0)
    order = case.dispatched("LB-WX-ZJJ", T0 + timedelta(hours=1))
    _breach(case, "sign", T0 + timedelta(hours=2))  # due before the signature: the order was late
    case.signed(order, "LB-WX-ZJJ", T0 + timedelta(hours=3))
    assert not order_sensitive(case.events)


def test_order_sensitive_batches_are_recognised():
    # A red card read before a signature that came *before* its due time: one by one the
    # order is marked late (not signed yet), write by write it would not be.
    early = Case(township="LB-WX-TW").filed(T0)
    order = early.dispatched("LB-WX-ZJJ", T0 + timedelta(hours=1))
    _breach(early, "sign", T0 + timedelta(hours=2))
    early.signed(order, "LB-WX-ZJJ", T0 + timedelta(hours=1, minutes=30))
    assert order_sensitive(early.events)

    # An order signed before its dispatch arrived in the same batch.
    out_of_order = Case(township="LB-WX-TW").filed(T0)
    number = out_of_order.dispatched("LB-WX-ZJJ", T0 + timedelta(hours=1))
    dispatch = out_of_order.events.pop()
    out_of_order.signed(number, "LB-WX-ZJJ", T0 + timedelta(hours=2))
    out_of_order.events.append(dispatch)
    assert order_sensitive(out_of_order.events)
