"""What dispatch reads from events: it learns cases from intake, dispatches them by the
catalogue, and sends a case back for redo (重办) when the citizen is not satisfied.

The rules per event are here; ``dispatch.batch`` is dispatch's one handler, which applies
them to a batch of events (one event being a batch of one).
"""

from __future__ import annotations

from typing import Any

from shared.case_status import CASE_SCOPED_TYPES
from shared.events import EventBase, ResolutionClass, TaskRef

# Intake's facts about a case that dispatch keeps (the columns of ``cases`` they write).
FACT_TYPES = ("case.received", "case.rejected", "case.merged", "case.triaged", "case.closed")


def case_facts(event: EventBase) -> dict[str, Any]:
    """The ``cases`` columns one of intake's events sets (``FACT_TYPES``)."""
    data = event.payload
    if event.type == "case.rejected":
        return {"rejected": True}
    if event.type == "case.closed":
        # Closed by intake (dispatch's own closings are not facts, ``acts_on``): on the spot at
        # a window (谁接待、谁负责) or in the grid — nothing is left to dispatch; published (公示).
        return {"stage": "closed", "closed_at": event.occurred_at, "public_summary": data.public_summary}
    if event.type == "case.merged":
        # 并单: the duplicate follows its main case and gets no order of its own.
        return {"merged_into": data.into_case_id}
    place = data.location
    if event.type == "case.received":
        return {
            "tracking_no": data.tracking_no, "title": data.title, "description": data.description,
            "channel": data.channel.value, "subject_class": data.subject_class,
            "category": data.category.value if data.category else None, "solved_on_spot": data.solved_on_spot,
            "county": place.county if place else None,  # a department's task item: its only place
            "township": place.township if place else None, "village": place.village if place else None,
            "grid": place.grid if place else None, "street": place.street if place else None,
            "received_at": event.occurred_at, "first_unit": data.first_unit, "first_unit_name": data.first_unit_name,
            "received_by": data.received_by, "resolve_due_at": data.resolve_due_at,
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


def task_of(event: EventBase) -> TaskRef | None:
    """自上而下的任务: the task item a ``case.received`` stands for (None: an appeal)."""
    return event.payload.task if event.type == "case.received" else None  # type: ignore[attr-defined]


def order_class(case: Any, event: EventBase) -> ResolutionClass:
    """The deadline class of an automatic order: the task item's own, else by the subject."""
    task = task_of(event)
    return task.resolution_class if task is not None else resolution_class_of(case)


# Every case-scoped type: dispatch's view of where each case stands follows them all.
HANDLES = CASE_SCOPED_TYPES
