"""Case status as every service sees it: the status a lifecycle event leaves a case in.

A pure mapping, shared so that intake's citizen view, dispatch's queues and the console
agree on the words. SLA and scoring events do not change the status (None).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import APIRouter

    from shared.db import UnitOfWork
    from shared.events import EventBase

STATUS_AFTER: dict[str, str] = {
    "case.received": "received",
    "case.accepted": "accepted",
    "case.rejected": "rejected",
    "case.triaged": "triaged",
    "case.merged": "merged",
    "case.dispatched": "dispatched",
    "case.signed": "in_progress",
    "case.returned": "returned",
    "case.return_reviewed": "dispatched",
    "case.county_called": "called",
    "case.whistle_blown": "called",
    "case.work_plan_filed": "in_progress",
    "case.progress_reported": "in_progress",
    "case.suspended": "suspended",
    "case.resumed": "in_progress",
    "case.resolved": "resolved",
    "case.verified": "verified",
    "case.verification_failed": "in_progress",
    "case.closed": "closed",
    "case.rated": "rated",
    "case.reopened": "reopened",
}

# Plain words for the citizen's timeline (接诉即办 practice terms).
LABELS: dict[str, str] = {
    "case.received": "已收到诉求",
    "case.accepted": "已受理",
    "case.rejected": "不予受理",
    "case.triaged": "已分类定位",
    "case.merged": "已并单处理",
    "case.dispatched": "已交办",
    "case.signed": "承办单位已签收",
    "case.returned": "承办单位退单",
    "case.return_reviewed": "退单已审核",
    "case.county_called": "乡镇呼叫县直部门（乡呼县应）",
    "case.whistle_blown": "吹哨报到",
    "case.work_plan_filed": "已制定施工图",
    "case.progress_reported": "办理进展",
    "case.extension_requested": "申请延期",
    "case.extension_approved": "延期已批准",
    "case.extension_denied": "延期未批准",
    "case.suspended": "暂停计时",
    "case.resumed": "恢复计时",
    "case.resolved": "已办结答复",
    "case.verified": "已核验",
    "case.verification_failed": "核验未通过",
    "case.closed": "已销号公示",
    "case.callback_completed": "已回访",
    "case.rated": "已评价",
    "case.reopened": "重新办理（重办）",
    "sla.warning": "临期预警（黄牌）",
    "sla.breached": "已超期（红牌）",
    "sla.urged": "催办",
    "sla.escalated": "督办",
    "unit.rated": "单位互评",
    "grid.activity": "网格工作",
}


def status_after(event_type: str) -> str | None:
    return STATUS_AFTER.get(event_type)


async def track_case_status(event: EventBase, uow: UnitOfWork) -> None:
    """Handler every service can use: keep ``case_status`` up to date.

    ``events_applied`` counts the events applied per case, so tests (and ops) can see
    that each event took effect exactly once. A status from an event older than the one
    already shown does not overwrite it (events of different producers may interleave).
    """
    from sqlalchemy import case, func
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    from shared.db import case_status

    status = status_after(event.type)
    stmt = pg_insert(case_status).values(
        case_id=event.case_id,
        status=status,
        events_applied=1,
        last_event_type=event.type,
        last_event_at=event.occurred_at,
    )
    newer = stmt.excluded.last_event_at >= case_status.c.last_event_at
    await uow.session.execute(
        stmt.on_conflict_do_update(
            index_elements=["case_id"],
            set_={
                "events_applied": case_status.c.events_applied + 1,
                "status": case((newer & stmt.excluded.status.is_not(None), stmt.excluded.status), else_=case_status.c.status),
                "last_event_type": case((newer, stmt.excluded.last_event_type), else_=case_status.c.last_event_type),
                "last_event_at": func.greatest(case_status.c.last_event_at, stmt.excluded.last_event_at),
            },
        )
    )


def case_status_router() -> "APIRouter":
    """``GET /api/v1/cases/{case_id}/status``: where a case stands, as this service saw it."""
    from fastapi import APIRouter
    from pydantic import BaseModel
    from sqlalchemy import select

    from shared.db import case_status
    from shared.problems import Problem
    from shared.service import UowDep

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

    return router
