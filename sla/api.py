"""Sla's REST API (``/api/v1``): clocks of a case, a unit's lists, the centre's board,
policy and holiday-table administration, and (SLA_TIME_TRAVEL=true only) a movable now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from shared.actors import ActorDep
from shared.case_status import require_visible_case
from shared.scope import STAFF_ROLES, may_see_unit, not_found_unless, require_role, require_rules_scope
from shared.events import FiveMatters, Role, Urgency
from shared.paging import decode_cursor, encode_cursor
from shared.permissions import permit
from shared.problems import Problem
from shared.service import RuntimeDep, UowDep, service_context
from shared.workdays import WorkingCalendar
from sla import repository as repo
from sla.domain import DISPATCH_OWNED_LIMITS, describe, policy_from_limits, policy_limits, remaining
from sla import service
from sla.service import SlaContext, to_domain

router = APIRouter(prefix="/api/v1", tags=["sla"])

ContextDep = Annotated[SlaContext, Depends(service_context)]


# --------------------------------------------------------------------- clocks


class ClockView(BaseModel):
    clock_id: str
    case_id: str
    unit: str | None
    kind: str
    name: str = Field(description="the kind, or 'response' for a county call / whistle (响应)")
    round: int
    state: Literal["running", "paused", "stopped", "breached"]
    started_at: datetime
    due_at: datetime
    stopped_at: datetime | None
    paused_at: datetime | None
    remaining_seconds: int = Field(description="working time left (negative: overdue)")
    remaining_text: str
    overdue: bool
    on_time: bool | None = Field(description="for a stopped clock: stopped by its due time")
    signals_fired: list[str]
    warnings: list[str]
    policy: dict[str, Any]


def _view(row, now: datetime, calendar: WorkingCalendar) -> ClockView:
    clock = to_domain(row)
    left = remaining(clock, now, calendar)
    return ClockView(
        clock_id=row["clock_id"], case_id=row["case_id"], unit=row["unit"], kind=row["kind"], name=row["name"],
        round=row["round"], state=row["state"], started_at=row["started_at"], due_at=row["due_at"],
        stopped_at=row["stopped_at"], paused_at=row["paused_at"], remaining_seconds=int(left.total_seconds()),
        remaining_text=describe(left), overdue=left < timedelta(0),
        on_time=(row["stopped_at"] <= row["due_at"]) if row["stopped_at"] else None,
        signals_fired=list(row["fired"]), warnings=list(row["warnings"]),
        policy={"policy_id": row["policy_id"], "version": row["policy_version"]},
    )


class CaseClocks(BaseModel):
    case_id: str
    now: datetime
    clocks: list[ClockView]


@router.get("/cases/{case_id}/clocks", response_model=CaseClocks, summary="A case's clocks: due times, working time left, state")
async def case_clocks(case_id: str, uow: UowDep, ctx: ContextDep, runtime: RuntimeDep, actor: ActorDep) -> CaseClocks:
    async with uow:
        await require_visible_case(uow, runtime.org, actor, case_id)
        await ctx.refresh(uow)
        rows = await repo.case_clocks(uow.session, case_id)
        calendar = ctx.calendar
    if not rows:
        raise Problem(404, f"no clocks for case {case_id}", slug="no-clocks")
    now = ctx.now()
    return CaseClocks(case_id=case_id, now=now, clocks=[_view(r, now, calendar) for r in rows])


class WarningClocks(BaseModel):
    warning_id: str
    now: datetime
    clocks: list[ClockView] = Field(description="签收 (warning_acknowledge) and 处置 (warning_handle, one per round); case_id holds the warning id")


@router.get("/warnings/{warning_id}/clocks", response_model=WarningClocks,
            summary="An early warning's clocks (预警信息处置): 签收 and 处置 due times, state, cards fired")  # fmt: skip
async def warning_clocks(
    warning_id: Annotated[str, Path(max_length=64)], uow: UowDep, ctx: ContextDep, runtime: RuntimeDep, actor: ActorDep
) -> WarningClocks:
    """Read by whoever may see the unit warned (the unit, a unit above it, its centre, the
    auditor); 404 for anyone else, as for a warning sla has no clocks for."""
    async with uow:
        await ctx.refresh(uow)
        rows = await repo.warning_clocks(uow.session, warning_id)
        calendar = ctx.calendar
    not_found_unless(bool(rows) and may_see_unit(runtime.org, actor, rows[0]["unit"]), f"clocks of warning {warning_id}")
    now = ctx.now()
    return WarningClocks(warning_id=warning_id, now=now, clocks=[_view(r, now, calendar) for r in rows])


class ClockPage(BaseModel):
    unit: str
    view: str
    now: datetime
    items: list[ClockView]
    next_cursor: str | None


@router.get("/units/{unit}/clocks", response_model=ClockPage, summary="A unit's due-soon (黄牌) or overdue (红牌) clocks, paged")
async def unit_clocks(
    unit: str,
    uow: UowDep,
    ctx: ContextDep,
    runtime: RuntimeDep,
    actor: ActorDep,
    view: Annotated[Literal["due_soon", "overdue"], Query(description="due within the yellow window, or past due")] = "due_soon",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> ClockPage:
    not_found_unless(may_see_unit(runtime.org, actor, unit), f"unit {unit} of yours")
    after = decode_cursor(cursor)
    async with uow:
        await ctx.refresh(uow)
        now = ctx.now()
        calendar = ctx.calendar
        if view == "due_soon":
            window = (now, calendar.add_working_days(now, ctx.settings.due_soon_working_days).due_at)
        else:
            window = (None, now)
        rows = await repo.unit_clocks(uow.session, unit, after=window[0], before=window[1], cursor=after, limit=limit + 1)
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1]["due_at"], page[-1]["clock_id"]) if len(rows) > limit else None
    return ClockPage(unit=unit, view=view, now=now, items=[_view(r, now, calendar) for r in page], next_cursor=next_cursor)


class BoardRow(BaseModel):
    unit: str
    yellow: int = Field(description="open clocks due within the yellow window (黄牌)")
    red: int = Field(description="open clocks past due (红牌)")


class Board(BaseModel):
    now: datetime
    units: list[BoardRow]
    totals: BoardRow


@router.get("/board", response_model=Board, summary="The centre's board: yellow and red counts by unit")
async def board(uow: UowDep, ctx: ContextDep, runtime: RuntimeDep, actor: ActorDep) -> Board:
    """Each caller sees the units it may see: a county's centre its county, a township its
    own units, a department itself, the auditor all."""
    require_role(actor, STAFF_ROLES, "see the SLA board")
    async with uow:
        await ctx.refresh(uow)
        now = ctx.now()
        calendar = ctx.calendar
        soon = calendar.add_working_days(now, ctx.settings.due_soon_working_days).due_at
        rows = await repo.board(uow.session, now, soon)
    units = [BoardRow(unit=r.unit, yellow=r.yellow, red=r.red) for r in rows if may_see_unit(runtime.org, actor, r.unit)]
    return Board(now=now, units=units, totals=BoardRow(unit="*", yellow=sum(u.yellow for u in units), red=sum(u.red for u in units)))


# --------------------------------------------------------------------- policies


MAX_WORKING_DAYS = 260  # about a year of working days


class Limits(BaseModel):
    """Limits a policy sets; any left out keep the default (docs/rules.md). The order's own
    deadlines (resolve, return window) are dispatch's and are refused here."""

    model_config = {"extra": "forbid"}

    @model_validator(mode="before")
    @classmethod
    def _not_dispatchs(cls, data: Any) -> Any:
        owned = [key for key in DISPATCH_OWNED_LIMITS if isinstance(data, dict) and key in data]
        if owned:
            raise ValueError(
                f"{', '.join(owned)}: the order's deadlines are set by dispatch, which owns the order "
                "(DISPATCH_RESOLVE_WORKING_DAYS, DISPATCH_RETURN_WINDOW_WORKING_DAYS), and reach SLA on its events; "
                "an SLA policy no longer sets them"
            )
        return data

    # Upper bounds: the longest limit the practice knows is 180 days (long-cycle cases); a year
    # leaves room and keeps every deadline a real date.
    accept_hours: float | None = Field(default=None, gt=0, le=24 * 366)
    sign_minutes: float | None = Field(default=None, gt=0, le=60 * 24 * 366)
    sign_emergency_minutes: float | None = Field(default=None, gt=0, le=60 * 24 * 366)
    first_contact_hours: float | None = Field(default=None, gt=0, le=24 * 366)
    dispatch_working_days: float | None = Field(default=None, gt=0, le=MAX_WORKING_DAYS)
    verify_working_days: float | None = Field(default=None, gt=0, le=MAX_WORKING_DAYS)
    early_warnings: list[Annotated[float, Field(gt=0, lt=1)]] | None = Field(default=None, max_length=10)
    urge_every_working_days: float | None = Field(default=None, ge=0.01, le=MAX_WORKING_DAYS)
    escalate_after_working_days: float | None = Field(default=None, gt=0, le=MAX_WORKING_DAYS)


class PolicyIn(BaseModel):
    policy_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    region: str | None = Field(default=None, max_length=64, description="county code; empty = any")
    category: FiveMatters | None = None
    urgency: Urgency | None = None
    limits: Limits
    effective_from: AwareDatetime | None = Field(default=None, description="cases from this time on use it; default now")
    note: str | None = Field(default=None, max_length=500)


class PolicyView(BaseModel):
    policy_id: str
    version: int
    region: str | None
    category: str | None
    urgency: str | None
    limits: dict[str, Any] = Field(description="as written")
    effective_limits: dict[str, Any] = Field(description="every limit, defaults filled in")
    effective_from: datetime
    created_at: datetime
    created_by: str
    note: str | None


def _policy_view(row) -> PolicyView:
    return PolicyView(
        **{k: row[k] for k in ("policy_id", "version", "region", "category", "urgency", "limits", "effective_from", "created_at", "created_by", "note")},
        effective_limits=policy_limits(policy_from_limits(row["version"], row["limits"])),
    )


@router.post("/policies", response_model=PolicyView, status_code=201, summary="Write a new version of a policy", dependencies=[permit("sla.policy")])
async def create_policy(body: PolicyIn, actor: ActorDep, uow: UowDep, ctx: ContextDep, runtime: RuntimeDep) -> PolicyView:
    require_rules_scope(runtime.org, actor, body.region, field="region")
    limits = body.limits.model_dump(mode="json", exclude_none=True)
    scope = {"region": body.region, "category": body.category.value if body.category else None, "urgency": body.urgency.value if body.urgency else None}
    row = await service.write_policy(uow, ctx, body.policy_id, scope=scope, limits=limits, effective_from=body.effective_from,
                                     created_by=actor.id, note=body.note)  # fmt: skip
    return _policy_view(row)


@router.get("/policies", response_model=list[PolicyView], summary="Every policy version")
async def list_policies(uow: UowDep, actor: ActorDep) -> list[PolicyView]:
    require_role(actor, STAFF_ROLES | {Role.ops}, "read SLA policies")
    async with uow:
        rows = await repo.list_policies(uow.session)
    return [_policy_view(r) for r in rows]


@router.get("/policies/{policy_id}", response_model=PolicyView, summary="A policy: its latest version, or ?version=N")
async def get_policy(policy_id: str, uow: UowDep, actor: ActorDep, version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None) -> PolicyView:
    require_role(actor, STAFF_ROLES | {Role.ops}, "read SLA policies")
    async with uow:
        row = await repo.get_policy(uow.session, policy_id, version)
    if row is None:
        raise Problem(404, f"no policy {policy_id}" + (f" version {version}" if version else ""), slug="no-policy")
    return _policy_view(row)


# --------------------------------------------------------------------- time travel


# Tests and demos move weeks or years, never centuries; a bound keeps now a valid date.
MAX_TRAVEL_SECONDS = 100 * 366 * 86_400


class TimeTravel(BaseModel):
    now: AwareDatetime | None = Field(default=None, description="set the service's now to this moment")
    advance_seconds: float | None = Field(
        default=None, ge=-MAX_TRAVEL_SECONDS, le=MAX_TRAVEL_SECONDS, description="or move it by this much"
    )


class TimeView(BaseModel):
    now: datetime
    offset_seconds: int


@router.post("/admin/time", response_model=TimeView, summary="Move this service's now (SLA_TIME_TRAVEL=true only)", dependencies=[permit("sla.time")])
async def travel(body: TimeTravel, actor: ActorDep, uow: UowDep, ctx: ContextDep) -> TimeView:
    if not ctx.settings.time_travel:
        raise Problem(404, "time travel is off (SLA_TIME_TRAVEL=false)", slug="time-travel-off")
    if (body.now is None) == (body.advance_seconds is None):
        raise Problem(422, "give either now or advance_seconds", slug="validation", field="now")
    async with uow:
        await ctx.refresh(uow)
        if body.now is not None:
            offset = round((body.now - datetime.now(UTC)).total_seconds())
        else:
            offset = round(ctx.offset.total_seconds() + body.advance_seconds)  # type: ignore[operator]
        if abs(offset) > MAX_TRAVEL_SECONDS:
            raise Problem(422, "time travel stays within 100 years of the real now", slug="validation", field="now")
        await repo.set_offset(uow.session, offset)
        uow.after_commit(ctx.wake_ticker)  # every replica's ticker looks at once (it reads the new now)
        await uow.commit()
    ctx.offset = timedelta(seconds=offset)
    return TimeView(now=ctx.now(), offset_seconds=offset)


@router.get("/admin/time", response_model=TimeView, summary="This service's now")
async def get_time(uow: UowDep, ctx: ContextDep, actor: ActorDep) -> TimeView:
    async with uow:
        await ctx.refresh(uow)
    return TimeView(now=ctx.now(), offset_seconds=int(ctx.offset.total_seconds()))
