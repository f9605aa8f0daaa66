"""Scoring's rules, free of I/O: exact rates and the composite score.

Rates are fractions of integer counts, kept exact (``Fraction``) and rounded half-up to
two decimals only for display, so 275 of 286 reads 96.15% everywhere and totals add up.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction


def rate(part: int, whole: int) -> Fraction | None:
    """part / whole, exactly; None when there is nothing to rate."""
    if part < 0 or whole < 0 or part > whole:
        raise ValueError(f"a rate needs 0 ≤ part ≤ whole, got {part}/{whole}")
    return None if whole == 0 else Fraction(part, whole)


def percent(value: Fraction | None, places: int = 2) -> str:
    """'96.15%': half-up, as people round."""
    if value is None:
        return "—"
    exact = Decimal(value.numerator) * 100 / Decimal(value.denominator)
    return f"{exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)}%"


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
