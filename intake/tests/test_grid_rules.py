"""The grid-duty rules (``intake.grid_rules``): pure functions, fixed dates."""

from datetime import UTC, datetime

import pytest

from intake.grid_rules import (
    Household,
    catalogue,
    catalogue_document,
    missed_openings,
    missed_visits,
    month_bounds,
    month_ended,
    scheduled_days,
)
from shared.workdays import LOCAL

FLAGGED = [Household("A", "G", difficult=True), Household("B", "G", monitored=True), Household("C", "G")]


def test_months_are_local_calendar_months():
    start, end = month_bounds("2026-12")
    assert (start, end) == (datetime(2026, 12, 1, tzinfo=LOCAL), datetime(2027, 1, 1, tzinfo=LOCAL))
    assert start == datetime(2026, 11, 30, 16, tzinfo=UTC)
    with pytest.raises(ValueError):
        month_bounds("2026-13")
    assert not month_ended("2026-10", datetime(2026, 10, 31, 15, 59, tzinfo=UTC))  # 23:59 in 北京时间
    assert month_ended("2026-10", datetime(2026, 10, 31, 16, 0, tzinfo=UTC))


def test_a_flagged_household_needs_a_visit_inside_the_month_holidays_or_not():
    # October 2026 has the National Day week off: the visit is still due (calendar days, not working days).
    visits = [("A", datetime(2026, 10, 3, 10, tzinfo=LOCAL)), ("B", datetime(2026, 9, 30, 23, 59, tzinfo=LOCAL)),
              ("B", datetime(2026, 11, 1, 0, 0, tzinfo=LOCAL))]  # fmt: skip
    assert [h.ref for h in missed_visits(FLAGGED, visits, "2026-10")] == ["B"]  # C is not flagged
    # 1 October 00:00 local is 30 September 16:00 UTC: it counts for October.
    assert missed_visits(FLAGGED, [("A", datetime(2026, 9, 30, 16, tzinfo=UTC)), ("B", datetime(2026, 10, 31, 15, tzinfo=UTC))], "2026-10") == []


def test_a_scheduled_mailbox_day_needs_an_opening_that_local_day():
    assert scheduled_days([1, 4], "2026-10") == [datetime(2026, 10, d).date() for d in (1, 5, 8, 12, 15, 19, 22, 26, 29)]
    opened = [datetime(2026, 10, d, 9, tzinfo=LOCAL) for d in (1, 5, 8, 12, 15, 19, 22, 29)]
    assert missed_openings([1, 4], opened, "2026-10") == [datetime(2026, 10, 26).date()]
    # The day before (a Sunday) does not stand in for the Monday.
    assert missed_openings([1], [datetime(2026, 10, 25, 9, tzinfo=LOCAL)], "2026-10")[-1] == datetime(2026, 10, 26).date()
    # Days not over yet are not missed yet.
    assert missed_openings([1], [], "2026-10", until=datetime(2026, 10, 13, 0, 0, tzinfo=LOCAL)) == [
        datetime(2026, 10, 5).date(), datetime(2026, 10, 12).date()]


def test_the_catalogue_has_four_classes_and_fifty_items():
    document = catalogue_document()
    classes = {c["code"] for c in document["classes"]}
    assert classes == {"public_service", "licensing", "administrative", "benefits"}
    items = catalogue()
    assert len(items) == 50 and {i.cls for i in items.values()} == classes
    assert "illustrative" in document["source"].lower()
