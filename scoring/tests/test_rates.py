"""The counting rules over fact rows, without a database: the large published figures,
latest-round-only satisfaction, ranks, grid-worker scores, periods."""

from datetime import UTC, date, datetime, timedelta

from scoring.domain import FigureFormat, Weights, percent
from scoring.grid import GridPoints, grid_score, rank_workers
from scoring.periods import custom, period_of
from scoring.rates import CaseRow, Counts, OrderRow, RatingRow, area_counts, rank, rates, unit_counts, unit_score

QUARTER = period_of("quarter", date(2026, 8, 1))
T0 = datetime(2026, 7, 1, 1, 0, tzinfo=UTC)
ONE_DECIMAL = FigureFormat("half_up", 1)


def cases(appeals: int, solved: int) -> list[CaseRow]:
    return [
        CaseRow(f"c{i}", county="X", received_at=T0 + timedelta(minutes=i), accepted=True, resolved=True, solved=i < solved)
        for i in range(appeals)
    ]


def test_suining_16513_and_laibin_2864_over_fact_rows():
    suining = area_counts(QUARTER, cases(16513, 12642))
    assert (suining.accepted, suining.solved) == (16513, 12642)
    assert percent(rates(suining).resolution) == "76.56%"
    assert percent(rates(suining).resolution, ONE_DECIMAL) == "76.6%"  # as published
    laibin = area_counts(QUARTER, cases(2864, 2813))
    assert percent(rates(laibin).resolution) == "98.22%" and percent(rates(laibin).resolution, ONE_DECIMAL) == "98.2%"


def test_shuanghe_satisfaction_98_8():
    # 双河市 12345 published 98.8% without counts: 3,582 satisfied of 3,625 rated is one tally that reads so.
    ratings = [RatingRow(f"c{i}", 0, "满意" if i < 3500 else "基本满意" if i < 3582 else "不满意", T0) for i in range(3625)]
    counts = area_counts(QUARTER, [], ratings=ratings)
    assert (counts.rated, counts.satisfied) == (3625, 3582)
    assert percent(rates(counts).satisfaction, ONE_DECIMAL) == "98.8%"


def test_rows_outside_the_period_do_not_count():
    rows = cases(10, 10) + [CaseRow("late", received_at=QUARTER.end_utc, accepted=True)]
    assert area_counts(QUARTER, rows).accepted == 10


def test_unit_counts_response_and_on_time_and_reopen():
    at = T0
    orders = [
        OrderRow("o1", "a", "U", at, signed=True, resolved=True, solved=True),
        OrderRow("o2", "b", "U", at, signed=True, sign_late=True, resolved=True, resolve_late=True, reopened=True),
        OrderRow("o3", "b", "U", at + timedelta(days=3), redo_round=1, signed=True, resolved=True, solved=True),
        OrderRow("o4", "c", "U", at, returned=True),
        OrderRow("o5", "d", "V", at, signed=True),
    ]
    c = unit_counts("U", QUARTER, orders)
    assert (c.orders, c.received, c.signed_on_time, c.returned, c.overdue, c.reopened) == (4, 3, 2, 1, 1, 1)
    r = rates(c)
    assert percent(r.response) == "50.00%" and percent(r.on_time_resolution) == "66.67%"
    assert (c.accepted, c.solved) == (2, 2) and percent(r.resolution) == "100.00%"


def test_only_the_latest_round_is_passed_in_and_counted_for_its_units():
    orders = [OrderRow("o1", "a", "U", T0), OrderRow("o2", "a", "U", T0 + timedelta(days=5), redo_round=1)]
    latest = [RatingRow("a", 1, "满意", T0 + timedelta(days=9))]  # round 0's 不满意 is not the latest
    c = unit_counts("U", QUARTER, orders, latest)
    assert (c.rated, c.satisfied) == (1, 1)
    assert unit_counts("V", QUARTER, orders, latest).rated == 0


def test_rank_shares_places_and_puts_no_data_last():
    w = Weights()
    full = Counts(orders=1, signed_on_time=1, accepted=1, solved=1, rated=1, satisfied=1)
    half = Counts(orders=2, signed_on_time=1, accepted=1, solved=1, rated=1, satisfied=1)
    ranked = rank([unit_score("B", full, (0, 0), w), unit_score("N", Counts(), (0, 0), w),
                   unit_score("A", full, (0, 0), w), unit_score("C", half, (0, 0), w)])
    assert [(s.unit, s.rank) for s in ranked] == [("A", 1), ("B", 1), ("C", 3), ("N", None)]


def test_grid_scores_capped_and_ranked():
    config = GridPoints()
    total, parts = grid_score({"login": 30, "report": 3}, config)
    assert parts == {"login": 22, "report": 15} and total == 37  # 30 logins capped at 22 points
    rows = [
        ("w1", "T1", "X", "login", 30), ("w1", "T1", "X", "report", 3),
        ("w2", "T1", "X", "patrol", 20), ("w2", "T1", "X", "solved_on_spot", 1),
        ("w3", "T2", "X", "event_handled", 4),
    ]
    by_id = {w.worker_id: w for w in rank_workers(rows, config)}
    assert by_id["w2"].total == 68 and (by_id["w2"].rank_in_township, by_id["w2"].rank_in_county) == (1, 1)
    assert (by_id["w1"].rank_in_township, by_id["w1"].rank_in_county) == (2, 2)
    assert (by_id["w3"].rank_in_township, by_id["w3"].rank_in_county) == (1, 3)


def test_periods():
    week = period_of("week", date(2026, 11, 18))
    assert (week.start, week.end, week.label) == (date(2026, 11, 16), date(2026, 11, 23), "2026-W47")
    assert period_of("quarter", date(2026, 11, 18)).label == "2026-Q4"
    assert period_of("month", date(2026, 12, 5)).previous().label == "2026-11"
    assert custom(date(2026, 9, 1), date(2026, 9, 30)).previous().start == date(2026, 8, 2)
    # Beijing midnight, not UTC midnight: 23:30 UTC on the 15th is already the 16th in Beijing.
    assert week.contains(datetime(2026, 11, 15, 16, 30, tzinfo=UTC))
    assert not week.contains(datetime(2026, 11, 15, 15, 59, tzinfo=UTC))


def test_a_case_redone_twice_is_one_reopened_case_of_one_resolved():
    """Issue #19: three rounds of one case for one unit counted 2 reopened orders over 1
    resolved case (ValueError → 500 on stats, scores and bulletins)."""
    orders = [
        OrderRow("r0", "a", "U", T0, signed=True, resolved=True, solved=True, reopened=True),
        OrderRow("r1", "a", "U", T0 + timedelta(days=3), redo_round=1, signed=True, resolved=True, solved=True, reopened=True),
        OrderRow("r2", "a", "U", T0 + timedelta(days=6), redo_round=2, signed=True, resolved=True, solved=True),
        OrderRow("b0", "b", "U", T0, signed=True, resolved=True, solved=False),
    ]
    c = unit_counts("U", QUARTER, orders)
    assert (c.resolved, c.reopened) == (2, 1)
    assert percent(rates(c).reopen_rate) == "50.00%"
    assert unit_score("U", c, (0, 0), Weights()).score is not None


def test_first_responsibility_counts_the_cases_first_asked_in_the_period_and_how_they_ended():
    """首问负责制's own figure: received in the period; closed; closed with no red card on a
    resolve clock; the latest rating satisfied (满意 or 基本满意)."""
    from scoring.rates import FirstAskedCounts, FirstAskedRow, first_asked_counts, first_asked_view

    at = datetime(2026, 8, 3, 2, tzinfo=UTC)
    rows = [
        FirstAskedRow("a", at, closed=True, rating="满意"),
        FirstAskedRow("b", at, closed=True, resolve_red=True, rating="基本满意"),
        FirstAskedRow("c", at, closed=True, rating="不满意"),
        FirstAskedRow("d", at),
        FirstAskedRow("e", at - timedelta(days=60), closed=True, rating="满意"),  # before the quarter
    ]
    counts = first_asked_counts(QUARTER, rows)
    assert counts == FirstAskedCounts(first_asked=4, closed=3, closed_on_time=2, rated=3, satisfied=2)
    assert first_asked_view(counts)["rates"] == {"closure": "75.00%", "on_time": "66.67%", "satisfaction": "66.67%"}
