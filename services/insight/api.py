"""Insight's REST API (``/api/v1``): the findings (未诉先办预警) as the centre reads them."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel

from services.insight import service
from services.insight.service import InsightContext
from shared.actors import ActorDep
from shared.edge import IsoDate
from shared.events import Role
from shared.scope import DEPARTMENT_ROLES, STAFF_ROLES, area_of, covers, not_found_unless, require_role
from shared.service import RuntimeDep, UowDep, service_context

router = APIRouter(prefix="/api/v1", tags=["insight"])


ContextDep = Annotated[InsightContext, Depends(service_context)]


class Finding(BaseModel):
    finding_id: str
    kind: str
    level: str
    area: str
    county: str | None
    township: str | None
    street: str | None
    unit: str | None
    subject_class: str
    detected_on: date
    window_start: date
    window_end: date
    count: int
    baseline: float
    score: float
    case_ids: list[str]
    explanation: str


class FindingList(BaseModel):
    items: list[Finding]


@router.get("/findings", response_model=FindingList, summary="Findings (未诉先办预警) in the caller's area, newest first")
async def list_findings(
    runtime: RuntimeDep, uow: UowDep, actor: ActorDep,
    since: Annotated[IsoDate | None, Query(description="found on or after this local day")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:  # fmt: skip
    """A centre sees the findings of the county, township or village it serves; a township or
    village its own places; a department the findings about its own unit; the auditor all in
    its area. Citizens see none."""
    require_role(actor, STAFF_ROLES, "read findings (未诉先办预警)")
    org = runtime.org
    # The query narrows (a department's unit, a county); ``may_see`` decides, as for one finding.
    if actor.role in DEPARTMENT_ROLES:
        rows = await service.list_findings(uow, county=None, township=None, unit=actor.org_unit or "", since=since, limit=limit)
    else:
        area = area_of(org, actor)
        if area is None:
            return {"items": []}
        county = org.county_of(area) if org.unit(area).kind != "city" else None
        rows = await service.list_findings(uow, county=county, township=None, unit=None, since=since, limit=limit)
    return {"items": [row for row in rows if may_see(org, actor, row)]}


@router.get("/findings/{finding_id}", response_model=Finding, summary="One finding with its evidence")
async def get_finding(
    runtime: RuntimeDep, uow: UowDep, actor: ActorDep, finding_id: Annotated[str, Path(max_length=64)]
) -> dict[str, Any]:
    """As in the list: a finding outside the caller's area is not found, like one that does not exist."""
    require_role(actor, STAFF_ROLES, "read findings (未诉先办预警)")
    row = await service.get_finding(uow, finding_id)
    not_found_unless(row is not None and may_see(runtime.org, actor, row), f"finding {finding_id}")
    return row  # type: ignore[return-value]


def may_see(org: Any, actor: Any, row: dict[str, Any]) -> bool:
    if actor.role in DEPARTMENT_ROLES:
        return row["unit"] is not None and row["unit"] == actor.org_unit
    area = area_of(org, actor)
    return area is not None and visible(org, area, row, actor.role)


def visible(org: Any, area: str, row: dict[str, Any], role: Role) -> bool:
    """A place finding inside the caller's area; a unit finding of a unit inside it (a
    county's departments are under the county)."""
    return covers(org, area, row["unit"] if row["level"] == "unit" else row["area"])
