"""The tasks' REST API (自上而下的任务; ``/api/v1/tasks``): the centre issues, everyone in scope
follows each item's state (``services.insight.tasks``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from services.insight import service, tasks
from services.insight.api import may_see  # a finding is taken only by who may see it
from shared.actors import ActorDep
from shared.errors import Invalid
from shared.events import ResolutionClass
from shared.http import require_json
from shared.permissions import permit
from shared.scope import STAFF_ROLES, area_of, require_role
from shared.service import RuntimeDep, UowDep

router = APIRouter(prefix="/api/v1", tags=["tasks"])


class ItemInput(BaseModel):
    unit: str = Field(max_length=64, description="the township, village, grid or department the item is for")
    place: str | None = Field(default=None, max_length=64, description="a department's item: the township, village or grid it is about")
    street: str | None = Field(default=None, max_length=128, description="the spot, cut to the street")


class TaskInput(BaseModel):
    finding_id: str | None = Field(default=None, max_length=64, description="the finding the task answers (title, text, class from it)")
    title: str | None = Field(default=None, max_length=200)
    instructions: str | None = Field(default=None, max_length=4000)
    subject_class: str | None = Field(default=None, max_length=64)
    resolution_class: ResolutionClass = ResolutionClass.general
    items: list[ItemInput] = Field(min_length=1, max_length=500, description="one per place or unit")


class Item(BaseModel):
    item_no: int
    case_id: str
    tracking_no: str
    unit: str
    unit_name: str | None
    township: str | None
    village: str | None
    grid: str | None
    street: str | None
    state: str
    order_no: str | None
    redo_round: int
    history: list[dict[str, Any]]


class Task(BaseModel):
    task_id: str
    county: str | None
    issued_by: str | None
    title: str
    instructions: str
    subject_class: str | None
    resolution_class: str
    finding_id: str | None
    created_by: str
    created_at: datetime
    items: list[Item]


class TaskList(BaseModel):
    items: list[Task]


class Created(BaseModel):
    task_id: str


@router.post("/tasks", response_model=Created, status_code=201, summary="Send a task down (自上而下的任务), one item per place or unit",
             dependencies=[permit("insight.task"), Depends(require_json)])  # fmt: skip
async def create_task(runtime: RuntimeDep, uow: UowDep, body: TaskInput, actor: ActorDep) -> dict[str, Any]:
    finding = None
    if body.finding_id is not None:
        finding = await service.get_finding(uow, body.finding_id)
        if finding is None or not may_see(runtime.org, actor, finding):
            raise Invalid(f"no finding {body.finding_id} in your area", field="finding_id")
    task_id = await tasks.create_task(
        uow, runtime.org, actor, title=body.title, instructions=body.instructions, finding=finding,
        subject_class=body.subject_class, resolution_class=body.resolution_class,
        items=[(i.unit, i.place, i.street) for i in body.items],
    )  # fmt: skip
    return {"task_id": task_id}


@router.get("/tasks", response_model=TaskList, summary="Tasks in the caller's scope, newest first, with each item's state")
async def list_tasks(
    runtime: RuntimeDep, uow: UowDep, actor: ActorDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> dict[str, Any]:
    require_role(actor, STAFF_ROLES, "read tasks (自上而下的任务)")
    org = runtime.org
    area = area_of(org, actor)
    county = org.county_of(area) if area is not None and org.unit(area).kind != "city" else None
    rows = await tasks.list_tasks(uow, county=county, limit=limit)
    return {"items": [row for row in rows if tasks.may_see_task(org, actor, row)]}


@router.get("/tasks/{task_id}", response_model=Task, summary="One task with each item's state (followed from the topic)")
async def get_task(
    runtime: RuntimeDep, uow: UowDep, actor: ActorDep, task_id: Annotated[str, Path(max_length=64)]
) -> dict[str, Any]:
    require_role(actor, STAFF_ROLES, "read tasks (自上而下的任务)")
    return tasks.require_task(await tasks.get_task(uow, task_id), runtime.org, actor, task_id)

