"""Working days in China: public holidays and make-up working days (调休).

Deadlines count working time only: a whole working day is 24 hours of a working day in
Beijing time, so "5 working days from Wednesday 10:00" ends at 10:00 on the fifth
working day after, skipping holidays and weekends and counting a make-up Saturday.

Where the answer comes from, in order:
1. a holiday table an administrator loaded in the directory (the State Council publishes
   next year's schedule each winter) — it wins, so a correction can be made without a
   release; every service follows the same tables (``shared.holidays``);
2. the ``chinese-calendar`` package, for the years it knows;
3. otherwise weekends only, and the computation says so (``Deadline.warnings``), so a
   clock built on a guess is visible on the board until the table is loaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import chinese_calendar

LOCAL = ZoneInfo("Asia/Shanghai")
DAY = timedelta(days=1)


@dataclass(frozen=True)
class HolidayTable:
    """One year's official schedule: holidays and make-up working days."""

    year: int
    holidays: frozenset[date]
    workdays: frozenset[date]  # 调休: weekend days that are working days

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> HolidayTable:
        """``{"year": 2027, "holidays": ["2027-01-01", …], "workdays": ["2027-02-07", …]}``."""
        year = int(data["year"])  # type: ignore[arg-type]
        holidays = frozenset(date.fromisoformat(d) for d in data.get("holidays", []))  # type: ignore[union-attr]
        workdays = frozenset(date.fromisoformat(d) for d in data.get("workdays", []))  # type: ignore[union-attr]
        strays = [d for d in holidays | workdays if d.year != year]
        if strays:
            raise ValueError(f"dates outside {year}: {sorted(map(str, strays))}")
        if holidays & workdays:
            raise ValueError(f"dates both holiday and working day: {sorted(map(str, holidays & workdays))}")
        return cls(year, holidays, workdays)


def guessed_year_warning(year: int) -> str:
    """What a deadline says when it counted ``year`` without a holiday table (weekends only)."""
    return f"no holiday table for {year}: counted weekends only; load the year's schedule"


@dataclass(frozen=True)
class Deadline:
    due_at: datetime
    warnings: tuple[str, ...] = field(default=())


class WorkingCalendar:
    def __init__(self, tables: Iterable[HolidayTable] = ()) -> None:
        self._tables = {t.year: t for t in tables}
        # Every deadline walks its days through here, and ``chinese_calendar`` validates and
        # looks up each date anew; a calendar never changes (``with_table`` makes a new one).
        self._day = lru_cache(maxsize=8192)(self._look_up)

    def with_table(self, table: HolidayTable) -> WorkingCalendar:
        return WorkingCalendar([*(t for y, t in self._tables.items() if y != table.year), table])

    def source(self, day: date) -> str:
        """'table', 'package' or 'weekends' — where the answer for ``day`` comes from."""
        return self._day(day)[1]

    def is_workday(self, day: date) -> bool:
        return self._day(day)[0]

    def _look_up(self, day: date) -> tuple[bool, str]:
        table = self._tables.get(day.year)
        if table is not None:
            if day in table.holidays:
                return False, "table"
            if day in table.workdays:
                return True, "table"
            return day.weekday() < 5, "table"
        try:
            return bool(chinese_calendar.is_workday(day)), "package"
        except NotImplementedError:
            return day.weekday() < 5, "weekends"

    def add_working_time(self, start: datetime, amount: timedelta) -> Deadline:
        """The moment ``amount`` of working time after ``start`` (tz-aware, returned in UTC)."""
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if amount < timedelta(0):
            raise ValueError("amount must not be negative")
        guessed: set[int] = set()
        local = start.astimezone(LOCAL)
        remaining = amount
        day = local.date()
        cursor = local
        while True:
            if self.source(day) == "weekends":
                guessed.add(day.year)
            day_end = datetime.combine(day + DAY, time(), LOCAL)
            if self.is_workday(day):
                available = day_end - cursor
                if remaining <= available:
                    due = cursor + remaining
                    break
                remaining -= available
            day += DAY
            cursor = day_end
        warnings = tuple(guessed_year_warning(year) for year in sorted(guessed))
        return Deadline(due.astimezone(ZoneInfo("UTC")), warnings)

    def add_working_days(self, start: datetime, days: float) -> Deadline:
        return self.add_working_time(start, timedelta(days=days))

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Working time from ``start`` to ``end`` (negative when ``end`` is earlier)."""
        if end < start:
            return -self.working_time_between(end, start)
        total = timedelta(0)
        cursor = start.astimezone(LOCAL)
        stop = end.astimezone(LOCAL)
        while cursor < stop:
            day_end = datetime.combine(cursor.date() + DAY, time(), LOCAL)
            segment_end = min(day_end, stop)
            if self.is_workday(cursor.date()):
                total += segment_end - cursor
            cursor = segment_end
        return total


# The packaged calendar alone: what a service counts on before it follows the holiday tables
# (``shared.holidays``). Never changes, so one copy (and its memo) serves everyone.
PACKAGED_CALENDAR = WorkingCalendar()


def subtract_working_time(calendar: WorkingCalendar, end: datetime, amount: timedelta) -> datetime:
    """The moment ``amount`` of working time before ``end`` (for 'one working day before the due time')."""
    if end.tzinfo is None:
        raise ValueError("end must be timezone-aware")
    remaining = amount
    cursor = end.astimezone(LOCAL)
    day = cursor.date()
    while True:
        day_start = datetime.combine(day, time(), LOCAL)
        if calendar.is_workday(day):
            available = cursor - day_start
            if remaining <= available:
                return (cursor - remaining).astimezone(ZoneInfo("UTC"))
            remaining -= available
        day -= DAY
        cursor = datetime.combine(day + DAY, time(), LOCAL)
