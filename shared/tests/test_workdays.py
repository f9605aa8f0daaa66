"""Working-day deadlines across holidays, 调休 and into a year the package does not know."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.workdays import HolidayTable, WorkingCalendar

BJ = ZoneInfo("Asia/Shanghai")


def bj(*args) -> datetime:
    return datetime(*args, tzinfo=BJ)


def test_five_working_days_across_the_national_day_week_and_its_make_up_saturday():
    # Dispatched Wed 30 Sep 2026 10:00. 1–7 Oct are holidays; Sat 10 Oct is a make-up
    # working day; Sun 11 Oct is off. Working time: 30 Sep (14 h), 8, 9, 10, 12 Oct, 13 Oct 10 h.
    deadline = WorkingCalendar().add_working_days(bj(2026, 9, 30, 10), 5)
    assert deadline.due_at == bj(2026, 10, 13, 10)
    assert deadline.warnings == ()


def test_the_make_up_saturday_counts_and_an_ordinary_weekend_does_not():
    calendar = WorkingCalendar()
    assert calendar.is_workday(bj(2026, 10, 10).date())  # 调休 Saturday
    assert not calendar.is_workday(bj(2026, 10, 11).date())
    assert not calendar.is_workday(bj(2026, 10, 1).date())
    # Friday 9 Oct 18:00 + 1 working day → Saturday 10 Oct 18:00 (a working day that week).
    assert calendar.add_working_days(bj(2026, 10, 9, 18), 1).due_at == bj(2026, 10, 10, 18)
    # An ordinary Friday: + 1 working day → Monday.
    assert calendar.add_working_days(bj(2026, 11, 20, 18), 1).due_at == bj(2026, 11, 23, 18)


def test_a_clock_started_on_a_holiday_starts_on_the_next_working_day():
    deadline = WorkingCalendar().add_working_days(bj(2026, 10, 3, 15), 1)
    assert deadline.due_at == bj(2026, 10, 9, 0)  # all of 8 Oct


def test_half_a_working_day_for_dispatch():
    assert WorkingCalendar().add_working_days(bj(2026, 11, 20, 20), 0.5).due_at == bj(2026, 11, 23, 8)


def test_crossing_into_2027_without_a_table_counts_weekends_only_and_says_so():
    deadline = WorkingCalendar().add_working_days(bj(2026, 12, 30, 10), 5)
    # 30 Dec (14 h), 31 Dec, Fri 1 Jan 2027 (unknown: treated as a working day), 4, 5 Jan, 6 Jan 10 h.
    assert deadline.due_at == bj(2027, 1, 6, 10)
    assert deadline.warnings == ("no holiday table for 2027: counted weekends only; load the year's schedule",)


def test_crossing_into_2027_with_the_loaded_schedule():
    table = HolidayTable.parse({"year": 2027, "holidays": ["2027-01-01"], "workdays": []})
    deadline = WorkingCalendar([table]).add_working_days(bj(2026, 12, 30, 10), 5)
    assert deadline.due_at == bj(2027, 1, 7, 10)
    assert deadline.warnings == ()


def test_a_loaded_table_overrides_the_package():
    # A (hypothetical) correction: 12 Oct 2026 declared a holiday.
    table = HolidayTable.parse({"year": 2026, "holidays": ["2026-10-12"], "workdays": ["2026-10-10"]})
    calendar = WorkingCalendar().with_table(table)
    assert not calendar.is_workday(bj(2026, 10, 12).date())
    assert calendar.source(bj(2026, 10, 12).date()) == "table"


def test_bad_tables_are_refused_with_the_dates_named():
    with pytest.raises(ValueError, match="2026-12-31"):
        HolidayTable.parse({"year": 2027, "holidays": ["2026-12-31"]})
    with pytest.raises(ValueError, match="both"):
        HolidayTable.parse({"year": 2027, "holidays": ["2027-02-07"], "workdays": ["2027-02-07"]})


def test_working_time_between_is_the_inverse_of_adding_it():
    calendar = WorkingCalendar()
    start = bj(2026, 9, 30, 10)
    due = calendar.add_working_days(start, 5).due_at
    assert calendar.working_time_between(start, due) == timedelta(days=5)
    assert calendar.working_time_between(due, start) == -timedelta(days=5)
    with pytest.raises(ValueError):
        calendar.add_working_days(datetime(2026, 9, 30, 10), 1)
