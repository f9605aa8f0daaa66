"""Grid duties (网格职责) — pure rules, no I/O.

- 结一联十: one organiser (联户长) keeps about ten households; ``ORGANISER_MAX_HOUSEHOLDS``
  is where "about" stops.
- Difficult or monitored households (困难户/重点监测户) are visited at least once a calendar
  month (local time). The month is judged against the register as it stood in that month,
  from its history (``households_in_month``), never against today's flags. The rule counts calendar days, not working days: a month with a
  holiday week still needs its visit (``missed_visits``).
- The grid's mailbox is opened on its scheduled weekdays (定时开箱取信); a scheduled day with
  no opening that local day is missed (``missed_openings``).
- Proxy services (帮办代办) are items of the catalogue ``proxy_services.json`` (速来办's
  4 classes; the item names there are illustrative).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path

from shared.workdays import LOCAL

# 结一联十 is "one for about ten": an organiser's list may run a little over ten as households
# split or move in, but past fifteen it is no longer one person's round and is refused.
ORGANISER_MAX_HOUSEHOLDS = 15

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

CATALOGUE_FILE = Path(__file__).with_name("proxy_services.json")


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """[start, end) of a calendar month ``YYYY-MM`` in local time (Asia/Shanghai)."""
    match = MONTH.match(month)
    if match is None:
        raise ValueError(f"{month!r} is not a month YYYY-MM")
    year, mon = int(match[1]), int(match[2])
    start = datetime(year, mon, 1, tzinfo=LOCAL)
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=LOCAL)
    return start, end


def month_of(moment: datetime) -> str:
    local = moment.astimezone(LOCAL)
    return f"{local.year:04d}-{local.month:02d}"


def month_ended(month: str, now: datetime) -> bool:
    """A month can be checked for missed duties only once it is over."""
    return month_bounds(month)[1] <= now


@dataclass(frozen=True)
class Household:
    ref: str
    grid: str
    keeper_id: str | None = None
    difficult: bool = False
    monitored: bool = False

    @property
    def flagged(self) -> bool:
        """困难 or 重点监测: visited at least monthly."""
        return self.difficult or self.monitored


#: What a version of the register records about a household; a change is any of these.
REGISTER_FIELDS = ("grid", "keeper_id", "organiser_id", "difficult", "monitored")


@dataclass(frozen=True)
class Version:
    """A household's entry on the register from ``at`` until its next version."""

    ref: str
    grid: str
    keeper_id: str | None
    organiser_id: str | None
    difficult: bool
    monitored: bool
    by: str
    at: datetime


def changes(versions: Iterable[Version]) -> list[dict]:
    """One household's history, oldest first: each version's author and time and the fields
    it changed, ``{field: {"from": old, "to": new}}`` (the first: from None)."""
    out, before = [], None
    for version in versions:
        changed = {
            name: {"from": getattr(before, name) if before else None, "to": getattr(version, name)}
            for name in REGISTER_FIELDS
            if before is None or getattr(before, name) != getattr(version, name)
        }
        out.append({"at": version.at, "by": version.by, "changes": changed})
        before = version
    return out


def households_in_month(versions: Iterable[Version], month: str) -> list[Household]:
    """The households on the register in ``month`` as the month had them: a household whose
    version in force at any moment of the month was flagged (困难/重点监测) owes that month's
    visit, even if unflagged since; one flagged only later does not. The grid and keeper are
    its last ones in the month (who kept it at the month's end answers for the visit).
    ``versions`` are ordered by household, then ``at``."""
    start, end = month_bounds(month)
    by_ref: dict[str, list[Version]] = {}
    for version in versions:
        by_ref.setdefault(version.ref, []).append(version)
    out = []
    for ref, chain in by_ref.items():
        ends = [v.at for v in chain[1:]] + [end]
        in_force = [v for v, until in zip(chain, ends, strict=True) if max(v.at, start) < min(until, end)]
        if in_force:
            last = in_force[-1]
            out.append(Household(ref, last.grid, last.keeper_id, any(v.difficult for v in in_force), any(v.monitored for v in in_force)))
    return out


def missed_visits(households: Iterable[Household], visits: Iterable[tuple[str, datetime]], month: str) -> list[Household]:
    """The flagged households with no visit inside the month (by household ref)."""
    start, end = month_bounds(month)
    visited = {ref for ref, at in visits if start <= at < end}
    return sorted((h for h in households if h.flagged and h.ref not in visited), key=lambda h: h.ref)


def scheduled_days(weekdays: Iterable[int], month: str) -> list[date]:
    """The month's days whose ISO weekday (1 = Monday … 7 = Sunday) is on the schedule."""
    days = set(weekdays)
    start, end = month_bounds(month)
    day, last = start.date(), end.date()
    out = []
    while day < last:
        if day.isoweekday() in days:
            out.append(day)
        day += timedelta(days=1)
    return out


def missed_openings(weekdays: Iterable[int], openings: Iterable[datetime], month: str, *, until: datetime | None = None) -> list[date]:
    """Scheduled days of the month with no opening on that local day; days not yet over at
    ``until`` are not missed yet."""
    opened = {at.astimezone(LOCAL).date() for at in openings}
    out = []
    for day in scheduled_days(weekdays, month):
        if until is not None and datetime.combine(day + timedelta(days=1), time(), LOCAL) > until:
            break
        if day not in opened:
            out.append(day)
    return out


@dataclass(frozen=True)
class ServiceItem:
    code: str
    cls: str
    name: str


@lru_cache(maxsize=1)
def catalogue() -> dict[str, ServiceItem]:
    """The proxy-service catalogue (帮办代办事项), by item code."""
    data = json.loads(CATALOGUE_FILE.read_text(encoding="utf-8"))
    return {item["code"]: ServiceItem(item["code"], item["class"], item["name"]) for item in data["items"]}


@lru_cache(maxsize=1)
def catalogue_document() -> dict:
    return json.loads(CATALOGUE_FILE.read_text(encoding="utf-8"))
