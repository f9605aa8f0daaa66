"""Lifecycle events as intake and dispatch would write them, for sla's tests."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from shared.events import (
    AcceptedData, CaseAccepted, CaseClosed, CaseDispatched, CaseReceived, CaseReopened, CaseResolved,
    CaseResumed, CaseSigned, CaseSuspended, CaseTriaged, Channel, ClosedData, DispatchedData, ExtensionApproved,
    ExtensionApprovedData, FiveMatters, ReceivedData, ReopenedData, ResolvedData, ResumedData, SignedData,
    SuspendedData, TriagedData, Urgency, make_event, system_actor,
)  # fmt: skip

BJ = ZoneInfo("Asia/Shanghai")
UNIT = "LB-XC-ZJJ"


def bj(*args: int) -> datetime:
    return datetime(*args, tzinfo=BJ)


def _event(cls, case_id: str, at: datetime, payload, producer: str = "dispatch"):
    return make_event(cls, payload=payload, producer=producer, actor=system_actor(producer), case_id=case_id, occurred_at=at)


def received(case_id: str, at: datetime):
    return _event(CaseReceived, case_id, at, ReceivedData(tracking_no=f"T-{case_id}", channel=Channel.app, title="路灯不亮", description="路灯坏了"), "intake")


def accepted(case_id: str, at: datetime):
    return _event(CaseAccepted, case_id, at, AcceptedData(tracking_no=f"T-{case_id}", notice="已受理"), "intake")


def triaged(case_id: str, at: datetime, *, urgency: Urgency = Urgency.normal, region: str | None = None, category=FiveMatters.annoyance):
    return _event(CaseTriaged, case_id, at, TriagedData(category=category, subject_class="streetlight", urgency=urgency, confidence=0.9, region=region), "intake")


def dispatched(
    case_id: str, at: datetime, *, unit: str = UNIT, resolution_class: str = "general", redo_round: int = 0, role: str = "sole",
    due_at: datetime | None = None, return_due_at: datetime | None = None,
):  # fmt: skip
    """Without ``due_at`` / ``return_due_at``: as an event written before dispatch carried them."""
    return _event(CaseDispatched, case_id, at, DispatchedData(
        order_no=f"O-{case_id}-{unit}-{redo_round}", unit=unit, resolution_class=resolution_class, redo_round=redo_round, role=role,
        due_at=due_at, return_due_at=return_due_at,
    ))  # fmt: skip


def signed(case_id: str, at: datetime, unit: str = UNIT):
    return _event(CaseSigned, case_id, at, SignedData(order_no=f"O-{case_id}", unit=unit))


def suspended(case_id: str, at: datetime, unit: str | None = None):
    return _event(CaseSuspended, case_id, at, SuspendedData(reason="等群众补充材料", unit=unit))


def resumed(case_id: str, at: datetime, unit: str | None = None, *, due_at: datetime | None = None):
    return _event(CaseResumed, case_id, at, ResumedData(unit=unit, due_at=due_at))


def extension_approved(case_id: str, at: datetime, working_days: int, unit: str = UNIT, *, new_due_at: datetime | None = None):
    return _event(ExtensionApproved, case_id, at, ExtensionApprovedData(
        order_no=f"O-{case_id}", unit=unit, request_id="r1", working_days=working_days, new_due_at=new_due_at,
    ))  # fmt: skip


def resolved(case_id: str, at: datetime, unit: str = UNIT):
    return _event(CaseResolved, case_id, at, ResolvedData(order_no=f"O-{case_id}", unit=unit, answer="已修复"))


def closed(case_id: str, at: datetime):
    return _event(CaseClosed, case_id, at, ClosedData(public_summary="已修复"))


def reopened(case_id: str, at: datetime, redo_round: int, unit: str = UNIT, *, due_at: datetime | None = None):
    return _event(CaseReopened, case_id, at, ReopenedData(reason="不满意", redo_round=redo_round, unit=unit, due_at=due_at))


def county_called(case_id: str, at: datetime, units: list[str], minutes: int = 60):
    from shared.events import CountyCalled, CountyCalledData

    return _event(CountyCalled, case_id, at, CountyCalledData(call_id=f"C-{case_id}", township="LB-XC", units=units, reason="需要县级部门", respond_within_minutes=minutes))


def progress(case_id: str, at: datetime, unit: str = UNIT, *, first_contact: bool = False):
    from shared.events import ProgressReported, ProgressReportedData

    return _event(ProgressReported, case_id, at, ProgressReportedData(order_no=f"O-{case_id}", unit=unit, note="已联系群众", first_contact=first_contact))


def callback_completed(case_id: str, at: datetime, *, reached: bool, attempt: int, round_: int = 0):
    from shared.events import CallbackCompleted, CallbackCompletedData

    return _event(CallbackCompleted, case_id, at, CallbackCompletedData(reached=reached, attempt=attempt, round=round_), "notify")


def filed(case_id: str, at: datetime):
    """Intake's received and accepted (受理) of a case, before which SLA holds dispatch's
    events of it (sla.handlers.REQUIRES)."""
    return received(case_id, at), accepted(case_id, at)
