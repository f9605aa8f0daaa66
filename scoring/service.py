"""Scoring's use cases, each inside a unit of work: stats, composites, two-way ratings,
weights, grid-worker scores, published scores and bulletins. Routes stay thin: a use case
commits its own unit of work and refuses with the domain errors of ``shared.errors``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from scoring import org, repository
from scoring.bulletin import build_bulletin
from scoring.domain import DEFAULT_FORMAT, FigureFormat, Weights, figure, format_for, percent, rate
from scoring.grid import GridPoints, rank_workers
from scoring.handlers import unit_rating_row
from scoring.periods import Period, period_of, recent
from scoring.rates import (
    DEPARTMENT_RATES_CALL,
    RATE_PARTS,
    Counts,
    UnitScore,
    area_counts,
    first_asked_counts,
    first_asked_view,
    rank,
    rates,
    top_subject,
    two_way_rate,
    unit_counts,
    unit_score,
)
from scoring.repository import Scope
from shared.db import UnitOfWork
from shared.events import Actor, Role, Satisfaction, UnitRated, UnitRatedData, make_event
from shared.permissions import PERMISSIONS
from shared.errors import Conflict, Forbidden, Invalid, NotFound, WrongState

CALLER_ROLES = PERMISSIONS["scoring.rate_department"].roles
DEPARTMENT_ROLES = PERMISSIONS["scoring.rate_call"].roles
ADMIN_ROLES = PERMISSIONS["scoring.weights"].roles


def counts_view(counts: Counts, fmt: FigureFormat = DEFAULT_FORMAT) -> dict[str, Any]:
    r = rates(counts)
    return {"counts": counts.__dict__.copy(), "rates": r.display(fmt), "rates_exact": r.exact()}


async def figure_format(session, code: str) -> FigureFormat:
    """How ``code``'s figures are published: its county's setting (``figure_formats``), else
    the nearest place above with one, else the default."""
    return format_for(code, org.ancestors_of(code), await repository.current_figure_formats(session))


def format_view(fmt: FigureFormat) -> dict[str, Any]:
    return {"rounding": fmt.rounding, "places": fmt.places}


# What each rate is a fraction of (two names of ``counts``), told once per answer.
RATE_PARTS_VIEW = {name: {"part": part, "whole": whole} for name, (part, whole) in RATE_PARTS.items()}


def two_way_view(
    township_rating: tuple[int, int], call_rating: tuple[int, int], fmt: FigureFormat = DEFAULT_FORMAT
) -> dict[str, Any]:
    """Two-way evaluation (县乡履职双向考核评价) of a unit: ``two_way`` — the townships' ratings
    of it as a department they called (乡评县, weighed in its score); ``call_rating`` — the
    departments' ratings of its calls as a township (县评乡: justified and complete)."""
    def figures(pair: tuple[int, int]) -> dict[str, Any]:
        favourable, rated = pair
        return {"favourable": favourable, "rated": rated, "rate": percent(rate(favourable, rated), fmt)}
    return {"two_way": figures(township_rating), "call_rating": figures(call_rating)}


def period_view(period: Period) -> dict[str, str]:
    return {"kind": period.kind, "label": period.label, "from": period.start.isoformat(), "until": period.end.isoformat()}


# ------------------------------------------------------------------ stats


async def stats(uow: UnitOfWork, scope: str, code: str, period: Period) -> dict[str, Any]:
    async with uow:
        two_way: dict[str, Any] = {}
        fmt = await figure_format(uow.session, code)
        if scope == "units":
            facts = await repository.load_facts(uow.session, Scope(units=(code,)), period.start_utc, period.end_utc)
            counts = unit_counts(code, period, facts.orders, facts.ratings, facts.cards, facts.round_units)
            tasks = facts.tasks
            task_counts = unit_counts(code, period, tasks.orders, tasks.ratings, tasks.cards, tasks.round_units)
            two_way = two_way_view(
                two_way_rate(code, period, facts.two_way), two_way_rate(code, period, facts.two_way, DEPARTMENT_RATES_CALL),
                fmt,
            )
            # 首问负责制: the cases this unit was first asked about, however they were handled.
            two_way["first_responsibility"] = first_asked_view(
                first_asked_counts(period, await repository.first_asked(uow.session, code, period.start_utc, period.end_utc)), fmt
            )
        else:
            where = Scope(county=code) if scope == "counties" else Scope(township=code)
            facts = await repository.load_facts(uow.session, where, period.start_utc, period.end_utc)
            counts = area_counts(period, facts.cases, facts.orders, facts.ratings, facts.cards)
            tasks = facts.tasks
            task_counts = area_counts(period, tasks.cases, tasks.orders, tasks.ratings, tasks.cards)
    # 自上而下的任务 are counted apart: the figures above are the appeals' only.
    two_way["tasks"] = counts_view(task_counts, fmt)
    return {"scope": scope[:-1] if scope != "counties" else "county", "code": code, "name": org.name_of(code),
            "period": period_view(period), **counts_view(counts, fmt), "rate_parts": RATE_PARTS_VIEW, **two_way,
            "figure_format": format_view(fmt)}


# ------------------------------------------------------------------ people (个人绩效)


async def people(uow: UnitOfWork, code: str, period: Period) -> dict[str, Any]:
    """The unit's handling people, each with the unit's measures over the orders they
    handled (``scoring.rates.handler_of``) and a composite of them, ranked; orders no person
    acted on (a service signed or answered) are counted apart."""
    async with uow:
        facts = await repository.load_facts(uow.session, Scope(units=(code,)), period.start_utc, period.end_utc)
        weights = await current_weights(uow.session)
        fmt = await figure_format(uow.session, code)
    mine = [o for o in facts.orders if o.unit == code and period.contains(o.dispatched_at)]
    handlers = sorted({o.handler for o in mine if o.handler is not None})
    scores = rank([
        unit_score(person, unit_counts(
            code, period, facts.orders, facts.ratings, (), facts.round_units, person=person, round_people=facts.round_people,
        ), (0, 0), weights)
        for person in handlers
    ])
    return {
        "unit": code, "name": org.name_of(code), "period": period_view(period), "weights": weights_view(weights),
        "figure_format": format_view(fmt), "rate_parts": RATE_PARTS_VIEW,
        "people": [
            {"rank": s.rank, "person": s.unit, "name": org.person_name(s.unit),
             "score": None if s.score is None else figure(s.score, fmt),
             "score_exact": None if s.score is None else f"{s.score.numerator}/{s.score.denominator}",
             **counts_view(s.counts, fmt)}
            for s in scores
        ],
        "orders_without_person": sum(1 for o in mine if o.handler is None),
    }


# ------------------------------------------------------------------ composites


async def current_weights(uow_session, version: int | None = None) -> Weights:
    found = await repository.weights(uow_session, version)
    if found is None:
        raise NotFound(f"no weights version {version}", code="no-such-weights", field="weights_version")
    return found[0]


async def county_scores(session, county: str, period: Period, weights: Weights) -> list[UnitScore]:
    """Every department and township of the county (and any other unit that had its orders),
    scored and ranked."""
    units = org.county_units(county)
    facts = await repository.load_facts(session, Scope(county=county, units=tuple(units)), period.start_utc, period.end_utc)
    seen = [u for u in dict.fromkeys(o.unit for o in facts.orders if o.county == county) if u not in units]
    scores = []
    for unit in [*units, *seen]:
        counts = unit_counts(unit, period, facts.orders, facts.ratings, facts.cards, facts.round_units)
        scores.append(unit_score(
            unit, counts, two_way_rate(unit, period, facts.two_way), weights,
            call_rating=two_way_rate(unit, period, facts.two_way, DEPARTMENT_RATES_CALL),
        ))
    return rank(scores)


async def village_scores(session, township: str, period: Period, weights: Weights) -> list[UnitScore]:
    """The township's villages scored as a township is (村级 counted like 乡镇: the same
    counts, rates and composite of their orders) and ranked among each other."""
    units = tuple(org.township_villages(township))
    facts = await repository.load_facts(session, Scope(units=units), period.start_utc, period.end_utc)
    return rank([
        unit_score(unit, unit_counts(unit, period, facts.orders, facts.ratings, facts.cards, facts.round_units),
                   two_way_rate(unit, period, facts.two_way), weights)
        for unit in units
    ])  # fmt: skip


async def village_composites(uow: UnitOfWork, township: str, period: Period, weights_version: int | None) -> dict[str, Any]:
    async with uow:
        weights = await current_weights(uow.session, weights_version)
        scores = await village_scores(uow.session, township, period, weights)
        fmt = await figure_format(uow.session, township)
    return {"township": township, "name": org.name_of(township), "period": period_view(period),
            "weights": weights_view(weights), "rate_parts": RATE_PARTS_VIEW, "units": [score_view(s, fmt) for s in scores], "figure_format": format_view(fmt)}


def score_view(s: UnitScore, fmt: FigureFormat = DEFAULT_FORMAT) -> dict[str, Any]:
    return {
        "rank": s.rank, "unit": s.unit, "name": org.name_of(s.unit), "kind": org.kind_of(s.unit),
        "score": None if s.score is None else figure(s.score, fmt),
        "score_exact": None if s.score is None else f"{s.score.numerator}/{s.score.denominator}",
        "weights_version": s.weights_version,
        **two_way_view(s.two_way, s.call_rating, fmt),
        **counts_view(s.counts, fmt),
    }


async def composites(uow: UnitOfWork, county: str, period: Period, weights_version: int | None) -> dict[str, Any]:
    async with uow:
        weights = await current_weights(uow.session, weights_version)
        scores = await county_scores(uow.session, county, period, weights)
        fmt = await figure_format(uow.session, county)
    return {"county": county, "name": org.name_of(county), "period": period_view(period),
            "weights": weights_view(weights), "rate_parts": RATE_PARTS_VIEW, "figure_format": format_view(fmt),
            "units": [score_view(s, fmt) for s in scores]}


async def publish(uow: UnitOfWork, actor: Actor, county: str, period: Period) -> dict[str, Any]:
    _require(actor, ADMIN_ROLES, "publish scores")
    async with uow:
        weights = await current_weights(uow.session)
        scores = await county_scores(uow.session, county, period, weights)
        fmt = await figure_format(uow.session, county)
        rows = [
            {
                "county": county, "period_kind": period.kind, "period_start": period.start, "period_end": period.end,
                "unit": s.unit, "score": None if s.score is None else figure(s.score, fmt),
                "score_exact": None if s.score is None else f"{s.score.numerator}/{s.score.denominator}",
                "weights_version": weights.version, "published_by": actor.id,
            }
            for s in scores
        ]
        written = await repository.publish_scores(uow.session, rows)
        if not written:
            raise Conflict(
                f"{county} {period.label} is already published with weights version {weights.version}",
                code="already-published", weights_version=weights.version,
            )
        await uow.commit()
    return await published_view(uow, county, period)


async def published_view(uow: UnitOfWork, county: str, period: Period) -> dict[str, Any]:
    async with uow:
        rows = await repository.published(uow.session, county, period.kind, period.start, period.end)
    return {
        "county": county, "period": period_view(period),
        "scores": [
            {"unit": r.unit, "name": org.name_of(r.unit), "score": r.score, "score_exact": r.score_exact,
             "weights_version": r.weights_version, "published_at": r.published_at.isoformat(), "published_by": r.published_by}
            for r in rows
        ],
    }


# ------------------------------------------------------------------ weights


def weights_view(w: Weights, row: Any = None) -> dict[str, Any]:
    view = {
        "version": w.version, "response": str(w.response), "resolution": str(w.resolution),
        "satisfaction": str(w.satisfaction), "township_rating": str(w.township_rating),
    }
    if row is not None:
        view |= {"note": row.note, "created_by": row.created_by, "created_at": row.created_at.isoformat()}
    return view


async def get_weights(uow: UnitOfWork, version: int | None = None) -> dict[str, Any]:
    async with uow:
        found = await repository.weights(uow.session, version)
        if found is None:
            raise NotFound(f"no weights version {version}", code="no-such-weights")
        history = await repository.weight_history(uow.session)
    return {**weights_view(*found), "versions": [r.version for r in history]}


async def new_weights(uow: UnitOfWork, actor: Actor, values: dict[str, Decimal], note: str | None) -> dict[str, Any]:
    _require(actor, ADMIN_ROLES, "change the weights")
    if sum(values.values()) <= 0:
        raise Invalid("the weights must not all be zero", field="response")
    async with uow:
        version = await repository.add_weights(uow.session, {**values, "note": note, "created_by": actor.id})
        if version is None:
            raise Conflict("another change of the weights came first; read them again and retry", code="weights-changed")
        await uow.commit()
    return await get_weights(uow, version)


# ------------------------------------------------------------------ figure formats


def figure_format_row_view(row: Any) -> dict[str, Any]:
    return {"version": row.version, "county": row.county, "rounding": row.rounding, "places": row.places,
            "note": row.note, "created_by": row.created_by, "created_at": row.created_at.isoformat()}


async def get_figure_formats(uow: UnitOfWork, county: str | None = None) -> dict[str, Any]:
    """The format each county (or ``county``) publishes in now, and every version set."""
    async with uow:
        history = await repository.figure_format_rows(uow.session, county)
        view: dict[str, Any] = {"default": format_view(DEFAULT_FORMAT), "versions": [figure_format_row_view(r) for r in history]}
        if county is not None:
            view["county"] = county
            view["current"] = format_view(await figure_format(uow.session, county))
        else:
            current = await repository.current_figure_formats(uow.session)
            view["current"] = {code: format_view(fmt) for code, fmt in sorted(current.items())}
    return view


async def new_figure_format(
    uow: UnitOfWork, actor: Actor, county: str, rounding: str, places: int, note: str | None
) -> dict[str, Any]:
    _require(actor, ADMIN_ROLES, "set how a county's figures are published")
    try:
        FigureFormat(rounding, places)  # type: ignore[arg-type]
    except ValueError as exc:
        raise Invalid(str(exc), field="places" if "places" in str(exc) else "rounding") from None
    async with uow:
        version = await repository.add_figure_format(
            uow.session, {"county": county, "rounding": rounding, "places": places, "note": note, "created_by": actor.id}
        )
        if version is None:
            raise Conflict("another change of the figure formats came first; retry", code="figure-formats-changed")
        await uow.commit()
    return await get_figure_formats(uow, county)


# ------------------------------------------------------------------ two-way evaluation


def _require(actor: Actor, roles: set[Role], what: str) -> None:
    if actor.role not in roles:
        allowed = ", ".join(sorted(r.value for r in roles))
        raise Forbidden(f"a {actor.role.value} may not {what}; allowed roles: {allowed}", code="role-not-allowed")


async def _call_and_case(uow: UnitOfWork, case_id: str, call_id: str) -> tuple[Any, Any]:
    call = await repository.find_call(uow.session, call_id)
    if call is None or call.case_id != case_id:
        raise NotFound(f"no call {call_id} on case {case_id} seen by scoring", code="no-such-call", field="call_id")
    case = await repository.find_case(uow.session, case_id)
    return call, case


async def rate_department(
    uow: UnitOfWork, actor: Actor, *, case_id: str, call_id: str, unit: str,
    rating: Satisfaction | None, score: int | None, comment: str | None, now: Callable[[], datetime],
) -> dict[str, Any]:
    """乡评县: the unit that called rates a department it called, once per case, call and round,
    after the case is closed (销号) — the township, or the village or grid that blew the
    whistle from below (网格吹哨)."""
    _require(actor, CALLER_ROLES, "rate a department")
    if (rating is None) == (score is None):
        raise Invalid("give either a rating (满意/基本满意/不满意) or a score (1–5)", field="rating")
    async with uow:
        call, case = await _call_and_case(uow, case_id, call_id)
        if actor.org_unit != call.caller:
            raise Forbidden(
                f"only the calling unit {call.caller} may rate the departments of call {call_id}",
                code="not-the-calling-township",
            )
        if unit not in call.units:
            raise Invalid(f"{unit} was not called in {call_id} (called: {', '.join(call.units)})", field="unit")
        if case is None or case.closed_at is None or case.closed_at < call.called_at:
            raise WrongState(
                f"case {case_id} is not closed yet: a township rates a department after 销号 (case.closed)",
                code="case-not-closed", state="open", allowed_actions=["wait for case.closed"],
            )
        event = make_event(
            UnitRated, case_id=case_id, producer="scoring", actor=actor, occurred_at=now(),
            payload=UnitRatedData(
                rater_unit=call.caller, rated_unit=unit, direction="township_rates_department", call_id=call_id,
                round=case.current_round, rating=rating, score=score, comment=comment,
            ),
        )
        return await _record(uow, event)


async def rate_call(
    uow: UnitOfWork, actor: Actor, *, case_id: str, call_id: str, justified: bool, complete: bool,
    comment: str | None, now: Callable[[], datetime],
) -> dict[str, Any]:
    """县评乡: a called department rates the call (was it justified, was it complete)."""
    _require(actor, DEPARTMENT_ROLES, "rate a call")
    async with uow:
        call, case = await _call_and_case(uow, case_id, call_id)
        if actor.org_unit not in call.units:
            raise Forbidden(f"only a department called in {call_id} may rate it", code="not-a-called-department")
        event = make_event(
            UnitRated, case_id=case_id, producer="scoring", actor=actor, occurred_at=now(),
            payload=UnitRatedData(
                rater_unit=actor.org_unit, rated_unit=call.caller, direction="department_rates_call", call_id=call_id,
                round=case.current_round if case is not None else 0, justified=justified, complete=complete, comment=comment,
            ),
        )
        return await _record(uow, event)


async def _record(uow: UnitOfWork, event: UnitRated) -> dict[str, Any]:
    row = unit_rating_row(event)
    if not await repository.insert_unit_rating(uow.session, row):
        raise WrongState(
            f"{row['rater_unit']} already rated {row['rated_unit']} for case {row['case_id']}, call "
            f"{row['call_id']}, round {row['round']}", code="already-rated", state="rated", allowed_actions=[],
        )
    uow.emit(event)
    await uow.commit()
    return rating_view(row)


def rating_view(row: Any) -> dict[str, Any]:
    get = row.get if isinstance(row, dict) else row._mapping.get
    return {
        "event_id": str(get("event_id")), "direction": get("direction"), "case_id": get("case_id"),
        "call_id": get("call_id"), "round": get("round"), "rater_unit": get("rater_unit"), "rated_unit": get("rated_unit"),
        "rating": get("rating"), "score": get("score"), "justified": get("justified"), "complete": get("complete"),
        "comment": get("comment"), "rated_at": get("rated_at").isoformat(),
    }


async def list_unit_ratings(uow: UnitOfWork, case_id: str | None, unit: str | None) -> list[dict[str, Any]]:
    async with uow:
        return [rating_view(r) for r in await repository.unit_ratings_of(uow.session, case_id=case_id, unit=unit)]


# ------------------------------------------------------------------ grid workers


def grid_points_view(config: GridPoints, row: Any = None) -> dict[str, Any]:
    view = {"version": config.version, "points": dict(config.points), "caps": dict(config.caps)}
    if row is not None:
        view |= {"note": row.note, "created_by": row.created_by, "created_at": row.created_at.isoformat()}
    return view


async def get_grid_points(uow: UnitOfWork, version: int | None = None) -> dict[str, Any]:
    async with uow:
        found = await repository.grid_points(uow.session, version)
    if found is None:
        raise NotFound(f"no grid points version {version}", code="no-such-grid-points")
    return grid_points_view(*found)


async def new_grid_points(uow: UnitOfWork, actor: Actor, points: dict, caps: dict, note: str | None) -> dict[str, Any]:
    _require(actor, ADMIN_ROLES, "change grid points")
    try:
        GridPoints(0, points, caps)
    except ValueError as exc:
        raise Invalid(str(exc), field=str(exc).split(":")[0]) from None
    async with uow:
        version = await repository.add_grid_points(uow.session, {"points": points, "caps": caps, "note": note, "created_by": actor.id})
        if version is None:
            raise Conflict("another change of the grid points came first; retry", code="grid-points-changed")
        await uow.commit()
    return await get_grid_points(uow, version)


async def grid_ranking(uow: UnitOfWork, month: Period, county: str | None, township: str | None, version: int | None) -> dict:
    async with uow:
        found = await repository.grid_points(uow.session, version)
        if found is None:
            raise NotFound(f"no grid points version {version}", code="no-such-grid-points")
        config = found[0]
        rows = await repository.grid_activity_rows(uow.session, month.start_utc, month.end_utc, county=county, township=township)
    workers = rank_workers(rows, config)
    return {
        "month": month.label, "county": county, "township": township, "points_version": config.version,
        "workers": [
            {"worker_id": w.worker_id, "township": w.township, "county": w.county, "total": w.total,
             "rank_in_township": w.rank_in_township, "rank_in_county": w.rank_in_county,
             "counts": w.counts, "points": w.points}
            for w in workers
        ],
    }


# ------------------------------------------------------------------ bulletins


async def bulletin(uow: UnitOfWork, county: str, period: Period, trend_periods: int = 6) -> dict[str, Any]:
    """一周一通报 / 一月一点评: the ranked table, overdue list, 每月一题 and the trend."""
    async with uow:
        weights = await current_weights(uow.session)
        ranked = await county_scores(uow.session, county, period, weights)
        previous = {s.unit: s for s in await county_scores(uow.session, county, period.previous(), weights)}
        history = recent(period, trend_periods)
        facts = await repository.load_facts(uow.session, Scope(county=county), history[0].start_utc, period.end_utc)
        trend = [(p, area_counts(p, facts.cases, facts.orders, facts.ratings, facts.cards)) for p in history]
        month = period if period.kind == "month" else period_of("month", period.start)
        month_facts = await repository.load_facts(uow.session, Scope(county=county), month.start_utc, month.end_utc)
        overdue = await repository.overdue_orders(uow.session, county, period.start_utc, period.end_utc)
        fmt = await figure_format(uow.session, county)
    return build_bulletin(
        county=county, county_name=org.name_of(county), period=period, weights=weights, fmt=fmt,
        ranked=[score_view(s, fmt) for s in ranked],
        previous={u: score_view(s, fmt) for u, s in previous.items()},
        trend=[(p.label, counts_view(c, fmt), c) for p, c in trend],
        overdue=[
            {"order_no": r.order_no, "tracking_no": r.tracking_no, "unit": r.unit, "name": r.unit_name or org.name_of(r.unit),
             "township": r.township, "due_at": r.due_at.isoformat(), "resolved": r.resolved_at is not None}
            for r in overdue
        ],
        top_subject=top_subject(month, month_facts.cases),
        month_label=month.label,
    )
