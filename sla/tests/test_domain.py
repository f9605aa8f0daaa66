"""Clocks: due times from event times, pause/resume, extension, thresholds that fire once."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from shared.workdays import HolidayTable, WorkingCalendar
from sla.domain import (
    Policy, describe, due_signals, extend, fired, next_signal_at, pause, policy_from_limits, policy_limits, remaining, resume,
    signal_kind, signal_times, start_clock, start_timer, stop,
)  # fmt: skip
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
    # 2100: a year the holiday package will not know for decades (unlike next year, which a
    # new release learns each winter); 2099 is known through a loaded table.
    known = WorkingCalendar([HolidayTable.parse({"year": 2099, "holidays": [], "workdays": []})])
    clock = start_clock(ClockKind.resolve, bj(2099, 12, 30, 10), POLICY, known)
    assert clock.warnings == ("no holiday table for 2100: counted weekends only; load the year's schedule",)
    assert (clock.due_at - bj(2099, 12, 30, 10)) > timedelta(days=5)


def test_policy_limits_round_trip_and_defaults_fill_the_rest():
    policy = policy_from_limits(4, {"sign_minutes": 20, "resolve_working_days": {"general": 2}, "early_warnings": [0.75, 0.5]})
    assert policy.version == 4 and policy.sign == timedelta(minutes=20)
    assert policy.resolve_working_days[ResolutionClass.general] == 2
    assert policy.resolve_working_days[ResolutionClass.complex] == 15  # not written: the default
    assert policy.early_warnings == (0.5, 0.75)
    assert policy_from_limits(4, policy_limits(policy)) == policy
    assert policy_from_limits(1, {}) == Policy()


def test_next_signal_is_the_earliest_threshold_not_fired():
    clock = start_clock(ClockKind.resolve, bj(2026, 11, 23, 10), POLICY, CAL)
    assert next_signal_at(clock, POLICY, CAL) == bj(2026, 11, 27, 10)  # yellow
    assert next_signal_at(fired(clock, ["yellow"]), POLICY, CAL) == bj(2026, 11, 30, 10)  # red
    assert next_signal_at(pause(clock, bj(2026, 11, 24)), POLICY, CAL) is None
    assert next_signal_at(stop(clock, bj(2026, 11, 24)), POLICY, CAL) is None
    assert [signal_kind(n) for n in ("50%", "yellow", "red", "urge-2", "escalate")] == ["warning", "warning", "breached", "urged", "escalated"]


def test_next_signal_is_the_earliest_of_every_threshold_whatever_fired():
    """next_signal_at skips urging and escalation while red is pending: the same answer as
    the minimum over every threshold, across holidays, timers on weekends and early shares."""
    import random

    rng = random.Random(6)
    policies = [POLICY, policy_from_limits(2, {"early_warnings": [0.5, 0.75], "urge_every_working_days": 0.5})]
    starts = [bj(2026, 9, 30, 10), bj(2026, 10, 3, 23, 30), bj(2026, 11, 28, 9), bj(2026, 12, 30, 16), bj(2026, 11, 23, 0)]
    checked = 0
    for policy in policies:
        for start in starts:
            clocks = [start_clock(kind, start, policy, CAL) for kind in ClockKind if kind is not ClockKind.sign]
            clocks.append(start_timer(ClockKind.sign, start, timedelta(minutes=30), policy.version))
            for clock in clocks:
                names = [name for name, _ in signal_times(clock, policy, CAL)]
                for _ in range(6):
                    done = fired(clock, rng.sample(names, rng.randint(0, len(names))))
                    every = [at for name, at in signal_times(done, policy, CAL) if name not in done.fired]
                    assert next_signal_at(done, policy, CAL) == min(every, default=None)
                    checked += 1
    assert checked == 2 * 5 * 8 * 6


def test_remaining_working_time_in_plain_words():
    clock = start_clock(ClockKind.resolve, bj(2026, 11, 23, 10), POLICY, CAL)  # due Mon 30 Nov 10:00
    left = remaining(clock, bj(2026, 11, 27, 7), CAL)  # Friday morning: the weekend does not count
    assert left == timedelta(days=1, hours=3) and describe(left) == "1 个工作日 3 小时"
    assert describe(remaining(clock, bj(2026, 12, 1, 10, 30), CAL)) == "超期 1 个工作日"
    timer = start_timer(ClockKind.sign, bj(2026, 11, 23, 10), timedelta(minutes=30), 1, unit="X")
    assert describe(remaining(timer, bj(2026, 11, 23, 10, 10), CAL)) == "20 分钟"
