"""Working-day deadlines across holidays, 调休 and into a year the package does not know."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.workdays import DAY, HolidayTable, WorkingCalendar

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


# Years the package will not know for decades, so that these tests do not break the day a
# new release of chinese-calendar learns next year's schedule. 30 Dec 2099 is a Wednesday and
# 1 Jan 2100 a Friday. The year before is "known" through a loaded table, as the package's
# last year would be.
KNOWN_2099 = HolidayTable.parse({"year": 2099, "holidays": [], "workdays": []})


def test_crossing_into_a_year_without_a_table_counts_weekends_only_and_says_so():
    calendar = WorkingCalendar([KNOWN_2099])
    assert calendar.source(bj(2100, 1, 1).date()) == "weekends"
    deadline = calendar.add_working_days(bj(2099, 12, 30, 10), 5)
    # 30 Dec (14 h), 31 Dec, Fri 1 Jan 2100 (unknown: treated as a working day), 4, 5 Jan, 6 Jan 10 h.
    assert deadline.due_at == bj(2100, 1, 6, 10)
    assert deadline.warnings == ("no holiday table for 2100: counted weekends only; load the year's schedule",)


def test_crossing_into_a_year_with_the_loaded_schedule():
    table = HolidayTable.parse({"year": 2100, "holidays": ["2100-01-01"], "workdays": []})
    deadline = WorkingCalendar([KNOWN_2099, table]).add_working_days(bj(2099, 12, 30, 10), 5)
    assert deadline.due_at == bj(2100, 1, 7, 10)
    assert deadline.warnings == ()


def first_unknown_year() -> int:
    """The first year after the package's last: the one whose holidays nobody has loaded yet."""
    year = 2004  # the package's first
    while WorkingCalendar().source(date(year, 6, 1)) == "package":
        year += 1
    return year


def test_spring_festival_of_a_year_the_package_does_not_know_is_guessed_aloud_until_its_table_is_loaded():
    # Spring Festival (春节) of the year after the package's last is counted as working days —
    # the schedule is not published until the winter before — and every deadline that counted
    # it says so, so the board shows the guess until an administrator loads the year's table.
    year = first_unknown_year()
    festival = [date(year, 2, 10) + DAY * n for n in range(7)]
    start = bj(year, 2, 10, 10)
    calendar = WorkingCalendar()
    assert [calendar.source(d) for d in festival] == ["weekends"] * 7
    assert [calendar.is_workday(d) for d in festival] == [d.weekday() < 5 for d in festival]
    guessed = calendar.add_working_days(start, 1)
    assert guessed.warnings == (f"no holiday table for {year}: counted weekends only; load the year's schedule",)
    assert guessed.due_at < bj(year, 2, 17)

    # The (hypothetical) table: 10–16 Feb off. The day counts from the first working day after.
    table = HolidayTable.parse({"year": year, "holidays": [d.isoformat() for d in festival], "workdays": []})
    loaded = calendar.with_table(table).add_working_days(start, 1)
    back = date(year, 2, 17)
    while back.weekday() >= 5:
        back += DAY
    assert loaded.due_at == bj(year, back.month, back.day) + DAY and loaded.warnings == ()


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
