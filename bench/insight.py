"""未诉先办, measured: a synthetic year of appeals for the demo counties, the insight detectors
replayed over it day by day, and their findings scored against what was planted.

The year (``synthetic_year``, deterministic from its seed):
- every village of the demo org (``shared.orgdata``) files appeals of eight subject classes at
  its own rate (a size factor per village), with each class's season (rain and heat lift
  infrastructure, environment and safety in summer; wages and travel lift social security and
  transport around the Spring Festival; planting and harvest lift agriculture), fewer on
  weekends and public holidays (the Chinese calendar with its make-up days), on one of the
  village's streets and grids, handled by the county department whose duties include the class;
  a few appeals come back once or twice (merged duplicates, redo rounds), as in real queues;
- planted (unless ``plant=False``): ``CLUSTERS`` same-spot clusters (4–8 appeals at one street
  over 3–7 working days), ``AREA_BURSTS`` bursts spread over a village's streets (6–10 appeals
  of one class over 2–5 working days: a water cut, a closed road — no one spot repeats) and one
  slowly rising problem (a village's environment appeals climbing to five times their rate over
  60 working days, then staying there for 40).

The replay (``replay``) is what the service does for each batch (``services.insight.handlers``):
for every working day of the year, the appeals that count on it are "touched", the detectors
run on their township's and unit's history, and a pattern in its cooldown gives no finding.

Scoring (``score``): a finding is true when its evidence holds a planted appeal (case ids) and it
is found within the plant's days plus ``LATE_DAYS`` working days; precision over all findings,
recall over the plants, the time from a plant's first appeal to its first true finding in
working days, and on a year with nothing planted (another seed) every finding is false: false
warnings per month.
"""

from __future__ import annotations

import random
import statistics
import time
from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from bench.core import Context, Figure, say
from services.insight import detect
from services.insight.detect import Appeal, Thresholds
from shared.orgdata import load_org
from shared.workdays import WorkingCalendar

YEAR = 2026
WARM_UP_START = date(YEAR - 1, 3, 1)  # the detectors need history before 1 January (9 months for units)
CLUSTERS = 12
AREA_BURSTS = 3
LATE_DAYS = 10  # a finding this many working days after a plant's last appeal still counts
SEED = 24
NULL_SEED = 2024
WEEKEND_SHARE = 0.35  # appeals on a day off, against a working day
VILLAGE_RATE = 1.6  # appeals per working day of an average village, every class together

# Share of a village's appeals per class, and the season: month → factor (1 when absent).
SUBJECTS: dict[str, tuple[float, dict[int, float]]] = {
    "infrastructure": (0.22, {5: 1.2, 6: 1.4, 7: 1.4, 8: 1.3}),
    "environment": (0.14, {6: 1.3, 7: 1.5, 8: 1.5, 9: 1.2}),
    "agriculture": (0.10, {3: 1.4, 4: 1.5, 5: 1.3, 9: 1.3, 10: 1.3, 12: 0.6, 1: 0.6}),
    "social_security": (0.13, {1: 1.6, 2: 1.3, 12: 1.4}),
    "disputes": (0.14, {2: 1.3, 3: 1.1}),
    "consultation": (0.12, {9: 1.2, 2: 0.8}),
    "public_safety": (0.07, {6: 1.3, 7: 1.6, 8: 1.5}),
    "transport": (0.08, {1: 1.3, 2: 1.4, 10: 1.2}),
}
STREETS = 30  # streets (and lanes, squares…) of a village the appeals name; each lies in one grid


@dataclass(frozen=True)
class Plant:
    kind: str  # cluster | area_burst | slow_rise
    subject: str
    village: str
    start: date  # the working day of its first appeal
    end: date  # of its last
    case_ids: frozenset[str]
    street: str | None = None


@dataclass
class Year:
    appeals: list[Appeal]
    plants: list[Plant] = field(default_factory=list)


def _poisson(rng: random.Random, mu: float) -> int:
    """Knuth's method: the rates here are small (well under 10 a day)."""
    limit, k, p = pow(2.718281828459045, -mu), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def synthetic_year(seed: int = SEED, *, plant: bool = True, calendar: WorkingCalendar | None = None) -> Year:
    """The demo counties' appeals from ``WARM_UP_START`` to the end of ``YEAR``."""
    calendar = calendar or WorkingCalendar()
    rng = random.Random(seed)
    org = load_org()
    villages = [u for u in org.units if u.kind == "village"]
    grids: dict[str, list[str]] = defaultdict(list)
    for unit in org.units:
        if unit.kind == "grid" and unit.parent:
            grids[unit.parent].append(unit.code)
    departments: dict[tuple[str, str], str] = {}
    for unit in sorted(org.units, key=lambda u: u.code):
        if unit.kind == "department":
            county = org.county_of(unit.code)
            for duty in unit.duties:
                departments.setdefault((county, duty), unit.code)  # type: ignore[arg-type]
    size = {v.code: rng.uniform(0.5, 1.5) for v in villages}
    appeals: list[Appeal] = []
    serial = 0

    def grid_of(village: str, street: str) -> str | None:
        return grids[village][int(street.rsplit("路", 1)[0].rsplit("第", 1)[1]) % len(grids[village])] if grids[village] else None

    def a_street(village: Any) -> str:
        return f"{village.name}第{rng.randrange(STREETS) + 1}路"

    def file(village: Any, day: date, subject: str, *, prefix: str = "c", street: str | None = None,
             repeats: int | None = None) -> Appeal:  # fmt: skip
        nonlocal serial
        serial += 1
        street = street or a_street(village)
        county = org.county_of(village.code)
        if repeats is None:
            roll = rng.random()
            repeats = 2 if roll < 0.01 else 1 if roll < 0.05 else 0
        appeal = Appeal(
            case_id=f"{prefix}{serial}", day=day, subject=subject, county=county, township=village.parent,
            village=village.code, grid=grid_of(village.code, street), street=street,
            unit=departments.get((county, subject)),  # type: ignore[arg-type]
            repeats=repeats,
        )  # fmt: skip
        appeals.append(appeal)
        return appeal

    day = WARM_UP_START
    while day <= date(YEAR, 12, 31):
        off = 1.0 if calendar.is_workday(day) else WEEKEND_SHARE
        for village in villages:
            for subject, (share, season) in SUBJECTS.items():
                mu = VILLAGE_RATE * size[village.code] * share * season.get(day.month, 1.0) * off
                for _ in range(_poisson(rng, mu)):
                    file(village, day, subject)
        day += timedelta(days=1)
    year = Year(appeals)
    if not plant:
        return year
    working = [d for d in _days(date(YEAR, 2, 1), date(YEAR, 11, 30)) if calendar.is_workday(d)]
    for k in range(CLUSTERS):
        village = rng.choice(villages)
        subject = rng.choices(list(SUBJECTS), weights=[s for s, _ in SUBJECTS.values()])[0]
        street = a_street(village)
        start = rng.randrange(len(working) - 10)
        span = working[start : start + rng.randint(3, 7)]
        days = sorted(rng.choice(span) for _ in range(rng.randint(4, 8)))
        days[0] = span[0]
        filed = [file(village, d, subject, prefix=f"p{k}-", street=street, repeats=0) for d in days]
        year.plants.append(Plant("cluster", subject, village.code, days[0], days[-1], frozenset(a.case_id for a in filed), street))
    for k in range(AREA_BURSTS):
        village = rng.choice(villages)
        subject = rng.choices(list(SUBJECTS), weights=[s for s, _ in SUBJECTS.values()])[0]
        start = rng.randrange(len(working) - 10)
        span = working[start : start + rng.randint(2, 5)]
        days = sorted(rng.choice(span) for _ in range(rng.randint(6, 10)))
        days[0] = span[0]
        filed = [file(village, d, subject, prefix=f"b{k}-", repeats=0) for d in days]
        year.plants.append(Plant("area_burst", subject, village.code, days[0], days[-1], frozenset(a.case_id for a in filed)))
    # One slowly rising problem: 城中社区's environment appeals (a livestock farm's smell, say).
    village = org.unit("LB-XC-CG-CZ")
    subject = "environment"
    first = working.index(next(d for d in working if d >= date(YEAR, 4, 1)))
    ramp, plateau = 60, 40
    base = VILLAGE_RATE * size[village.code] * SUBJECTS[subject][0]
    filed = []
    for i, d in enumerate(working[first : first + ramp + plateau]):
        extra = base * SUBJECTS[subject][1].get(d.month, 1.0) * 4 * min(1.0, (i + 1) / ramp)
        filed += [file(village, d, subject, prefix="rise-") for _ in range(_poisson(rng, extra))]
    year.plants.append(Plant("slow_rise", subject, village.code, working[first], filed[-1].day, frozenset(a.case_id for a in filed)))
    return year


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


@dataclass(frozen=True)
class Found:
    day: date
    finding: detect.Finding


def replay(year: Year, th: Thresholds, calendar: WorkingCalendar) -> list[Found]:
    """Every working day of ``YEAR``: the detectors on what counts that day, with cooldowns —
    as the service runs them on each batch."""
    counted = sorted(((detect.workday_on_or_after(calendar, a.day), a) for a in year.appeals), key=lambda p: (p[0], p[1].case_id))
    by_township: dict[str, list[tuple[date, Appeal]]] = defaultdict(list)
    by_unit: dict[str, list[tuple[date, Appeal]]] = defaultdict(list)
    by_day: dict[date, list[Appeal]] = defaultdict(list)
    for day, appeal in counted:
        by_township[appeal.township or ""].append((day, appeal))
        if appeal.unit:
            by_unit[appeal.unit].append((day, appeal))
        by_day[day].append(appeal)
    keys = {name: [d for d, _ in rows] for name, rows in (*by_township.items(), *(("u:" + k, v) for k, v in by_unit.items()))}
    last: dict[str, date] = {}
    found: list[Found] = []
    for today in sorted(d for d in by_day if d.year == YEAR):
        places_from, units_from = detect.history_starts(calendar, today, th)
        groups: dict[str, list[Appeal]] = defaultdict(list)
        for appeal in by_day[today]:
            groups[appeal.township or ""].append(appeal)
        for township, touched in sorted(groups.items()):
            # As the service loads them: the township's recent appeals, and the units' longer history.
            subjects = {a.subject for a in touched}
            history = [a for a in _between(by_township[township], keys[township], places_from, today) if a.subject in subjects]
            seen = {a.case_id for a in history}
            for unit in sorted({a.unit for a in touched if a.unit}):
                history += [
                    a for a in _between(by_unit[unit], keys["u:" + unit], units_from, today)
                    if a.subject in subjects and a.case_id not in seen
                ]  # fmt: skip
            for finding in detect.detect(history, touched, today, calendar, th):
                if detect.cooled(finding.kind, last.get(finding.key), today, calendar, th):
                    last[finding.key] = today
                    found.append(Found(today, finding))
    return found


def _between(rows: list[tuple[date, Appeal]], days: list[date], start: date, end: date) -> list[Appeal]:
    return [a for _, a in rows[bisect_left(days, start) : bisect_right(days, end)]]


@dataclass
class Score:
    findings: int
    true: int
    plants: int
    detected: int
    delays: list[int]  # working days, per detected plant
    by_kind: dict[str, int]

    @property
    def precision(self) -> float:
        return self.true / self.findings if self.findings else 1.0

    @property
    def recall(self) -> float:
        return self.detected / self.plants if self.plants else 1.0


def score(year: Year, found: list[Found], calendar: WorkingCalendar) -> Score:
    true = 0
    first: dict[int, date] = {}
    by_kind: dict[str, int] = defaultdict(int)
    for item in found:
        by_kind[item.finding.kind] += 1
        hit = False
        for i, plant in enumerate(year.plants):
            late = detect.workdays_ending(calendar, detect.workday_on_or_after(calendar, plant.end), 1)[0]
            late = _add_workdays(calendar, late, LATE_DAYS)
            if plant.start <= item.day <= late and plant.case_ids & set(item.finding.case_ids):
                hit = True
                first[i] = min(first.get(i, item.day), item.day)
        true += hit
    delays = [_workdays_after(calendar, year.plants[i].start, day) for i, day in sorted(first.items())]
    return Score(len(found), true, len(year.plants), len(first), delays, dict(by_kind))


def _workdays_after(calendar: WorkingCalendar, start: date, end: date) -> int:
    """Working days after ``start`` up to ``end``: 0 when a warning comes on the first appeal's day."""
    return sum(1 for d in _days(start + timedelta(days=1), end) if calendar.is_workday(d))


def _add_workdays(calendar: WorkingCalendar, day: date, n: int) -> date:
    while n:
        day += timedelta(days=1)
        n -= calendar.is_workday(day)
    return day


# The thresholds tried; the defaults in services/insight/detect.py are the row chosen.
SWEEP: tuple[dict[str, float], ...] = tuple(
    {"max_p": p, "spot_min": s} for p in (1e-4, 1e-5, 1e-6) for s in (4, 5, 6)
)  # fmt: skip


def evaluate(th: Thresholds, planted: Year, null: Year, calendar: WorkingCalendar) -> dict[str, Any]:
    on_planted = score(planted, replay(planted, th, calendar), calendar)
    false_null = len(replay(null, th, calendar))
    return {
        "precision": on_planted.precision, "recall": on_planted.recall,
        "median_delay_workdays": statistics.median(on_planted.delays) if on_planted.delays else None,
        "false_per_month_null": false_null / 12, "findings": on_planted.findings, "true": on_planted.true,
        "detected": on_planted.detected, "plants": on_planted.plants, "delays": on_planted.delays,
        "by_kind": on_planted.by_kind, "false_null": false_null,
    }  # fmt: skip


def choose(results: list[tuple[dict[str, float], dict[str, Any]]]) -> tuple[dict[str, float], dict[str, Any]]:
    """The rule the defaults were chosen by: every plant found (the best recall there is), then
    the fewest false warnings on the empty year, then the fewest findings on the planted one
    (precision), then the earliest warning."""
    return min(
        results,
        key=lambda r: (-r[1]["recall"], r[1]["false_per_month_null"], -r[1]["precision"], r[1]["median_delay_workdays"] or 1e9),
    )


async def insight(ctx: Context) -> dict[str, Figure]:
    calendar = WorkingCalendar()
    started = time.monotonic()
    planted = synthetic_year(SEED, calendar=calendar)
    null = synthetic_year(NULL_SEED, plant=False, calendar=calendar)
    in_year = sum(1 for a in planted.appeals if a.day.year == YEAR)
    say(f"  synthetic year: {in_year:,} appeals in {YEAR} ({len(planted.appeals):,} with the warm-up), {len(planted.plants)} plants")
    defaults = Thresholds()
    sweep = SWEEP if ctx.timing.scale >= 1 else SWEEP[:1]
    results = [(change, evaluate(replace(defaults, **change), planted, null, calendar)) for change in sweep]  # type: ignore[arg-type]
    chosen, _ = choose(results)
    current = evaluate(defaults, planted, null, calendar)
    seconds = time.monotonic() - started
    th = ", ".join(f"{k}={v:g}" for k, v in vars(defaults).items())
    same = all(getattr(defaults, k) == v for k, v in chosen.items())
    note = "the defaults are the sweep's choice" if same else f"the sweep would choose {chosen}: the defaults differ"
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(current["by_kind"].items()))
    common = {"thresholds": vars(defaults), "sweep": [{"thresholds": t, **r} for t, r in results], "chosen": chosen}
    return {
        "insight_precision": Figure(
            "insight: precision of the findings on the planted year", round(100 * current["precision"], 1), "%",
            f"{current['true']} of {current['findings']} findings hold a planted appeal ({kinds}); {in_year:,} appeals in "
            f"{YEAR}, {len(planted.plants)} plants; thresholds {th}; {note}; {len(results)} settings tried in {seconds:.0f} s",
            data={**current, **common},
        ),
        "insight_recall": Figure(
            "insight: recall of the planted clusters, bursts and slow rise", round(100 * current["recall"], 1), "%",
            f"{current['detected']} of {current['plants']} plants warned of ({CLUSTERS} same-spot clusters, {AREA_BURSTS} "
            f"bursts spread over a village, 1 slow rise)",
        ),
        "insight_delay": Figure(
            "insight: median time from a plant's first appeal to its first warning", current["median_delay_workdays"],
            "working days", f"per plant: {current['delays']} (0: on the day of its first appeal)",
        ),
        "insight_false_null": Figure(
            "insight: false warnings on a year with nothing planted", round(current["false_per_month_null"], 2),
            "per month", f"{current['false_null']} findings in {YEAR} over the four demo counties (seed {NULL_SEED})",
        ),
    }
