"""未诉先办: the detectors — pure functions over appeals, no database, no broker.

Three patterns, each a finding a person can check (the cases, the window, the baseline, the
score, and one Chinese sentence):

- ``rising``: per area (grid, village, township) and subject class, the appeals of the last
  ``window_days`` working days against what the area's own previous ``history_days`` working
  days predict. The test is Poisson: with the baseline rate λ per working day (never below
  ``min_rate``, so a quiet area is not alarmed by its second appeal), the probability of
  seeing at least the window's count by chance; a finding when it is below ``max_p`` and the
  count is at least ``min_count``. Score: −log10 of that probability.
- ``same_spot``: the same spot (the village or grid and the street the appeal names — never
  more precise, PIPL) and subject class reported ``spot_min`` times or more within
  ``spot_window_days`` working days, counting new appeals, duplicates merged (并单) and redo
  rounds (重办) alike: the matter keeps coming back.
- ``persistent_unit``: a unit whose appeals of one class stayed high in each of the last
  ``persist_months`` complete months (反映同类问题居高不下): each month at least
  ``persist_ratio`` times the unit's own monthly average of the class over the
  ``persist_baseline_months`` months before them, and at least ``persist_min_monthly``. "High"
  is against the unit's own past, not a fixed count: a department that always handles many
  appeals of its class is not warned every month for its size.

Days are working days of the Chinese calendar with its make-up days (``shared.workdays``): an
appeal filed on a holiday counts on the next working day, so a Golden Week does not look like
a quiet baseline followed by a burst. The thresholds are data (``Thresholds``); the defaults
were chosen on the synthetic year of ``bench/insight.py`` (BENCHMARKS.md says how).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from datetime import date, timedelta

from shared.orgdata import SUBJECT_CLASSES
from shared.workdays import WorkingCalendar

LEVELS = ("grid", "village", "township")
LEVEL_WORDS = {"grid": "网格", "village": "村（社区）", "township": "乡镇", "unit": "单位"}


@dataclass(frozen=True)
class Thresholds:
    """When a pattern is a finding. Every number here is a setting (INSIGHT_THRESHOLDS)."""

    window_days: int = 5  # working days a rise is counted over
    history_days: int = 40  # working days before the window that make the baseline
    min_rate: float = 0.1  # floor of the baseline, appeals per working day
    max_p: float = 1e-6  # Poisson tail probability below which a rise is a finding
    min_count: int = 4  # and at least this many appeals in the window
    spot_window_days: int = 10  # working days the same spot is looked back over
    spot_min: int = 5  # appeals + merges + redo rounds at one spot that make a finding
    persist_months: int = 3  # complete months in a row …
    persist_ratio: float = 1.5  # … each at least this times the unit's own earlier monthly average …
    persist_min_monthly: int = 10  # … and at least this many appeals of the class for the unit
    persist_baseline_months: int = 6  # months before those that make the unit's own average
    cooldown_days: int = 10  # working days before the same key may give another finding

    def __post_init__(self) -> None:
        for name in ("window_days", "history_days", "min_count", "spot_window_days", "spot_min",
                     "persist_months", "persist_min_monthly", "persist_baseline_months", "cooldown_days"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not 0 < self.max_p < 1:
            raise ValueError("max_p must be between 0 and 1")
        if self.min_rate <= 0:
            raise ValueError("min_rate must be positive")
        if self.persist_ratio <= 1:
            raise ValueError("persist_ratio must be above 1")


@dataclass(frozen=True)
class Appeal:
    """What insight keeps of a case (its projection, built from the topic)."""

    case_id: str
    day: date  # local day (Asia/Shanghai) the appeal was received
    subject: str
    county: str | None = None
    township: str | None = None
    village: str | None = None
    grid: str | None = None
    street: str | None = None
    unit: str | None = None  # the sole or lead unit of its first order
    repeats: int = 0  # merged duplicates (并单) and redo rounds (重办) of this case

    def area(self, level: str) -> str | None:
        return getattr(self, level)


@dataclass(frozen=True)
class Finding:
    kind: str  # rising | same_spot | persistent_unit
    level: str  # grid | village | township | unit
    area: str
    subject: str
    window_start: date
    window_end: date
    window_workdays: int
    count: int
    baseline: float
    score: float
    case_ids: tuple[str, ...]
    explanation: str
    county: str | None = None
    township: str | None = None
    street: str | None = None
    unit: str | None = None

    @property
    def key(self) -> str:
        """What repeats of one pattern share (a cooldown per key)."""
        return "|".join((self.kind, self.level, self.area, self.street or "", self.subject))


# --------------------------------------------------------------------------- working days


@lru_cache(maxsize=8192)
def workday_on_or_after(calendar: WorkingCalendar, day: date) -> date:
    """The working day an appeal counts on: its own, or the next one after a weekend or holiday."""
    while not calendar.is_workday(day):
        day += timedelta(days=1)
    return day


def workdays_ending(calendar: WorkingCalendar, last: date, count: int) -> list[date]:
    """``count`` working days ending with ``last`` (a working day), oldest first."""
    return list(_workdays_ending(calendar, last, count))


@lru_cache(maxsize=4096)
def _workdays_ending(calendar: WorkingCalendar, last: date, count: int) -> tuple[date, ...]:
    # Every detector of every key asks for the same few windows of the same day.
    days = [last]
    day = last
    while len(days) < count:
        day -= timedelta(days=1)
        if calendar.is_workday(day):
            days.append(day)
    return tuple(days[::-1])


# --------------------------------------------------------------------------- statistics


def poisson_tail(k: int, mu: float) -> float:
    """P(X ≥ k) for X ~ Poisson(mu). Above the mean it is summed upward from k (exact where
    1 − P(X < k) would lose every digit); at or below it, 1 − P(X < k)."""
    if k <= 0:
        return 1.0
    if mu <= 0:
        return 0.0
    log_mu = math.log(mu)
    if k <= mu:
        below, log_pmf = 0.0, -mu
        for i in range(k):
            if i:
                log_pmf += log_mu - math.log(i)
            below += math.exp(log_pmf)
        return max(0.0, 1.0 - below)
    log_pmf = -mu + k * log_mu - math.lgamma(k + 1)
    total, i = 0.0, k
    while True:
        term = math.exp(log_pmf)
        total += term
        if term <= total * 1e-16:
            return min(total, 1.0)
        i += 1
        log_pmf += log_mu - math.log(i)


def score_of(p: float) -> float:
    return round(-math.log10(max(p, 1e-300)), 2)


# --------------------------------------------------------------------------- detectors


def _subject(subject: str) -> str:
    return SUBJECT_CLASSES.get(subject, subject)


def _span(days: Sequence[date]) -> str:
    start, end = days[0], days[-1]
    return f"{start.month}月{start.day}日至{end.month}月{end.day}日"


def rising(
    appeals: Sequence[Appeal], level: str, area: str, subject: str, today: date,
    calendar: WorkingCalendar, th: Thresholds, names: Mapping[str, str] | None = None,
) -> Finding | None:  # fmt: skip
    """Appeals of ``subject`` in ``area`` over the window ending ``today`` (a working day)
    against the area's own history before it. ``appeals`` may hold others; they are filtered."""
    days = workdays_ending(calendar, today, th.history_days + th.window_days)
    window = days[th.history_days :]  # the days before it are the history
    first, window_first = days[0], window[0]
    in_history = in_window = 0
    cases: list[str] = []
    mine = [a for a in appeals if a.subject == subject and a.area(level) == area]
    for appeal in mine:
        counted = workday_on_or_after(calendar, appeal.day)
        if counted < first or counted > today:
            continue
        if counted >= window_first:
            in_window += 1
            cases.append(appeal.case_id)
        else:
            in_history += 1
    if in_window < th.min_count:
        return None
    rate = max(in_history / th.history_days, th.min_rate)
    expected = rate * th.window_days
    p = poisson_tail(in_window, expected)
    if p >= th.max_p:
        return None
    place = (names or {}).get(area, area)
    sample = next(a for a in mine if a.case_id in cases)
    sentence = (
        f"{place}（{LEVEL_WORDS[level]}）{_span(window)}{th.window_days}个工作日内收到“{_subject(subject)}”类诉求{in_window}件，"
        f"按此前{th.history_days}个工作日的水平预计约{expected:.1f}件，偶然出现这么多的概率约为{p:.1e}，请关注是否有共性原因。"
    )
    return Finding(
        kind="rising", level=level, area=area, subject=subject, window_start=window[0], window_end=window[-1],
        window_workdays=th.window_days, count=in_window, baseline=round(expected, 3), score=score_of(p),
        case_ids=tuple(sorted(cases)), explanation=sentence, county=sample.county, township=sample.township,
    )  # fmt: skip


def spot_of(appeal: Appeal) -> tuple[str, str, str] | None:
    """(level, area, street) of the spot an appeal names: its grid or else its village or
    township, with the street. No street, no spot (a whole village is not a spot)."""
    if not appeal.street:
        return None
    for level in LEVELS:
        if code := appeal.area(level):
            return level, code, appeal.street
    return None


def same_spot(
    appeals: Sequence[Appeal], spot: tuple[str, str, str], subject: str, today: date,
    calendar: WorkingCalendar, th: Thresholds, names: Mapping[str, str] | None = None,
) -> Finding | None:  # fmt: skip
    """The appeals about one spot and class in the last ``spot_window_days`` working days,
    each counting once plus its merged duplicates and redo rounds."""
    days = workdays_ending(calendar, today, th.spot_window_days)
    level, area, street = spot
    here = [
        a for a in appeals
        if a.subject == subject and spot_of(a) == spot and days[0] <= workday_on_or_after(calendar, a.day) <= today
    ]  # fmt: skip
    weight = sum(1 + a.repeats for a in here)
    if weight < th.spot_min:
        return None
    repeats = sum(a.repeats for a in here)
    again = f"（其中并单、重办{repeats}次）" if repeats else ""
    sentence = (
        f"{(names or {}).get(area, area)}{street}的“{_subject(subject)}”问题{_span(days)}{th.spot_window_days}个工作日内被反映{weight}次{again}，"
        f"同一地点反复出现，建议责任单位主动上门排查、一并处理。"
    )
    return Finding(
        kind="same_spot", level=level, area=area, subject=subject, window_start=days[0], window_end=days[-1],
        window_workdays=th.spot_window_days, count=weight, baseline=0.0, score=round(weight / th.spot_min, 2),
        case_ids=tuple(sorted(a.case_id for a in here)), explanation=sentence, county=here[0].county,
        township=here[0].township, street=street, unit=_usual_unit(here),
    )  # fmt: skip


def _usual_unit(appeals: Iterable[Appeal]) -> str | None:
    counts: dict[str, int] = defaultdict(int)
    for appeal in appeals:
        if appeal.unit:
            counts[appeal.unit] += 1
    return max(sorted(counts), key=counts.__getitem__) if counts else None


def month_start(day: date, back: int = 0) -> date:
    """The first day of ``day``'s month, ``back`` months earlier."""
    index = day.year * 12 + day.month - 1 - back
    return date(index // 12, index % 12 + 1, 1)


def persistent_unit(
    appeals: Sequence[Appeal], unit: str, subject: str, today: date, th: Thresholds, names: Mapping[str, str] | None = None
) -> Finding | None:
    """A unit's appeals of one class in each of the ``persist_months`` complete months before
    ``today``'s month against its own monthly average over the ``persist_baseline_months``
    before them: each month at least ``persist_ratio`` times that, and ``persist_min_monthly``."""
    months = [month_start(today, back) for back in range(th.persist_months, 0, -1)]
    earliest = month_start(today, th.persist_months + th.persist_baseline_months)
    end = month_start(today)
    per_month: dict[date, list[str]] = {m: [] for m in months}
    before = 0
    for appeal in appeals:
        if appeal.unit == unit and appeal.subject == subject and earliest <= appeal.day < end:
            if appeal.day < months[0]:
                before += 1
            else:
                per_month[month_start(appeal.day)].append(appeal.case_id)
    counts = [len(per_month[m]) for m in months]
    average = before / th.persist_baseline_months
    if min(counts) < max(th.persist_min_monthly, th.persist_ratio * average):
        return None
    mine = [a for a in appeals if a.unit == unit]
    listed = "、".join(f"{m.month}月{c}件" for m, c in zip(months, counts, strict=True))
    sentence = (
        f"{(names or {}).get(unit, unit)}连续{th.persist_months}个月“{_subject(subject)}”类诉求居高不下（{listed}，"
        f"此前{th.persist_baseline_months}个月平均每月{average:.1f}件），请单位负责人关注并研究源头治理。"
    )
    return Finding(
        kind="persistent_unit", level="unit", area=unit, subject=subject, window_start=months[0],
        window_end=end - timedelta(days=1), window_workdays=th.persist_months, count=sum(counts),
        baseline=round(average * th.persist_months, 2), score=round(min(counts) / max(average, 1.0), 2),
        case_ids=tuple(sorted(c for m in months for c in per_month[m])), explanation=sentence,
        county=mine[0].county if mine else None, unit=unit,
    )  # fmt: skip


def detect(
    appeals: Sequence[Appeal], touched: Iterable[Appeal], today: date, calendar: WorkingCalendar, th: Thresholds,
    names: Mapping[str, str] | None = None,
) -> list[Finding]:
    """Every finding about the areas, spots and units the ``touched`` appeals belong to, on
    the working day ``today`` (the day they count on). ``appeals`` holds the history."""
    rising_keys: set[tuple[str, str, str]] = set()
    spot_keys: set[tuple[tuple[str, str, str], str]] = set()
    unit_keys: set[tuple[str, str]] = set()
    for appeal in touched:
        for level in LEVELS:
            if code := appeal.area(level):
                rising_keys.add((level, code, appeal.subject))
        if (spot := spot_of(appeal)) is not None:
            spot_keys.add((spot, appeal.subject))
        if appeal.unit:
            unit_keys.add((appeal.unit, appeal.subject))
    # Each detector filters what it is given; give it only its key's appeals (one pass here).
    of: dict[tuple[object, ...], list[Appeal]] = defaultdict(list)
    for appeal in appeals:
        for level in LEVELS:
            if (key := (level, appeal.area(level), appeal.subject)) in rising_keys:
                of[key].append(appeal)
        if (spot_key := (spot_of(appeal), appeal.subject)) in spot_keys:
            of[spot_key].append(appeal)
        if (unit_key := (appeal.unit, appeal.subject)) in unit_keys:
            of[unit_key].append(appeal)
    found: list[Finding] = []
    for level, code, subject in sorted(rising_keys):
        if (f := rising(of[(level, code, subject)], level, code, subject, today, calendar, th, names)) is not None:
            found.append(f)
    for spot, subject in sorted(spot_keys):
        if (f := same_spot(of[(spot, subject)], spot, subject, today, calendar, th, names)) is not None:
            found.append(f)
    for unit, subject in sorted(unit_keys):
        if (f := persistent_unit(of[(unit, subject)], unit, subject, today, th, names)) is not None:
            found.append(f)
    return most_specific(found)


def most_specific(findings: Sequence[Finding]) -> list[Finding]:
    """One cluster, one warning: a rising area is dropped when a finer finding of the same
    subject (a same-spot finding, or a rise in a grid or village inside it) holds at least half
    of its cases — the finer one names the place to act on."""
    kept: list[Finding] = []
    for finding in findings:
        if finding.kind == "rising":
            cases = set(finding.case_ids)
            finer = [
                other for other in findings
                if other is not finding and other.subject == finding.subject and other.kind != "persistent_unit"
                and _finer(other, finding) and len(cases & set(other.case_ids)) * 2 >= len(cases)
            ]  # fmt: skip
            if finer:
                continue
        kept.append(finding)
    return kept


def _finer(other: Finding, than: Finding) -> bool:
    if other.kind == "same_spot":
        return True
    return LEVELS.index(other.level) < LEVELS.index(than.level)


def cooled(kind: str, last: date | None, today: date, calendar: WorkingCalendar, th: Thresholds) -> bool:
    """May a key give another finding ``today``, its last one given on ``last``? One
    problem is one warning, not one a day: not within ``cooldown_days`` working days of the
    last one; a persistent unit once a month (its evidence is whole months)."""
    if last is None:
        return True
    if kind == "persistent_unit":
        return month_start(last) < month_start(today)
    return last <= workdays_ending(calendar, today, th.cooldown_days + 1)[0]


def history_starts(calendar: WorkingCalendar, today: date, th: Thresholds) -> tuple[date, date]:
    """The earliest days the detectors look at on ``today``: for the places (rising, same
    spot) and for the units (persistent): what a caller must load of each."""
    places = workdays_ending(calendar, today, max(th.history_days + th.window_days, th.spot_window_days))[0]
    return places, month_start(today, th.persist_months + th.persist_baseline_months)
