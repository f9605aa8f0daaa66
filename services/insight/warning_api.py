"""预警信息处置 through HTTP and the topic: warnings opened from findings, acknowledged, handled,
closed or sent back; the per-unit figure; the supervision list (督查). The rules are
``services.insight.early_warning``; this module stores, publishes and answers."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import select

from services.insight import early_warning as rules
from services.insight.early_warning import Action, State
from services.insight.models import findings, warnings
from services.insight.service import InsightContext
from shared.actors import ActorDep
from shared.deadlines import warning_acknowledge_due, warning_handle_due
from shared.db import UnitOfWork
from shared.edge import IsoDate
from shared.errors import Forbidden, NotFound
from shared.events import (
    Actor,
    HotspotDetected,
    Role,
    SlaWarningSignal,
    WarningAcknowledged,
    WarningClosed,
    WarningHandled,
    WarningOpened,
    WarningReopened,
    WarningStepData,
    make_event,
    utcnow,
    warned_unit,
)
from shared.http import require_json
from shared.permissions import permit
from shared.scope import CENTRE_ROLES, STAFF_ROLES, area_of, covers, require_role
from shared.service import RuntimeDep, UowDep, service_context
from shared.workdays import LOCAL

router = APIRouter(prefix="/api/v1", tags=["insight"])
ContextDep = Annotated[InsightContext, Depends(service_context)]
NAMESPACE = uuid.UUID("0b6f4c1e-2d7a-4f0e-9e43-7a51c2d8e6b0")  # warning ids: uuid5(finding id)
STEP_EVENTS = {
    Action.acknowledge: WarningAcknowledged, Action.handle: WarningHandled,
    Action.close: WarningClosed, Action.reopen: WarningReopened,
}  # fmt: skip


# --------------------------------------------------------------------------- opened from a finding


async def open_for(uow: UnitOfWork, ctx: InsightContext, hotspot: HotspotDetected) -> None:
    """A finding that warns a unit opens its warning, in the finding's unit of work: stored and
    published as ``warning.opened`` with both deadlines."""
    p = hotspot.payload
    unit = p.warned_unit
    if unit is None:
        return  # nobody to warn: the centre still reads the finding
    opened_at = hotspot.occurred_at
    row = {
        "warning_id": str(uuid.uuid5(NAMESPACE, p.finding_id)), "finding_id": p.finding_id, "unit": unit,
        "county": p.county, "centre": p.centre, "subject_class": p.subject_class, "kind": p.kind,
        "state": State.open.value, "round": 0, "opened_at": opened_at,
        "acknowledge_due_at": warning_acknowledge_due(ctx.calendar, opened_at).due_at,
        "handle_due_at": warning_handle_due(ctx.calendar, opened_at).due_at,
    }  # fmt: skip
    await uow.session.execute(warnings.insert().values(**row))
    uow.emit(make_event(WarningOpened, payload=step_data(row), producer="insight", actor=hotspot.actor, caused_by=hotspot))


def step_data(row: dict[str, Any], *, on_time: bool | None = None, note: str | None = None) -> WarningStepData:
    return WarningStepData(
        warning_id=row["warning_id"], finding_id=row["finding_id"], unit=row["unit"], county=row["county"],
        centre=row["centre"], subject_class=row["subject_class"], state=row["state"], round=row["round"],
        acknowledge_due_at=row["acknowledge_due_at"], handle_due_at=row["handle_due_at"], on_time=on_time, note=note,
    )  # fmt: skip


async def record_cards(uow: UnitOfWork, signals: list[SlaWarningSignal]) -> None:
    """sla's cards on warnings' clocks: each warning keeps the worst (黄牌 / 红牌) and when the
    first red one came; the rule of when a card is due is sla's (the carried deadline)."""
    if not signals:
        return
    ids = sorted({s.payload.warning_id for s in signals})
    rows = {
        r["warning_id"]: dict(r)
        for r in (
            await uow.session.execute(select(warnings.c.warning_id, warnings.c.card, warnings.c.carded_at)
                                      .where(warnings.c.warning_id.in_(ids)).order_by(warnings.c.warning_id).with_for_update())
        ).mappings()
    }  # fmt: skip
    for signal in signals:
        row = rows.get(signal.payload.warning_id)
        if row is None:
            continue  # not one of ours (another county's insight)
        row["card"] = rules.worse_card(row["card"], signal.payload.level)
        if signal.payload.level == "red" and (row["carded_at"] is None or signal.occurred_at < row["carded_at"]):
            row["carded_at"] = signal.occurred_at
    for warning_id, row in rows.items():
        await uow.session.execute(warnings.update().where(warnings.c.warning_id == warning_id)
                                  .values(card=row["card"], carded_at=row["carded_at"]))  # fmt: skip


# --------------------------------------------------------------------------- the steps


def apply_step(row: dict[str, Any], action: Action, actor: Actor, at: datetime, note: str | None, ctx: InsightContext) -> bool | None:
    """The step on the row (in place); whether it met its deadline (acknowledge, handle)."""
    row["state"] = rules.next_state(State(row["state"]), action).value
    if action is Action.acknowledge:
        met = rules.on_time(at, row["acknowledge_due_at"])
        row.update(acknowledged_at=at, acknowledged_by=actor.id[:64], acknowledged_on_time=met)
        return met
    if action is Action.handle:
        met = rules.on_time(at, row["handle_due_at"])
        row.update(handled_at=at, handled_by=actor.id[:64], handled_note=note, handled_count=row["handled_count"] + 1,
                   handled_late=row["handled_late"] or not met)  # fmt: skip
        return met
    if action is Action.close:
        row.update(closed_at=at, closed_by=actor.id[:64])
    else:  # reopen (重办): a new round, a new handling deadline from now
        row.update(round=row["round"] + 1, reopen_note=note, handle_due_at=warning_handle_due(ctx.calendar, at).due_at)
    return None


async def act(uow: UnitOfWork, ctx: InsightContext, org: Any, warning_id: str, action: Action, actor: Actor, note: str | None) -> dict[str, Any]:
    async with uow:
        found = (
            await uow.session.execute(select(warnings).where(warnings.c.warning_id == warning_id).with_for_update())
        ).mappings().first()
        if found is None or not rules.may_read(org, actor, found["unit"]):
            raise NotFound(f"warning {warning_id} not found")
        row = dict(found)
        if not rules.may_act(org, actor, action, row["unit"]):
            who = "the unit warned" if action in rules.UNIT_ACTIONS else "the centre serving the unit"
            raise Forbidden(f"only {who} may {action.value} this warning", code="not-yours")
        at = utcnow()
        met = apply_step(row, action, actor, at, note, ctx)
        await uow.session.execute(warnings.update().where(warnings.c.warning_id == warning_id).values(**row))
        event = make_event(STEP_EVENTS[action], payload=step_data(row, on_time=met, note=note), producer="insight",
                           actor=actor, occurred_at=at)  # fmt: skip
        uow.emit(event)
        await uow.commit()
    return row


# --------------------------------------------------------------------------- HTTP


class Warning(BaseModel):
    warning_id: str
    finding_id: str
    unit: str
    county: str | None
    subject_class: str
    kind: str
    state: str
    round: int
    opened_at: AwareDatetime
    acknowledge_due_at: AwareDatetime
    handle_due_at: AwareDatetime
    acknowledged_at: AwareDatetime | None
    acknowledged_on_time: bool | None
    handled_at: AwareDatetime | None
    handled_note: str | None
    closed_at: AwareDatetime | None
    reopen_note: str | None
    card: Literal["yellow", "red"] | None = Field(description="the worst card sla gave its clocks (黄牌 / 红牌)")
    carded_at: AwareDatetime | None = Field(description="when the first red card came")
    allowed_actions: list[str]


class WarningList(BaseModel):
    items: list[Warning]


class NoteBody(BaseModel):
    note: str = Field(min_length=2, max_length=2000, description="what was done (处置) / why it is not good enough")


def view(org: Any, actor: Actor, row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "allowed_actions": rules.caller_actions(org, actor, State(row["state"]), row["unit"])}


@router.get("/warnings", response_model=WarningList, summary="Early warnings (预警) the caller may read, newest first")
async def list_warnings(
    runtime: RuntimeDep, uow: UowDep, actor: ActorDep,
    state: Annotated[State | None, Query()] = None, limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:  # fmt: skip
    """The unit warned (and units above it) reads its own; a centre or the auditor every warning
    of a unit in its area."""
    require_role(actor, STAFF_ROLES, "read early warnings (预警)")
    org = runtime.org
    query = select(warnings).order_by(warnings.c.opened_at.desc(), warnings.c.warning_id)
    if state is not None:
        query = query.where(warnings.c.state == state.value)
    async with uow:
        rows = [dict(r) for r in (await uow.session.execute(query)).mappings()]
    return {"items": [view(org, actor, r) for r in rows if rules.may_read(org, actor, r["unit"])][:limit]}


@router.get("/warnings/{warning_id}", response_model=Warning, summary="One early warning and what the caller may do")
async def get_warning(runtime: RuntimeDep, uow: UowDep, actor: ActorDep, warning_id: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
    require_role(actor, STAFF_ROLES, "read early warnings (预警)")
    async with uow:
        row = (await uow.session.execute(select(warnings).where(warnings.c.warning_id == warning_id))).mappings().first()
    if row is None or not rules.may_read(runtime.org, actor, row["unit"]):
        raise NotFound(f"warning {warning_id} not found")
    return view(runtime.org, actor, dict(row))


@router.post("/warnings/{warning_id}/acknowledge", response_model=Warning, summary="签收: the unit warned takes the warning",
             dependencies=[permit("insight.warning_acknowledge")])  # fmt: skip
async def acknowledge(runtime: RuntimeDep, ctx: ContextDep, uow: UowDep, actor: ActorDep, warning_id: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
    return view(runtime.org, actor, await act(uow, ctx, runtime.org, warning_id, Action.acknowledge, actor, None))


@router.post("/warnings/{warning_id}/handle", response_model=Warning, summary="处置: the unit reports what it did",
             dependencies=[permit("insight.warning_handle"), Depends(require_json)])  # fmt: skip
async def handle(runtime: RuntimeDep, ctx: ContextDep, uow: UowDep, actor: ActorDep, body: NoteBody,
                 warning_id: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:  # fmt: skip
    return view(runtime.org, actor, await act(uow, ctx, runtime.org, warning_id, Action.handle, actor, body.note))


@router.post("/warnings/{warning_id}/close", response_model=Warning, summary="办结: the centre accepts what was done",
             dependencies=[permit("insight.warning_close")])  # fmt: skip
async def close(runtime: RuntimeDep, ctx: ContextDep, uow: UowDep, actor: ActorDep, warning_id: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
    return view(runtime.org, actor, await act(uow, ctx, runtime.org, warning_id, Action.close, actor, None))


@router.post("/warnings/{warning_id}/reopen", response_model=Warning, summary="退回重办: not good enough, handle it again",
             dependencies=[permit("insight.warning_reopen"), Depends(require_json)])  # fmt: skip
async def reopen(runtime: RuntimeDep, ctx: ContextDep, uow: UowDep, actor: ActorDep, body: NoteBody,
                 warning_id: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:  # fmt: skip
    return view(runtime.org, actor, await act(uow, ctx, runtime.org, warning_id, Action.reopen, actor, body.note))


SUPERVISOR_READERS = CENTRE_ROLES | {Role.auditor}


def _centre_area(org: Any, actor: Actor, what: str) -> str | None:
    require_role(actor, SUPERVISOR_READERS, what)
    return area_of(org, actor)


class UnitFigureOut(BaseModel):
    unit: str
    received: int
    acknowledged_on_time: int
    handled_on_time: int
    closed: int
    reopened: int
    carded: int
    acknowledged_on_time_rate: float | None
    handled_on_time_rate: float | None
    closed_rate: float | None
    reopened_rate: float | None
    carded_rate: float | None


class FigureList(BaseModel):
    since: date
    until: date
    items: list[UnitFigureOut]


@router.get("/warning-figures", response_model=FigureList, summary="预警信息处置 per unit: received, on time, closed, reopened")
async def warning_figures(
    runtime: RuntimeDep, uow: UowDep, actor: ActorDep,
    since: Annotated[IsoDate, Query(description="warnings opened on or after this local day")],
    until: Annotated[IsoDate, Query(description="… and on or before this one")],
) -> dict[str, Any]:  # fmt: skip
    """The warnings opened in the period, per unit of the centre's area; each rate is a share of
    the warnings the unit received."""
    org = runtime.org
    area = _centre_area(org, actor, "read the warning figures (预警信息处置)")
    start = datetime.combine(since, datetime.min.time(), LOCAL)
    end = datetime.combine(until, datetime.max.time(), LOCAL)
    query = select(warnings).where(warnings.c.opened_at >= start, warnings.c.opened_at <= end)
    async with uow:
        rows = [dict(r) for r in (await uow.session.execute(query)).mappings()]
    mine = [r for r in rows if covers(org, area, r["unit"])]
    return {"since": since, "until": until,
            "items": [{**vars(f), **f.rates()} for f in rules.unit_figures(mine)]}  # fmt: skip


class RecurringOut(BaseModel):
    unit: str
    subject_class: str
    findings: int
    kinds: dict[str, int]
    open_warnings: int
    first_detected: date | None
    last_detected: date | None
    case_ids: list[str]


class SupervisionList(BaseModel):
    since: date
    until: date
    items: list[RecurringOut]


@router.get("/supervision", response_model=SupervisionList, summary="督查: each unit's recurring problems, whom to press")
async def supervision(
    runtime: RuntimeDep, uow: UowDep, actor: ActorDep,
    until: Annotated[IsoDate, Query(description="the last day looked at (local)")],
    months: Annotated[int, Query(ge=1, le=24, description="calendar months back, the current one included")] = 3,
) -> dict[str, Any]:  # fmt: skip
    """The findings (persistent, rising, same spot) of the last months per unit warned and
    subject class, with the warnings still open and the evidence cases. The centre's."""
    org = runtime.org
    area = _centre_area(org, actor, "read the supervision list (督查)")
    since = rules.months_back(until, months)
    query = select(findings).where(findings.c.detected_on >= since, findings.c.detected_on <= until)
    async with uow:
        rows = [dict(r) for r in (await uow.session.execute(query)).mappings()]
        ids = [r["finding_id"] for r in rows]
        states = {
            r.finding_id: r.state
            for r in await uow.session.execute(select(warnings.c.finding_id, warnings.c.state).where(warnings.c.finding_id.in_(ids)))
        }
    responsible = lambda row: warned_unit(row["unit"], row["township"])  # noqa: E731
    mine = [r for r in rows if covers(org, area, responsible(r))]
    return {"since": since, "until": until, "items": [vars(e) for e in rules.supervision_list(mine, states, responsible)]}
