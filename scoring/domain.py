"""Scoring's rules, free of I/O: exact rates and the composite score.

Rates are fractions of integer counts, kept exact (``Fraction``) and rounded only for
display, by ``figure`` — the one place that rounds — as the county publishes its figures
(``FigureFormat``: half-up or truncated, to so many decimals; default half-up to two, so
275 of 286 reads 96.15%). Totals add up because nothing is added after rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Literal

Rounding = Literal["half_up", "truncate"]
ROUNDINGS: tuple[Rounding, ...] = ("half_up", "truncate")
MAX_PLACES = 4


@dataclass(frozen=True)
class FigureFormat:
    """How a county publishes its figures: ``half_up`` (四舍五入, as people round: 0.125 →
    0.13) or ``truncate`` (截位: 武宣县 published 通挽镇's 121 of 127 = 95.2756…% as 95.27%),
    to ``places`` decimals (来宾 publishes one: 98.2%)."""

    rounding: Rounding = "half_up"
    places: int = 2

    def __post_init__(self) -> None:
        if self.rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {', '.join(ROUNDINGS)}, got {self.rounding!r}")
        if not 0 <= self.places <= MAX_PLACES:
            raise ValueError(f"places must be 0…{MAX_PLACES}, got {self.places}")


#: The default where a county has set nothing (README, scoring): half-up to two decimals.
DEFAULT_FORMAT = FigureFormat()


def format_for(code: str, ancestors: list[str], formats: dict[str, FigureFormat]) -> FigureFormat:
    """The format a unit's figures are published in: its own county's setting, else the
    nearest place above it that has one (a county without one follows its city), else the
    default. ``ancestors``: nearest first."""
    for place in (code, *ancestors):
        if place in formats:
            return formats[place]
    return DEFAULT_FORMAT


def rate(part: int, whole: int) -> Fraction | None:
    """part / whole, exactly; None when there is nothing to rate."""
    if part < 0 or whole < 0 or part > whole:
        raise ValueError(f"a rate needs 0 ≤ part ≤ whole, got {part}/{whole}")
    return None if whole == 0 else Fraction(part, whole)


def figure(value: Fraction, fmt: FigureFormat = DEFAULT_FORMAT) -> str:
    """A number as published: rounded by ``fmt`` (the only rounding of a published figure;
    exact arithmetic, no float). Truncation is towards zero."""
    exact = Fraction(abs(value.numerator), value.denominator)
    step = Fraction(1, 10**fmt.places)
    whole, rest = divmod(exact, step)
    if fmt.rounding == "half_up" and rest * 2 >= step:
        whole += 1
    shown = Decimal(int(whole)).scaleb(-fmt.places)
    return f"{'-' if value < 0 and whole else ''}{shown:f}"


def percent(value: Fraction | None, fmt: FigureFormat = DEFAULT_FORMAT) -> str:
    """'96.15%': a rate as a percentage, in the county's format (``figure``)."""
    if value is None:
        return "—"
    return f"{figure(value * 100, fmt)}%"


@dataclass(frozen=True)
class Weights:
    """Composite weights, versioned; ``township_rating`` is the share given to the townships'
    ratings of a department (乡评县). The defaults are the shipped version 2 (migration
    scoring_0004): the townships' weight in rating county departments is raised (县乡履职双向
    考核评价) to 20 of 100, Zhungeer's response 30 / resolution 35 / satisfaction 35 kept in
    proportion on the other 80. Version 1 was Zhungeer's alone (township rating 0)."""

    version: int = 2
    response: Fraction = Fraction(24)
    resolution: Fraction = Fraction(28)
    satisfaction: Fraction = Fraction(28)
    township_rating: Fraction = Fraction(20)

    def total(self) -> Fraction:
        return self.response + self.resolution + self.satisfaction + self.township_rating


def composite(
    weights: Weights,
    *,
    response: Fraction | None,
    resolution: Fraction | None,
    satisfaction: Fraction | None,
    township_rating: Fraction | None = None,
) -> Fraction | None:
    """Weighted score out of 100 over the parts that have data (a part with no cases does
    not count as zero: its weight is left out of the total)."""
    parts = [
        (weights.response, response),
        (weights.resolution, resolution),
        (weights.satisfaction, satisfaction),
        (weights.township_rating, township_rating),
    ]
    counted = [(w, v) for w, v in parts if w and v is not None]
    if not counted:
        return None
    total_weight = sum(w for w, _ in counted)
    return sum(w * v for w, v in counted) * 100 / total_weight
