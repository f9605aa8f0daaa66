"""预警信息处置: the pure rules — the warning's states, who acts, the deadlines, the figure and
the supervision list. Days pinned (November 2026), never today's."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from services.insight.early_warning import (
    Action,
    State,
    caller_actions,
    may_act,
    may_read,
    months_back,
    next_state,
    supervision_list,
    unit_figures,
)
from shared.deadlines import warning_acknowledge_due, warning_handle_due
from shared.errors import WrongState
from shared.events import Actor, Role, warned_unit
from shared.orgdata import load_org
from shared.workdays import LOCAL, WorkingCalendar

ORG = load_org()


def actor(role: Role, unit: str | None) -> Actor:
    return Actor(id=f"t-{role.value}", role=role, org_unit=unit)


def test_a_warning_is_acknowledged_handled_and_closed_or_sent_back_and_nothing_else():
    assert next_state(State.open, Action.acknowledge) is State.acknowledged
    assert next_state(State.acknowledged, Action.handle) is State.handled
    assert next_state(State.handled, Action.close) is State.closed
    assert next_state(State.handled, Action.reopen) is State.acknowledged
    with pytest.raises(WrongState) as refused:
        next_state(State.open, Action.handle)  # handled before it was even acknowledged
    assert refused.value.state == "open" and refused.value.allowed_actions == ["acknowledge"]
    with pytest.raises(WrongState) as refused:
        next_state(State.closed, Action.reopen)
    assert refused.value.allowed_actions == []


def test_the_unit_warned_acknowledges_and_handles_the_centre_closes_each_in_its_own_area():
    zjj = "LB-XC-ZJJ"  # 忻城县住建局
    head, clerk = actor(Role.dept_head, zjj), actor(Role.dept_clerk, zjj)
    other_dept = actor(Role.dept_head, "LB-XC-SLJ")
    centre, other_centre = actor(Role.centre_supervisor, "LB-XC-ZZZX"), actor(Role.centre_dispatcher, "LB-WX-ZZZX")
    township = actor(Role.township_head, "LB-XC-CG")
    for who in (head, clerk):
        assert may_act(ORG, who, Action.acknowledge, zjj) and may_act(ORG, who, Action.handle, zjj)
        assert not may_act(ORG, who, Action.close, zjj)
        assert may_read(ORG, who, zjj)
    assert not may_read(ORG, other_dept, zjj) and not may_act(ORG, other_dept, Action.acknowledge, zjj)
    assert may_read(ORG, centre, zjj) and may_act(ORG, centre, Action.close, zjj) and may_act(ORG, centre, Action.reopen, zjj)
    assert not may_act(ORG, centre, Action.acknowledge, zjj)
    assert not may_read(ORG, other_centre, zjj) and not may_act(ORG, other_centre, Action.close, zjj)
    assert not may_read(ORG, township, zjj)  # a township does not read a department's warnings
    assert may_act(ORG, township, Action.acknowledge, "LB-XC-CG")  # … but acts on its own
    assert not may_read(ORG, actor(Role.citizen, None), zjj)
    auditor = actor(Role.auditor, "LB")
    assert may_read(ORG, auditor, zjj) and caller_actions(ORG, auditor, State.open, zjj) == []
    assert caller_actions(ORG, head, State.handled, zjj) == [] and caller_actions(ORG, centre, State.handled, zjj) == ["close", "reopen"]


def test_deadlines_count_working_days_over_a_weekend():
    calendar = WorkingCalendar()
    opened = datetime(2026, 11, 13, 15, tzinfo=LOCAL)  # a Friday afternoon
    assert warning_acknowledge_due(calendar, opened).due_at.astimezone(LOCAL) == datetime(2026, 11, 16, 15, tzinfo=LOCAL)
    assert warning_handle_due(calendar, opened).due_at.astimezone(LOCAL) == datetime(2026, 11, 20, 15, tzinfo=LOCAL)


def _row(unit: str, **kw) -> dict:
    base = {"unit": unit, "acknowledged_on_time": None, "handled_count": 0, "handled_late": False, "state": "open", "round": 0}
    return {**base, **kw}


def test_the_figure_counts_each_warning_once_and_every_rate_is_a_share_of_those_received():
    rows = [
        _row("A", acknowledged_on_time=True, handled_count=1, state="closed"),
        _row("A", acknowledged_on_time=True, handled_count=2, state="closed", round=1),  # sent back once, both on time
        _row("A", acknowledged_on_time=False, handled_count=2, handled_late=True, state="handled", round=1),  # late second time
        _row("A", card="red"),  # not acknowledged yet, red-carded (sla)
        _row("B", acknowledged_on_time=True, card="yellow"),  # a yellow card is not counted
    ]
    a, b = unit_figures(rows)
    assert (a.unit, a.received, a.acknowledged_on_time, a.handled_on_time, a.closed, a.reopened, a.carded) == ("A", 4, 2, 2, 2, 2, 1)
    assert a.rates() == {
        "acknowledged_on_time_rate": 50.0, "handled_on_time_rate": 50.0, "closed_rate": 50.0, "reopened_rate": 50.0, "carded_rate": 25.0,
    }  # fmt: skip
    assert b.carded == 0
    assert (b.received, b.acknowledged_on_time, b.handled_on_time) == (1, 1, 0)
    assert unit_figures([]) == []


def test_months_back_counts_calendar_months_including_the_current_one():
    assert months_back(date(2026, 11, 20), 3) == date(2026, 9, 1)
    assert months_back(date(2026, 2, 5), 3) == date(2025, 12, 1)
    assert months_back(date(2026, 2, 5), 1) == date(2026, 2, 1)


def test_the_supervision_list_groups_by_the_unit_warned_and_subject_most_findings_first():
    def finding(fid, kind, unit, township, subject, day, cases):
        return {"finding_id": fid, "kind": kind, "unit": unit, "township": township, "subject_class": subject,
                "detected_on": day, "case_ids": cases}  # fmt: skip

    rows = [
        finding("f1", "same_spot", "ZJJ", "CG", "infrastructure", date(2026, 9, 3), ["c1", "c2"]),
        finding("f2", "persistent_unit", "ZJJ", None, "infrastructure", date(2026, 10, 1), ["c2", "c3"]),
        finding("f3", "rising", None, "CG", "environment", date(2026, 11, 2), ["c9"]),  # no unit yet: the township's
    ]
    states = {"f1": "closed", "f2": "acknowledged"}
    first, second = supervision_list(rows, states, lambda r: warned_unit(r["unit"], r["township"]))
    assert (first.unit, first.subject_class, first.findings, first.open_warnings) == ("ZJJ", "infrastructure", 2, 1)
    assert first.kinds == {"same_spot": 1, "persistent_unit": 1} and first.case_ids == ["c1", "c2", "c3"]
    assert (first.first_detected, first.last_detected) == (date(2026, 9, 3), date(2026, 10, 1))
    assert (second.unit, second.findings, second.open_warnings, second.case_ids) == ("CG", 1, 0, ["c9"])


def test_a_warning_keeps_its_worst_card():
    from services.insight.early_warning import worse_card

    assert worse_card(None, "info") is None  # a 50% reminder is no card
    assert worse_card(None, "yellow") == "yellow"
    assert worse_card("yellow", "red") == "red"
    assert worse_card("red", "yellow") == "red"  # a red card stays, whatever comes later
