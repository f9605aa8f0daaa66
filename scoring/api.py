"""Scoring's REST API (``/api/v1``): thin routes over ``scoring.service``."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import AwareDatetime, BaseModel, Field

from scoring import schedule, service
from scoring.bulletin import render_csv, render_html
from scoring.context import ContextDep
from scoring.periods import Period, custom, local_date, period_of
from shared.edge import IsoDate, IsoMonth
from shared.http import PG_INT_MAX
from shared.actors import ActorDep
from shared.case_status import require_visible_case
from shared.events import Actor, Role, Satisfaction
from shared.orgdata import OrgDirectory
from shared.permissions import PERMISSIONS, permit
from shared.problems import Problem
from shared.errors import Forbidden
from shared.scope import STAFF_ROLES, area_of, covers, not_found_unless, people_problem, require_role, require_rules_scope
from shared.service import RuntimeDep, UowDep

router = APIRouter(prefix="/api/v1", tags=["scoring"])


def _period(context, kind: str, day: date | None, start: date | None, end: date | None) -> Period:
    if kind == "custom":
        if start is None or end is None:
            raise Problem(422, "a custom period needs both 'from' and 'to' (dates)", slug="validation", field="from")
        try:
            return custom(start, end)
        except ValueError as exc:
            raise Problem(422, str(exc), slug="validation", field="to") from None
    try:
        return period_of(kind, day or local_date(context.clock.now()))
    except ValueError as exc:
        raise Problem(422, str(exc), slug="validation", field="period") from None


def county_of_actor(org: OrgDirectory, actor: Actor) -> str | None:
    area = area_of(org, actor)
    return org.county_of(area) if area is not None else None


def require_county_reader(org: OrgDirectory, actor: Actor, county: str) -> None:
    """Scores, rates and bulletins are circulated inside a county (一周一通报): every unit of
    that county and the centres above it read them, the auditor reads all; another county's
    staff get 404, citizens and ops 403."""
    require_role(actor, STAFF_ROLES, "read scores, rates and bulletins")
    if actor.role is Role.auditor:
        return
    area = area_of(org, actor)
    not_found_unless(covers(org, area, county) or county_of_actor(org, actor) == county, f"county {county} of yours")


def require_code_reader(org: OrgDirectory, actor: Actor, code: str) -> None:
    """As ``require_county_reader``, for a unit, township or county code."""
    require_role(actor, STAFF_ROLES, "read scores, rates and bulletins")
    if actor.role is Role.auditor:
        return  # reads everything, also figures of codes the directory no longer holds
    not_found_unless(org.has_unit(code), f"unit {code}")
    require_county_reader(org, actor, org.county_of(code) or code)


VersionQ = Annotated[int | None, Query(ge=1, le=PG_INT_MAX, description="a version; default: the current one")]
PeriodQ = Annotated[str, Query(description="day | week | month | quarter | custom")]
DateQ = Annotated[IsoDate | None, Query(description="a day inside the period (Beijing); default today")]
FromQ = Annotated[IsoDate | None, Query(alias="from", description="custom period: first day")]
ToQ = Annotated[IsoDate | None, Query(alias="to", description="custom period: last day (inclusive)")]


# ------------------------------------------------------------------ rates


@router.get("/stats/{scope}/{code}", summary="Counts and rates of a unit, township or county for a period")
async def stats(
    scope: Literal["units", "townships", "counties"], code: str, uow: UowDep, context: ContextDep, runtime: RuntimeDep,
    actor: ActorDep, period: PeriodQ = "month", date: DateQ = None, start: FromQ = None, end: ToQ = None,
) -> dict:
    require_code_reader(runtime.org, actor, code)
    return await service.stats(uow, scope, code, _period(context, period, date, start, end))


@router.get("/units/{code}/people", summary="个人绩效: scores and rates per handling person of a unit (its head, the centres above)")
async def people(
    code: Annotated[str, Path(max_length=64)], uow: UowDep, context: ContextDep, runtime: RuntimeDep, actor: ActorDep,
    period: PeriodQ = "month", date: DateQ = None, start: FromQ = None, end: ToQ = None,
) -> dict:
    if actor.role is not Role.auditor:
        not_found_unless(runtime.org.has_unit(code), f"unit {code}")
    problem = people_problem(runtime.org, actor, code)
    if problem:
        raise Forbidden(f"you may not read the people's figures of {code}: {problem}", code="not-your-people")
    return await service.people(uow, code, _period(context, period, date, start, end))


@router.get("/scores", summary="Composite scores of a county's departments and townships, ranked")
async def scores(
    county: str, uow: UowDep, context: ContextDep, runtime: RuntimeDep, actor: ActorDep, period: PeriodQ = "month",
    date: DateQ = None, start: FromQ = None, end: ToQ = None,
    weights_version: Annotated[int | None, Query(ge=1, le=PG_INT_MAX, description="default: the current weights")] = None,
) -> dict:
    require_county_reader(runtime.org, actor, county)
    return await service.composites(uow, county, _period(context, period, date, start, end), weights_version)


@router.get("/scores/villages", summary="村级: a township's villages scored like townships and ranked among each other")
async def village_scores(
    township: str, uow: UowDep, context: ContextDep, runtime: RuntimeDep, actor: ActorDep, period: PeriodQ = "month",
    date: DateQ = None, start: FromQ = None, end: ToQ = None,
    weights_version: Annotated[int | None, Query(ge=1, le=PG_INT_MAX, description="default: the current weights")] = None,
) -> dict:
    require_code_reader(runtime.org, actor, township)
    if runtime.org.unit(township).kind != "township":
        raise Problem(422, f"{township} is not a township", slug="validation", field="township")
    return await service.village_composites(uow, township, _period(context, period, date, start, end), weights_version)


class PublishBody(BaseModel):
    county: str
    period: Literal["week", "month", "quarter"] = "month"
    day: IsoDate | None = Field(default=None, alias="date", description="a day inside the period; default today")


@router.post("/scores/publish", status_code=201, summary="Publish a county's scores for a period (with the current weights)", dependencies=[permit("scoring.publish")])
async def publish(body: PublishBody, actor: ActorDep, uow: UowDep, context: ContextDep, runtime: RuntimeDep) -> dict:
    if actor.role is not Role.ops:
        require_county_reader(runtime.org, actor, body.county)
    return await service.publish(uow, actor, body.county, _period(context, body.period, body.day, None, None))


@router.get("/scores/published", summary="Scores as published, each with the weights version that made it")
async def published(
    county: str, uow: UowDep, context: ContextDep, runtime: RuntimeDep, actor: ActorDep, period: PeriodQ = "month",
    date: DateQ = None,
) -> dict:
    require_county_reader(runtime.org, actor, county)
    return await service.published_view(uow, county, _period(context, period, date, None, None))


# ------------------------------------------------------------------ weights


class WeightsBody(BaseModel):
    response: Decimal = Field(ge=0, le=1000, max_digits=9, decimal_places=4)
    resolution: Decimal = Field(ge=0, le=1000, max_digits=9, decimal_places=4)
    satisfaction: Decimal = Field(ge=0, le=1000, max_digits=9, decimal_places=4)
    township_rating: Decimal = Field(default=Decimal(0), ge=0, le=1000, max_digits=9, decimal_places=4)
    note: str | None = Field(default=None, max_length=500)


@router.get("/weights", summary="The current composite weights (and the list of versions)")
async def get_weights(uow: UowDep, actor: ActorDep, version: VersionQ = None) -> dict:
    require_role(actor, STAFF_ROLES | {Role.ops}, "read the weights")
    return await service.get_weights(uow, version)


@router.post("/weights", status_code=201, summary="New weights, as a new version (centre supervisor, ops)", dependencies=[permit("scoring.weights")])
async def post_weights(body: WeightsBody, actor: ActorDep, uow: UowDep, runtime: RuntimeDep) -> dict:
    require_rules_scope(runtime.org, actor, None)  # one set of weights ranks every county alike
    values = body.model_dump(exclude={"note"})
    return await service.new_weights(uow, actor, values, body.note)


# ------------------------------------------------------------------ figure formats


class FigureFormatBody(BaseModel):
    county: str = Field(max_length=64, description="the county (or city) whose published figures this sets")
    rounding: Literal["half_up", "truncate"] = Field(description="四舍五入 (half_up) or 截位 (truncate)")
    places: int = Field(ge=0, le=4, description="decimals shown: 95.27% is 2, 98.2% is 1")
    note: str | None = Field(default=None, max_length=500)


@router.get("/figure-formats", summary="How each county publishes its figures (rounding, decimals), and every version")
async def get_figure_formats(uow: UowDep, actor: ActorDep, county: str | None = None) -> dict:
    require_role(actor, STAFF_ROLES | {Role.ops}, "read the figure formats")
    return await service.get_figure_formats(uow, county)


@router.post("/figure-formats", status_code=201, summary="A county's figure format, as a new version (its centre's supervisors, ops)", dependencies=[permit("scoring.figure_format")])
async def post_figure_format(body: FigureFormatBody, actor: ActorDep, uow: UowDep, runtime: RuntimeDep) -> dict:
    require_rules_scope(runtime.org, actor, body.county, field="county")
    return await service.new_figure_format(uow, actor, body.county, body.rounding, body.places, body.note)


# ------------------------------------------------------------------ two-way evaluation


class DepartmentRating(BaseModel):
    case_id: str = Field(max_length=64)
    call_id: str = Field(max_length=64)
    unit: str = Field(max_length=64, description="the department rated")
    rating: Satisfaction | None = None
    score: int | None = Field(default=None, ge=1, le=5)
    comment: str | None = Field(default=None, max_length=1000)


class CallRating(BaseModel):
    case_id: str = Field(max_length=64)
    call_id: str = Field(max_length=64)
    justified: bool
    complete: bool
    comment: str | None = Field(default=None, max_length=1000)


@router.post("/ratings/departments", status_code=201, summary="乡评县: the calling township rates a department it called", dependencies=[permit("scoring.rate_department")])
async def rate_department(body: DepartmentRating, actor: ActorDep, uow: UowDep, context: ContextDep) -> dict:
    return await service.rate_department(
        uow, actor, case_id=body.case_id, call_id=body.call_id, unit=body.unit, rating=body.rating, score=body.score,
        comment=body.comment, now=context.clock.now,
    )


@router.post("/ratings/calls", status_code=201, summary="县评乡: a called department rates the call", dependencies=[permit("scoring.rate_call")])
async def rate_call(body: CallRating, actor: ActorDep, uow: UowDep, context: ContextDep) -> dict:
    return await service.rate_call(
        uow, actor, case_id=body.case_id, call_id=body.call_id, justified=body.justified, complete=body.complete,
        comment=body.comment, now=context.clock.now,
    )


@router.get("/ratings", summary="Two-way ratings of a case or a unit")
async def ratings(uow: UowDep, runtime: RuntimeDep, actor: ActorDep, case_id: str | None = None, unit: str | None = None) -> dict:
    if not case_id and not unit:
        raise Problem(422, "filter by case_id or unit", slug="validation", field="case_id")
    if unit:
        require_code_reader(runtime.org, actor, unit)
    if case_id:
        async with uow:
            await require_visible_case(uow, runtime.org, actor, case_id)
    return {"items": await service.list_unit_ratings(uow, case_id, unit)}


# ------------------------------------------------------------------ grid workers


class GridPointsBody(BaseModel):
    points: dict[str, int]
    caps: dict[str, int]
    note: str | None = Field(default=None, max_length=500)


@router.get("/grid/points", summary="Points per grid activity and monthly caps (current or a version)")
async def get_grid_points(uow: UowDep, actor: ActorDep, version: VersionQ = None) -> dict:
    require_role(actor, STAFF_ROLES | {Role.ops}, "read grid points")
    return await service.get_grid_points(uow, version)


@router.post("/grid/points", status_code=201, summary="New grid points and caps, as a new version", dependencies=[permit("scoring.grid_points")])
async def post_grid_points(body: GridPointsBody, actor: ActorDep, uow: UowDep, runtime: RuntimeDep) -> dict:
    require_rules_scope(runtime.org, actor, None)  # one points table scores every grid worker alike
    return await service.new_grid_points(uow, actor, body.points, body.caps, body.note)


@router.get("/grid/scores", summary="Grid workers' monthly scores, ranked in their township and county")
async def grid_scores(
    uow: UowDep, context: ContextDep, runtime: RuntimeDep, actor: ActorDep,
    month: Annotated[IsoMonth | None, Query(description="YYYY-MM; default this month")] = None,
    county: str | None = None, township: str | None = None, points_version: VersionQ = None,
) -> dict:
    if actor.role is not Role.auditor:  # everyone else: a ranking of their own county
        county = county or county_of_actor(runtime.org, actor)
        require_county_reader(runtime.org, actor, county or "")
        if township:
            require_code_reader(runtime.org, actor, township)
    day = month or local_date(context.clock.now())
    return await service.grid_ranking(uow, period_of("month", day), county, township, points_version)


# ------------------------------------------------------------------ bulletins


@router.get("/bulletins/{county}/{kind}", summary="一周一通报 / 一月一点评 as JSON, CSV or HTML", response_model=None)
async def bulletin(
    county: str, kind: Literal["weekly", "monthly"], uow: UowDep, context: ContextDep, runtime: RuntimeDep,
    actor: ActorDep, date: DateQ = None, format: Literal["json", "csv", "html"] = "json",
) -> dict | Response:
    require_county_reader(runtime.org, actor, county)
    period = period_of("week" if kind == "weekly" else "month", date or local_date(context.clock.now()))
    doc = await service.bulletin(uow, county, period, context.settings.trend_periods)
    return render(doc, f"{county}-{kind}-{period.label}", format)


@router.get("/bulletins/{county}/{kind}/issued", summary="Bulletins as issued on schedule (Monday / the 1st, 08:00), newest first")
async def issued_bulletins(
    county: str, kind: Literal["weekly", "monthly"], uow: UowDep, runtime: RuntimeDep, actor: ActorDep
) -> dict:
    require_county_reader(runtime.org, actor, county)
    rows = await schedule.issued(uow, county, kind)
    return {"county": county, "kind": kind,
            "items": [{"label": r.label, "period_start": r.period_start.isoformat(), "issued_at": r.issued_at.isoformat()}
                      for r in rows]}  # fmt: skip


@router.get("/bulletins/{county}/{kind}/issued/{label}", summary="One bulletin exactly as it was issued", response_model=None)
async def issued_bulletin(
    county: str, kind: Literal["weekly", "monthly"], label: Annotated[str, Path(max_length=32)], uow: UowDep,
    runtime: RuntimeDep, actor: ActorDep, format: Literal["json", "csv", "html"] = "json",
) -> dict | Response:
    require_county_reader(runtime.org, actor, county)
    doc = await schedule.issued_document(uow, county, kind, label)
    if doc is None:
        raise Problem(404, f"no {kind} bulletin {label} issued for {county}", slug="not-issued")
    return render(doc, f"{county}-{kind}-{label}", format)


def render(doc: dict, filename: str, format: str) -> dict | Response:
    """A bulletin as JSON, CSV (a download) or a readable HTML page."""
    if format == "csv":
        return PlainTextResponse(
            render_csv(doc), media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
        )
    if format == "html":
        return HTMLResponse(render_html(doc))
    return doc


# ------------------------------------------------------------------ admin


def _admin(actor: Actor) -> None:
    require_role(actor, PERMISSIONS["scoring.rebuild"].roles, "run admin actions")


@router.post("/admin/rebuild", status_code=202, summary="Rebuild every fact by replaying the topic from the beginning", dependencies=[permit("scoring.rebuild")])
async def start_rebuild(actor: ActorDep, context: ContextDep) -> dict:
    if context.rebuild.running:
        raise Problem(409, "a rebuild is already running", slug="rebuild-running", state="running",
                      allowed_actions=["GET /api/v1/admin/rebuild"], progress=context.rebuild.status)
    return context.rebuild.start()


@router.get("/admin/rebuild", summary="Rebuild progress: events done of the target, events/s, elapsed and remaining seconds")
async def rebuild_status(context: ContextDep, actor: ActorDep) -> dict:
    _admin(actor)
    return context.rebuild.status


class ClockBody(BaseModel):
    now: AwareDatetime | None = Field(description="the time to show; null returns to the system clock")


@router.post("/admin/clock", summary="Demos and tests: set the service's clock (only with SCORING_TEST_CLOCK)", dependencies=[permit("scoring.clock")])
async def set_clock(body: ClockBody, actor: ActorDep, context: ContextDep) -> dict:
    settings = context.settings
    if getattr(settings, "test_clock", None) is None:
        raise Problem(403, "the clock can only be moved when SCORING_TEST_CLOCK is set", slug="clock-fixed")
    context.clock.fixed = body.now
    return {"now": context.clock.now().isoformat()}
