"""Reporting periods (日 / 周 / 月 / 季 / custom), in Beijing local dates, half-open.

A period is ``[start, end)`` in local dates; its UTC bounds are the local midnights. Weeks
start on Monday (ISO), as the weekly bulletin (一周一通报) does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

BEIJING = ZoneInfo("Asia/Shanghai")
PeriodKind = Literal["day", "week", "month", "quarter", "custom"]
KINDS: tuple[str, ...] = ("day", "week", "month", "quarter", "custom")


@dataclass(frozen=True)
class Period:
    kind: str
    start: date
    end: date  # exclusive

    @property
    def start_utc(self) -> datetime:
        return datetime.combine(self.start, time(), BEIJING).astimezone(UTC)

    @property
    def end_utc(self) -> datetime:
        return datetime.combine(self.end, time(), BEIJING).astimezone(UTC)

    def contains(self, moment: datetime | None) -> bool:
        return moment is not None and self.start_utc <= moment < self.end_utc

    @property
    def label(self) -> str:
        if self.kind == "day":
            return self.start.isoformat()
        if self.kind == "week":
            year, week, _ = self.start.isocalendar()
            return f"{year}-W{week:02d}"
        if self.kind == "month":
            return f"{self.start.year}-{self.start.month:02d}"
        if self.kind == "quarter":
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        return f"{self.start.isoformat()}..{(self.end - timedelta(days=1)).isoformat()}"

    def previous(self) -> Period:
        if self.kind == "custom":
            length = self.end - self.start
            return Period("custom", self.start - length, self.start)
        return period_of(self.kind, self.start - timedelta(days=1))


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period_of(kind: str, day: date) -> Period:
    """The day / week / month / quarter containing ``day``."""
    if kind == "day":
        return Period(kind, day, day + timedelta(days=1))
    if kind == "week":
        start = day - timedelta(days=day.weekday())
        return Period(kind, start, start + timedelta(days=7))
    if kind == "month":
        start = day.replace(day=1)
        return Period(kind, start, _add_months(start, 1))
    if kind == "quarter":
        start = date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
        return Period(kind, start, _add_months(start, 3))
    raise ValueError(f"unknown period {kind!r}; one of: day, week, month, quarter (or custom with from/to)")


def custom(start: date, end_inclusive: date) -> Period:
    if end_inclusive < start:
        raise ValueError("the range ends before it starts")
    return Period("custom", start, end_inclusive + timedelta(days=1))


def local_date(moment: datetime) -> date:
    return moment.astimezone(BEIJING).date()


def recent(period: Period, count: int) -> list[Period]:
    """``count`` periods ending with ``period``, oldest first (for trend charts)."""
    out = [period]
    while len(out) < count:
        out.append(out[-1].previous())
    return out[::-1]
