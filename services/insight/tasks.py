"""自上而下的任务 (issue #24 item 3): the centre sends work down.

A task is the centre's directive — from a finding (``hotspot.detected``) or of its own — with
one item per place or unit. Insight owns the task; each item enters the ordinary case
lifecycle as a case of its own (``case.received`` with channel ``task`` and the item's
``TaskRef``: the unit and the deadline class), so dispatch sends it straight to that unit,
SLA runs the same clocks, cards and urging from the class deadline, the township or the
centre verifies, and scoring, seeing the reference, counts it apart from the appeals. There
is no citizen: notify sends no callback and no rating request.

An item's state here only follows the topic (dispatch's events about its case): insight
never decides it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, func, select, update
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import UnitOfWork, transactional
from shared.errors import Invalid, NotFound
from shared.events import (
    AcceptedData,
    Actor,
    CaseAccepted,
    CaseReceived,
    Channel,
    EventBase,
    Location,
    ReceivedData,
    ResolutionClass,
    TaskRef,
    make_event,
    utcnow,
)
from shared.orgdata import OrgDirectory
from shared.scope import area_of, covers
from shared.workdays import LOCAL

metadata = MetaData()  # insight_0002_tasks; the tables are the tasks' own

tasks = Table(
    "tasks",
    metadata,
    Column("task_id", String(64), primary_key=True),
    Column("county", String(64)),
    Column("issued_by", String(64)),  # the centre's unit
    Column("title", Text, nullable=False),
    Column("instructions", Text, nullable=False),
    Column("subject_class", String(64)),
    Column("resolution_class", String(16), nullable=False),
    Column("finding_id", String(64)),
    Column("created_by", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

task_items = Table(
    "task_items",
    metadata,
    Column("task_id", String(64), primary_key=True),
    Column("item_no", Integer, primary_key=True),
    Column("case_id", String(64), nullable=False, unique=True),
    Column("tracking_no", String(32), nullable=False),
    Column("unit", String(64), nullable=False),
    Column("unit_name", Text),
    Column("township", String(64)),
    Column("village", String(64)),
    Column("grid", String(64)),
    Column("street", String(128)),
    Column("state", String(24), nullable=False),
    Column("order_no", String(40)),
    Column("redo_round", Integer, nullable=False, server_default="0"),
    Column("history", JSONB, nullable=False, server_default="[]"),  # [{state, at}] as the topic told it
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

#: An item's state after each event about its case (dispatch's): what the task page shows.
#: A failed verification sends the item back to its unit (重办), as for an appeal.
STATE_AFTER = {
    "case.dispatched": "dispatched",
    "case.signed": "signed",
    "case.returned": "returned",
    "case.return_reviewed": "dispatched",
    "case.resolved": "resolved",
    "case.verification_failed": "redo",
    "case.verified": "verified",
    "case.closed": "closed",
}
FOLLOWED = frozenset(STATE_AFTER)
#: States an item never leaves once there (a late event of the same case does not reopen it).
FINAL = frozenset({"closed"})


@dataclass(frozen=True)
class ItemPlace:
    """Where an item is and who works it: the unit, and the township, village and grid it lies
    in (from the org tree for a place unit; as given for a department's item)."""

    unit: str
    township: str | None
    village: str | None
    grid: str | None
    street: str | None


def item_place(org: OrgDirectory, unit: str, place: str | None, street: str | None) -> ItemPlace:
    """The item's place: a township, village or grid works its own place; a department works
    the place it is given (``place``), or none (then only the centre verifies it)."""
    where = unit if org.unit(unit).is_place else place
    if where is None:
        return ItemPlace(unit, None, None, None, street)
    kind = org.unit(where).kind
    return ItemPlace(
        unit, org.township_of(where), org.village_of(where), where if kind == "grid" else None, street,
    )  # fmt: skip


def placement_problem(org: OrgDirectory, area: str | None, unit: str, place: str | None) -> str | None:
    """Why an item cannot go to this unit/place for a centre serving ``area`` (None: it can).
    The unit must be a township, village, grid or department inside the centre's area."""
    if not org.has_unit(unit):
        return f"no unit {unit} in the organisation directory"
    if org.unit(unit).kind not in ("township", "village", "grid", "department"):
        return f"{unit} is a {org.unit(unit).kind}: a task item goes to a township, village, grid or department"
    if not covers(org, area, unit):
        return f"{unit} is outside the area your centre serves"
    if place is not None and (not org.has_unit(place) or org.unit(place).kind not in ("township", "village", "grid")
                              or not covers(org, area, place)):  # fmt: skip
        return f"{place} is not a township, village or grid of your area"
    return None


def task_number(at: datetime) -> str:
    """RW-<local day>-<6 hex>: short enough that item tracking numbers (``-<n>``) fit 32."""
    return f"RW-{at.astimezone(LOCAL):%Y%m%d}-{uuid.uuid4().hex[:6]}"


def item_event(task: dict[str, Any], item: dict[str, Any], actor: Actor, at: datetime) -> CaseReceived:
    """The case.received that puts one item into the lifecycle."""
    payload = ReceivedData(
        tracking_no=item["tracking_no"], channel=Channel.task, title=task["title"], description=task["instructions"],
        subject_class=task["subject_class"],
        # The task's county travels on every item: a department's item lies in no township, and
        # the county is what places it for the verifying centre and the county's task figures.
        location=Location(county=task["county"], township=item["township"], village=item["village"], grid=item["grid"],
                          street=item["street"]),
        task=TaskRef(task_id=task["task_id"], item_no=item["item_no"], unit=item["unit"],
                     resolution_class=ResolutionClass(task["resolution_class"]), issued_by=task["issued_by"]),
    )  # fmt: skip
    return make_event(CaseReceived, case_id=item["case_id"], payload=payload, producer="insight", actor=actor, occurred_at=at)


@transactional
async def create_task(
    uow: UnitOfWork, org: OrgDirectory, actor: Actor, *, title: str | None, instructions: str | None,
    finding: dict[str, Any] | None, subject_class: str | None, resolution_class: ResolutionClass,
    items: list[tuple[str, str | None, str | None]],
) -> str:  # fmt: skip
    """A task and its items, each item's case.received in the same unit of work (outbox)."""
    area = area_of(org, actor)
    for n, (unit, place, _) in enumerate(items):
        problem = placement_problem(org, area, unit, place)
        if problem is not None:
            raise Invalid(problem, field=f"items[{n}]", unit=unit)
    if len({(unit, place) for unit, place, _ in items}) != len(items):
        raise Invalid("one item per place and unit: an item is listed twice", field="items")
    now = utcnow()
    task = {
        "task_id": task_number(now), "county": org.county_of(area) if area else None, "issued_by": actor.org_unit,
        "title": title or (f"未诉先办：{finding['explanation']}"[:200] if finding else None),
        "instructions": instructions or (finding["explanation"] if finding else None),
        "subject_class": subject_class or (finding["subject_class"] if finding else None),
        "resolution_class": resolution_class.value, "finding_id": finding["finding_id"] if finding else None,
        "created_by": actor.id, "created_at": now,
    }  # fmt: skip
    if not task["title"] or not task["instructions"]:
        raise Invalid("a task needs a title and instructions, or a finding to take them from", field="title")
    await uow.session.execute(tasks.insert().values(**task))
    for n, (unit, place, street) in enumerate(items, start=1):
        where = item_place(org, unit, place, street)
        item = {
            "task_id": task["task_id"], "item_no": n, "case_id": str(uuid.uuid4()),
            "tracking_no": f"{task['task_id']}-{n}", "unit": unit, "unit_name": org.unit(unit).name,
            "township": where.township, "village": where.village, "grid": where.grid, "street": street,
            "state": "issued", "history": [{"state": "issued", "at": now.isoformat()}],
        }  # fmt: skip
        await uow.session.execute(task_items.insert().values(**item))
        uow.emit(received := item_event(task, item, actor, now))
        # 受理 by the issuer itself: every service that waits for an appeal's acceptance before
        # the order's events (shared.holding) reads the item the same way.
        uow.emit(make_event(CaseAccepted, payload=AcceptedData(tracking_no=item["tracking_no"], notice="任务已下达"),
                            producer="insight", actor=actor, caused_by=received, occurred_at=now))  # fmt: skip
    return task["task_id"]


async def follow(uow: UnitOfWork, events: list[EventBase]) -> set[str]:
    """The items' states after a batch of the topic; the case ids of the batch that are task
    items (insight's appeal detectors leave them out: a task is not an appeal)."""
    ids = {event.case_id for event in events if event.case_id}
    if not ids:
        return set()
    rows = {
        row.case_id: dict(row._mapping)
        for row in await uow.session.execute(
            select(task_items).where(task_items.c.case_id.in_(sorted(ids))).order_by(task_items.c.case_id).with_for_update()
        )
    }
    changed: set[str] = set()
    for event in events:
        row = rows.get(event.case_id or "")
        if row is None or event.type not in FOLLOWED or row["state"] in FINAL:
            continue
        row["state"] = STATE_AFTER[event.type]
        row["history"] = [*row["history"], {"state": row["state"], "at": event.occurred_at.isoformat()}]
        if event.type == "case.dispatched":
            row["order_no"] = event.payload.order_no  # type: ignore[attr-defined]
            row["redo_round"] = event.payload.redo_round  # type: ignore[attr-defined]
        changed.add(row["case_id"])
    for case_id in sorted(changed):
        row = rows[case_id]
        await uow.session.execute(
            update(task_items).where(task_items.c.case_id == case_id).values(
                state=row["state"], history=row["history"], order_no=row["order_no"], redo_round=row["redo_round"],
                updated_at=func.now(),
            )
        )  # fmt: skip
    task_cases = set(rows)
    task_cases |= {e.case_id for e in events if e.type == "case.received" and e.payload.task is not None}  # type: ignore[attr-defined]
    return task_cases


async def get_task(uow: UnitOfWork, task_id: str) -> dict[str, Any] | None:
    async with uow:
        task = (await uow.session.execute(select(tasks).where(tasks.c.task_id == task_id))).mappings().first()
        if task is None:
            return None
        items = (await uow.session.execute(
            select(task_items).where(task_items.c.task_id == task_id).order_by(task_items.c.item_no)
        )).mappings().all()  # fmt: skip
    return {**task, "items": [dict(item) for item in items]}


async def list_tasks(uow: UnitOfWork, *, county: str | None, limit: int) -> list[dict[str, Any]]:
    """Newest first, each with its items (for the caller's scope to filter)."""
    query = select(tasks).order_by(tasks.c.created_at.desc(), tasks.c.task_id).limit(limit)
    if county is not None:
        query = query.where(tasks.c.county == county)
    async with uow:
        rows = [dict(row) for row in (await uow.session.execute(query)).mappings()]
        items = (await uow.session.execute(
            select(task_items).where(task_items.c.task_id.in_([r["task_id"] for r in rows])).order_by(task_items.c.item_no)
        )).mappings().all()  # fmt: skip
    by_task: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        by_task.setdefault(item["task_id"], []).append(dict(item))
    return [{**row, "items": by_task.get(row["task_id"], [])} for row in rows]


def may_see_task(org: OrgDirectory, actor: Actor, task: dict[str, Any]) -> bool:
    """The centre that issued it (and the auditor); a unit sees a task it holds an item of, or
    whose item lies in its area (a township sees its villages' items)."""
    if actor.role.value == "auditor":
        return True
    area = area_of(org, actor)
    if area is None:
        return False
    if actor.org_unit == task["issued_by"] or (task["county"] and covers(org, area, task["county"])):
        return True
    return any(covers(org, area, item["unit"]) for item in task["items"])


def require_task(task: dict[str, Any] | None, org: OrgDirectory, actor: Actor, task_id: str) -> dict[str, Any]:
    if task is None or not may_see_task(org, actor, task):
        raise NotFound(f"no task {task_id}")
    return task
