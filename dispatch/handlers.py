"""Dispatch's event handlers: it learns cases from intake, dispatches them by the catalogue,
and sends a case back for redo (重办) when the citizen is not satisfied."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from dispatch import repository, service
from dispatch.service import DispatchContext
from shared.case_status import with_case_status
from shared.db import UnitOfWork
from shared.events import EventBase, ResolutionClass, Satisfaction, system_actor, utcnow

Handler = Callable[[EventBase, UnitOfWork], Awaitable[None]]


def make_handlers(ctx: DispatchContext) -> dict[str, Handler]:
    async def received(event: EventBase, uow: UnitOfWork) -> None:
        data = event.payload
        place = data.location
        await repository.upsert_case(
            uow.session, event.case_id, tracking_no=data.tracking_no, title=data.title, description=data.description,
            channel=data.channel.value, subject_class=data.subject_class,
            category=data.category.value if data.category else None, solved_on_spot=data.solved_on_spot,
            township=place.township if place else None, village=place.village if place else None,
            grid=place.grid if place else None, street=place.street if place else None, received_at=event.occurred_at,
        )  # fmt: skip

    async def rejected(event: EventBase, uow: UnitOfWork) -> None:
        await repository.upsert_case(uow.session, event.case_id, rejected=True)

    async def merged(event: EventBase, uow: UnitOfWork) -> None:
        # 并单: the duplicate follows its main case and gets no order of its own.
        await repository.upsert_case(uow.session, event.case_id, merged_into=event.payload.into_case_id)

    async def triaged(event: EventBase, uow: UnitOfWork) -> None:
        data = event.payload
        place = data.location
        values = {"subject_class": data.subject_class, "category": data.category.value, "urgency": data.urgency.value,
                  "county": data.region, "triaged": True}  # fmt: skip
        if place is not None:
            values |= {"township": place.township, "village": place.village, "grid": place.grid, "street": place.street}
        await repository.upsert_case(uow.session, event.case_id, **values)
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
            resolution_class=ResolutionClass.consultation if case.subject_class == "consultation" else ResolutionClass.general,
            redo_round=case.redo_round, caused_by=event,
        )  # fmt: skip

    async def rated(event: EventBase, uow: UnitOfWork) -> None:
        if event.payload.rating is Satisfaction.unsatisfied and event.payload.source != "questionnaire":
            await service.reopen_after_rating(uow, ctx, event)

    specific: dict[str, Handler] = {
        "case.received": received, "case.rejected": rejected, "case.merged": merged,
        "case.triaged": triaged, "case.rated": rated,
    }  # fmt: skip

    def others_only(own: Handler) -> Handler:
        async def handle(event: EventBase, uow: UnitOfWork) -> None:
            if event.producer != "dispatch":  # dispatch's own events already did their work
                await own(event, uow)

        return handle

    # Every case-scoped type: dispatch's view of where each case stands follows them all.
    return with_case_status({t: others_only(h) for t, h in specific.items()})
