"""Rates come out exactly as the practice publishes them (DOMAIN.md), rounded half-up."""

from fractions import Fraction

import pytest

from scoring.domain import Weights, composite, percent, rate


@pytest.mark.parametrize(
    ("appeals", "resolved", "shown"),
    [
        (286, 275, "96.15%"),  # 通挽镇 五事 window
        # 通挽镇, a second tally: DOMAIN.md prints 95.27%, but 121/127 = 95.2756… is 95.28% half-up
        # (the rule the issue sets, and the one the other five figures follow).
        (127, 121, "95.28%"),
        (260, 253, "97.31%"),  # 城关镇
        (2864, 2813, "98.22%"),  # 来宾 citywide (published as 98.2%)
        (16513, 12642, "76.56%"),  # 睢宁 速来办
        (3651, 3625, "99.29%"),  # 双河市 12345
    ],
)
def test_the_published_figures(appeals, resolved, shown):
    assert percent(rate(resolved, appeals)) == shown


def test_half_up_and_one_decimal():
    assert percent(Fraction(1, 8)) == "12.50%"
    assert percent(Fraction(1, 800)) == "0.13%"  # 0.125 → 0.13, not banker's 0.12
    assert percent(rate(2813, 2864), places=1) == "98.2%"


def test_nothing_to_rate_and_impossible_counts():
    assert rate(0, 0) is None and percent(None) == "—"
    with pytest.raises(ValueError):
        rate(5, 4)


def test_composite_with_default_and_raised_township_weights():
    parts = dict(response=Fraction(9, 10), resolution=Fraction(8, 10), satisfaction=Fraction(1))
    assert composite(Weights(), **parts) == Fraction(30 * 90 + 35 * 80 + 35 * 100, 100)
    raised = Weights(version=2, township_rating=Fraction(50))
    with_rating = composite(raised, **parts, township_rating=Fraction(1, 2))
    assert with_rating < composite(Weights(), **parts)  # a poor township rating now weighs in
    assert composite(Weights(), response=None, resolution=Fraction(1), satisfaction=None) == 100
