"""The insight bench's own arithmetic: its synthetic year is the same for a seed, holds what it
says it plants, and a finding counts as true only when its evidence holds a planted appeal in
time."""

from __future__ import annotations

from datetime import date, timedelta

from bench.insight import YEAR, Found, Plant, Year, score, synthetic_year
from services.insight.detect import Appeal, Finding
from shared.workdays import WorkingCalendar

CAL = WorkingCalendar()


def test_a_seed_gives_the_same_year_and_nothing_planted_means_no_plants():
    first, again = synthetic_year(7, calendar=CAL), synthetic_year(7, calendar=CAL)
    assert [(a.case_id, a.day, a.street) for a in first.appeals] == [(a.case_id, a.day, a.street) for a in again.appeals]
    kinds = [p.kind for p in first.plants]
    assert (kinds.count("cluster"), kinds.count("area_burst"), kinds.count("slow_rise")) == (12, 3, 1)
    planted = {c for p in first.plants for c in p.case_ids}
    by_id = {a.case_id: a for a in first.appeals}
    for plant in first.plants:
        days = sorted(by_id[c].day for c in plant.case_ids)
        assert plant.start <= days[0] and days[-1] <= plant.end and all(by_id[c].subject == plant.subject for c in plant.case_ids)
        if plant.kind == "cluster":
            assert {by_id[c].street for c in plant.case_ids} == {plant.street} and 4 <= len(plant.case_ids) <= 8
        if plant.kind == "area_burst":
            assert {by_id[c].village for c in plant.case_ids} == {plant.village} and 6 <= len(plant.case_ids) <= 10
    assert synthetic_year(7, plant=False, calendar=CAL).plants == []
    # Fewer appeals on days off (weekends, holidays) than on working days, per day.
    in_year = [a for a in first.appeals if a.day.year == YEAR and a.case_id not in planted]
    days = [date(YEAR, 1, 1) + timedelta(days=i) for i in range(365)]
    working = {d for d in days if CAL.is_workday(d)}
    per_working_day = sum(1 for a in in_year if a.day in working) / len(working)
    per_day_off = sum(1 for a in in_year if a.day not in working) / (len(days) - len(working))
    assert per_day_off < 0.5 * per_working_day


def finding(case_ids: tuple[str, ...], kind: str = "same_spot") -> Finding:
    return Finding(kind=kind, level="grid", area="G", subject="infrastructure", window_start=date(YEAR, 3, 2),
                   window_end=date(YEAR, 3, 13), window_workdays=10, count=len(case_ids), baseline=0.0, score=1.0,
                   case_ids=case_ids, explanation="…")  # fmt: skip


def test_a_finding_is_true_only_with_a_planted_appeal_in_its_evidence_and_in_time():
    plant = Plant("cluster", "infrastructure", "V", date(YEAR, 3, 9), date(YEAR, 3, 11), frozenset({"p1", "p2", "p3"}), "街")
    other = Plant("cluster", "infrastructure", "V", date(YEAR, 6, 1), date(YEAR, 6, 3), frozenset({"q1"}), "路")
    year = Year([Appeal("p1", date(YEAR, 3, 9), "infrastructure")], [plant, other])
    found = [
        Found(date(YEAR, 3, 11), finding(("c9", "p1", "p2"))),  # true: two days after the first appeal
        Found(date(YEAR, 3, 12), finding(("c1", "c2", "c3"))),  # false: no planted appeal
        Found(date(YEAR, 5, 4), finding(("p3", "c4"))),  # false: long after the plant (the same cases, late)
    ]
    result = score(year, found, CAL)
    assert (result.findings, result.true, result.plants, result.detected) == (3, 1, 2, 1)
    assert result.delays == [2] and result.precision == 1 / 3 and result.recall == 0.5
