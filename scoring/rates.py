"""Counts and rates per unit and per area, from fact rows — pure functions, no I/O.

What counts in a period (half-open local dates, ``scoring.periods``):
- an area's (township's, county's) appeals: the cases *received* in the period there;
- a unit's work: its dispatch orders (交办单) *dispatched* in the period, and what became of
  them: signed on time, resolved on time, returned, overdue; and the distinct cases of those
  orders: signed (accepted), answered (resolved), solved, sent back for a redo (reopened);
- cards: yellow / red cards *issued* in the period;
- satisfaction: each case's latest rated round only (for a redo only the second rating
  counts), in the period when that latest rating was given; a unit is rated for the rounds
  it handled.

Every rate is a fraction of the same things (``RATE_PARTS``): its part is a subset of its
whole by construction, whatever the rows say, so no history can make a rate exceed 100%:
- orders: 响应率 = orders signed on time / orders; 退单率 = orders returned / orders;
  按时办结率 = orders answered on time / orders answered;
- cases: 解决率 = accepted cases solved / accepted cases; 重办率 = answered cases sent back
  for a redo at least once / answered cases (a case redone twice is one case redone — what a
  county's 考核 counts as 重办件 of its 办结件);
- rated rounds (one per case, the latest): 满意率 = 满意 + 基本满意 / rated.
Every rate is an exact fraction of integer counts (``scoring.domain.rate``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from fractions import Fraction

from scoring.domain import DEFAULT_FORMAT, FigureFormat, Weights, composite, percent, rate
from scoring.periods import Period

SATISFIED = ("满意", "基本满意")


@dataclass(frozen=True)
class CaseRow:
    case_id: str
    county: str | None = None
    township: str | None = None
    subject_class: str | None = None
    received_at: datetime | None = None
    accepted: bool = False
    rejected: bool = False
    resolved: bool = False
    solved: bool = False
    reopened: bool = False


@dataclass(frozen=True)
class OrderRow:
    order_no: str
    case_id: str
    unit: str
    dispatched_at: datetime
    redo_round: int = 0
    role: str = "sole"
    signed: bool = False
    sign_late: bool = False
    returned: bool = False
    resolved: bool = False
    solved: bool = False
    resolve_late: bool = False
    reopened: bool = False  # a later round of the same case went back to this unit
    county: str | None = None  # of the case
    township: str | None = None
    handler: str | None = None  # the person who handled it (``handler_of``); None: no person acted


def handler_of(signed_by: str | None, returned_by: str | None, resolved_by: str | None) -> str | None:
    """承办人: the person an order's work is counted for (个人绩效) — whoever answered it, else
    whoever returned it (退单), else whoever signed it (签收); None when only services acted."""
    return resolved_by or returned_by or signed_by


@dataclass(frozen=True)
class RatingRow:
    """A case's latest rated round (the only one that counts)."""

    case_id: str
    round: int
    rating: str
    rated_at: datetime
    units: tuple[str, ...] = ()
    county: str | None = None
    township: str | None = None


@dataclass(frozen=True)
class CardRow:
    case_id: str
    unit: str | None
    level: str  # yellow | red
    occurred_at: datetime
    county: str | None = None
    township: str | None = None


@dataclass
class Counts:
    """Integer counts; every rate is a ratio of two of them."""

    received: int = 0
    accepted: int = 0
    resolved: int = 0
    solved: int = 0
    orders: int = 0
    signed: int = 0
    signed_on_time: int = 0
    resolved_orders: int = 0
    resolved_on_time: int = 0
    returned: int = 0
    reopened: int = 0
    overdue: int = 0
    yellow: int = 0
    red: int = 0
    rated: int = 0
    satisfied: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(**{k: v + getattr(other, k) for k, v in asdict(self).items()})


@dataclass(frozen=True)
class Rates:
    response: Fraction | None  # 响应率: orders signed on time / orders
    on_time_resolution: Fraction | None  # 按时办结率: orders answered on time / orders answered
    resolution: Fraction | None  # 解决率: accepted cases solved / accepted cases
    satisfaction: Fraction | None  # 满意率: 满意 + 基本满意 / rated rounds
    return_rate: Fraction | None  # 退单率: orders returned / orders
    reopen_rate: Fraction | None  # 重办率: answered cases redone at least once / answered cases

    def display(self, fmt: FigureFormat = DEFAULT_FORMAT) -> dict[str, str]:
        return {k: percent(v, fmt) for k, v in self.__dict__.items()}

    def exact(self) -> dict[str, str | None]:
        return {k: (None if v is None else f"{v.numerator}/{v.denominator}") for k, v in self.__dict__.items()}


# Each rate as (part, whole) of ``Counts``: the one place that says what a rate is a fraction of
# (the views publish it as ``rate_parts``; the bulletin's comparison reads it too).
RATE_PARTS: dict[str, tuple[str, str]] = {
    "response": ("signed_on_time", "orders"),
    "on_time_resolution": ("resolved_on_time", "resolved_orders"),
    "resolution": ("solved", "accepted"),
    "satisfaction": ("satisfied", "rated"),
    "return_rate": ("returned", "orders"),
    "reopen_rate": ("reopened", "resolved"),
}


def rates(c: Counts) -> Rates:
    return Rates(**{name: rate(getattr(c, part), getattr(c, whole)) for name, (part, whole) in RATE_PARTS.items()})


def _order_counts(c: Counts, orders: Iterable[OrderRow]) -> None:
    for o in orders:
        c.orders += 1
        c.signed += o.signed
        c.signed_on_time += o.signed and not o.sign_late
        c.returned += o.returned
        c.resolved_orders += o.resolved
        c.resolved_on_time += o.resolved and not o.resolve_late
        c.overdue += o.resolve_late


def _card_and_rating_counts(c: Counts, cards: Iterable[CardRow], ratings: Iterable[RatingRow]) -> None:
    for card in cards:
        c.yellow += card.level == "yellow"
        c.red += card.level == "red"
    for r in ratings:
        c.rated += 1
        c.satisfied += r.rating in SATISFIED


def area_counts(
    period: Period,
    cases: Iterable[CaseRow],
    orders: Iterable[OrderRow] = (),
    ratings: Iterable[RatingRow] = (),
    cards: Iterable[CardRow] = (),
) -> Counts:
    """An area's counts (rows already limited to the area): appeals received in the period,
    the orders dispatched in it, cards issued and latest ratings given in it."""
    c = Counts()
    for case in cases:
        if not period.contains(case.received_at):
            continue
        c.received += 1
        c.accepted += case.accepted
        c.solved += case.accepted and case.solved
        c.resolved += case.resolved
        c.reopened += case.resolved and case.reopened
    _order_counts(c, (o for o in orders if period.contains(o.dispatched_at)))
    _card_and_rating_counts(
        c, (k for k in cards if period.contains(k.occurred_at)), (r for r in ratings if period.contains(r.rated_at))
    )
    return c


def unit_counts(
    unit: str,
    period: Period,
    orders: Iterable[OrderRow],
    ratings: Iterable[RatingRow] = (),
    cards: Iterable[CardRow] = (),
    round_units: dict[tuple[str, int], set[str]] | None = None,
    *,
    person: str | None = None,
    round_people: dict[tuple[str, int], set[tuple[str, str | None]]] | None = None,
) -> Counts:
    """A unit's counts: its orders dispatched in the period, and their distinct cases
    (received; accepted = signed; resolved = answered by the unit; solved = accepted and
    answered as solved; reopened = answered and sent back to the unit for a redo, however
    many times), its cards, and the latest ratings of rounds it handled (named in the
    rating, else the round's orders).

    With ``person``: the same measures for one handling person of the unit (个人绩效) — the
    unit's orders that person handled (``OrderRow.handler``) and the latest ratings of the
    rounds in which that person handled the unit's order (``round_people``: (unit, handler)
    per case and round). Cards are the unit's (a clock runs for the unit), not a person's."""
    mine = [
        o for o in orders
        if o.unit == unit and period.contains(o.dispatched_at) and (person is None or o.handler == person)
    ]
    c = Counts()
    _order_counts(c, mine)
    received = {o.case_id for o in mine}
    accepted = {o.case_id for o in mine if o.signed}
    resolved = {o.case_id for o in mine if o.resolved}
    c.received, c.accepted, c.resolved = len(received), len(accepted), len(resolved)
    c.solved = len(accepted & {o.case_id for o in mine if o.resolved and o.solved})
    c.reopened = len(resolved & {o.case_id for o in mine if o.reopened})
    round_units = round_units if round_units is not None else units_by_round(orders)
    if person is not None and round_people is None:
        round_people = people_by_round(orders)
    _card_and_rating_counts(
        c,
        (k for k in cards if person is None and k.unit == unit and period.contains(k.occurred_at)),
        (
            r for r in ratings
            if period.contains(r.rated_at) and unit in (set(r.units) or round_units.get((r.case_id, r.round), set()))
            and (person is None or (unit, person) in (round_people or {}).get((r.case_id, r.round), set()))
        ),
    )
    return c


def units_by_round(orders: Iterable[OrderRow]) -> dict[tuple[str, int], set[str]]:
    out: dict[tuple[str, int], set[str]] = {}
    for o in orders:
        out.setdefault((o.case_id, o.redo_round), set()).add(o.unit)
    return out


def people_by_round(orders: Iterable[OrderRow]) -> dict[tuple[str, int], set[tuple[str, str | None]]]:
    out: dict[tuple[str, int], set[tuple[str, str | None]]] = {}
    for o in orders:
        out.setdefault((o.case_id, o.redo_round), set()).add((o.unit, o.handler))
    return out


# ------------------------------------------------------------------ two-way evaluation


@dataclass(frozen=True)
class TwoWayRow:
    direction: str  # township_rates_department | department_rates_call
    rater_unit: str
    rated_unit: str
    rated_at: datetime
    rating: str | None = None
    score: int | None = None
    justified: bool | None = None
    complete: bool | None = None


def is_favourable(row: TwoWayRow) -> bool:
    """A township's rating is favourable when 满意 / 基本满意 (or 4–5 of 5); a department's
    rating of a call when the call was both justified and complete."""
    if row.direction == "department_rates_call":
        return bool(row.justified) and bool(row.complete)
    if row.rating is not None:
        return row.rating in SATISFIED
    return row.score is not None and row.score >= 4


TOWNSHIP_RATES_DEPARTMENT = "township_rates_department"  # 乡评县
DEPARTMENT_RATES_CALL = "department_rates_call"  # 县评乡


def two_way_rate(unit: str, period: Period, rows: Iterable[TwoWayRow], direction: str = TOWNSHIP_RATES_DEPARTMENT) -> tuple[int, int]:
    """(favourable, rated) for the ratings of one direction a unit received in the period:
    by default the townships' ratings of it as a department they called (乡评县, what the
    composite's township-rating share weighs); ``DEPARTMENT_RATES_CALL`` gives the
    departments' ratings of a township's calls (县评乡, shown, not weighed)."""
    mine = [r for r in rows if r.rated_unit == unit and r.direction == direction and period.contains(r.rated_at)]
    return sum(is_favourable(r) for r in mine), len(mine)


@dataclass
class UnitScore:
    unit: str
    counts: Counts
    rates: Rates
    two_way: tuple[int, int]  # favourable, rated: the townships' ratings of the unit (乡评县)
    score: Fraction | None
    weights_version: int
    rank: int | None = None
    call_rating: tuple[int, int] = (0, 0)  # favourable, rated: departments' ratings of its calls (县评乡)


def unit_score(
    unit: str, counts: Counts, two_way: tuple[int, int], weights: Weights, call_rating: tuple[int, int] = (0, 0)
) -> UnitScore:
    """Composite out of 100: response / resolution / satisfaction, and the townships'
    ratings of the unit (乡评县, ``two_way``) with the weights' township-rating share; a
    unit no township rated (a township itself) is scored on the other three parts."""
    r = rates(counts)
    favourable, rated = two_way
    score = composite(
        weights, response=r.response, resolution=r.resolution, satisfaction=r.satisfaction,
        township_rating=rate(favourable, rated),
    )
    return UnitScore(unit, counts, r, two_way, score, weights.version, call_rating=call_rating)


def rank(scores: list[UnitScore]) -> list[UnitScore]:
    """Highest score first; units without data last; equal scores share a rank (1, 2, 2, 4)."""
    ordered = sorted(scores, key=lambda s: (s.score is None, -(s.score or 0), s.unit))
    previous: Fraction | None = None
    for position, item in enumerate(ordered, 1):
        if item.score is None:
            item.rank = None
            continue
        item.rank = ordered[position - 2].rank if previous == item.score and position > 1 else position
        previous = item.score
    return ordered


def top_subject(period: Period, cases: Iterable[CaseRow]) -> tuple[str, int] | None:
    """每月一题: the most frequent subject class among the period's appeals (ties: by name)."""
    tally: dict[str, int] = {}
    for case in cases:
        if case.subject_class and period.contains(case.received_at):
            tally[case.subject_class] = tally.get(case.subject_class, 0) + 1
    if not tally:
        return None
    subject = min(tally, key=lambda s: (-tally[s], s))
    return subject, tally[subject]


# --------------------------------------------------------------------------- 首问负责制


@dataclass(frozen=True)
class FirstAskedRow:
    """A case its first-responsible unit was first asked about, and how it ended."""

    case_id: str
    received_at: datetime
    closed: bool = False
    resolve_red: bool = False  # a red card on a resolve clock of the case (any unit's)
    rating: str | None = None  # the latest rated round's rating


@dataclass
class FirstAskedCounts:
    """首问负责制's own figure: the cases a unit was first asked about (received in the
    period), and of them how many were closed (办结), closed on time (no red card on a resolve
    clock, whoever handled it), rated, and rated satisfied (满意 + 基本满意)."""

    first_asked: int = 0
    closed: int = 0
    closed_on_time: int = 0
    rated: int = 0
    satisfied: int = 0


def first_asked_counts(period: Period, rows: Iterable[FirstAskedRow]) -> FirstAskedCounts:
    c = FirstAskedCounts()
    for row in rows:
        if not period.contains(row.received_at):
            continue
        c.first_asked += 1
        c.closed += row.closed
        c.closed_on_time += row.closed and not row.resolve_red
        c.rated += row.rating is not None
        c.satisfied += row.rating in SATISFIED
    return c


FIRST_ASKED_PARTS = {"closure": ("closed", "first_asked"), "on_time": ("closed_on_time", "closed"),
                     "satisfaction": ("satisfied", "rated")}  # fmt: skip


def first_asked_view(c: FirstAskedCounts, fmt: FigureFormat = DEFAULT_FORMAT) -> dict:
    """The counts with their rates, in the county's format: 办结率 closed / first asked,
    按时办结率 closed on time / closed, 满意率 satisfied / rated."""
    counts = asdict(c)
    return {
        "counts": counts,
        "rates": {name: percent(rate(counts[part], counts[whole]), fmt) for name, (part, whole) in FIRST_ASKED_PARTS.items()},
    }
