"""Lifecycle events as the other services write them, for driving scoring in tests."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from aiokafka import AIOKafkaProducer

from shared.cloudevents import to_message
from shared import events as ev
from shared.events import Actor, EventBase, Role, make_event

DISPATCH = Actor(id="service:dispatch", role=Role.system)
INTAKE = Actor(id="service:intake", role=Role.system)
SLA = Actor(id="service:sla", role=Role.system)
NOTIFY = Actor(id="service:notify", role=Role.system)


class Case:
    """One case's events, each at a given time (event time is what scoring counts)."""

    def __init__(self, *, township: str | None = None, region: str | None = None, subject: str = "infrastructure",
                 case_id: str | None = None) -> None:
        self.case_id = case_id or f"C-{uuid.uuid4().hex[:12]}"
        self.township = township
        self.region = region
        self.subject = subject
        self.events: list[EventBase] = []
        self._orders = 0

    def _add(self, cls, payload, producer: str, actor: Actor, at: datetime) -> EventBase:
        event = make_event(cls, payload=payload, producer=producer, actor=actor, case_id=self.case_id, occurred_at=at)
        self.events.append(event)
        return event

    def received(self, at: datetime, **extra) -> Case:
        loc = ev.Location(township=self.township) if self.township else None
        self._add(ev.CaseReceived, ev.ReceivedData(
            tracking_no=f"XC-{self.case_id[-8:]}", channel=ev.Channel.app, title="路灯不亮", description="路灯坏了",
            subject_class=self.subject, location=loc, **extra), "intake", INTAKE, at)
        return self

    def accepted(self, at: datetime) -> Case:
        self._add(ev.CaseAccepted, ev.AcceptedData(tracking_no="x", notice="已受理"), "intake", INTAKE, at)
        return self

    def triaged(self, at: datetime) -> Case:
        loc = ev.Location(township=self.township) if self.township else None
        self._add(ev.CaseTriaged, ev.TriagedData(
            category=ev.FiveMatters.worry, subject_class=self.subject, location=loc, confidence=0.9, region=self.region,
        ), "intake", INTAKE, at)
        return self

    def filed(self, at: datetime) -> Case:
        return self.received(at).accepted(at + timedelta(minutes=5)).triaged(at + timedelta(minutes=6))

    def dispatched(self, unit: str, at: datetime, *, role: str = "sole", redo_round: int = 0) -> str:
        self._orders += 1
        order_no = f"JB-{self.case_id}-{self._orders}"
        self._add(ev.CaseDispatched, ev.DispatchedData(order_no=order_no, unit=unit, role=role, redo_round=redo_round),
                  "dispatch", DISPATCH, at)
        return order_no

    def signed(self, order_no: str, unit: str, at: datetime, *, by: Actor = DISPATCH) -> Case:
        """``by``: the person who signed (dispatch writes the caller as the actor)."""
        self._add(ev.CaseSigned, ev.SignedData(order_no=order_no, unit=unit), "dispatch", by, at)
        return self

    def returned(self, order_no: str, unit: str, at: datetime, *, by: Actor = DISPATCH) -> Case:
        self._add(ev.CaseReturned, ev.ReturnedData(order_no=order_no, unit=unit, reason_code="not_ours", reason="非本单位职责"),
                  "dispatch", by, at)
        return self

    def resolved(self, order_no: str, unit: str, at: datetime, *, solved: bool = True, by: Actor = DISPATCH) -> Case:
        self._add(ev.CaseResolved, ev.ResolvedData(order_no=order_no, unit=unit, answer="已修复", solved=solved),
                  "dispatch", by, at)
        return self

    def called(self, call_id: str, township: str, units: list[str], at: datetime) -> Case:
        self._add(ev.CountyCalled, ev.CountyCalledData(call_id=call_id, township=township, units=units, reason="村里解决不了"),
                  "dispatch", DISPATCH, at)
        return self

    def whistled(self, call_id: str, township: str, lead: str, co: list[str], at: datetime) -> Case:
        self._add(ev.WhistleBlown, ev.WhistleBlownData(call_id=call_id, township=township, lead_unit=lead, co_units=co,
                                                       reason="多部门共同处置"), "dispatch", DISPATCH, at)
        return self

    def extended(self, order_no: str, unit: str, at: datetime, *, working_days: int = 3) -> Case:
        """延期 requested and approved (scoring keeps no fact of it; the case's status does)."""
        request = f"EXT-{order_no}-{len(self.events)}"
        self._add(ev.ExtensionRequested, ev.ExtensionRequestedData(
            order_no=order_no, unit=unit, request_id=request, working_days=working_days, reason="需采购材料"), "dispatch", DISPATCH, at)
        self._add(ev.ExtensionApproved, ev.ExtensionApprovedData(
            order_no=order_no, unit=unit, request_id=request, working_days=working_days), "dispatch", DISPATCH, at)
        return self

    def closed(self, at: datetime) -> Case:
        self._add(ev.CaseClosed, ev.ClosedData(public_summary="已办结"), "dispatch", DISPATCH, at)
        return self

    def rated(self, rating: str, at: datetime, *, round: int = 0, source: str = "callback") -> Case:
        self._add(ev.CaseRated, ev.RatedData(rating=ev.Satisfaction(rating), round=round, source=source), "notify", NOTIFY, at)
        return self

    def reopened(self, unit: str, redo_round: int, at: datetime) -> Case:
        self._add(ev.CaseReopened, ev.ReopenedData(reason="不满意", redo_round=redo_round, unit=unit), "dispatch", DISPATCH, at)
        return self

    def warned(self, unit: str, clock: str, due: datetime, at: datetime) -> Case:
        self._add(ev.SlaWarning, ev.SlaWarningData(clock_id=f"{self.case_id}:{unit}:{clock}", clock=ev.ClockKind(clock),
                                                   unit=unit, due_at=due, threshold="yellow"), "sla", SLA, at)
        return self

    def breached(self, unit: str, clock: str, due: datetime, at: datetime | None = None) -> Case:
        self._add(ev.SlaBreached, ev.SlaBreachedData(clock_id=f"{self.case_id}:{unit}:{clock}", clock=ev.ClockKind(clock),
                                                     unit=unit, due_at=due), "sla", SLA, at or due)
        return self


def grid_activity(worker: str, grid: str, kind: str, at: datetime, count: int = 1) -> EventBase:
    return make_event(
        ev.GridActivity, payload=ev.GridActivityData(worker_id=worker, grid=grid, kind=kind, count=count),
        producer="intake", actor=Actor(id=worker, role=Role.grid_worker, org_unit=grid), occurred_at=at,
    )


async def publish_many(bootstrap_servers: str, topic: str, events: list[EventBase]) -> None:
    """Like ``shared.testing.publish`` (CloudEvents binary mode, keyed by case), but sends in
    batches instead of one round trip per event: thousands of events in seconds."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    try:
        pending = []
        for event in events:
            message = to_message(event)
            pending.append(await producer.send(topic, message.value, key=message.key, headers=message.headers))
            if len(pending) >= 2000:
                for future in pending:
                    await future
                pending.clear()
        for future in pending:
            await future
    finally:
        await producer.stop()
