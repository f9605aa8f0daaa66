"""The run checker itself, on made-up observations (pure logic)."""

from shared.events import (
    AcceptedData,
    CaseAccepted,
    CaseReceived,
    Channel,
    ReceivedData,
    make_event,
    system_actor,
)
from tests.e2e.checker import check

ACTOR = system_actor("intake")


def received(case_id: str) -> CaseReceived:
    return make_event(
        CaseReceived, case_id=case_id, producer="intake", actor=ACTOR,
        payload=ReceivedData(tracking_no="XC-20261123-000001", channel=Channel.app, title="t", description="d"),
    )


def accepted(cause: CaseReceived) -> CaseAccepted:
    return make_event(CaseAccepted, producer="intake", actor=ACTOR, caused_by=cause,
                      payload=AcceptedData(tracking_no="XC-20261123-000001", notice="已受理"))


def test_a_clean_run_passes_and_counts_republished_events_once():
    r1, r2 = received("c1"), received("c2")
    a1, a2 = accepted(r1), accepted(r2)
    # A fresh broker got everything again: the same event ids appear twice.
    events = [r1, a1, r2, a2, r1, a1]
    verdict = check(
        sent=3, acknowledged={"k1": "c1", "k2": "c2"}, events=events,
        applied={"dispatch": {"c1": 2, "c2": 2}},
    )
    assert verdict.ok, verdict.table()
    assert (verdict.sent, verdict.acknowledged, verdict.received_on_topic) == (3, 2, 2)


def test_lost_duplicated_and_reordered_are_each_caught():
    r1, r2, r3 = received("c1"), received("c2"), received("c3")
    a2 = accepted(r2)
    twice = received("c3")  # a second, distinct case.received for the same appeal
    events = [r1, a2, r2, r3, twice]  # c2: accepted before the received that caused it
    verdict = check(
        sent=4, acknowledged={"k1": "c1", "k2": "c2", "k3": "c3", "k4": "c4"}, events=events,
        applied={"sla": {"c1": 2, "c2": 1}},
    )
    assert not verdict.ok
    assert verdict.lost == ["c4"]
    assert verdict.duplicated == ["c3"]
    assert verdict.reordered == ["c2"]
    sla = verdict.stages[0]
    assert sla.duplicated_effects == 1  # c1: one event, applied twice
    assert sla.lost_effects == 1 + 2  # c2: one of two missing; c3: never seen (two events)
    assert sla.missing_cases == ["c3"]
    assert "lost 1" in verdict.table()


def test_an_effect_applied_before_its_cause_is_counted_per_service():
    r1, r2 = received("c1"), received("c2")
    a1, a2 = accepted(r1), accepted(r2)
    events = [r1, a1, r2, a2]
    # notify: c1 in order; c2's acceptance applied a transaction before its receipt.
    # sla: c1's receipt never applied although sla requires it before an acceptance.
    # scoring: both in one transaction (one batch): not seen as out of order.
    inbox = {
        "notify": {str(r1.id): 1, str(a1.id): 2, str(r2.id): 4, str(a2.id): 3},
        "sla": {str(a1.id): 1, str(r2.id): 1, str(a2.id): 2},
        "scoring": {str(r1.id): 5, str(a1.id): 5},
    }
    verdict = check(
        sent=2, acknowledged={"k1": "c1", "k2": "c2"}, events=events,
        applied={"notify": {"c1": 2, "c2": 2}, "sla": {"c1": 2, "c2": 2}, "scoring": {"c1": 2, "c2": 2}},
        applied_at=inbox, requires={"sla": {"case.accepted": frozenset({"case.received"})}},
        still_held={"scoring": 1}, dead_letters={"notify": 2},
    )
    counts = {s.service: (s.out_of_order_effects, s.still_held, s.dead_letters) for s in verdict.stages}
    assert counts == {"notify": (1, 0, 2), "sla": (1, 0, 0), "scoring": (0, 1, 0)}
    assert not verdict.ok
    assert "out of order" in verdict.table()
