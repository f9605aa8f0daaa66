"""The callback's window (回访): when the call can be made and when it is late — one rule for
every service that shows it.

The practice calls the citizen back on the working day after closure (结案后下一个工作日回访).
SLA's callback clock and notify's callback queue both show this day, so it is computed here
and nowhere else (docs/rules.md): the first working day after the closure's Beijing date —
holidays skipped, a make-up Saturday (调休) counted. Calling opens at ``CALLBACK_HOUR``
Beijing time that day (a case closed at 04:35 is not called at 04:35), and the call is late
once that working day is over. An unreachable citizen is retried by the same rule from the
attempt's time (the next working day's window).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time

from shared.workdays import DAY, LOCAL, WorkingCalendar, guessed_year_warning

CALLBACK_HOUR = 9  # Beijing time: the start of the working day, the first moment an operator calls


@dataclass(frozen=True)
class CallbackWindow:
    """``opens_at``: when calling starts; ``due_at``: the deadline (late from then on). UTC."""

    opens_at: datetime
    due_at: datetime
    warnings: tuple[str, ...] = ()  # a year walked without a holiday table (weekends only)


def callback_window(calendar: WorkingCalendar, after: datetime) -> CallbackWindow:
    """回访 window of the first working day strictly after ``after``'s Beijing date (tz-aware):
    opens at ``CALLBACK_HOUR`` Beijing and is due at 00:00 Beijing of the next calendar day.

    The deadline is the end of that whole day because the platform counts a working day as
    the whole Beijing calendar day (``shared.workdays``) and the practice cards on the first
    overdue day, so the red card and the queue's "overdue" both begin when the callback day
    is over — never at the moment the call first becomes possible."""
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
    opens = datetime.combine(day, time(CALLBACK_HOUR), LOCAL).astimezone(UTC)
    due = datetime.combine(day + DAY, time(), LOCAL).astimezone(UTC)
    return CallbackWindow(opens, due, tuple(guessed_year_warning(year) for year in sorted(guessed)))
