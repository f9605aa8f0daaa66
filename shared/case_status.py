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
from sqlalchemy import case, func, literal_column, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from shared.consumer import Handler
from shared.db import UnitOfWork, case_status
from shared.events import EVENT_TYPES, Actor, EventBase, Role
from shared.lifecycle import places_of, status_after, units_asked
from shared.actors import ActorDep
from shared.orgdata import OrgDirectory
from shared.scope import CaseScope, may_see_case, not_found_unless
from shared.problems import Problem
from shared.service import RuntimeDep, UowDep


PLACES = ("county", "township", "village", "grid")


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
            # A place once known stays known; a later triage (人工分拨) may move it.
            **{p: func.coalesce(stmt.excluded[p], case_status.c[p]) for p in PLACES},
            # The units asked to handle it, as a set: a replayed event adds nothing.
            "units": case(
                (func.cardinality(stmt.excluded.units) == 0, case_status.c.units),
                else_=literal_column("ARRAY(SELECT DISTINCT u FROM unnest(case_status.units || excluded.units) AS u)"),
            ),
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
            **places_of(event),
            "units": units_asked(event),
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
