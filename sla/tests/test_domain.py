"""Clocks: due times from event times, pause/resume, extension, thresholds that fire once."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from shared.workdays import WorkingCalendar
from sla.domain import Policy, due_signals, extend, fired, pause, resume, start_clock, stop
from shared.events import ClockKind, ResolutionClass, Urgency

BJ = ZoneInfo("Asia/Shanghai")
CAL = WorkingCalendar()
POLICY = Policy()


def bj(*args) -> datetime:
    return datetime(*args, tzinfo=BJ)


def test_limits_by_kind_class_and_urgency():
    dispatched = bj(2026, 11, 23, 10)  # a Monday
    assert start_clock(ClockKind.sign, dispatched, POLICY, CAL).due_at == bj(2026, 11, 23, 11)
    assert start_clock(ClockKind.sign, dispatched, POLICY, CAL, urgency=Urgency.emergency).due_at == bj(2026, 11, 23, 10, 30)
    assert start_clock(ClockKind.resolve, dispatched, POLICY, CAL).due_at == bj(2026, 11, 30, 10)
    assert start_clock(ClockKind.resolve, dispatched, POLICY, CAL, resolution_class=ResolutionClass.complex).due_at == bj(2026, 12, 14, 10)
    assert start_clock(ClockKind.return_window, dispatched, POLICY, CAL).due_at == bj(2026, 11, 25, 10)


def test_yellow_then_red_then_urging_then_escalation_each_once():
    clock = start_clock(ClockKind.resolve, bj(2026, 11, 23, 10), POLICY, CAL)  # due Mon 30 Nov 10:00
    assert due_signals(clock, bj(2026, 11, 27, 9), POLICY, CAL) == []
    assert due_signals(clock, bj(2026, 11, 27, 10), POLICY, CAL) == ["yellow"]  # 1 working day before
    clock = fired(clock, ["yellow"])
    assert due_signals(clock, bj(2026, 11, 28, 12), POLICY, CAL) == []  # the weekend is not working time
    assert due_signals(clock, bj(2026, 11, 30, 10), POLICY, CAL) == ["red"]
    clock = fired(clock, ["red"])
    assert due_signals(clock, bj(2026, 12, 1, 10), POLICY, CAL) == ["urge-1"]
    clock = fired(clock, ["urge-1"])
    assert due_signals(clock, bj(2026, 12, 3, 10), POLICY, CAL) == ["urge-2", "urge-3", "escalate"]
    assert due_signals(stop(clock, bj(2026, 12, 2)), bj(2026, 12, 9), POLICY, CAL) == []


def test_pause_moves_the_deadline_by_the_working_time_paused():
    clock = start_clock(ClockKind.resolve, bj(2026, 11, 23, 10), POLICY, CAL)
    paused = pause(clock, bj(2026, 11, 24, 10))
    assert due_signals(paused, bj(2026, 12, 30), POLICY, CAL) == []  # a paused clock never warns
    resumed = resume(paused, bj(2026, 11, 26, 10), CAL)  # two working days waiting on the citizen
    assert resumed.due_at == bj(2026, 12, 2, 10)


def test_extension_counts_from_the_approval():
    clock = start_clock(ClockKind.resolve, bj(2026, 11, 23, 10), POLICY, CAL)
    late_approval = extend(fired(clock, ["yellow", "red"]), bj(2026, 12, 1, 15), 3, CAL)
    assert late_approval.due_at == bj(2026, 12, 4, 15)
    assert late_approval.fired == frozenset()
    early_approval = extend(clock, bj(2026, 11, 25, 9), 3, CAL)
    assert early_approval.due_at == bj(2026, 12, 3, 10)


def test_same_event_times_give_the_same_deadline_whenever_processed():
    first = start_clock(ClockKind.resolve, bj(2026, 9, 30, 10), POLICY, CAL)
    replayed = start_clock(ClockKind.resolve, bj(2026, 9, 30, 10), POLICY, CAL)
    assert first == replayed and first.due_at == bj(2026, 10, 13, 10)


def test_a_deadline_in_an_unknown_year_carries_its_warning():
    clock = start_clock(ClockKind.resolve, bj(2026, 12, 30, 10), POLICY, CAL)
    assert clock.warnings and "2027" in clock.warnings[0]
    assert (clock.due_at - bj(2026, 12, 30, 10)) > timedelta(days=5)
