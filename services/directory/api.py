"""The directory's admin API (``/api/v1``): anyone reads; 综治中心 supervisors and ops change.

Every change answers with the new version (also as ``ETag``); send it back as
``If-Match`` on the next change to be refused (412) rather than overwrite someone else's.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import chinese_calendar

from fastapi import APIRouter, Depends, Header, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from services.directory import domain, service
from services.directory.service import Changed, Current, DirectoryContext
from shared.actors import ActorDep
from shared.events import Role
from shared.http import PG_INT_MAX, require_json
from shared.orgdata import SUBJECT_CLASSES, CatalogueEntry, Kind
from shared.permissions import permit
from shared.problems import Problem
from shared.scope import STAFF_ROLES, require_role, require_rules_scope
from shared.service import UowDep, service_context
from shared.workdays import PACKAGED_CALENDAR, HolidayTable

router = APIRouter(prefix="/api/v1", tags=["organisation directory"])
JsonBody = Depends(require_json)

CODE = r"^[A-Z0-9]+(-[A-Z0-9]+)*$"
UnitCode = Annotated[str, Path(pattern=CODE, max_length=64, description="unit code, e.g. LB-XC-ZJJ")]
UserId = Annotated[str, Path(min_length=1, max_length=128)]
CREATED: dict[int | str, dict] = {201: {"description": "created: there was none by this code"}}
IfMatch = Annotated[str | None, Header(description="the version you read (ETag); a stale one is refused with 412")]


ContextDep = Annotated[DirectoryContext, Depends(service_context)]


# --------------------------------------------------------------------------- shapes


class UnitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str | None = Field(default=None, description="optional; must equal the code in the path")
    name: str = Field(min_length=1, max_length=64)
    short_name: str | None = Field(default=None, max_length=32)
    kind: Kind
    parent: str | None = Field(default=None, description="parent unit code; none only for a city")
    polygon: list[tuple[float, float]] | None = Field(default=None, description="(lat, lng) ring of a place")
    duties: list[str] = Field(default_factory=list, description=f"subject classes: {', '.join(SUBJECT_CLASSES)}")


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, description="optional; must equal the id in the path")
    name: str = Field(min_length=1, max_length=64)
    role: Role
    unit: str | None = None


class CatalogueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: list[CatalogueEntry] = Field(description="the whole dispatch catalogue (派单目录), in order")


def _json(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_defaults=True)


def _tag(response: Response, current: Current) -> None:
    response.headers["ETag"] = current.etag


def _about(current: Current) -> dict[str, Any]:
    return {
        "version": current.version,
        "changed_by": current.changed_by,
        "changed_at": current.changed_at.isoformat(),
        "summary": current.summary,
    }


def _changed(response: Response, changed: Changed, body: dict[str, Any]) -> dict[str, Any]:
    _tag(response, changed.current)
    if changed.created:
        response.status_code = 201
    return {**_about(changed.current), **body}


def _unit_or_404(current: Current, code: str) -> Any:
    if not current.org.has_unit(code):
        raise Problem(404, f"no unit {code} in the directory (version {current.version})", slug="not-in-directory")
    return current.org.unit(code)


# --------------------------------------------------------------------------- the document


def _staff_only(actor, what: str) -> None:
    """The document and its history name the users: staff and ops only. Units, the
    catalogue (派单目录) and who-owns-what answers stay open — a county publishes them so
    citizens know who handles what."""
    require_role(actor, STAFF_ROLES | {Role.ops}, what)


@router.get("/org", summary="The current org document with its version")
async def get_org(ctx: ContextDep, uow: UowDep, response: Response, actor: ActorDep) -> dict[str, Any]:
    _staff_only(actor, "read the org document (it names the users)")
    current = await service.current(ctx, uow)
    _tag(response, current)
    return {**_about(current), "document": current.document}


@router.get("/org/versions", summary="The history of changes, newest first (paged)")
async def list_versions(
    uow: UowDep,
    actor: ActorDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[int | None, Query(ge=1, le=PG_INT_MAX, description="cursor: the `next` of the previous page")] = None,
) -> dict[str, Any]:
    _staff_only(actor, "read the history of the org document")
    rows = await service.history(uow, before=before, limit=limit)
    items = [
        {"version": r.version, "changed_by": r.changed_by, "changed_at": r.changed_at.isoformat(), "summary": r.summary}
        for r in rows
    ]
    more = len(rows) == limit and rows[-1].version > 1
    return {"items": items, "next": rows[-1].version if more else None}


@router.get("/org/versions/{number}", summary="One earlier version of the document")
async def get_version(
    ctx: ContextDep, uow: UowDep, number: Annotated[int, Path(ge=1, le=PG_INT_MAX)], response: Response, actor: ActorDep
) -> dict[str, Any]:
    _staff_only(actor, "read the org document (it names the users)")
    current = await service.version(ctx, uow, number)
    _tag(response, current)
    return {**_about(current), "document": current.document}


# --------------------------------------------------------------------------- units


@router.get("/units", summary="Units, optionally of one kind")
async def list_units(ctx: ContextDep, uow: UowDep, kind: Kind | None = None) -> dict[str, Any]:
    current = await service.current(ctx, uow)
    units = current.org.of_kind(kind) if kind else list(current.org.units)
    return {"version": current.version, "items": [_json(u) for u in units]}


@router.get("/units/{code}", summary="One unit, with the units above it")
async def get_unit(ctx: ContextDep, uow: UowDep, code: UnitCode, response: Response) -> dict[str, Any]:
    current = await service.current(ctx, uow)
    unit = _unit_or_404(current, code)
    _tag(response, current)
    org = current.org
    return {
        "version": current.version,
        "unit": _json(unit),
        "ancestors": [{"code": u.code, "name": u.name, "kind": u.kind} for u in org.ancestors(code)],
        "children": len(org.children(code)),
        "centre": org.centre_of(code),
    }


@router.get("/units/{code}/children", summary="The unit's direct children, in file order")
async def unit_children(ctx: ContextDep, uow: UowDep, code: UnitCode) -> dict[str, Any]:
    current = await service.current(ctx, uow)
    _unit_or_404(current, code)
    return {"version": current.version, "items": [_json(u) for u in current.org.children(code)]}


@router.put("/units/{code}", summary="Create or replace a unit", dependencies=[permit("directory.unit_put"), JsonBody], status_code=200, responses=CREATED)
async def put_unit(
    ctx: ContextDep, uow: UowDep, actor: ActorDep, code: UnitCode, body: UnitIn, response: Response, if_match: IfMatch = None
) -> dict[str, Any]:
    if body.code is not None and body.code != code:
        raise Problem(422, f"code {body.code} in the body differs from {code} in the path", slug="code-mismatch", field="code")
    fields = body.model_dump(mode="json", exclude_none=True, exclude={"code"})
    changed = await service.change(ctx, uow, actor, if_match, lambda doc: domain.put_unit(doc, code, fields))
    return _changed(response, changed, {"unit": _json(changed.current.org.unit(code))})


@router.delete("/units/{code}", summary="Delete a unit nothing refers to any more", dependencies=[permit("directory.unit_delete")])
async def delete_unit(
    ctx: ContextDep, uow: UowDep, actor: ActorDep, code: UnitCode, response: Response, if_match: IfMatch = None
) -> dict[str, Any]:
    changed = await service.change(ctx, uow, actor, if_match, lambda doc: domain.delete_unit(doc, code))
    return _changed(response, changed, {"deleted": code})


# --------------------------------------------------------------------------- users


@router.get("/users/{user_id}", summary="One user")
async def get_user(ctx: ContextDep, uow: UowDep, user_id: UserId, actor: ActorDep) -> dict[str, Any]:
    _staff_only(actor, "read users")
    current = await service.current(ctx, uow)
    try:
        user = current.org.user(user_id)
    except KeyError:
        raise Problem(404, f"no user {user_id} in the directory (version {current.version})", slug="not-in-directory") from None
    return {"version": current.version, "user": _json(user)}


@router.put("/users/{user_id}", summary="Create or replace a user", dependencies=[permit("directory.user_put"), JsonBody], status_code=200, responses=CREATED)
async def put_user(
    ctx: ContextDep, uow: UowDep, actor: ActorDep, user_id: UserId, body: UserIn, response: Response, if_match: IfMatch = None
) -> dict[str, Any]:
    if body.id is not None and body.id != user_id:
        raise Problem(422, f"id {body.id} in the body differs from {user_id} in the path", slug="id-mismatch", field="id")
    fields = body.model_dump(mode="json", exclude_none=True, exclude={"id"})
    changed = await service.change(ctx, uow, actor, if_match, lambda doc: domain.put_user(doc, user_id, fields))
    return _changed(response, changed, {"user": _json(changed.current.org.user(user_id))})


@router.delete("/users/{user_id}", summary="Delete a user", dependencies=[permit("directory.user_delete")])
async def delete_user(
    ctx: ContextDep, uow: UowDep, actor: ActorDep, user_id: UserId, response: Response, if_match: IfMatch = None
) -> dict[str, Any]:
    changed = await service.change(ctx, uow, actor, if_match, lambda doc: domain.delete_user(doc, user_id))
    return _changed(response, changed, {"deleted": user_id})


# --------------------------------------------------------------------------- the dispatch catalogue


@router.get("/catalogue", summary="The dispatch catalogue (派单目录), in order")
async def get_catalogue(ctx: ContextDep, uow: UowDep, response: Response) -> dict[str, Any]:
    current = await service.current(ctx, uow)
    _tag(response, current)
    return {"version": current.version, "entries": [_json(e) for e in current.org.catalogue]}


@router.put("/catalogue", summary="Replace the dispatch catalogue as a whole", dependencies=[permit("directory.catalogue_put"), JsonBody])
async def put_catalogue(
    ctx: ContextDep, uow: UowDep, actor: ActorDep, body: CatalogueIn, response: Response, if_match: IfMatch = None
) -> dict[str, Any]:
    entries = [_json(e) for e in body.entries]
    changed = await service.change(ctx, uow, actor, if_match, lambda doc: domain.replace_catalogue(doc, entries))
    return _changed(response, changed, {"entries": [_json(e) for e in changed.current.org.catalogue]})


@router.get("/resolve", summary="Which unit owns this matter here, and the catalogue line that decided")
async def resolve(
    ctx: ContextDep,
    uow: UowDep,
    subject_class: Annotated[str, Query(description=f"one of {', '.join(SUBJECT_CLASSES)}")],
    area: Annotated[str, Query(description="unit code of the place: a grid, village, township or county")],
    text: Annotated[str | None, Query(max_length=5000, description="title and description: keyword lines apply")] = None,
) -> dict[str, Any]:
    current = await service.current(ctx, uow)
    org = current.org
    if subject_class not in SUBJECT_CLASSES:
        raise Problem(422, f"unknown subject class {subject_class!r}; one of {', '.join(SUBJECT_CLASSES)}", field="subject_class")
    if not org.has_unit(area):
        raise Problem(422, f"no unit {area} in the directory (version {current.version})", field="area")
    try:
        found = domain.resolve(org, subject_class, area, text)
    except LookupError as exc:
        raise Problem(404, str(exc), slug="no-catalogue-entry", subject_class=subject_class, area=area) from None
    owner = org.unit(found.owner)
    return {
        "version": current.version,
        "owner": owner.code,
        "owner_name": owner.name,
        "owner_kind": owner.kind,
        "entry": _json(found.entry),
        "entry_index": found.index,
    }


# --------------------------------------------------------------------------- holiday tables


class HolidayTableIn(BaseModel):
    holidays: list[str] = Field(description="ISO dates of public holidays (放假)")
    workdays: list[str] = Field(default_factory=list, description="ISO dates of make-up working days (调休上班)")


class HolidayTableView(BaseModel):
    year: int
    source: Literal["table", "package", "weekends"]
    holidays: list[str]
    workdays: list[str]
    loaded_at: datetime | None = None
    loaded_by: str | None = None


Year = Annotated[int, Path(ge=2000, le=2100)]


@router.put("/holidays/{year}", response_model=HolidayTableView, summary="Load a year's holiday schedule (wins over the package; every service follows it)", dependencies=[permit("directory.holidays")])
async def put_holidays(year: Year, body: HolidayTableIn, actor: ActorDep, uow: UowDep, ctx: ContextDep) -> HolidayTableView:
    current = await service.current(ctx, uow)
    require_rules_scope(current.org, actor, None)  # the national schedule: the same for every county
    try:
        table = HolidayTable.parse({"year": year, "holidays": body.holidays, "workdays": body.workdays})
    except ValueError as exc:
        raise Problem(422, f"holiday table for {year}: {exc}", slug="bad-holiday-table", field="holidays/workdays") from None
    row = await service.load_holiday_table(ctx, uow, table, actor.id)
    return HolidayTableView(year=year, source="table", holidays=row.holidays, workdays=row.workdays, loaded_at=row.loaded_at, loaded_by=row.loaded_by)


@router.get("/holidays/{year}", response_model=HolidayTableView, summary="A year's schedule and where it comes from")
async def get_holidays(year: Year, uow: UowDep, actor: ActorDep) -> HolidayTableView:
    row = await service.holiday_table(uow, year)
    if row is not None:
        return HolidayTableView(year=year, source="table", holidays=row.holidays, workdays=row.workdays, loaded_at=row.loaded_at, loaded_by=row.loaded_by)
    if PACKAGED_CALENDAR.source(date(year, 6, 1)) == "weekends":
        return HolidayTableView(year=year, source="weekends", holidays=[], workdays=[])
    start, end = date(year, 1, 1), date(year, 12, 31)
    holidays = [d.isoformat() for d in chinese_calendar.get_holidays(start, end, include_weekends=False)]
    workdays = [d.isoformat() for d in chinese_calendar.get_workdays(start, end, include_weekends=True) if d.weekday() >= 5]
    return HolidayTableView(year=year, source="package", holidays=holidays, workdays=workdays)
