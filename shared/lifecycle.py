"""Case status as every service sees it: the status a lifecycle event leaves a case in.

A pure mapping, shared so that intake's citizen view, dispatch's queues and the console
agree on the words. SLA and scoring events do not change the status (None). And who an
event asks to handle a case (``units_asked``).
"""

from __future__ import annotations

from typing import Any

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
    "case.reported_up": "dispatched",  # the next order follows at once (case.dispatched)
    "case.passed_down": "dispatched",
    "case.surveyed": "in_progress",
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
    "case.reported_up": "村级上报乡镇",
    "case.passed_down": "乡镇交由村级办理",
    "case.surveyed": "已现场勘查",
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
    "hotspot.detected": "未诉先办预警",
    "warning.opened": "预警待签收",
    "warning.acknowledged": "预警已签收",
    "warning.handled": "预警已处置",
    "warning.closed": "预警已办结",
    "warning.reopened": "预警退回重办",
    "sla.warning_signal": "预警临期 / 超期（黄牌、红牌、催办）",
}


def status_after(event_type: str) -> str | None:
    return STATUS_AFTER.get(event_type)


# The payload fields whose first non-empty value a timeline entry shows as its detail
# (findings: 现场勘查).
DETAIL_FIELDS = ("unit_name", "findings", "unit", "answer", "reason", "rating", "note")


def timeline_entry(event: EventBase) -> dict[str, Any]:
    """An event as an entry of the citizen's timeline: its plain words (``LABELS``) and one
    detail. One rule for every timeline: intake's (the appeal as the app reads it) and
    notify's (the citizen's page, looked up with an SMS code)."""
    return {
        "event_id": event.id,
        "case_id": event.case_id,
        "event_type": event.type,
        "occurred_at": event.occurred_at,
        "label": LABELS.get(event.type, event.type),
        "detail": _detail(event),
        "attachments": _photos(event),
    }


def _photos(event: EventBase) -> list[str]:
    """The photos a survey (现场勘查) carries: its typed ``photos``, or on a survey recorded
    before they were typed, the ids of its first form (``attachments``)."""
    if event.type != "case.surveyed":
        return []
    return list(event.payload.photos or event.payload.attachments)


def _detail(event: EventBase) -> str | None:
    payload = getattr(event, "payload", None)
    # The payload's fields by name: a missing one is a dict miss, where getattr on a
    # pydantic model raises and catches an AttributeError (it shows on intake's hot path).
    fields = vars(payload) if payload is not None else {}
    for field in DETAIL_FIELDS:
        value = fields.get(field)
        if value:
            return str(value)
    return None



def units_asked(event: EventBase) -> list[str]:
    """The units an event asks to handle the case: an order's unit (sole, lead or co), the
    departments a township calls, a whistle's lead and co-handlers. Services that do not
    own dispatch learn from these who may see a case (``shared.scope``)."""
    payload = getattr(event, "payload", None)
    if event.type == "case.dispatched":
        return [payload.unit]
    if event.type == "case.county_called":
        return list(payload.units)
    if event.type == "case.whistle_blown":
        return [payload.lead_unit, *payload.co_units]
    return []


_NOWHERE: dict[str, str | None] = {"county": None, "township": None, "village": None, "grid": None}
# Payload classes that can place a case (with a ``region`` or ``location`` field). Asked once
# per class: on the others getattr would answer through a slow AttributeError, per event.
_PLACING: dict[type, bool] = {}


def places_of(event: EventBase) -> dict[str, str | None]:
    """Where an event places a case (county, township, village, grid): intake's received
    and triaged events do; every other event leaves each None (nothing changes)."""
    payload = getattr(event, "payload", None)
    kind = type(payload)
    placing = _PLACING.get(kind)
    if placing is None:
        fields = getattr(kind, "model_fields", {})
        placing = _PLACING[kind] = not fields or "region" in fields or "location" in fields
    if not placing:
        return dict(_NOWHERE)
    location = getattr(payload, "location", None)
    return {
        "county": getattr(payload, "region", None),
        "township": location.township if location else None,
        "village": location.village if location else None,
        "grid": location.grid if location else None,
    }
