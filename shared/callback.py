"""When a callback (回访) falls due: one rule for every service that shows it.

The practice calls the citizen back on the working day after closure (结案后下一个工作日回访).
SLA's callback clock and notify's callback queue both show this moment, so it is computed
here and nowhere else (docs/rules.md): the first working day after the closure's Beijing
date — holidays skipped, a make-up Saturday (调休) counted — at ``CALLBACK_HOUR`` Beijing
time, when calls can be made. A case closed at 04:35 is therefore due at 09:00 on the next
working day, not at 04:35. An unreachable citizen is retried by the same rule from the
attempt's time (the next working day at the same hour).
"""

from __future__ import annotations

from datetime import UTC, datetime, time

from shared.workdays import DAY, LOCAL, Deadline, WorkingCalendar, guessed_year_warning

CALLBACK_HOUR = 9  # Beijing time: the start of the working day, the first moment an operator calls


def callback_deadline(calendar: WorkingCalendar, after: datetime) -> Deadline:
    """回访: ``CALLBACK_HOUR`` on the first working day strictly after ``after``'s Beijing date
    (tz-aware; returned in UTC), with a warning when a day walked had no holiday table."""
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    day = after.astimezone(LOCAL).date() + DAY
    guessed: set[int] = set()
    while True:
        if calendar.source(day) == "weekends":
            guessed.add(day.year)
        if calendar.is_workday(day):
            break
        day += DAY
    due = datetime.combine(day, time(CALLBACK_HOUR), LOCAL).astimezone(UTC)
    return Deadline(due, tuple(guessed_year_warning(year) for year in sorted(guessed)))


def callback_due(calendar: WorkingCalendar, after: datetime) -> datetime:
    """The moment of ``callback_deadline`` alone (what notify's queue stores)."""
    return callback_deadline(calendar, after).due_at
