"""What other services' events leave on an appeal (``intake.handlers.follow_up``), pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.events import (
    CaseDispatched, CaseSigned, CountyCalled, CountyCalledData, DispatchedData, SignedData, make_event, system_actor,
)  # fmt: skip

from intake.handlers import follow_up

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def dispatched(case_id: str, unit: str, *, role: str = "sole", minutes: int = 0) -> CaseDispatched:
    return make_event(CaseDispatched, case_id=case_id, producer="dispatch", actor=system_actor("dispatch"),
                      occurred_at=T0 + timedelta(minutes=minutes),
                      payload=DispatchedData(order_no=f"JB-{unit}", unit=unit, role=role))  # fmt: skip


def signed(case_id: str, unit: str, *, minutes: int) -> CaseSigned:
    return make_event(CaseSigned, case_id=case_id, producer="dispatch", actor=system_actor("dispatch"),
                      occurred_at=T0 + timedelta(minutes=minutes), payload=SignedData(order_no=f"JB-{unit}", unit=unit))  # fmt: skip


def test_the_latest_report_by_event_time_is_the_status_whatever_the_order_of_arrival():
    statuses, _ = follow_up([signed("a", "ZJJ", minutes=5), dispatched("a", "ZJJ", minutes=1)])
    assert statuses == {"a": ("in_progress", T0 + timedelta(minutes=5))}
    # Of equal times the later in the topic wins, as one by one.
    statuses, _ = follow_up([dispatched("b", "ZJJ", minutes=3), signed("b", "ZJJ", minutes=3)])
    assert statuses["b"][0] == "in_progress"


def test_units_accumulate_once_each_and_only_an_order_that_is_not_a_co_handlers_names_the_handler():
    called = make_event(CountyCalled, case_id="a", producer="dispatch", actor=system_actor("dispatch"),
                        payload=CountyCalledData(call_id="c1", township="TW", units=["JTJ", "ZJJ"], reason="需要县级部门"))  # fmt: skip
    _, handlers = follow_up([
        dispatched("a", "TW"), called, dispatched("a", "ZJJ", role="co"), dispatched("a", "TW"), dispatched("b", "SLJ", role="lead"),
    ])  # fmt: skip
    assert handlers == {"a": (["TW", "JTJ", "ZJJ"], "TW"), "b": (["SLJ"], "SLJ")}
    _, only_called = follow_up([called])
    assert only_called == {"a": (["JTJ", "ZJJ"], None)}
