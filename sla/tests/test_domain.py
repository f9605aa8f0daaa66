"""Clocks: due times from event times, pause/resume, extension, thresholds that fire once."""

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.deadlines import (
    after_survey_due, extended_due, resolve_due, return_window_end, survey_due, warning_acknowledge_due, warning_handle_due,
)
from shared.workdays import Deadline, HolidayTable, WorkingCalendar
from sla.domain import (
    ORDER_DEADLINES, Policy, clock_until, describe, due_signals, extend, fired, next_signal_at, pause, policy_from_limits,
    policy_limits, redo_escalation, remaining, resume, signal_kind, signal_times, start_clock, start_timer, stop,
    WARNING_DEADLINES,
)  # fmt: skip
from shared.events import ClockKind, ResolutionClass, Urgency

BJ = ZoneInfo("Asia/Shanghai")
CAL = WorkingCalendar()
POLICY = Policy()


def bj(*args) -> datetime:
    return datetime(*args, tzinfo=BJ)


def resolve_clock(dispatched: datetime, klass: ResolutionClass = ResolutionClass.general):
    """The resolve clock as sla starts it from case.dispatched: on the order's deadline (shared.deadlines)."""
    return clock_until(ClockKind.resolve, dispatched, resolve_due(CAL, dispatched, klass), POLICY.version)


def test_limits_by_kind_class_and_urgency():
    dispatched = bj(2026, 11, 23, 10)  # a Monday
    assert start_clock(ClockKind.sign, dispatched, POLICY, CAL).due_at == bj(2026, 11, 23, 11)
    assert start_clock(ClockKind.sign, dispatched, POLICY, CAL, urgency=Urgency.emergency).due_at == bj(2026, 11, 23, 10, 30)
    assert resolve_clock(dispatched).due_at == bj(2026, 11, 30, 10)
    assert resolve_clock(dispatched, ResolutionClass.complex).due_at == bj(2026, 12, 14, 10)
    # Long-cycle matters start like complex ones and are then extended, with approval, up to 180 days.
    assert resolve_clock(dispatched, ResolutionClass.long_cycle).due_at == bj(2026, 12, 14, 10)
    assert return_window_end(CAL, dispatched).due_at == bj(2026, 11, 25, 10)


def test_the_order_deadlines_are_not_the_policys_to_compute():
    """Dispatch owns the order: sla never counts its resolve or return-window clock from a
    policy, and a policy version that still holds those limits (written before) changes nothing."""
    dispatched = bj(2026, 11, 23, 10)
    for kind in ORDER_DEADLINES:
        with pytest.raises(ValueError, match="dispatch"):
            start_clock(kind, dispatched, POLICY, CAL)
    old = policy_from_limits(3, {"resolve_working_days": {"general": 2}, "return_window_working_days": 1, "sign_minutes": 20})
    assert old == replace(Policy(), version=3, sign=timedelta(minutes=20))
    assert "resolve_working_days" not in policy_limits(old) and "return_window_working_days" not in policy_limits(old)
    carried = Deadline(bj(2026, 11, 30, 10))  # what dispatch put on case.dispatched
    assert clock_until(ClockKind.resolve, dispatched, carried, old.version).due_at == carried.due_at


def test_yellow_then_red_then_urging_then_escalation_each_once():
    clock = resolve_clock(bj(2026, 11, 23, 10))  # due Mon 30 Nov 10:00
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
    clock = resolve_clock(bj(2026, 11, 23, 10))
    paused = pause(clock, bj(2026, 11, 24, 10))
    assert due_signals(paused, bj(2026, 12, 30), POLICY, CAL) == []  # a paused clock never warns
    resumed = resume(paused, bj(2026, 11, 26, 10), CAL)  # two working days waiting on the citizen
    assert resumed.due_at == bj(2026, 12, 2, 10)
    # The order's own clock takes the deadline dispatch moved, whatever sla would count.
    assert resume(paused, bj(2026, 11, 26, 10), CAL, due=Deadline(bj(2026, 12, 3, 9))).due_at == bj(2026, 12, 3, 9)


def test_extension_counts_from_the_approval():
    clock = resolve_clock(bj(2026, 11, 23, 10))
    late_approval = extend(fired(clock, ["yellow", "red"]), extended_due(CAL, clock.due_at, bj(2026, 12, 1, 15), 3))
    assert late_approval.due_at == bj(2026, 12, 4, 15)
    assert late_approval.fired == frozenset()
    early_approval = extend(clock, extended_due(CAL, clock.due_at, bj(2026, 11, 25, 9), 3))
    assert early_approval.due_at == bj(2026, 12, 3, 10)


def test_the_survey_is_due_two_working_days_on_and_the_work_four_after_it_never_sooner():
    """现场勘查 (the guardrail story: surveyed two days on, installed four days after)."""
    friday = bj(2026, 11, 20, 15)
    assert survey_due(CAL, friday, "public_safety").due_at == bj(2026, 11, 24, 15)  # the weekend does not count
    assert survey_due(CAL, friday, "consultation") is None, "not on site: no survey clock"
    clock = clock_until(ClockKind.survey, friday, survey_due(CAL, friday, "public_safety"), POLICY.version)
    assert due_signals(clock, bj(2026, 11, 23, 15), POLICY, CAL) == ["yellow"]  # 1 working day before
    assert due_signals(fired(clock, ["yellow"]), bj(2026, 11, 24, 15), POLICY, CAL) == ["red"]
    order_due = resolve_due(CAL, friday, ResolutionClass.general).due_at  # Fri 27 Nov 15:00
    assert after_survey_due(CAL, order_due, bj(2026, 11, 24, 10)).due_at == bj(2026, 11, 30, 10)  # 4 working days on
    # A survey made at once leaves the class's deadline: the survey never shortens the time.
    assert after_survey_due(CAL, order_due, bj(2026, 11, 20, 16)).due_at == order_due


def test_same_event_times_give_the_same_deadline_whenever_processed():
    first = resolve_clock(bj(2026, 9, 30, 10))
    replayed = resolve_clock(bj(2026, 9, 30, 10))
    assert first == replayed and first.due_at == bj(2026, 10, 13, 10)


def test_a_deadline_in_an_unknown_year_carries_its_warning():
    # 2100: a year the holiday package will not know for decades (unlike next year, which a
    # new release learns each winter); 2099 is known through a loaded table.
    known = WorkingCalendar([HolidayTable.parse({"year": 2099, "holidays": [], "workdays": []})])
    start = bj(2099, 12, 30, 10)
    clock = clock_until(ClockKind.resolve, start, resolve_due(known, start, ResolutionClass.general), POLICY.version)
    assert clock.warnings == ("no holiday table for 2100: counted weekends only; load the year's schedule",)
    assert (clock.due_at - start) > timedelta(days=5)


def test_policy_limits_round_trip_and_defaults_fill_the_rest():
    policy = policy_from_limits(4, {"sign_minutes": 20, "verify_working_days": 1, "early_warnings": [0.75, 0.5]})
    assert policy.version == 4 and policy.sign == timedelta(minutes=20)
    assert policy.verify_working_days == 1
    assert policy.dispatch_working_days == 0.5 and policy.first_contact == timedelta(hours=24)  # not written: the defaults
    assert policy.early_warnings == (0.5, 0.75)
    assert policy_from_limits(4, policy_limits(policy)) == policy
    assert policy_from_limits(1, {}) == Policy()


def test_next_signal_is_the_earliest_threshold_not_fired():
    clock = resolve_clock(bj(2026, 11, 23, 10))
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
            carried = ORDER_DEADLINES | WARNING_DEADLINES
            clocks = [start_clock(kind, start, policy, CAL) for kind in ClockKind if kind is not ClockKind.sign and kind not in carried]
            clocks += [
                clock_until(ClockKind.warning_acknowledge, start, warning_acknowledge_due(CAL, start), policy.version),
                clock_until(ClockKind.warning_handle, start, warning_handle_due(CAL, start), policy.version),
            ]
            clocks += [resolve_clock(start), clock_until(ClockKind.return_window, start, return_window_end(CAL, start), policy.version)]
            clocks.append(start_timer(ClockKind.sign, start, timedelta(minutes=30), policy.version))
            for clock in clocks:
                names = [name for name, _ in signal_times(clock, policy, CAL)]
                for _ in range(6):
                    done = fired(clock, rng.sample(names, rng.randint(0, len(names))))
                    every = [at for name, at in signal_times(done, policy, CAL) if name not in done.fired]
                    assert next_signal_at(done, policy, CAL) == min(every, default=None)
                    checked += 1
    assert checked == 2 * 5 * 10 * 6


def test_remaining_working_time_in_plain_words():
    clock = resolve_clock(bj(2026, 11, 23, 10))  # due Mon 30 Nov 10:00
    left = remaining(clock, bj(2026, 11, 27, 7), CAL)  # Friday morning: the weekend does not count
    assert left == timedelta(days=1, hours=3) and describe(left) == "1 个工作日 3 小时"
    assert describe(remaining(clock, bj(2026, 12, 1, 10, 30), CAL)) == "超期 1 个工作日"
    timer = start_timer(ClockKind.sign, bj(2026, 11, 23, 10), timedelta(minutes=30), 1, unit="X")
    assert describe(remaining(timer, bj(2026, 11, 23, 10, 10), CAL)) == "20 分钟"


def test_a_callback_clock_has_no_yellow_card_before_the_call_can_be_made():
    # Closed Monday 04:35: called on Tuesday from 09:00, due at its end (Wednesday 00:00). "One
    # working day before" would be Tuesday 00:00, nine hours before anyone may call.
    clock = start_clock(ClockKind.callback, bj(2026, 10, 12, 4, 35), POLICY, CAL)
    assert clock.due_at == bj(2026, 10, 14, 0)
    assert [name for name, _ in signal_times(clock, POLICY, CAL, horizon=1)] == ["red", "urge-1", "escalate"]


def test_a_callback_clock_counted_on_a_guessed_year_is_recounted_by_the_callback_rule():
    from shared.workdays import HolidayTable, guessed_year_warning
    from sla.domain import recount

    # 2031 is beyond chinese-calendar: weekends only, so Thursday 2 Jan 15:00 is called on
    # Friday and due at its end (Saturday 00:00).
    clock = start_clock(ClockKind.callback, bj(2031, 1, 2, 15), POLICY, CAL)
    assert clock.due_at == bj(2031, 1, 4, 0) and clock.warnings == (guessed_year_warning(2031),)
    # The loaded schedule makes 2 and 3 Jan holidays: the callback is made on Monday and due at
    # its end (Tuesday 00:00), not a working time carried over (the 33 working hours counted
    # from Thursday 15:00 would end on Tuesday 09:00 on the new calendar).
    table = HolidayTable.parse({"year": 2031, "holidays": ["2031-01-01", "2031-01-02", "2031-01-03"], "workdays": []})
    moved = recount(clock, CAL, CAL.with_table(table), guessed_year_warning(2031))
    assert (moved.due_at, moved.warnings) == (bj(2031, 1, 7, 0), ())


@pytest.mark.parametrize(("redo_round", "escalates"), [(0, False), (1, False), (2, False), (3, True), (4, True)])
def test_escalated_after_the_third_redo(redo_round, escalates):
    """The third redo (round 3) is due 督办; later rounds too, but the handler fires it once per case."""
    assert redo_escalation(redo_round) is escalates


def test_the_redo_limit_is_a_parameter():
    assert redo_escalation(2, limit=2) and not redo_escalation(1, limit=2)
