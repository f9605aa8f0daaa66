"""Where each case stands, as a service has seen it on the topic (table ``case_status``).

Every service keeps this small projection: a handler that follows the lifecycle and a
read-only route. ``events_applied`` counts the events applied per case, so tests (and
ops) can see that each event took effect exactly once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import case, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from shared.consumer import Handler
from shared.db import UnitOfWork, case_status
from shared.events import EVENT_TYPES, EventBase
from shared.lifecycle import status_after
from shared.problems import Problem
from shared.service import UowDep


def _upsert_statement():
    stmt = pg_insert(case_status)
    newer = stmt.excluded.last_event_at >= case_status.c.last_event_at
    return stmt.on_conflict_do_update(
        index_elements=["case_id"],
        set_={
            "events_applied": case_status.c.events_applied + 1,
            "status": case((newer & stmt.excluded.status.is_not(None), stmt.excluded.status), else_=case_status.c.status),
            "last_event_type": case((newer, stmt.excluded.last_event_type), else_=case_status.c.last_event_type),
            "last_event_at": func.greatest(case_status.c.last_event_at, stmt.excluded.last_event_at),
        },
    )


# Built once: the values travel as parameters, so SQLAlchemy compiles it once and caches it.
_UPSERT = _upsert_statement()


async def track_case_status(event: EventBase, uow: UnitOfWork) -> None:
    """A status from an event older than the one already shown does not overwrite it
    (events of different producers may interleave)."""
    await uow.session.execute(
        _UPSERT,
        {
            "case_id": event.case_id,
            "status": status_after(event.type),
            "events_applied": 1,
            "last_event_type": event.type,
            "last_event_at": event.occurred_at,
        },
    )


def with_case_status(specific: Mapping[str, Handler]) -> dict[str, Handler]:
    """A service's handlers: every case-scoped event keeps this service's ``case_status``
    and then runs the service's own handler for its type, if it has one. A type that is
    not case-scoped (grid activity) runs only its own handler."""

    def both(own: Handler | None) -> Handler:
        async def handle(event: EventBase, uow: UnitOfWork) -> None:
            await track_case_status(event, uow)
            if own is not None:
                await own(event, uow)

        return handle

    handlers: dict[str, Handler] = {t: both(specific.get(t)) for t, cls in EVENT_TYPES.items() if cls.case_scoped}
    handlers.update({t: h for t, h in specific.items() if not EVENT_TYPES[t].case_scoped})
    return handlers


class CaseStatusView(BaseModel):
    case_id: str
    status: str | None
    last_event_type: str
    last_event_at: datetime
    events_applied: int


router = APIRouter(prefix="/api/v1", tags=["cases"])


@router.get("/cases/{case_id}/status", response_model=CaseStatusView, summary="Where a case stands, as seen here")
async def get_case_status(case_id: str, uow: UowDep) -> CaseStatusView:
    async with uow:
        row = (await uow.session.execute(select(case_status).where(case_status.c.case_id == case_id))).first()
    if row is None:
        raise Problem(404, f"no case {case_id} seen by this service")
    return CaseStatusView.model_validate(row._mapping)
