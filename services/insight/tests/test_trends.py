"""Trends per subject and the monthly theme (每月一题) as pure functions. Dates are pinned
(November 2026; chinese-calendar has 2026's holidays), never relative to today."""

from __future__ import annotations

from datetime import date

import pytest

from services.insight import trends
from services.insight.detect import Appeal, workdays_ending
from shared.workdays import WorkingCalendar

CAL = WorkingCalendar()
FRIDAY = date(2026, 11, 20)
PLACE = dict(county="LB-XC", township="LB-XC-CG", village="LB-XC-CG-CZ")


def appeals_on(days: list[date], subject: str, prefix: str, **fields: object) -> list[Appeal]:
    return [Appeal(f"{prefix}-{i}", day, subject, **{**PLACE, **fields}) for i, day in enumerate(days)]  # type: ignore[arg-type]


def test_weeks_are_blocks_of_five_working_days_ending_on_the_last_working_day():
    periods = trends.week_periods(CAL, date(2026, 11, 22), 3)  # a Sunday: the weeks end on Friday the 20th
    assert [(p.start, p.end, p.workdays) for p in periods] == [
        (date(2026, 11, 2), date(2026, 11, 6), 5), (date(2026, 11, 9), date(2026, 11, 13), 5),
        (date(2026, 11, 16), date(2026, 11, 20), 5),
    ]  # fmt: skip
    assert periods[-1].label == "11/16–11/20"


def test_months_end_with_the_month_running_and_count_its_working_days_so_far():
    periods = trends.month_periods(CAL, FRIDAY, 3)
    assert [p.label for p in periods] == ["2026-09", "2026-10", "2026-11"]
    assert (periods[-1].start, periods[-1].end, periods[-1].workdays) == (date(2026, 11, 2), FRIDAY, 15)
    october = [d for d in (date(2026, 10, n) for n in range(1, 32)) if CAL.is_workday(d)]
    assert (periods[1].start, periods[1].end, periods[1].workdays) == (october[0], october[-1], len(october))
    assert len(october) < 22  # National Day's week off is not counted as a quiet week


def test_a_subject_rising_this_week_against_its_own_weeks_before():
    periods = trends.week_periods(CAL, FRIDAY, 4)
    history = [d for p in periods[:-1] for d in (p.start, p.end)]  # two a week
    this_week = workdays_ending(CAL, FRIDAY, 5)
    found = trends.trends(
        appeals_on(history, "infrastructure", "h") + appeals_on(this_week + this_week[:1], "infrastructure", "w")
        + appeals_on([periods[0].start, periods[1].start, periods[2].start], "disputes", "d")
        + appeals_on([date(2026, 11, 15)], "disputes", "sunday"),  # a Sunday: counts on Monday the 16th
        periods, CAL,
    )  # fmt: skip
    by = {t.subject: t for t in found}
    lamp = by["infrastructure"]
    assert lamp.counts == (2, 2, 2, 6) and (lamp.current, lamp.expected, lamp.change, lamp.ratio) == (6, 2.0, 4.0, 3.0)
    assert "基础设施" in lamp.sentence and "6件" in lamp.sentence and "上升" in lamp.sentence
    quiet = by["disputes"]
    assert quiet.counts == (1, 1, 1, 1) and quiet.change == 0 and "持平" in quiet.sentence
    assert [t.subject for t in found] == ["infrastructure", "disputes"]  # most this week first


def test_a_month_still_running_is_compared_with_what_as_many_working_days_used_to_bring():
    periods = trends.month_periods(CAL, FRIDAY, 3)
    history = [d for p in periods[:-1] for d in workdays_ending(CAL, p.end, p.workdays)]  # one every working day
    found = trends.trends(appeals_on(history + workdays_ending(CAL, FRIDAY, 15), "environment", "e"), periods, CAL)
    [env] = found
    assert env.current == 15 and env.expected == 15.0 and env.change == 0.0  # not "down" for a month half over


def test_no_history_gives_no_ratio():
    periods = trends.week_periods(CAL, FRIDAY, 2)
    [t] = trends.trends(appeals_on([FRIDAY], "housing", "x"), periods, CAL)
    assert (t.current, t.expected, t.ratio) == (1, 0.0, None)


def test_periods_are_refused_when_they_cannot_compare():
    with pytest.raises(ValueError):
        trends.periods_of("year", CAL, FRIDAY, 4)
    with pytest.raises(ValueError):
        trends.periods_of("week", CAL, FRIDAY, 1)


def test_the_theme_is_the_rising_repeated_subject_not_merely_the_largest():
    window = workdays_ending(CAL, FRIDAY, 20)
    history = workdays_ending(CAL, window[0], 61)[:60]
    # 矛盾纠纷: the usual ten a month, as before. 基础设施: eight this month from one a month before,
    # three of them came back (并单/重办), mostly in 城中社区.
    disputes = appeals_on(window[::2], "disputes", "d") + appeals_on(history[::2], "disputes", "hd")
    lamps = (
        appeals_on(window[-8:-3], "infrastructure", "l", repeats=0)
        + appeals_on(window[-3:], "infrastructure", "r", repeats=1)
        + appeals_on(history[:3], "infrastructure", "hl")
    )
    lamps[0] = Appeal("l-0", lamps[0].day, "infrastructure", county="LB-XC", township="LB-XC-CG", village="LB-XC-CG-CD")  # one in 城东社区, the neighbour
    small = appeals_on(window[-1:], "housing", "s")  # from nothing to one: not a theme
    theme = trends.propose_theme(disputes + lamps + small, FRIDAY, CAL, names={"LB-XC-CG-CZ": "城中社区", "LB-XC-CG-CD": "城东社区"})
    assert (theme.window_start, theme.window_end, theme.total) == (window[0], FRIDAY, 10 + 8 + 1)
    p = theme.proposal
    assert p is not None and p.subject == "infrastructure"
    assert (p.volume, p.expected, p.repeats) == (8, 1.0, 3)
    assert p.rise == 4.5 and p.repeat_share == 0.375 and p.score == round(8 * 4.5 * 1.375, 2)
    assert p.top_places == (("LB-XC-CG-CZ", 7), ("LB-XC-CG-CD", 1))
    assert p.sample_case_ids[:3] == ("r-2", "r-1", "r-0")  # the most recent first
    assert "每月一题" in p.sentence and "11月" in p.sentence and "城中社区7件" in p.sentence and "3件反复反映" in p.sentence
    assert [c.subject for c in theme.runners_up] == ["disputes", "housing"]
    assert theme.runners_up[0].score == 10.0 and "每月一题" not in theme.runners_up[0].sentence


def test_a_quiet_area_proposes_nothing():
    theme = trends.propose_theme([], FRIDAY, CAL)
    assert theme.proposal is None and theme.runners_up == () and theme.total == 0
