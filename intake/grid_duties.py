"""Grid duties (网格职责): the household register (结一联十, 困难/重点监测), visits, the grid's
mailbox (定时开箱取信), proxy services (帮办代办), and the warnings for missed duties.

The register lives here, with intake, not in the org directory: a household is residents'
data (PIPL) kept as a ref in the village's own register, and its organiser (联户长) is a
resident, not staff who signs in — the directory holds units and staff. Visits, openings
and proxy services are ``grid.activity`` events (``intake.grid._record``) that scoring
counts; the missed-duty rules are the pure functions of ``intake.grid_rules``, and a missed
duty is a ``grid.warning`` event that notify delivers to the grid and its village.

Scope: a grid worker their own grid (from the sign-in); village and township staff and
heads, and centres, the grids in their area; the auditor reads all.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import AwareDatetime, BaseModel, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from intake import grid_rules
from intake.api import JsonBody
from intake.grid import Recorded, _record, grid_worker
from intake.service import refused_field
from intake.models import grid_duties, grid_household_versions, grid_households, grid_mailbox_schedules, grid_warnings
from shared.edge import MonthText
from shared.actors import ActorDep
from shared.events import Actor, GridWarning, GridWarningData, Role, make_event, system_actor, utcnow
from shared.orgdata import OrgDirectory
from shared.permissions import permit
from shared.db import transactional
from shared.errors import Conflict, NotFound
from shared.scope import CENTRE_ROLES, area_of, covers, require_role
from shared.service import UowDep

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/grid", tags=["grid workers"])

#: Who reads a grid's register and duties: its worker, the village and township above it,
#: the centres serving them, the auditor.
READERS = frozenset({Role.grid_worker, Role.village_staff, Role.township_staff, Role.township_head, Role.auditor}) | CENTRE_ROLES
# A record dated more than this ahead of the server's clock is a wrong phone clock, not a visit.
CLOCK_SKEW = timedelta(minutes=5)

Month = Annotated[MonthText, Query(description="YYYY-MM")]


# ------------------------------------------------------------------ scope


def may_see_grid(org: OrgDirectory, actor: Actor, grid: str) -> bool:
    """A grid worker their own grid; other readers the grids in their area; the auditor all."""
    if actor.role is Role.auditor:
        return org.has_unit(grid)
    if actor.role is Role.grid_worker:
        return actor.org_unit == grid
    return actor.role in READERS and covers(org, area_of(org, actor), grid)


def visible_grid(org: OrgDirectory, actor: Actor, grid: str) -> None:
    """A grid the caller may not see answers like one that does not exist."""
    if not org.has_unit(grid) or org.unit(grid).kind != "grid" or not may_see_grid(org, actor, grid):
        raise NotFound(f"no grid {grid}", code="not-found")


def _not_future(at: datetime | None, field: str) -> datetime:
    now = utcnow()
    if at is None:
        return now
    if at > now + CLOCK_SKEW:
        raise refused_field(field, f"{field} is in the future")
    return at


# ------------------------------------------------------------------ the register (结一联十)


class HouseholdEntry(BaseModel):
    grid: str = Field(min_length=1, max_length=64, description="the grid the household is in")
    keeper_id: str | None = Field(default=None, max_length=128, description="the grid worker who keeps it (default: a worker registering it)")
    organiser_id: str | None = Field(default=None, max_length=128, description="its 联户长 (结一联十: about ten households each)")
    difficult: bool = Field(default=False, description="困难户: visited at least monthly")
    monitored: bool = Field(default=False, description="重点监测户: visited at least monthly")
    effective_at: AwareDatetime | None = Field(
        default=None, description="when the change took effect (default: now); not before the household's last change, not in the future"
    )


def _household(row: Any) -> dict[str, Any]:
    return {
        "household_ref": row.household_ref, "grid": row.grid, "keeper_id": row.keeper_id, "organiser_id": row.organiser_id,
        "difficult": row.difficult, "monitored": row.monitored, "updated_by": row.updated_by, "updated_at": row.updated_at,
    }  # fmt: skip


@router.put("/register/{household_ref}", dependencies=[permit("intake.grid_register"), JsonBody], summary="Put a household on a grid's register (结一联十)")
async def put_household(household_ref: Annotated[str, Path(min_length=1, max_length=64)], body: HouseholdEntry, uow: UowDep, request: Request, actor: ActorDep) -> dict[str, Any]:
    return _household(await register_household(uow, request.app.state.runtime.org, actor, household_ref, body))


@transactional
async def register_household(uow: Any, org: OrgDirectory, actor: Actor, household_ref: str, body: HouseholdEntry) -> Any:
    """Put the household on the grid's register as a new version of its history (nothing
    new when nothing changed); the register's row as it now stands is returned."""
    if not org.has_unit(body.grid) or org.unit(body.grid).kind != "grid" or not may_see_grid(org, actor, body.grid):
        raise refused_field("grid", f"{body.grid} is not a grid you keep the register of")
    keeper = body.keeper_id or (actor.id if actor.role is Role.grid_worker else None)
    effective = _not_future(body.effective_at, "effective_at")
    session = uow.session
    old = (await session.execute(select(grid_households).where(grid_households.c.household_ref == household_ref).with_for_update())).first()
    if old is not None and not may_see_grid(org, actor, old.grid):
        raise Conflict(f"household {household_ref} is on another grid's register", code="conflict")
    if body.organiser_id:
        kept = (await session.execute(
            select(func.count()).select_from(grid_households)
            .where(grid_households.c.organiser_id == body.organiser_id, grid_households.c.household_ref != household_ref)
        )).scalar_one()  # fmt: skip
        if kept >= grid_rules.ORGANISER_MAX_HOUSEHOLDS:
            message = f"{body.organiser_id} already keeps {kept} households (结一联十: about ten, at most {grid_rules.ORGANISER_MAX_HOUSEHOLDS})"
            raise refused_field("organiser_id", message)
    entry = {"grid": body.grid, "keeper_id": keeper, "organiser_id": body.organiser_id, "difficult": body.difficult,
             "monitored": body.monitored}  # fmt: skip
    if old is not None and all(getattr(old, name) == entry[name] for name in grid_rules.REGISTER_FIELDS):
        return old  # nothing changed: no new version, the last change stands
    await _add_version(session, household_ref, entry, actor.id, effective)
    values = {**entry, "updated_by": actor.id, "updated_at": effective}
    statement = pg_insert(grid_households).values(household_ref=household_ref, **values)
    row = (await session.execute(
        statement.on_conflict_do_update(index_elements=["household_ref"], set_=values).returning(*grid_households.c)
    )).first()  # fmt: skip
    return row


async def _add_version(session: Any, household_ref: str, entry: dict[str, Any], by: str, effective: datetime) -> None:
    """Append the household's new version to its history. History is appended, never
    rewritten: a change dated before the household's last one is refused (422)."""
    last = (await session.execute(
        select(func.max(grid_household_versions.c.effective_at)).where(grid_household_versions.c.household_ref == household_ref)
    )).scalar_one()  # fmt: skip
    if last is not None and effective < last:
        raise refused_field("effective_at", f"effective_at is before the household's last change ({last.isoformat()})")
    await session.execute(grid_household_versions.insert().values(household_ref=household_ref, changed_by=by, effective_at=effective, **entry))


def _versions(rows: Any) -> list[grid_rules.Version]:
    return [grid_rules.Version(r.household_ref, r.grid, r.keeper_id, r.organiser_id, r.difficult, r.monitored, r.changed_by, r.effective_at)
            for r in rows]  # fmt: skip


@router.get("/register/{household_ref}/history", summary="A household's register history: who changed its grid, keeper, organiser or flags, when, from what to what")
async def household_history(household_ref: Annotated[str, Path(min_length=1, max_length=64)], uow: UowDep, request: Request, actor: ActorDep) -> dict[str, Any]:
    return await history_of(uow, request.app.state.runtime.org, actor, household_ref)


async def history_of(uow: Any, org: OrgDirectory, actor: Actor, household_ref: str) -> dict[str, Any]:
    """Read by whoever reads the household's grid now (its worker, the village and township
    above, their centres, the auditor); the versions of its time on a grid the reader may
    not see are left out (another township's keepers are not this one's to read)."""
    require_role(actor, READERS, "read a household's register history")
    async with uow:
        current = (await uow.session.execute(select(grid_households).where(grid_households.c.household_ref == household_ref))).first()
        rows = (await uow.session.execute(
            select(grid_household_versions).where(grid_household_versions.c.household_ref == household_ref)
            .order_by(grid_household_versions.c.effective_at, grid_household_versions.c.id)
        )).all()  # fmt: skip
    if current is None or not may_see_grid(org, actor, current.grid):
        raise NotFound(f"no household {household_ref}", code="not-found")
    versions = _versions(rows)
    entries = [entry for version, entry in zip(versions, grid_rules.changes(versions), strict=True) if may_see_grid(org, actor, version.grid)]
    return {"household_ref": household_ref, "grid": current.grid, "history": entries}


@router.get("/register", summary="A grid's household register: keepers, organisers, flags")
async def get_register(grid: Annotated[str, Query(max_length=64)], uow: UowDep, request: Request, actor: ActorDep) -> dict[str, Any]:
    require_role(actor, READERS, "read a grid's register")
    visible_grid(request.app.state.runtime.org, actor, grid)
    async with uow:
        rows = (await uow.session.execute(
            select(grid_households).where(grid_households.c.grid == grid).order_by(grid_households.c.household_ref)
        )).all()  # fmt: skip
    organisers = Counter(row.organiser_id for row in rows if row.organiser_id)
    return {
        "grid": grid,
        "households": [_household(row) for row in rows],
        "organisers": [{"organiser_id": o, "households": n} for o, n in sorted(organisers.items())],
        "flagged": sum(1 for row in rows if row.difficult or row.monitored),
    }


# ------------------------------------------------------------------ visits, mailbox, proxy services


class Visit(BaseModel):
    household_ref: str = Field(min_length=1, max_length=64)
    visited_at: AwareDatetime | None = Field(default=None, description="when (default: now)")


@router.post("/visits", status_code=201, response_model=Recorded, dependencies=[permit("intake.grid_visit"), JsonBody], summary="Log a household visit (入户走访)")
async def log_visit(body: Visit, uow: UowDep, request: Request, actor: ActorDep) -> Recorded:
    worker = grid_worker(request, actor)
    at = _not_future(body.visited_at, "visited_at")
    detail = await visit_detail(uow, worker, body.household_ref)
    return await _record(uow, worker, "visit", detail, at=at, duty_subject=body.household_ref, keep=True)


async def visit_detail(uow: Any, worker: Actor, household_ref: str) -> dict[str, Any]:
    """A worker visits the households on their own grid's register (a flagged one's visit is the duty)."""
    async with uow:
        row = (await uow.session.execute(select(grid_households).where(grid_households.c.household_ref == household_ref))).first()
    if row is None or row.grid != worker.org_unit:
        raise NotFound(f"no household {household_ref} on the register of {worker.org_unit}", code="not-found")
    return {"household_ref": row.household_ref, "flagged": bool(row.difficult or row.monitored)}


class MailboxOpening(BaseModel):
    opened_at: AwareDatetime | None = Field(default=None, description="when (default: now)")
    letters: int = Field(ge=0, le=10_000, description="letters taken out (each one worth an appeal is filed as one)")


@router.post("/mailbox/openings", status_code=201, response_model=Recorded, dependencies=[permit("intake.grid_mailbox_open"), JsonBody], summary="The grid's mailbox opened (开箱取信)")
async def open_mailbox(body: MailboxOpening, uow: UowDep, request: Request, actor: ActorDep) -> Recorded:
    worker = grid_worker(request, actor)
    at = _not_future(body.opened_at, "opened_at")
    return await _record(uow, worker, "mailbox_opened", {"letters": body.letters}, at=at, keep=True)


class MailboxSchedule(BaseModel):
    weekdays: list[int] = Field(min_length=1, max_length=7, description="ISO weekdays the mailbox is opened: 1 = Monday … 7 = Sunday")

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, value: list[int]) -> list[int]:
        if any(day < 1 or day > 7 for day in value):
            raise ValueError("weekdays are 1 (Monday) … 7 (Sunday)")
        return sorted(set(value))


@router.put("/mailbox/schedules/{grid}", dependencies=[permit("intake.grid_mailbox_schedule"), JsonBody], summary="When a grid's mailbox is opened (定时开箱)")
async def put_schedule(grid: Annotated[str, Path(max_length=64)], body: MailboxSchedule, uow: UowDep, request: Request, actor: ActorDep) -> dict[str, Any]:
    visible_grid(request.app.state.runtime.org, actor, grid)
    values = {"weekdays": body.weekdays, "updated_by": actor.id, "updated_at": func.now()}
    async with uow:
        await uow.session.execute(
            pg_insert(grid_mailbox_schedules).values(grid=grid, **values).on_conflict_do_update(index_elements=["grid"], set_=values)
        )
        await uow.commit()
    return {"grid": grid, "weekdays": body.weekdays, "updated_by": actor.id}


@router.get("/services/catalogue", summary="The proxy-service catalogue (帮办代办事项: 4 classes, 50 items; names illustrative)")
async def service_catalogue(actor: ActorDep) -> dict[str, Any]:
    require_role(actor, READERS, "read the proxy-service catalogue")
    return grid_rules.catalogue_document()


class ProxyService(BaseModel):
    item: str = Field(min_length=1, max_length=16, description="catalogue item code, e.g. PUB-01")
    household_ref: str | None = Field(default=None, max_length=64, description="for whom, when on the register")
    done_at: AwareDatetime | None = Field(default=None, description="when (default: now)")


@router.post("/services", status_code=201, response_model=Recorded, dependencies=[permit("intake.grid_service"), JsonBody], summary="A proxy service done on the spot (帮办代办)")
async def log_service(body: ProxyService, uow: UowDep, request: Request, actor: ActorDep) -> Recorded:
    worker = grid_worker(request, actor)
    detail = service_detail(body.item, body.household_ref)
    at = _not_future(body.done_at, "done_at")
    return await _record(uow, worker, "proxy_service", detail, at=at, duty_subject=detail["item"], keep=True)


def service_detail(code: str, household_ref: str | None) -> dict[str, Any]:
    """A proxy service is an item of the catalogue (``grid_rules.catalogue``), for a household when on the register."""
    item = grid_rules.catalogue().get(code)
    if item is None:
        raise refused_field("item", f"{code} is not an item of the proxy-service catalogue")
    detail = {"item": item.code, "class": item.cls, "name": item.name}
    if household_ref:
        detail["household_ref"] = household_ref
    return detail


# ------------------------------------------------------------------ a grid's month, and missed duties


async def _month_facts(session: Any, grids: list[str], month: str) -> tuple[dict, dict, dict]:
    """Per grid: its households, its schedule (weekdays), its duty rows of the month."""
    start, end = grid_rules.month_bounds(month)
    # The register as the month had it (its history), not as it stands today.
    v = grid_household_versions
    ever_here = select(v.c.household_ref).where(v.c.grid.in_(grids), v.c.effective_at < end)
    rows = await session.execute(
        select(v).where(v.c.household_ref.in_(ever_here), v.c.effective_at < end).order_by(v.c.household_ref, v.c.effective_at, v.c.id)
    )
    households: dict[str, list[grid_rules.Household]] = {g: [] for g in grids}
    for household in grid_rules.households_in_month(_versions(rows), month):
        if household.grid in households:
            households[household.grid].append(household)
    schedules = {row.grid: list(row.weekdays) for row in await session.execute(
        select(grid_mailbox_schedules).where(grid_mailbox_schedules.c.grid.in_(grids)))}  # fmt: skip
    duties: dict[str, list[Any]] = {g: [] for g in grids}
    for row in await session.execute(
        select(grid_duties).where(grid_duties.c.grid.in_(grids), grid_duties.c.at >= start, grid_duties.c.at < end)
    ):
        duties[row.grid].append(row)
    return households, schedules, duties


def _missed(households: list[grid_rules.Household], weekdays: list[int], rows: list[Any], month: str, now: datetime) -> dict[str, list]:
    visits = [(row.subject, row.at) for row in rows if row.kind == "visit"]
    openings = [row.at for row in rows if row.kind == "mailbox_opened"]
    return {
        "visits": grid_rules.missed_visits(households, visits, month) if grid_rules.month_ended(month, now) else [],
        "openings": grid_rules.missed_openings(weekdays, openings, month, until=now),
    }


@router.get("/duties", summary="A grid's month: flagged households and their visits, mailbox openings, proxy services")
async def grid_month(grid: Annotated[str, Query(max_length=64)], month: Month, uow: UowDep, request: Request, actor: ActorDep) -> dict[str, Any]:
    require_role(actor, READERS, "read a grid's duties")
    visible_grid(request.app.state.runtime.org, actor, grid)
    async with uow:
        households, schedules, duties = await _month_facts(uow.session, [grid], month)
    rows, weekdays, now = duties[grid], schedules.get(grid, []), utcnow()
    visited = Counter(row.subject for row in rows if row.kind == "visit")
    missed = _missed(households[grid], weekdays, rows, month, now)
    return {
        "grid": grid, "month": month, "month_ended": grid_rules.month_ended(month, now),
        "flagged_households": [
            {"household_ref": h.ref, "keeper_id": h.keeper_id, "difficult": h.difficult, "monitored": h.monitored, "visits": visited[h.ref]}
            for h in households[grid] if h.flagged
        ],
        "visits_missed": [h.ref for h in missed["visits"]],
        "mailbox": {
            "weekdays": weekdays,
            "openings": [{"opened_at": row.at, "letters": row.detail.get("letters")} for row in rows if row.kind == "mailbox_opened"],
            "missed_days": [day.isoformat() for day in missed["openings"]],
        },
        "proxy_services": dict(sorted(Counter(row.detail.get("class") for row in rows if row.kind == "proxy_service").items())),
    }  # fmt: skip


class Check(BaseModel):
    month: MonthText = Field(description="the month to check, YYYY-MM (begun by now)")


async def check_grids(uow: Any, org: OrgDirectory, grids: list[str], month: str, now: datetime) -> list[dict[str, Any]]:
    """Every flagged household not visited in ``month`` (once the month is over) and every
    scheduled mailbox day of it not opened (once the day is over) becomes one ``grid.warning``
    — once, however often this runs (``grid_warnings``); returns the new ones."""
    raised: list[dict[str, Any]] = []
    async with uow:
        session = uow.session
        households, schedules, duties = await _month_facts(session, grids, month)
        for grid in grids:
            missed = _missed(households[grid], schedules.get(grid, []), duties[grid], month, now)
            found = [("visit_missed", h.ref, h.keeper_id) for h in missed["visits"]]
            found += [("mailbox_missed", day.isoformat(), None) for day in missed["openings"]]
            for kind, subject, keeper in found:
                event = make_event(GridWarning, producer="intake", actor=system_actor("intake"), payload=GridWarningData(
                    kind=kind, grid=grid, village=org.nearest(grid, "village"), township=org.township_of(grid),
                    worker_id=keeper, subject=subject, period=month,
                ))  # fmt: skip
                new = (await session.execute(
                    pg_insert(grid_warnings).values(event_id=event.id, kind=kind, grid=grid, subject=subject, period=month)
                    .on_conflict_do_nothing().returning(grid_warnings.c.event_id)
                )).first()  # fmt: skip
                if new is not None:
                    uow.emit(event)
                    raised.append({"event_id": str(event.id), **event.payload.model_dump(mode="json")})
        await uow.commit()
    return raised


@router.post("/checks", dependencies=[permit("intake.grid_check"), JsonBody], summary="Warn the grids of the caller's area of duties missed in a month")
async def check_month(body: Check, uow: UowDep, request: Request, actor: ActorDep) -> dict[str, Any]:
    """Ops, or a centre's supervisor for its area, on demand; ``GridChecker`` runs the same
    check on a schedule. A month not begun yet has nothing to miss."""
    grids, raised = await check_area(uow, request.app.state.runtime.org, actor, body.month)
    return {"month": body.month, "grids_checked": len(grids), "warnings": raised}


async def check_area(uow: Any, org: OrgDirectory, actor: Actor, month: str) -> tuple[list[str], list[dict[str, Any]]]:
    """``check_grids`` over the grids of the caller's area (every grid for ops): the grids
    checked and the warnings raised."""
    now = utcnow()
    if grid_rules.month_bounds(month)[0] > now:
        raise refused_field("month", f"{month} has not begun")
    area = None if actor.role is Role.ops else area_of(org, actor)
    if actor.role is not Role.ops and area is None:
        grids: list[str] = []
    else:
        grids = [u.code for u in org.of_kind("grid") if area is None or covers(org, area, u.code)]
    return grids, await check_grids(uow, org, grids, month, now)


class GridChecker:
    """Runs ``check_grids`` over every grid, for the month before and the month so far, every
    ``minutes`` (the first run one interval after start): the missed mailbox days warned the
    day after, the missed visits when the month is over. Every replica runs it; the warnings
    table makes a duty warned once."""

    def __init__(self, minutes: float) -> None:
        self.runtime: Any = None
        self.minutes = minutes
        self._task: asyncio.Task | None = None

    def start(self, runtime: Any) -> None:
        """Built with the (frozen) context, started with the runtime it checks through."""
        self.runtime = runtime
        if self.minutes > 0:
            self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def run_once(self) -> list[dict[str, Any]]:
        now = utcnow()
        org = self.runtime.org
        grids = [u.code for u in org.of_kind("grid")]
        this_month = grid_rules.month_of(now)
        last_month = grid_rules.month_of(grid_rules.month_bounds(this_month)[0] - timedelta(days=1))
        raised = []
        for month in (last_month, this_month):
            raised += await check_grids(self.runtime.uow(), org, grids, month, now)
        return raised

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.minutes * 60)
            try:
                raised = await self.run_once()
                if raised:
                    log.info("grid check: %d missed duties warned", len(raised))
            except Exception:  # the database or broker away: the next run tries again
                log.exception("grid check failed; it runs again in %s minutes", self.minutes)
