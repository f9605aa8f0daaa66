"""Grid workers' own work (网格员): patrols, household updates, logins.

Each is a ``grid.activity`` event that scoring turns into the monthly grid-worker score;
reports (and reports solved on the spot) come through ``POST /api/v1/appeals`` with a
``reporter_id``. The worker and the grid are who signs in (``shared.actors``), never what a
body says: a worker cannot log activity for someone else or another grid.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import AwareDatetime, BaseModel, Field, model_validator
from sqlalchemy import insert

from intake.api import JsonBody
from intake.models import grid_duties
from intake.service import refused_field
from shared.actors import ActorDep
from shared.events import Actor, GridActivity, GridActivityData, Role, make_event
from shared.permissions import permit
from shared.errors import Forbidden
from shared.scope import require_role
from shared.geo import haversine_m
from shared.service import UowDep

router = APIRouter(prefix="/api/v1/grid", tags=["grid workers"])

# The longest patrol (巡查) believed: a grid is a village or a community of a few square
# kilometres, walked or ridden on an e-bike; 100 km is a whole working day at e-bike pace
# (8 h × 12 km/h), several times any real round. A longer route is a broken GPS track or a
# made-up one, and patrols earn points.
MAX_PATROL_M = 100_000


class Patrol(BaseModel):
    started_at: AwareDatetime
    ended_at: AwareDatetime
    route: list[tuple[float, float]] = Field(default_factory=list, max_length=5000, description="[[lat, lng], …] in order")

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> Patrol:
        if self.ended_at <= self.started_at:
            raise ValueError("ended_at must be after started_at")
        return self


class HouseholdUpdate(BaseModel):
    household_ref: str = Field(min_length=1, max_length=64, description="the household's id in the grid register")
    fields: list[str] = Field(min_length=1, max_length=50, description="which fields changed (values stay in the register)")


def grid_worker(request: Request, actor: Actor) -> Actor:
    """The signed-in grid worker, whose unit is a grid of the directory."""
    require_role(actor, (Role.grid_worker,), "log grid work")
    org = request.app.state.runtime.org
    if actor.org_unit is None or not org.has_unit(actor.org_unit) or org.unit(actor.org_unit).kind != "grid":
        raise Forbidden("a grid worker signs in with the grid they serve", code="no-grid")
    return actor


class Recorded(BaseModel):
    event_id: str
    kind: str
    detail: dict[str, Any]


def route_length_m(route: list[tuple[float, float]]) -> float:
    return sum(haversine_m(*a, *b) for a, b in zip(route, route[1:], strict=False))


ActivityKind = Literal["patrol", "info_update", "login", "visit", "mailbox_opened", "proxy_service"]


async def _record(
    uow: UowDep, worker: Actor, kind: ActivityKind, detail: dict[str, Any], at: datetime | None = None,
    *, duty_subject: str | None = None, keep: bool = False,
) -> Recorded:
    """One grid.activity event; with ``keep``, also the row in ``grid_duties`` that the
    missed-duty rules read (visits, mailbox openings, proxy services), in the same commit."""
    event = make_event(
        GridActivity,
        producer="intake",
        actor=worker,
        occurred_at=at,
        payload=GridActivityData(worker_id=worker.id, grid=worker.org_unit, kind=kind, detail=detail),
    )
    async with uow:
        if keep:
            await uow.session.execute(insert(grid_duties).values(
                event_id=event.id, kind=kind, grid=worker.org_unit, worker_id=worker.id, subject=duty_subject,
                at=event.occurred_at, detail=detail,
            ))  # fmt: skip
        uow.emit(event)
        await uow.commit()
    return Recorded(event_id=str(event.id), kind=kind, detail=detail)


@router.post("/patrols", status_code=201, response_model=Recorded, dependencies=[permit("intake.grid_patrol"), JsonBody], summary="Log a patrol (巡查)")
async def log_patrol(body: Patrol, uow: UowDep, request: Request, actor: ActorDep) -> Recorded:
    return await _record(uow, grid_worker(request, actor), "patrol", patrol_detail(body), at=body.ended_at)


def patrol_detail(patrol: Patrol) -> dict[str, Any]:
    """What a patrol earns its points on: its minutes, its length (refused past ``MAX_PATROL_M``), its points."""
    distance = route_length_m(patrol.route)
    if distance > MAX_PATROL_M:
        raise refused_field("route", f"a patrol of {distance / 1000:.1f} km is beyond the {MAX_PATROL_M // 1000} km one patrol can cover")
    return {
        "minutes": round((patrol.ended_at - patrol.started_at).total_seconds() / 60, 1),
        "distance_m": round(distance, 1),
        "points": len(patrol.route),
    }


@router.post("/households", status_code=201, response_model=Recorded, dependencies=[permit("intake.grid_household"), JsonBody], summary="Household information updated")
async def household_update(body: HouseholdUpdate, uow: UowDep, request: Request, actor: ActorDep) -> Recorded:
    worker = grid_worker(request, actor)
    return await _record(uow, worker, "info_update", {"household_ref": body.household_ref, "fields": body.fields})


@router.post("/logins", status_code=201, response_model=Recorded, summary="A grid worker signed in to the app", dependencies=[permit("intake.grid_login")])
async def login(uow: UowDep, request: Request, actor: ActorDep) -> Recorded:
    return await _record(uow, grid_worker(request, actor), "login", {})
