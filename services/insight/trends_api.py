"""Insight's trends and monthly theme (每月一题) over HTTP, scoped like the findings.

A centre reads the area it serves (or any place inside it, ``?area=``), a township or village
its own places, the auditor its area; a department the appeals its own unit handled. A place
outside the caller's area answers 404 like one that does not exist.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from sqlalchemy import select

from services.insight import trends as rules
from services.insight.handlers import as_appeal
from services.insight.models import appeals
from shared.actors import ActorDep
from shared.edge import IsoDate
from shared.scope import DEPARTMENT_ROLES, STAFF_ROLES, area_of, covers, not_found_unless, require_role
from shared.service import RuntimeDep, UowDep
from shared.workdays import LOCAL

router = APIRouter(prefix="/api/v1", tags=["insight"])

# The column that holds an area of each kind (a city has none: it is everything).
AREA_COLUMNS = {"county": "county", "township": "township", "village": "village", "grid": "grid"}
PLACE_KINDS = frozenset({"city", *AREA_COLUMNS})


def scope_of(org: Any, actor: Any, requested: str | None) -> tuple[str, str]:
    """(column, code) of the appeals the caller asks about: a department its own unit; anyone
    else ``requested`` (default: the area it serves), which must lie inside that area."""
    require_role(actor, STAFF_ROLES, "read trends (趋势研判)")
    if actor.role in DEPARTMENT_ROLES:
        not_found_unless(actor.org_unit is not None and requested in (None, actor.org_unit), f"area {requested}")
        return "unit", actor.org_unit
    own = area_of(org, actor)
    code = requested or own
    not_found_unless(code is not None and covers(org, own, code) and org.unit(code).kind in PLACE_KINDS, f"area {code}")
    kind = org.unit(code).kind
    return ("all" if kind == "city" else AREA_COLUMNS[kind]), code  # type: ignore[return-value]


async def load(uow: Any, column: str, code: str, since: date, until: date) -> list[Any]:
    query = select(appeals).where(appeals.c.received_on >= since, appeals.c.received_on <= until)
    if column != "all":
        query = query.where(appeals.c[column] == code)
    async with uow:
        rows = (await uow.session.execute(query)).mappings().all()
    return [a for row in rows if (a := as_appeal(dict(row))) is not None]


def _day(on: date | None) -> date:
    return on or datetime.now(LOCAL).date()


def _names(org: Any, codes: set[str]) -> dict[str, str]:
    return {code: org.unit(code).name for code in codes if code and org.has_unit(code)}


@router.get("/trends", summary="Appeals per subject class over working-day weeks or months, against the area's own history")
async def get_trends(
    runtime: RuntimeDep, uow: UowDep, actor: ActorDep,
    area: Annotated[str | None, Query(max_length=64, description="a place inside the caller's area; default: that area")] = None,
    grain: Annotated[Literal["week", "month"], Query(description="working-day weeks (5 working days) or calendar months")] = "week",
    periods: Annotated[int, Query(ge=2, le=24)] = 8,
    on: Annotated[IsoDate | None, Query(description="the day the latest period ends on; default today (Asia/Shanghai)")] = None,
) -> dict[str, Any]:  # fmt: skip
    org = runtime.org
    column, code = scope_of(org, actor, area)
    calendar = runtime.context.calendar
    spans = rules.periods_of(grain, calendar, _day(on), periods)
    # An appeal of a day off before the first period counts on its first working day: read a week more.
    rows = await load(uow, column, code, spans[0].start - timedelta(days=10), spans[-1].end)
    found = rules.trends(rows, spans, calendar)
    return {
        "area": code, "area_name": _names(org, {code}).get(code, code), "grain": grain,
        "periods": [p.__dict__ for p in spans],
        "subjects": [t.__dict__ for t in found],
    }  # fmt: skip


@router.get("/theme", summary="The monthly theme (每月一题) proposed from the data, with its evidence and the runners-up")
async def get_theme(
    runtime: RuntimeDep, uow: UowDep, actor: ActorDep,
    area: Annotated[str | None, Query(max_length=64)] = None,
    on: Annotated[IsoDate | None, Query(description="the window ends on this day's last working day; default today")] = None,
    window_days: Annotated[int, Query(ge=5, le=60, description="working days of the month's window")] = 20,
    history_days: Annotated[int, Query(ge=5, le=250, description="working days before it that make the expectation")] = 60,
) -> dict[str, Any]:  # fmt: skip
    org = runtime.org
    column, code = scope_of(org, actor, area)
    calendar = runtime.context.calendar
    today = _day(on)
    last = rules.last_workday(calendar, today)
    first = rules.workdays_ending(calendar, last, window_days + history_days)[0]
    rows = await load(uow, column, code, first - timedelta(days=10), last)
    places = {a.village for a in rows} | {a.township for a in rows}
    theme = rules.propose_theme(rows, today, calendar, window_days=window_days, history_days=history_days,
                                names=_names(org, {p for p in places if p}))  # fmt: skip
    return {
        "area": code, "area_name": _names(org, {code}).get(code, code), "window_start": theme.window_start,
        "window_end": theme.window_end, "window_days": theme.window_days, "history_days": theme.history_days,
        "total": theme.total, "proposal": _candidate(theme.proposal, org), "runners_up": [_candidate(c, org) for c in theme.runners_up],
    }  # fmt: skip


def _candidate(c: rules.ThemeCandidate | None, org: Any) -> dict[str, Any] | None:
    if c is None:
        return None
    doc = dict(c.__dict__)
    names = _names(org, {code for code, _ in c.top_places})
    doc["top_places"] = [{"code": code, "name": names.get(code, code), "appeals": n} for code, n in c.top_places]
    doc["sample_case_ids"] = list(c.sample_case_ids)
    return doc
