"""Where each case stands, as a service has seen it on the topic (table ``case_status``).

Every service keeps this small projection: a handler that follows the lifecycle and a
read-only route. ``events_applied`` counts the events applied per case, so tests (and
ops) can see that each event took effect exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select, text

from shared.db import UnitOfWork, case_status
from shared.events import EVENT_TYPES, Actor, EventBase, Role
from shared.lifecycle import places_of, status_after, units_asked
from shared.actors import ActorDep
from shared.orgdata import OrgDirectory
from shared.scope import CaseScope, may_see_case, not_found_unless
from shared.problems import Problem
from shared.service import RuntimeDep, UowDep


PLACES = ("county", "township", "village", "grid")

# Every event about a case: each service's ``case_status`` follows them all, so every
# consumer handles at least these (``ServiceSpec.handles``).
CASE_SCOPED_TYPES = frozenset(t for t, cls in EVENT_TYPES.items() if cls.case_scoped)


# --------------------------------------------------------------------------- the rule, for a batch
# ``CaseStatusBatch`` folds each case's events of a batch in Python into one row and applies
# every case with one MERGE (one event being a batch of one). The rule, per event in order:
# a status or type from an event older than the one already shown does not overwrite it
# (events of different producers may interleave); a place once known stays known (a later
# triage, 人工分拨, may move it); the units asked to handle it are kept as a set (a replayed
# event adds nothing; their order is PostgreSQL's DISTINCT's).
#
# Why the fold is exact: an event overwrites status and type when it is not older than the
# running ``last_event_at``. Within the batch only "records" (events not older than every
# earlier one of the batch) can overwrite, their times rise, so the last record (with a
# status) decides — against the stored row only through its own time.
# MERGE rather than INSERT … ON CONFLICT because the update needs a value (the status's
# time) that is not a column of the row. MERGE is not safe against a concurrent insert of the
# same case (PostgreSQL 15): two consumer replicas meet on a case only while its partition
# moves between them, and the batch that fails then is applied again event by event.

_MERGE = text("""
MERGE INTO case_status AS cs
USING (
    SELECT * FROM unnest(
        CAST(:case_id AS text[]), CAST(:events AS int[]), CAST(:status AS text[]), CAST(:status_at AS timestamptz[]),
        CAST(:last_event_type AS text[]), CAST(:last_event_at AS timestamptz[]), CAST(:county AS text[]),
        CAST(:township AS text[]), CAST(:village AS text[]), CAST(:grid AS text[]), CAST(:units AS text[]),
        CAST(:units_merged AS boolean[])
    ) AS v(case_id, events, status, status_at, last_event_type, last_event_at, county, township, village, grid, units,
           units_merged)
) AS v
ON cs.case_id = v.case_id
WHEN MATCHED THEN UPDATE SET
    events_applied = cs.events_applied + v.events,
    status = CASE WHEN v.status IS NOT NULL AND v.status_at >= cs.last_event_at THEN v.status ELSE cs.status END,
    last_event_type = CASE WHEN v.last_event_at >= cs.last_event_at THEN v.last_event_type ELSE cs.last_event_type END,
    last_event_at = greatest(cs.last_event_at, v.last_event_at),
    county = coalesce(v.county, cs.county),
    township = coalesce(v.township, cs.township),
    village = coalesce(v.village, cs.village),
    grid = coalesce(v.grid, cs.grid),
    units = CASE
        WHEN jsonb_array_length(CAST(v.units AS jsonb)) = 0 THEN cs.units
        ELSE ARRAY(SELECT DISTINCT u FROM unnest(cs.units || ARRAY(SELECT jsonb_array_elements_text(CAST(v.units AS jsonb)))) AS u)
    END
WHEN NOT MATCHED THEN INSERT (case_id, status, events_applied, last_event_type, last_event_at, county, township, village, grid, units)
VALUES (
    v.case_id, v.status, v.events, v.last_event_type, v.last_event_at, v.county, v.township, v.village, v.grid,
    CASE WHEN v.units_merged
        THEN ARRAY(SELECT DISTINCT u FROM jsonb_array_elements_text(CAST(v.units AS jsonb)) AS u)
        ELSE ARRAY(SELECT u FROM jsonb_array_elements_text(CAST(v.units AS jsonb)) WITH ORDINALITY AS x(u, n) ORDER BY n)
    END
)
""")

_MERGE_COLUMNS = (
    "case_id", "events", "status", "status_at", "last_event_type", "last_event_at", *PLACES, "units", "units_merged",
)  # fmt: skip

class CaseStatusBatch:
    """Events added in order, folded per case into the row ``_MERGE`` applies (pure). Only
    case-scoped events count."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[str, Any]] = {}
        self._units: dict[str, list[str]] = {}

    def add(self, event: EventBase) -> None:
        if not event.case_scoped:
            return
        at = event.occurred_at
        row = self._rows.get(event.case_id)
        if row is None:
            row = self._rows[event.case_id] = {
                "case_id": event.case_id, "events": 0, "status": None, "status_at": None, "last_event_type": event.type,
                "last_event_at": at, "county": None, "township": None, "village": None, "grid": None, "units_merged": False,
            }  # fmt: skip
            self._units[event.case_id] = []
        row["events"] += 1
        # Older than an earlier event of the batch: it never overwrites status or type.
        if at >= row["last_event_at"]:
            row["last_event_type"], row["last_event_at"] = event.type, at
            status = status_after(event.type)
            if status is not None:
                row["status"], row["status_at"] = status, at
        for place, value in places_of(event).items():
            if value is not None:
                row[place] = value
        asked = units_asked(event)
        if asked:
            # After the row's first event units are merged as a set (DISTINCT); the first
            # event's own list is stored as it is when nothing else adds to it.
            if row["events"] > 1:
                row["units_merged"] = True
            self._units[event.case_id].extend(asked)

    def rows(self) -> list[dict[str, Any]]:
        return [{**row, "units": orjson.dumps(self._units[case_id]).decode()} for case_id, row in self._rows.items()]

    def statement(self) -> tuple[Any, dict[str, list[Any]]] | None:
        """The statement and parameters that apply the events to ``case_status`` in one round
        trip; None when none is case-scoped."""
        rows = self.rows()
        if not rows:
            return None
        return _MERGE, {column: [row[column] for row in rows] for column in _MERGE_COLUMNS}


def case_status_many(events: Sequence[EventBase]) -> tuple[Any, dict[str, list[Any]]] | None:
    """``CaseStatusBatch`` of these events: the statement for all of them, or None."""
    batch = CaseStatusBatch()
    for event in events:
        batch.add(event)
    return batch.statement()


async def case_scope(uow: UnitOfWork, case_id: str) -> CaseScope | None:
    """Where a case is and who was asked to handle it, as this service has seen it; None
    when no event of the case has arrived here."""
    row = (
        await uow.session.execute(
            select(*(case_status.c[p] for p in PLACES), case_status.c.units).where(case_status.c.case_id == case_id)
        )
    ).first()
    if row is None:
        return None
    return CaseScope(places=tuple(row[i] for i in range(len(PLACES))), units=frozenset(row.units or ()))


async def require_visible_case(uow: UnitOfWork, org: OrgDirectory, actor: Actor, case_id: str) -> CaseScope:
    """The case's scope when the actor may see it; 404 otherwise — also when this service
    has not seen the case, so an unknown id and another unit's case answer alike."""
    scope = await case_scope(uow, case_id)
    not_found_unless(scope is not None and may_see_case(org, actor, scope), f"case {case_id}")
    return scope  # type: ignore[return-value]


class CaseStatusView(BaseModel):
    case_id: str
    status: str | None
    last_event_type: str
    last_event_at: datetime
    events_applied: int


router = APIRouter(prefix="/api/v1", tags=["cases"])


@router.get("/cases/{case_id}/status", response_model=CaseStatusView, summary="Where a case stands, as seen here")
async def get_case_status(case_id: str, uow: UowDep, runtime: RuntimeDep, actor: ActorDep) -> CaseStatusView:
    """Staff who may see the case, and ops (who count events applied, never personal data)."""
    async with uow:
        if actor.role is not Role.ops:
            await require_visible_case(uow, runtime.org, actor, case_id)
        row = (await uow.session.execute(select(case_status).where(case_status.c.case_id == case_id))).first()
    if row is None:
        raise Problem(404, f"no case {case_id} seen by this service")
    return CaseStatusView.model_validate(row._mapping)
