"""Rates come out exactly as the practice publishes them (docs/rules.md), each county's figures
rounded as that county publishes them (half-up or truncated, so many decimals)."""

from fractions import Fraction

import pytest

from scoring.domain import DEFAULT_FORMAT, FigureFormat, Weights, composite, figure, format_for, percent, rate


HALF_UP_1 = FigureFormat("half_up", 1)  # 来宾市 and the counties that follow it
TRUNCATE_2 = FigureFormat("truncate", 2)  # 武宣县


@pytest.mark.parametrize(
    ("appeals", "resolved", "fmt", "shown"),
    [
        (286, 275, TRUNCATE_2, "96.15%"),  # 通挽镇 五事 window (武宣县)
        (127, 121, TRUNCATE_2, "95.27%"),  # 通挽镇, the next five months: 95.2756…% truncated
        (260, 253, HALF_UP_1, "97.3%"),  # 城关镇 (忻城县, as 来宾 publishes)
        (2864, 2813, HALF_UP_1, "98.2%"),  # 来宾 citywide
        (16513, 12642, HALF_UP_1, "76.6%"),  # 睢宁 速来办: 76.557…% — truncating would give 76.5
        (3651, 3625, HALF_UP_1, "99.3%"),  # 双河市 12345: 99.287…%
        (3625, 3582, HALF_UP_1, "98.8%"),  # 双河市's satisfaction, one tally that reads so
    ],
)
def test_the_published_figures_under_each_countys_format(appeals, resolved, fmt, shown):
    assert percent(rate(resolved, appeals), fmt) == shown


def test_half_up_truncate_and_places():
    assert percent(Fraction(1, 8)) == "12.50%"  # the default: half-up, 2 decimals
    assert percent(Fraction(1, 800)) == "0.13%"  # 0.125 → 0.13, not banker's 0.12
    assert percent(Fraction(1, 800), TRUNCATE_2) == "0.12%"
    assert percent(rate(121, 127)) == "95.28%"  # the same figure half-up
    assert percent(Fraction(1), HALF_UP_1) == "100.0%" and percent(Fraction(0), TRUNCATE_2) == "0.00%"
    assert percent(Fraction(2, 3), FigureFormat("half_up", 0)) == "67%"
    assert percent(Fraction(2, 3), FigureFormat("truncate", 0)) == "66%"
    assert figure(Fraction(-1, 8) * 100, TRUNCATE_2) == "-12.50" and figure(Fraction(-1, 10**6)) == "0.00"
    with pytest.raises(ValueError):
        FigureFormat("bankers", 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        FigureFormat("half_up", 5)


def test_a_county_without_a_format_follows_the_place_above_it():
    formats = {"LB": HALF_UP_1, "LB-WX": TRUNCATE_2}
    assert format_for("LB-WX-TW", ["LB-WX", "LB"], formats) == TRUNCATE_2
    assert format_for("LB-XC-CG", ["LB-XC", "LB"], formats) == HALF_UP_1
    assert format_for("SNX", [], formats) == DEFAULT_FORMAT == FigureFormat("half_up", 2)


def test_nothing_to_rate_and_impossible_counts():
    assert rate(0, 0) is None and percent(None) == "—"
    with pytest.raises(ValueError):
        rate(5, 4)


def test_composite_with_zhungeer_and_raised_township_weights():
    zhungeer = Weights(version=1, response=Fraction(30), resolution=Fraction(35), satisfaction=Fraction(35),
                       township_rating=Fraction(0))
    parts = dict(response=Fraction(9, 10), resolution=Fraction(8, 10), satisfaction=Fraction(1))
    assert composite(zhungeer, **parts) == Fraction(30 * 90 + 35 * 80 + 35 * 100, 100)
    raised = Weights(version=3, township_rating=Fraction(50))
    with_rating = composite(raised, **parts, township_rating=Fraction(1, 2))
    assert with_rating < composite(zhungeer, **parts)  # a poor township rating now weighs in
    assert composite(zhungeer, response=None, resolution=Fraction(1), satisfaction=None) == 100


def test_the_default_gives_the_townships_a_fifth_of_a_departments_score():
    w = Weights()
    assert (w.version, w.total(), w.township_rating) == (2, 100, 20)
    assert (w.response, w.resolution, w.satisfaction) == (24, 28, 28)  # Zhungeer's 30 : 35 : 35 on the other 80
    parts = dict(response=Fraction(1), resolution=Fraction(1), satisfaction=Fraction(1))
    assert composite(w, **parts, township_rating=Fraction(0)) == 80  # every township unfavourable: 20 points lost
    assert composite(w, **parts) == 100  # no township rated it (a township itself): scored on the other three
