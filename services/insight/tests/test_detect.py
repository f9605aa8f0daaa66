"""The detectors as pure functions: no database, no broker. Dates are pinned (2026 has its
holiday table in chinese-calendar), never relative to today."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, timedelta

import pytest

from services.insight import detect
from services.insight.detect import Appeal, Thresholds
from shared.workdays import WorkingCalendar

CAL = WorkingCalendar()
# Pinned here, not the defaults (the bench may move those): the tests are about the rules.
TH = Thresholds(window_days=5, history_days=40, min_rate=0.1, max_p=1e-4, min_count=4, spot_window_days=10, spot_min=3,
                persist_months=3, persist_ratio=1.5, persist_min_monthly=10, persist_baseline_months=6, cooldown_days=10)
VILLAGE = dict(county="LB-XC", township="LB-XC-CG", village="LB-XC-CG-CZ")  # 城中社区


def workdays_before(last: date, count: int) -> list[date]:
    return detect.workdays_ending(CAL, last, count)


def steady(last: date, per_week: int, *, subject: str = "infrastructure", days: int = 40, **place: str) -> list[Appeal]:
    """A quiet history: ``per_week`` appeals every 5 working days before the window."""
    history = workdays_before(last, days + TH.window_days)[:days]
    return [
        Appeal(f"h{i}", day, subject, **{**VILLAGE, **place})
        for i, day in enumerate(history) if i % 5 < per_week
    ]  # fmt: skip


def burst(days: list[date], n_per_day: int, prefix: str = "b", **fields: object) -> list[Appeal]:
    base = {"subject": "infrastructure", **VILLAGE, **fields}
    return [Appeal(f"{prefix}{d.isoformat()}-{i}", d, **base) for d in days for i in range(n_per_day)]  # type: ignore[arg-type]


def test_poisson_tail_matches_the_distribution():
    mu = 2.0
    exact = 1 - sum(math.exp(-mu) * mu**i / math.factorial(i) for i in range(5))
    assert detect.poisson_tail(5, mu) == pytest.approx(exact, rel=1e-9)
    assert detect.poisson_tail(0, mu) == 1.0
    # Far above the mean it keeps its digits (1 − P(X < k) would give 0).
    far = detect.poisson_tail(40, 0.5)
    assert 0 < far < 1e-40
    assert far == pytest.approx(math.exp(-0.5) * 0.5**40 / math.factorial(40), rel=1e-2)


def test_an_appeal_on_a_holiday_counts_on_the_next_working_day():
    # 2026-10-01 … 10-07 National Day; 10-08 is a working day (chinese-calendar's 2026 table).
    assert detect.workday_on_or_after(CAL, date(2026, 10, 3)) == date(2026, 10, 8)
    assert detect.workday_on_or_after(CAL, date(2026, 10, 9)) == date(2026, 10, 9)


def test_a_burst_above_the_villages_own_history_is_a_rising_finding_with_its_evidence():
    today = date(2026, 11, 20)
    window = workdays_before(today, TH.window_days)
    appeals = steady(today, per_week=1) + burst(window[-4:], 2)  # 8 history, 8 in the window
    found = detect.rising(appeals, "village", "LB-XC-CG-CZ", "infrastructure", today, CAL, TH, {"LB-XC-CG-CZ": "城中社区"})
    assert found is not None
    assert (found.count, found.window_start, found.window_end) == (8, window[0], today)
    assert found.baseline == pytest.approx(8 / 40 * 5)  # 8 appeals in 40 working days, over 5
    assert found.score == pytest.approx(-math.log10(detect.poisson_tail(8, 1.0)), abs=0.01)
    assert len(found.case_ids) == 8 and all(c.startswith("b") for c in found.case_ids)
    assert found.explanation.startswith("城中社区（村（社区））") and "基础设施" in found.explanation and "8件" in found.explanation


def test_the_same_count_is_no_finding_where_it_is_usual():
    today = date(2026, 11, 20)
    window = workdays_before(today, TH.window_days)
    busy = steady(today, per_week=5)  # one a working day: 5 expected in the window
    assert detect.rising(busy + burst(window[-3:], 2), "village", "LB-XC-CG-CZ", "infrastructure", today, CAL, TH) is None
    # Another subject or another village does not count.
    other = burst(window[-3:], 2, subject="environment") + burst(window[-3:], 2, prefix="o", village="LB-XC-CG-CX")
    assert detect.rising(other, "village", "LB-XC-CG-CZ", "infrastructure", today, CAL, TH) is None


def test_a_quiet_area_is_not_alarmed_by_a_few_appeals():
    """The baseline never drops below min_rate, and min_count must be reached."""
    today = date(2026, 11, 20)
    window = workdays_before(today, TH.window_days)
    assert detect.rising(burst(window[-3:], 1), "village", "LB-XC-CG-CZ", "infrastructure", today, CAL, TH) is None
    assert detect.rising(burst(window[-3:], 2), "village", "LB-XC-CG-CZ", "infrastructure", today, CAL, TH) is not None


def test_golden_week_does_not_dilute_the_window():
    """Appeals filed during the National Day holiday count on 10-08, inside a 5-working-day window."""
    today = date(2026, 10, 9)
    holiday = [date(2026, 10, d) for d in (2, 4, 6)]
    appeals = burst(holiday, 2)
    found = detect.rising(appeals, "township", "LB-XC-CG", "infrastructure", today, CAL, TH)
    assert found is not None and found.count == 6


def test_the_same_spot_reported_again_and_again_counts_merges_and_redo_rounds():
    today = date(2026, 11, 20)
    spot = ("village", "LB-XC-CG-CZ", "西宁街")
    two = [Appeal("s1", date(2026, 11, 18), "infrastructure", street="西宁街", **VILLAGE),
           Appeal("s2", date(2026, 11, 19), "infrastructure", street="西宁街", **VILLAGE)]  # fmt: skip
    assert detect.same_spot(two, spot, "infrastructure", today, CAL, TH) is None
    reopened = [two[0], Appeal("s2", date(2026, 11, 19), "infrastructure", street="西宁街", repeats=1, unit="LB-XC-ZJJ", **VILLAGE)]
    found = detect.same_spot(reopened, spot, "infrastructure", today, CAL, TH, {"LB-XC-CG-CZ": "城中社区"})
    assert found is not None
    assert (found.count, found.case_ids, found.unit, found.street) == (3, ("s1", "s2"), "LB-XC-ZJJ", "西宁街")
    assert "城中社区西宁街" in found.explanation and "并单、重办1次" in found.explanation
    # Too long ago: outside the 10 working days.
    old = [Appeal(f"o{i}", date(2026, 10, 20), "infrastructure", street="西宁街", **VILLAGE) for i in range(5)]
    assert detect.same_spot(old, spot, "infrastructure", today, CAL, TH) is None
    # No street: no spot.
    assert detect.spot_of(Appeal("x", today, "infrastructure", **VILLAGE)) is None


def unit_appeals(per_month: dict[tuple[int, int], int]) -> list[Appeal]:
    return [
        Appeal(f"u{y}-{m}-{i}", date(y, m, 10), "environment", unit="LB-XC-STHJJ", county="LB-XC")
        for (y, m), n in per_month.items() for i in range(n)
    ]  # fmt: skip


def test_a_unit_high_month_after_month_against_its_own_past_is_persistent():
    th = replace(TH, persist_min_monthly=4)
    earlier = {(2026, m): 2 for m in range(2, 8)}  # February–July: 2 a month
    appeals = unit_appeals({**earlier, (2026, 8): 4, (2026, 9): 4, (2026, 10): 5})
    found = detect.persistent_unit(appeals, "LB-XC-STHJJ", "environment", date(2026, 11, 5), th, {"LB-XC-STHJJ": "生态环境局"})
    assert found is not None
    assert (found.window_start, found.window_end, found.count, found.baseline) == (date(2026, 8, 1), date(2026, 10, 31), 13, 6.0)
    assert len(found.case_ids) == 13 and all(c.startswith(("u2026-8-", "u2026-9-", "u2026-10-")) for c in found.case_ids)
    assert "生态环境局连续3个月" in found.explanation and "8月4件" in found.explanation and "平均每月2.0件" in found.explanation
    # One month below the line breaks the run.
    assert detect.persistent_unit(unit_appeals({**earlier, (2026, 8): 4, (2026, 9): 3, (2026, 10): 5}),
                                  "LB-XC-STHJJ", "environment", date(2026, 11, 5), th) is None  # fmt: skip
    # A unit that always has this many is not "high": 5 a month is its usual.
    usual = unit_appeals({**{(2026, m): 5 for m in range(2, 8)}, (2026, 8): 5, (2026, 9): 6, (2026, 10): 5})
    assert detect.persistent_unit(usual, "LB-XC-STHJJ", "environment", date(2026, 11, 5), th) is None


def test_one_cluster_gives_its_most_specific_finding():
    """A burst at one street lifts the grid, village and township alike: the spot finding names
    the place to act on, the coarser rises holding the same cases are dropped."""
    today = date(2026, 11, 20)
    window = workdays_before(today, TH.window_days)
    appeals = burst(window[-3:], 2, street="西宁街", grid="LB-XC-CG-CZ-G01")
    found = detect.detect(appeals, appeals, today, CAL, TH)
    assert [f.kind for f in found] == ["same_spot"]
    # A rise spread over several streets stays a rise of the village.
    spread = [Appeal(f"r{i}", d, "infrastructure", street=f"街{i}", **VILLAGE) for i, d in enumerate(window * 2)]
    kinds = {(f.kind, f.level) for f in detect.detect(spread, spread, today, CAL, TH)}
    assert ("rising", "village") in kinds and all(kind == "rising" for kind, _ in kinds)


def test_cooldown_one_problem_one_warning():
    today = date(2026, 11, 20)
    assert detect.cooled("rising", None, today, CAL, TH)
    assert not detect.cooled("rising", today, today, CAL, TH)
    assert not detect.cooled("rising", today - timedelta(days=7), today, CAL, TH)  # 5 working days ago
    assert detect.cooled("rising", today - timedelta(days=14), today, CAL, TH)  # 10 working days ago
    assert not detect.cooled("persistent_unit", date(2026, 11, 3), today, CAL, TH)
    assert detect.cooled("persistent_unit", date(2026, 10, 30), today, CAL, TH)


def test_thresholds_refuse_nonsense():
    with pytest.raises(ValueError, match="max_p"):
        Thresholds(max_p=0)
    with pytest.raises(ValueError, match="spot_min"):
        Thresholds(spot_min=0)
