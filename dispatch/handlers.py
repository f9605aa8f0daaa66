"""Dispatch's event handlers: it learns cases from intake, dispatches them by the catalogue,
and sends a case back for redo (重办) when the citizen is not satisfied.

The handlers here apply one event; ``dispatch.batch`` applies a consumer's whole batch as a
set with the same rules (``case_facts`` and ``resolution_class_of`` serve both).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from dispatch import repository, service
from dispatch.service import DispatchContext
from shared.case_status import with_case_status
from shared.db import UnitOfWork
from shared.events import EventBase, ResolutionClass, Satisfaction, system_actor, utcnow

Handler = Callable[[EventBase, UnitOfWork], Awaitable[None]]

# Intake's facts about a case that dispatch keeps (the columns of ``cases`` they write).
FACT_TYPES = ("case.received", "case.rejected", "case.merged", "case.triaged")


def case_facts(event: EventBase) -> dict[str, Any]:
    """The ``cases`` columns one of intake's events sets (``FACT_TYPES``)."""
    data = event.payload
    if event.type == "case.rejected":
        return {"rejected": True}
    if event.type == "case.merged":
        # 并单: the duplicate follows its main case and gets no order of its own.
        return {"merged_into": data.into_case_id}
    place = data.location
    if event.type == "case.received":
        return {
            "tracking_no": data.tracking_no, "title": data.title, "description": data.description,
            "channel": data.channel.value, "subject_class": data.subject_class,
            "category": data.category.value if data.category else None, "solved_on_spot": data.solved_on_spot,
            "township": place.township if place else None, "village": place.village if place else None,
            "grid": place.grid if place else None, "street": place.street if place else None,
            "received_at": event.occurred_at,
        }  # fmt: skip
    values = {"subject_class": data.subject_class, "category": data.category.value, "urgency": data.urgency.value,
              "county": data.region, "triaged": True}  # fmt: skip
    if place is not None:
        values |= {"township": place.township, "village": place.village, "grid": place.grid, "street": place.street}
    return values


def acts_on(event: EventBase) -> bool:
    """Dispatch's own events already did their work when it emitted them."""
    return event.producer != "dispatch"


def resolution_class_of(case: Any) -> ResolutionClass:
    return ResolutionClass.consultation if case.subject_class == "consultation" else ResolutionClass.general


def make_handlers(ctx: DispatchContext) -> dict[str, Handler]:
    async def learn(event: EventBase, uow: UnitOfWork) -> None:
        await repository.upsert_case(uow.session, event.case_id, **case_facts(event))

    async def triaged(event: EventBase, uow: UnitOfWork) -> None:
        await learn(event, uow)
        case = await repository.get_case(uow.session, event.case_id, lock=True)
        if not service.dispatchable(case):
            return
        owner = service.catalogue_owner(ctx, case)
        if owner is None:
            return  # stays on the dispatcher's board
        # Dispatched now, not at the triage time: the dispatch clock measures exactly this gap.
        # (An event applied again finds the order already there and dispatches nothing.)
        await service.open_order(
            uow, ctx, case, unit=owner, actor=system_actor("dispatch"), at=utcnow(), automatic=True,
            resolution_class=resolution_class_of(case), redo_round=case.redo_round, caused_by=event,
        )  # fmt: skip

    async def rated(event: EventBase, uow: UnitOfWork) -> None:
        if event.payload.rating is Satisfaction.unsatisfied and event.payload.source != "questionnaire":
            await service.reopen_after_rating(uow, ctx, event)

    specific: dict[str, Handler] = {
        "case.received": learn, "case.rejected": learn, "case.merged": learn, "case.triaged": triaged, "case.rated": rated,
    }  # fmt: skip

    def others_only(own: Handler) -> Handler:
        async def handle(event: EventBase, uow: UnitOfWork) -> None:
            if acts_on(event):
                await own(event, uow)

        return handle

    # Every case-scoped type: dispatch's view of where each case stands follows them all.
    return with_case_status({t: others_only(h) for t, h in specific.items()})
