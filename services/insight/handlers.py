"""What insight reads from the topic, and its one batch handler (``shared.consumer``).

Insight keeps one row per case (``appeals``): where and what (intake's ``case.received``,
refined by ``case.triaged``), the unit that handles it (the sole or lead unit of its order,
``case.dispatched``), and how often the matter came back (duplicates merged into it,
``case.merged``; redo rounds, ``case.reopened``). A batch is applied to the rows read once and
written once; then the detectors (``services.insight.detect``) look at the areas, spots and
units the batch touched, and each finding not in its cooldown is stored and published as
``hotspot.detected`` in the same unit of work (outbox). A redelivered event changes nothing
(the consumer's inbox; the merge count is the only counter, and the inbox keeps it exact).

Order: events of a case come from intake, dispatch and others in any interleaving that keeps
each producer's order. Every fact here is order-free: the received day is the earliest seen,
a triage overwrites intake's first guess of place and class but intake's never overwrites a
triage, the redo round is the highest seen — so nothing needs to wait (no ``requires``).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.insight import detect, tasks
from services.insight import warning_api as early_warning_api
from services.insight.models import appeals, finding_keys, findings
from services.insight.service import InsightContext
from shared.consumer import BatchHandler
from shared.db import CaseRows, UnitOfWork
from shared.events import EventBase, HotspotDetected, HotspotDetectedData, make_event, system_actor
from shared.workdays import LOCAL

APPEAL_TYPES = frozenset({"case.received", "case.triaged", "case.merged", "case.reopened", "case.dispatched"})
# The appeals' facts, what a task item's state follows (services.insight.tasks), and sla's
# thresholds of a warning's clocks: the card it got (预警信息处置, services.insight.warning_api).
HANDLES = APPEAL_TYPES | tasks.FOLLOWED | {"sla.warning_signal"}

PLACE_FIELDS = ("township", "village", "grid", "street")
APPEALS = CaseRows(appeals, {"merges": 0, "redo_round": 0})
NAMESPACE = uuid.UUID("5b1d6a8e-6f0e-4c52-9a53-1f0e2b7d9c41")  # finding ids: uuid5(key|day)


def local_day(event: EventBase) -> date:
    return event.occurred_at.astimezone(LOCAL).date()


def apply_fact(row: dict[str, Any], event: EventBase) -> None:
    """One event's fact on the case's row (in place). Intake writes ``case.received`` before
    its ``case.triaged``, so its first guess only fills what is empty and the triage (and a
    later manual one, 人工分拨) overwrites."""
    p = event.payload  # type: ignore[attr-defined]
    day = local_day(event)
    if event.type in ("case.received", "case.triaged"):
        row["received_on"] = day if row["received_on"] is None else min(row["received_on"], day)
    if event.type == "case.received":
        row["subject_class"] = row["subject_class"] or p.subject_class
        if p.location is not None:
            for name in PLACE_FIELDS:
                row[name] = row[name] or _cut(name, getattr(p.location, name))
    elif event.type == "case.triaged":
        row["subject_class"] = p.subject_class
        row["county"] = p.region or row["county"]
        if p.location is not None:
            for name in PLACE_FIELDS:
                row[name] = _cut(name, getattr(p.location, name)) or row[name]
    elif event.type == "case.reopened":
        row["redo_round"] = max(row["redo_round"], p.redo_round)
    elif event.type == "case.dispatched" and p.role in ("sole", "lead"):
        row["unit"] = p.unit


def _cut(name: str, value: str | None) -> str | None:
    limit = appeals.c[name].type.length
    return value[:limit] if value else value


def as_appeal(row: dict[str, Any]) -> detect.Appeal | None:
    """The row as the detectors see it; None until its day and class are known."""
    if row["received_on"] is None or not row["subject_class"]:
        return None
    return detect.Appeal(
        case_id=row["case_id"], day=row["received_on"], subject=row["subject_class"], county=row["county"],
        township=row["township"], village=row["village"], grid=row["grid"], street=row["street"], unit=row["unit"],
        repeats=row["merges"] + row["redo_round"],
    )  # fmt: skip


def make_batch_handler(ctx: InsightContext) -> BatchHandler:
    """Insight's handler, bound to its context (calendar, thresholds, names)."""

    async def apply_batch(uow: UnitOfWork, events: list[EventBase]) -> None:
        signals = [event for event in events if event.type == "sla.warning_signal"]
        await early_warning_api.record_cards(uow, signals)  # type: ignore[misc]
        task_cases = await tasks.follow(uow, [event for event in events if event.type != "sla.warning_signal"])
        # A task item is not an appeal: the detectors never count it.
        events = [event for event in events if event.type in APPEAL_TYPES and event.case_id not in task_cases]
        if not events:
            return
        touched = await apply_events(uow, events)
        today = detect.workday_on_or_after(ctx.calendar, max(local_day(event) for event in events))
        await find(uow, ctx, touched, today)

    return apply_batch


async def apply_events(uow: UnitOfWork, events: list[EventBase]) -> list[detect.Appeal]:
    """The events' facts on the rows, read once (locked) and written once; the appeals touched."""
    session = uow.session
    ids = {event.case_id for event in events if event.case_id}
    ids |= {event.payload.into_case_id for event in events if event.type == "case.merged"}  # type: ignore[attr-defined]
    stored = await APPEALS.load(session, ids)
    touched: dict[str, dict[str, Any]] = {}

    def row_of(case_id: str) -> dict[str, Any]:
        if case_id not in touched:
            touched[case_id] = dict(stored.get(case_id) or APPEALS.new(case_id))
        return touched[case_id]

    for event in events:
        if event.type == "case.merged":
            # The duplicate is an appeal of its own too; the open case it joined counts one more repeat.
            row_of(event.payload.into_case_id)["merges"] += 1  # type: ignore[attr-defined]
        apply_fact(row_of(event.case_id), event)  # type: ignore[arg-type]
    await APPEALS.save(session, touched.values())
    return [appeal for row in touched.values() if (appeal := as_appeal(row)) is not None]


async def find(uow: UnitOfWork, ctx: InsightContext, touched: list[detect.Appeal], today: date) -> None:
    """Run the detectors over the history of what the batch touched; store and publish each
    finding whose pattern is out of its cooldown."""
    if not touched:
        return
    th = ctx.thresholds
    places_from, units_from = detect.history_starts(ctx.calendar, today, th)
    rows = (
        await uow.session.execute(
            select(appeals).where(
                appeals.c.subject_class.in_(sorted({a.subject for a in touched})),
                appeals.c.received_on <= today,
                (appeals.c.township.in_(sorted({a.township for a in touched if a.township})) & (appeals.c.received_on >= places_from))
                | (appeals.c.unit.in_(sorted({a.unit for a in touched if a.unit})) & (appeals.c.received_on >= units_from)),
            )
        )
    ).mappings()
    history = [appeal for row in rows if (appeal := as_appeal(dict(row))) is not None]
    codes = {code for a in touched for code in (a.township, a.village, a.grid, a.unit) if code}
    found = detect.detect(history, touched, today, ctx.calendar, th, ctx.names(codes))
    if not found:
        return
    keys = sorted({f.key for f in found})
    session = uow.session
    await session.execute(pg_insert(finding_keys).on_conflict_do_nothing(), [{"key": key, "last_on": None} for key in keys])
    last = {
        row.key: row.last_on
        for row in await session.execute(
            select(finding_keys).where(finding_keys.c.key.in_(keys)).order_by(finding_keys.c.key).with_for_update()
        )
    }
    for finding in found:
        if not detect.cooled(finding.kind, last[finding.key], today, ctx.calendar, th):
            continue
        last[finding.key] = today
        if finding.county is None and finding.township:
            finding = replace(finding, county=ctx.county_of(finding.township))
        event = hotspot_event(finding, today, ctx.centre_of(finding.county))
        await session.execute(findings.insert().values(**finding_row(finding, event, today)))
        await session.execute(
            text("UPDATE finding_keys SET last_on = :day WHERE key = :key"), {"day": today, "key": finding.key}
        )
        uow.emit(event)
        await early_warning_api.open_for(uow, ctx, event)  # 预警信息处置: the unit warned must act on it


def finding_id(finding: detect.Finding, today: date) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{finding.key}|{today.isoformat()}"))


def hotspot_event(finding: detect.Finding, today: date, centre: str | None = None) -> HotspotDetected:
    payload = HotspotDetectedData(
        finding_id=finding_id(finding, today), kind=finding.kind, level=finding.level, area=finding.area,  # type: ignore[arg-type]
        county=finding.county, township=finding.township, street=finding.street, subject_class=finding.subject,
        unit=finding.unit, centre=centre, window_start=finding.window_start, window_end=finding.window_end,
        window_workdays=finding.window_workdays, count=finding.count, baseline=finding.baseline, score=finding.score,
        case_ids=list(finding.case_ids[:500]), explanation=finding.explanation,
    )  # fmt: skip
    return make_event(HotspotDetected, payload=payload, producer="insight", actor=system_actor("insight"))


def finding_row(finding: detect.Finding, event: HotspotDetected, today: date) -> dict[str, Any]:
    p = event.payload
    return {
        "finding_id": p.finding_id, "key": finding.key, "kind": p.kind, "level": p.level, "area": p.area,
        "county": p.county, "township": p.township, "street": p.street, "unit": p.unit,
        "subject_class": p.subject_class, "detected_on": today, "window_start": p.window_start,
        "window_end": p.window_end, "count": p.count, "baseline": p.baseline, "score": p.score,
        "case_ids": list(finding.case_ids), "explanation": p.explanation, "event_id": str(event.id),
    }  # fmt: skip
