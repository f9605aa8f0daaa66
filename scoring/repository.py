"""Scoring's queries. No commits here: the unit of work commits.

Readers load fact rows for a scope and a time window into the plain rows of
``scoring.rates``; the counting itself is pure and lives there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.dialects.postgresql import distinct_on, insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from scoring.domain import FigureFormat, Weights
from scoring.grid import GridPoints
from scoring.models import (
    calls,
    case_facts,
    case_ratings,
    figure_formats,
    grid_activity,
    grid_point_versions,
    published_scores,
    sla_cards,
    unit_orders,
    unit_ratings,
    weight_versions,
)
from scoring.rates import CardRow, CaseRow, FirstAskedRow, OrderRow, RatingRow, TwoWayRow, handler_of
from shared.events import Channel


@dataclass
class Scope:
    """Whose facts: a county, a township, or units (a unit's orders wherever the case is)."""

    county: str | None = None
    township: str | None = None
    units: tuple[str, ...] = ()

    def case_filter(self):
        conds = []
        if self.county:
            conds.append(case_facts.c.county == self.county)
        if self.township:
            conds.append(case_facts.c.township == self.township)
        return and_(*conds) if conds else None


@dataclass
class Facts:
    cases: list[CaseRow] = field(default_factory=list)
    orders: list[OrderRow] = field(default_factory=list)
    ratings: list[RatingRow] = field(default_factory=list)
    cards: list[CardRow] = field(default_factory=list)
    two_way: list[TwoWayRow] = field(default_factory=list)
    round_units: dict[tuple[str, int], set[str]] = field(default_factory=dict)
    round_people: dict[tuple[str, int], set[tuple[str, str | None]]] = field(default_factory=dict)
    # 自上而下的任务: the facts of task items (channel ``task``), counted apart — never in the
    # appeals' figures above (解决率, 满意率, the composite), shown beside them.
    tasks: Facts | None = None


def is_task(channel: str | None) -> bool:
    """A task item sent down by the centre (自上而下的任务), not a citizen's appeal."""
    return channel == Channel.task.value


def _area_or_units(scope: Scope, unit_column):
    area = scope.case_filter()
    parts = [p for p in (area, unit_column.in_(scope.units) if scope.units else None) if p is not None]
    return or_(*parts) if parts else None


async def load_facts(session: AsyncSession, scope: Scope, since: datetime, until: datetime) -> Facts:
    facts, task_facts = Facts(), Facts()
    area = scope.case_filter()

    if area is not None:
        rows = await session.execute(
            select(case_facts).where(area, case_facts.c.received_at >= since, case_facts.c.received_at < until)
        )
        for r in rows:
            (task_facts if is_task(r.channel) else facts).cases.append(CaseRow(
                case_id=r.case_id, county=r.county, township=r.township, subject_class=r.subject_class,
                received_at=r.received_at, accepted=r.accepted_at is not None, rejected=r.rejected_at is not None,
                resolved=r.resolved_at is not None, solved=bool(r.solved), reopened=r.current_round > 0,
            ))  # fmt: skip

    later = unit_orders.alias("later")
    reopened = exists().where(
        later.c.case_id == unit_orders.c.case_id, later.c.unit == unit_orders.c.unit,
        later.c.redo_round > unit_orders.c.redo_round,
    )
    order_cols = [unit_orders, case_facts.c.county, case_facts.c.township, case_facts.c.channel, reopened.label("reopened")]
    who = _area_or_units(scope, unit_orders.c.unit)
    query = (
        select(*order_cols)
        .select_from(unit_orders.outerjoin(case_facts, case_facts.c.case_id == unit_orders.c.case_id))
        .where(unit_orders.c.dispatched_at >= since, unit_orders.c.dispatched_at < until)
    )
    if who is not None:
        query = query.where(who)
    for r in await session.execute(query):
        (task_facts if is_task(r.channel) else facts).orders.append(_order(r))

    # Each case's latest rated round (only that one counts), rated inside the window.
    latest = (
        select(case_ratings)
        .ext(distinct_on(case_ratings.c.case_id))
        .order_by(case_ratings.c.case_id, case_ratings.c.round.desc())
        .subquery()
    )
    rated = (
        select(latest, case_facts.c.county, case_facts.c.township, case_facts.c.channel)
        .select_from(latest.outerjoin(case_facts, case_facts.c.case_id == latest.c.case_id))
        .where(latest.c.rated_at >= since, latest.c.rated_at < until)
    )
    if scope.units:
        handled = exists().where(unit_orders.c.case_id == latest.c.case_id, unit_orders.c.unit.in_(scope.units))
        rated = rated.where(or_(*[p for p in (area, handled) if p is not None]))
    elif area is not None:
        rated = rated.where(area)
    for r in await session.execute(rated):  # a task item is never rated; a rating of one would count apart
        (task_facts if is_task(r.channel) else facts).ratings.append(
            RatingRow(r.case_id, r.round, r.rating, r.rated_at, tuple(r.units or ()), r.county, r.township)
        )
    if facts.ratings:
        ids = list({r.case_id for r in facts.ratings})
        for r in await session.execute(
            select(
                unit_orders.c.case_id, unit_orders.c.redo_round, unit_orders.c.unit, unit_orders.c.signed_by,
                unit_orders.c.returned_by, unit_orders.c.resolved_by,
            ).where(unit_orders.c.case_id.in_(ids))
        ):
            facts.round_units.setdefault((r.case_id, r.redo_round), set()).add(r.unit)
            facts.round_people.setdefault((r.case_id, r.redo_round), set()).add(
                (r.unit, handler_of(r.signed_by, r.returned_by, r.resolved_by))
            )

    cards = (
        select(sla_cards, case_facts.c.county, case_facts.c.township, case_facts.c.channel)
        .select_from(sla_cards.outerjoin(case_facts, case_facts.c.case_id == sla_cards.c.case_id))
        .where(sla_cards.c.occurred_at >= since, sla_cards.c.occurred_at < until)
    )
    who = _area_or_units(scope, sla_cards.c.unit)
    if who is not None:
        cards = cards.where(who)
    for r in await session.execute(cards):
        (task_facts if is_task(r.channel) else facts).cards.append(CardRow(r.case_id, r.unit, r.level, r.occurred_at, r.county, r.township))

    two_way = select(unit_ratings).where(unit_ratings.c.rated_at >= since, unit_ratings.c.rated_at < until)
    if scope.units:
        two_way = two_way.where(unit_ratings.c.rated_unit.in_(scope.units))
    facts.two_way = [
        TwoWayRow(r.direction, r.rater_unit, r.rated_unit, r.rated_at, r.rating, r.score, r.justified, r.complete)
        for r in await session.execute(two_way)
    ]
    task_facts.round_units = facts.round_units  # ratings' rounds: only appeals are rated
    facts.tasks = task_facts
    return facts


async def first_asked(session: AsyncSession, unit: str, since: datetime, until: datetime) -> list[FirstAskedRow]:
    """The cases ``unit`` was first asked about (首问负责制), received in the window: closed or
    not, any red card on a resolve clock, and the latest rated round's rating."""
    red = exists().where(
        sla_cards.c.case_id == case_facts.c.case_id, sla_cards.c.level == "red", sla_cards.c.clock == "resolve"
    )
    latest = (
        select(case_ratings.c.rating)
        .where(case_ratings.c.case_id == case_facts.c.case_id)
        .order_by(case_ratings.c.round.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = select(case_facts.c.case_id, case_facts.c.received_at, case_facts.c.closed_at, red.label("red"), latest.label("rating")).where(
        case_facts.c.first_unit == unit, case_facts.c.received_at >= since, case_facts.c.received_at < until
    )
    return [
        FirstAskedRow(r.case_id, r.received_at, closed=r.closed_at is not None, resolve_red=bool(r.red), rating=r.rating)
        for r in await session.execute(query)
    ]


def _order(r: Any) -> OrderRow:
    return OrderRow(
        order_no=r.order_no, case_id=r.case_id, unit=r.unit, dispatched_at=r.dispatched_at, redo_round=r.redo_round,
        role=r.role, signed=r.signed_at is not None, sign_late=r.sign_late, returned=r.returned_at is not None,
        resolved=r.resolved_at is not None, solved=bool(r.solved), resolve_late=r.resolve_late,
        reopened=bool(r.reopened), county=r.county, township=r.township,
        handler=handler_of(r.signed_by, r.returned_by, r.resolved_by),
    )


async def overdue_orders(session: AsyncSession, county: str, since: datetime, until: datetime) -> list[Any]:
    """Orders with a red card on their resolve clock issued in the window, in the county."""
    query = (
        select(
            unit_orders.c.order_no, unit_orders.c.case_id, unit_orders.c.unit, unit_orders.c.unit_name,
            case_facts.c.tracking_no, case_facts.c.township, func.min(sla_cards.c.due_at).label("due_at"),
            unit_orders.c.resolved_at,
        )
        .select_from(
            unit_orders.join(case_facts, case_facts.c.case_id == unit_orders.c.case_id).join(
                sla_cards,
                and_(
                    sla_cards.c.case_id == unit_orders.c.case_id, sla_cards.c.unit == unit_orders.c.unit,
                    sla_cards.c.clock == "resolve", sla_cards.c.level == "red",
                ),
            )
        )
        .where(
            case_facts.c.county == county, unit_orders.c.resolve_late.is_(True),
            sla_cards.c.occurred_at >= since, sla_cards.c.occurred_at < until,
        )
        .group_by(unit_orders.c.order_no, case_facts.c.tracking_no, case_facts.c.township)
        .order_by(func.min(sla_cards.c.due_at), unit_orders.c.order_no)
    )
    return list(await session.execute(query))


# ------------------------------------------------------------------ two-way ratings


async def find_call(session: AsyncSession, call_id: str) -> Any:
    return (await session.execute(select(calls).where(calls.c.call_id == call_id))).first()


async def find_case(session: AsyncSession, case_id: str) -> Any:
    return (await session.execute(select(case_facts).where(case_facts.c.case_id == case_id))).first()


_INSERT_RATING = pg_insert(unit_ratings).on_conflict_do_nothing().returning(unit_ratings.c.id)


async def insert_unit_rating(session: AsyncSession, row: dict) -> bool:
    """False when this rater already rated this case, call and round (unique constraint)."""
    return (await session.execute(_INSERT_RATING, row)).first() is not None


async def unit_ratings_of(session: AsyncSession, *, case_id: str | None = None, unit: str | None = None) -> list[Any]:
    query = select(unit_ratings).order_by(unit_ratings.c.rated_at, unit_ratings.c.id)
    if case_id:
        query = query.where(unit_ratings.c.case_id == case_id)
    if unit:
        query = query.where(or_(unit_ratings.c.rated_unit == unit, unit_ratings.c.rater_unit == unit))
    return list(await session.execute(query))


# ------------------------------------------------------------------ weights and grid points


def _weights(row: Any) -> Weights:
    f = lambda d: Fraction(Decimal(d))  # noqa: E731
    return Weights(row.version, f(row.response), f(row.resolution), f(row.satisfaction), f(row.township_rating))


async def weights(session: AsyncSession, version: int | None = None) -> tuple[Weights, Any] | None:
    query = select(weight_versions)
    query = query.where(weight_versions.c.version == version) if version else query.order_by(weight_versions.c.version.desc()).limit(1)
    row = (await session.execute(query)).first()
    return None if row is None else (_weights(row), row)


async def weight_history(session: AsyncSession) -> list[Any]:
    return list(await session.execute(select(weight_versions).order_by(weight_versions.c.version)))


async def add_weights(session: AsyncSession, values: dict) -> int | None:
    """The next version number, or None when another writer took it first (unique key)."""
    current = (await session.execute(select(func.coalesce(func.max(weight_versions.c.version), 0)))).scalar_one()
    stmt = pg_insert(weight_versions).values(version=current + 1, **values).on_conflict_do_nothing().returning(weight_versions.c.version)
    return (await session.execute(stmt)).scalar()


async def figure_format_rows(session: AsyncSession, county: str | None = None) -> list[Any]:
    """Every figure-format version (of one county), oldest first."""
    query = select(figure_formats).order_by(figure_formats.c.version)
    if county is not None:
        query = query.where(figure_formats.c.county == county)
    return list(await session.execute(query))


async def current_figure_formats(session: AsyncSession) -> dict[str, FigureFormat]:
    """Each county's current format: its newest version."""
    query = select(figure_formats).order_by(figure_formats.c.county, figure_formats.c.version.desc()).ext(distinct_on(figure_formats.c.county))
    return {r.county: FigureFormat(r.rounding, r.places) for r in await session.execute(query)}


async def add_figure_format(session: AsyncSession, values: dict) -> int | None:
    current = (await session.execute(select(func.coalesce(func.max(figure_formats.c.version), 0)))).scalar_one()
    stmt = (
        pg_insert(figure_formats).values(version=current + 1, **values).on_conflict_do_nothing()
        .returning(figure_formats.c.version)
    )
    return (await session.execute(stmt)).scalar()


async def grid_points(session: AsyncSession, version: int | None = None) -> tuple[GridPoints, Any] | None:
    query = select(grid_point_versions)
    query = (
        query.where(grid_point_versions.c.version == version)
        if version else query.order_by(grid_point_versions.c.version.desc()).limit(1)
    )
    row = (await session.execute(query)).first()
    return None if row is None else (GridPoints(row.version, dict(row.points), dict(row.caps)), row)


async def add_grid_points(session: AsyncSession, values: dict) -> int | None:
    current = (await session.execute(select(func.coalesce(func.max(grid_point_versions.c.version), 0)))).scalar_one()
    stmt = (
        pg_insert(grid_point_versions).values(version=current + 1, **values).on_conflict_do_nothing()
        .returning(grid_point_versions.c.version)
    )
    return (await session.execute(stmt)).scalar()


async def grid_activity_rows(
    session: AsyncSession, since: datetime, until: datetime, *, county: str | None = None, township: str | None = None
) -> list[tuple]:
    query = (
        select(grid_activity.c.worker_id, grid_activity.c.township, grid_activity.c.county, grid_activity.c.kind,
               func.sum(grid_activity.c.count))
        .where(grid_activity.c.occurred_at >= since, grid_activity.c.occurred_at < until)
        .group_by(grid_activity.c.worker_id, grid_activity.c.township, grid_activity.c.county, grid_activity.c.kind)
    )
    if county:
        query = query.where(grid_activity.c.county == county)
    if township:
        query = query.where(grid_activity.c.township == township)
    return [tuple(r) for r in await session.execute(query)]


# ------------------------------------------------------------------ published scores


async def publish_scores(session: AsyncSession, rows: list[dict]) -> int:
    if not rows:
        return 0
    result = await session.execute(pg_insert(published_scores).values(rows).on_conflict_do_nothing().returning(published_scores.c.id))
    return len(result.all())


async def published(session: AsyncSession, county: str, period_kind: str, start, end) -> list[Any]:
    return list(
        await session.execute(
            select(published_scores)
            .where(
                published_scores.c.county == county, published_scores.c.period_kind == period_kind,
                published_scores.c.period_start == start, published_scores.c.period_end == end,
            )
            .order_by(published_scores.c.weights_version, published_scores.c.id)
        )
    )
