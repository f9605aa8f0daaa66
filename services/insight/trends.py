"""Trends per subject class and the monthly theme (每月一题) — pure functions over appeals.

- ``trends``: an area's appeals per subject class over working-day weeks (blocks of
  ``WEEK_DAYS`` working days ending on the day asked about) or calendar months (the last one
  up to that day), and the change of the latest period against the area's own history: the
  earlier periods' rate per working day times the latest period's working days (a month
  still running is compared with what the same number of working days used to bring).
- ``propose_theme``: the subject that most deserves the month's focus by the data. Over the
  last ``window_days`` working days each class is scored volume × rise × (1 + share of
  repeats): volume the appeals of the window; rise (volume + 1) / (expected + 1), expected from
  the previous ``history_days`` working days (the +1 keeps a class that went from 0 to 2 from
  outranking a large one); repeats the appeals that came back — duplicates merged into them
  (并单) or redone after an unsatisfied rating (重办). The best is proposed with its evidence
  (figures, top places, sample cases) and the runners-up, each with one Chinese sentence.

Days are counted as the detectors count them (``detect.workday_on_or_after``): an appeal on a
day off counts on the next working day.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from services.insight.detect import Appeal, month_start, workday_on_or_after, workdays_ending
from shared.orgdata import SUBJECT_CLASSES
from shared.workdays import WorkingCalendar

WEEK_DAYS = 5  # a working-day week
GRAINS = ("week", "month")


@dataclass(frozen=True)
class Period:
    start: date  # first working day counted in it
    end: date  # last working day counted in it
    workdays: int
    label: str


@dataclass(frozen=True)
class SubjectTrend:
    subject: str
    name: str
    counts: tuple[int, ...]  # per period, oldest first
    current: int  # the latest period's count
    expected: float  # what the area's own earlier periods predict for it
    change: float  # current − expected
    ratio: float | None  # current / expected; None without history
    sentence: str


@dataclass(frozen=True)
class ThemeCandidate:
    subject: str
    name: str
    volume: int
    expected: float
    rise: float
    repeats: int  # appeals of the window that came back (并单 or 重办)
    repeat_share: float
    share: float  # of all the area's appeals in the window
    score: float
    top_places: tuple[tuple[str, int], ...]  # (place code, appeals), most first
    sample_case_ids: tuple[str, ...]
    sentence: str


@dataclass(frozen=True)
class Theme:
    window_start: date
    window_end: date
    window_days: int
    history_days: int
    total: int  # all appeals of the area in the window
    proposal: ThemeCandidate | None
    runners_up: tuple[ThemeCandidate, ...]


def _subject(subject: str) -> str:
    return SUBJECT_CLASSES.get(subject, subject)


def last_workday(calendar: WorkingCalendar, day: date) -> date:
    """The working day on or before ``day``: what the periods end with."""
    while not calendar.is_workday(day):
        day -= timedelta(days=1)
    return day


def week_periods(calendar: WorkingCalendar, today: date, count: int) -> list[Period]:
    """``count`` blocks of ``WEEK_DAYS`` working days, the last ending on ``today``'s last working day."""
    days = workdays_ending(calendar, last_workday(calendar, today), WEEK_DAYS * count)
    blocks = [days[i : i + WEEK_DAYS] for i in range(0, len(days), WEEK_DAYS)]
    return [Period(b[0], b[-1], len(b), f"{b[0].month}/{b[0].day}–{b[-1].month}/{b[-1].day}") for b in blocks]


def month_periods(calendar: WorkingCalendar, today: date, count: int) -> list[Period]:
    """The ``count`` calendar months ending with ``today``'s, the last one up to ``today``."""
    periods = []
    for back in range(count - 1, -1, -1):
        first = month_start(today, back)
        last = today if back == 0 else month_start(today, back - 1) - timedelta(days=1)
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        workdays = [d for d in days if calendar.is_workday(d)]
        start, end = (workdays[0], workdays[-1]) if workdays else (first, last)
        periods.append(Period(start, end, len(workdays), f"{first.year}-{first.month:02d}"))
    return periods


def periods_of(grain: str, calendar: WorkingCalendar, today: date, count: int) -> list[Period]:
    if grain not in GRAINS:
        raise ValueError(f"grain must be one of {', '.join(GRAINS)}")
    if count < 2:
        raise ValueError("at least 2 periods: the latest and its history")
    return (week_periods if grain == "week" else month_periods)(calendar, today, count)


def index_of(periods: Sequence[Period], day: date) -> int | None:
    """The period a (counted) working day falls in, or None."""
    for i, period in enumerate(periods):
        if period.start <= day <= period.end:
            return i
    return None


def expected_for(counts: Sequence[int], periods: Sequence[Period]) -> float | None:
    """What the earlier periods' rate per working day predicts for the latest; None when the
    earlier periods have no working day at all."""
    history_days = sum(p.workdays for p in periods[:-1])
    if history_days == 0:
        return None
    return sum(counts[:-1]) / history_days * periods[-1].workdays


def trends(appeals: Sequence[Appeal], periods: Sequence[Period], calendar: WorkingCalendar) -> list[SubjectTrend]:
    """Per subject class seen in the periods: counts, and the latest against the history. Most
    appeals in the latest period first; then the largest change."""
    per: dict[str, list[int]] = {}
    for appeal in appeals:
        i = index_of(periods, workday_on_or_after(calendar, appeal.day))
        if i is not None:
            per.setdefault(appeal.subject, [0] * len(periods))[i] += 1
    out = []
    for subject, counts in per.items():
        expected = expected_for(counts, periods)
        current = counts[-1]
        base = 0.0 if expected is None else expected
        ratio = None if not expected else round(current / expected, 2)
        out.append(SubjectTrend(
            subject=subject, name=_subject(subject), counts=tuple(counts), current=current, expected=round(base, 2),
            change=round(current - base, 2), ratio=ratio, sentence=trend_sentence(_subject(subject), current, base, periods[-1]),
        ))  # fmt: skip
    return sorted(out, key=lambda t: (-t.current, -t.change, t.subject))


def trend_sentence(name: str, current: int, expected: float, period: Period) -> str:
    direction = "持平" if abs(current - expected) < 0.5 else ("上升" if current > expected else "下降")
    return (
        f"“{name}”类诉求{period.label}（{period.workdays}个工作日）{current}件，"
        f"按此前的水平同期约{expected:.1f}件，{direction}。"
    )


def _place(appeal: Appeal) -> str | None:
    """Where an appeal counts among the top places: its village (社区), else its township."""
    return appeal.village or appeal.township


def propose_theme(
    appeals: Sequence[Appeal], today: date, calendar: WorkingCalendar, *, window_days: int = 20, history_days: int = 60,
    top: int = 3, samples: int = 5, runners_up: int = 3, names: Mapping[str, str] | None = None,
) -> Theme:  # fmt: skip
    """The month's theme over the ``window_days`` working days ending ``today``'s last working
    day, against the ``history_days`` before them. ``appeals`` are the area's (filtered by day here)."""
    if window_days < 1 or history_days < 1:
        raise ValueError("window_days and history_days must be at least 1")
    names = names or {}
    days = workdays_ending(calendar, last_workday(calendar, today), history_days + window_days)
    first, window_first, end = days[0], days[history_days], days[-1]
    in_window: dict[str, list[Appeal]] = {}
    before: Counter[str] = Counter()
    for appeal in appeals:
        counted = workday_on_or_after(calendar, appeal.day)
        if counted < first or counted > end:
            continue
        if counted >= window_first:
            in_window.setdefault(appeal.subject, []).append(appeal)
        else:
            before[appeal.subject] += 1
    total = sum(len(v) for v in in_window.values())
    month = f"{end.month}月"
    span = f"{window_first.month}月{window_first.day}日至{end.month}月{end.day}日"
    candidates = []
    for subject, mine in in_window.items():
        volume = len(mine)
        expected = before[subject] / history_days * window_days
        rise = (volume + 1) / (expected + 1)
        repeats = sum(1 for a in mine if a.repeats > 0)
        repeat_share = repeats / volume
        places = Counter(p for a in mine if (p := _place(a)))
        top_places = tuple(sorted(places.items(), key=lambda kv: (-kv[1], kv[0]))[:top])
        recent = sorted(mine, key=lambda a: (a.day, a.case_id), reverse=True)[:samples]
        candidates.append(ThemeCandidate(
            subject=subject, name=_subject(subject), volume=volume, expected=round(expected, 2), rise=round(rise, 2),
            repeats=repeats, repeat_share=round(repeat_share, 3), share=round(volume / total, 3),
            score=round(volume * rise * (1 + repeat_share), 2), top_places=top_places,
            sample_case_ids=tuple(a.case_id for a in recent), sentence="",
        ))  # fmt: skip
    candidates.sort(key=lambda c: (-c.score, -c.volume, c.subject))
    worded = [
        _worded(c, proposed=(i == 0), month=month, span=span, window_days=window_days, history_days=history_days, names=names)
        for i, c in enumerate(candidates)
    ]
    return Theme(
        window_start=window_first, window_end=end, window_days=window_days, history_days=history_days, total=total,
        proposal=worded[0] if worded else None, runners_up=tuple(worded[1 : 1 + runners_up]),
    )  # fmt: skip


def _worded(
    c: ThemeCandidate, *, proposed: bool, month: str, span: str, window_days: int, history_days: int, names: Mapping[str, str]
) -> ThemeCandidate:
    where = "、".join(f"{names.get(code, code)}{n}件" for code, n in c.top_places) or "无具体地点"
    head = f"建议将“{c.name}”列为{month}“每月一题”：" if proposed else f"“{c.name}”："
    sentence = (
        f"{head}{span}（{window_days}个工作日）收到{c.volume}件，占全部诉求的{c.share:.0%}，"
        f"按此前{history_days}个工作日的水平预计约{c.expected:.1f}件（{c.rise:.1f}倍）；"
        f"其中{c.repeats}件反复反映（并单或重办）；主要集中在{where}。得分{c.score:g}（件数×上升倍数×(1+反复占比)）。"
    )
    return ThemeCandidate(**{**c.__dict__, "sentence": sentence})
