"""Sla's use cases: clocks started, stopped, paused and moved by lifecycle events, and the
ticker that fires their thresholds. Each runs inside one unit of work; only it commits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Gauge
from sqlalchemy.engine import RowMapping

from shared.db import UnitOfWork
from shared.events import (
    ClockKind,
    EventBase,
    SlaBreached,
    SlaBreachedData,
    SlaEscalated,
    SlaEscalatedData,
    SlaUrged,
    SlaUrgedData,
    SlaWarning,
    SlaWarningData,
    Urgency,
    ResolutionClass,
    make_event,
    system_actor,
)
from shared.service import Runtime
from shared.workdays import HolidayTable, WorkingCalendar
from sla import repository as repo
from sla.domain import (
    Clock,
    Policy,
    due_signals,
    extend,
    fired,
    next_signal_at,
    pause,
    policy_from_limits,
    resume,
    signal_kind,
    start_clock,
    start_timer,
    stop,
)
from sla.settings import SlaSettings

log = logging.getLogger(__name__)
SERVICE = "sla"
ACTOR = system_actor(SERVICE)


# --------------------------------------------------------------------- context (the movable now)


@dataclass
class SlaContext:
    """What the running service holds: its settings, the time-travel offset, the ticker."""

    settings: SlaSettings
    offset: timedelta = timedelta(0)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    async def refresh(self, uow: UnitOfWork) -> None:
        """Pick up an offset another replica set (time travel is shared through the database)."""
        if self.settings.time_travel:
            self.offset = timedelta(seconds=await repo.get_offset(uow.session))


# --------------------------------------------------------------------- clock rows <-> domain


def to_domain(row: RowMapping) -> Clock:
    return Clock(
        kind=ClockKind(row["kind"]),
        started_at=row["started_at"],
        due_at=row["due_at"],
        policy_version=row["policy_version"],
        unit=row["unit"],
        paused_at=row["paused_at"],
        stopped_at=row["stopped_at"],
        fired=frozenset(row["fired"]),
        warnings=tuple(row["warnings"]),
    )


def state_of(clock: Clock) -> str:
    if clock.stopped_at is not None:
        return "stopped"
    if clock.paused_at is not None:
        return "paused"
    return "breached" if "red" in clock.fired else "running"


def row_values(clock: Clock, policy: Policy, calendar: WorkingCalendar) -> dict[str, Any]:
    return {
        "due_at": clock.due_at,
        "paused_at": clock.paused_at,
        "stopped_at": clock.stopped_at,
        "state": state_of(clock),
        "fired": sorted(clock.fired),
        "warnings": list(dict.fromkeys(clock.warnings)),
        "next_signal_at": next_signal_at(clock, policy, calendar),
    }


class Policies:
    """Policy versions read once per unit of work (a version never changes once written)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self._seen: dict[tuple[str, int], Policy] = {}

    async def get(self, policy_id: str, version: int) -> Policy:
        key = (policy_id, version)
        if key not in self._seen:
            row = await repo.get_policy(self._uow.session, policy_id, version)
            self._seen[key] = policy_from_limits(version, row["limits"] if row else {})
        return self._seen[key]


# --------------------------------------------------------------------- changes from events


class Clocks:
    """The clock changes one event makes, in its unit of work, with the calendar as loaded now."""

    def __init__(self, uow: UnitOfWork, calendar: WorkingCalendar) -> None:
        self.uow = uow
        self.calendar = calendar
        self.policies = Policies(uow)
        self._case_policies: dict[tuple, tuple[str, int]] = {}

    @classmethod
    async def open(cls, uow: UnitOfWork) -> Clocks:
        return cls(uow, await repo.load_calendar(uow.session))

    async def case_policy(self, case_id: str, at: datetime, *, category: str | None = None) -> tuple[str, int]:
        """The policy the case started under (pinned at triage), else the one in force at ``at``.
        Asked once per event and case: the clocks one event starts share it."""
        key = (case_id, at, category)
        if key not in self._case_policies:
            self._case_policies[key] = await self._case_policy(case_id, at, category=category)
        return self._case_policies[key]

    async def _case_policy(self, case_id: str, at: datetime, *, category: str | None = None) -> tuple[str, int]:
        case = await repo.get_case(self.uow.session, case_id)
        if case is not None and case["policy_id"] is not None:
            return case["policy_id"], case["policy_version"]
        row = await repo.policy_for(
            self.uow.session, region=case["region"] if case else None,
            category=category or (case["category"] if case else None), urgency=case["urgency"] if case else None, at=at,
        )
        return row["policy_id"], row["version"]

    async def start(
        self,
        case_id: str,
        kind: ClockKind,
        at: datetime,
        *,
        name: str | None = None,
        unit: str | None = None,
        round: int = 0,
        role: str | None = None,
        resolution_class: ResolutionClass | None = None,
        urgency: Urgency = Urgency.normal,
        limit: timedelta | None = None,
        key: str | None = None,
        policy: tuple[str, int] | None = None,
    ) -> bool:
        """A new clock; the same event (redelivered, replayed) finds the one it started."""
        name = name or kind.value
        policy_id, version = policy or await self.case_policy(case_id, at)
        rules = await self.policies.get(policy_id, version)
        if limit is not None:
            clock = start_timer(kind, at, limit, version, unit=unit)
        else:
            clock = start_clock(
                kind, at, rules, self.calendar, unit=unit,
                resolution_class=resolution_class or ResolutionClass.general, urgency=urgency,
            )
        clock_id = ":".join([case_id, name, unit or "-", str(round), *([key] if key else [])])
        return await repo.insert_clock(
            self.uow.session,
            {
                "clock_id": clock_id, "case_id": case_id, "unit": unit, "kind": kind.value, "name": name,
                "round": round, "role": role, "resolution_class": resolution_class.value if resolution_class else None,
                "policy_id": policy_id, "policy_version": version, "started_at": clock.started_at,
                **row_values(clock, rules, self.calendar),
            },
        )

    async def _change(self, rows: list[RowMapping] | tuple[RowMapping, ...], change, **extra: Any) -> int:
        for row in rows:
            rules = await self.policies.get(row["policy_id"], row["policy_version"])
            before = to_domain(row)
            after = change(before)
            values = row_values(after, rules, self.calendar)
            if after.paused_at is None and before.paused_at is not None:
                values["paused_total"] = row["paused_total"] + self.calendar.working_time_between(before.paused_at, extra["at"])
            if after.fired != before.fired and not after.fired:
                values["generation"] = row["generation"] + 1  # a new deadline: its thresholds fire anew
            await repo.update_clock(self.uow.session, row["clock_id"], values)
        return len(rows)

    async def stop(self, case_id: str, at: datetime, *, names: tuple[str, ...] | None = None, unit: str | None = None) -> int:
        rows = await repo.open_clocks(self.uow.session, case_id, names=names, unit=unit)
        return await self._change(rows, lambda c: stop(c, at))

    async def pause(self, case_id: str, at: datetime, *, unit: str | None = None) -> int:
        rows = await repo.open_clocks(self.uow.session, case_id, unit=unit)
        return await self._change(rows, lambda c: pause(c, at))

    async def resume(self, case_id: str, at: datetime, *, unit: str | None = None) -> int:
        rows = [r for r in await repo.open_clocks(self.uow.session, case_id, unit=unit) if r["paused_at"] is not None]
        return await self._change(rows, lambda c: resume(c, at, self.calendar), at=at)

    async def extend(self, case_id: str, unit: str, at: datetime, working_days: float) -> int:
        rows = await repo.open_clocks(self.uow.session, case_id, names=("resolve",), unit=unit)
        return await self._change(rows, lambda c: extend(c, at, working_days, self.calendar))


async def load_holiday_table(uow: UnitOfWork, table: HolidayTable, loaded_by: str) -> int:
    """Store a year's schedule and recount the open clocks that guessed that year (weekends
    only): the same working time from the same start, on the official calendar. Returns how
    many clocks moved."""
    old = await repo.load_calendar(uow.session)
    await repo.put_holiday_table(uow.session, table, loaded_by)
    new = old.with_table(table)
    guessed = guess_warning(table.year)
    policies = Policies(uow)
    rows = await repo.open_clocks_warned(uow.session, guessed)
    for row in rows:
        clock = to_domain(row)
        allowed = old.working_time_between(clock.started_at, clock.due_at)
        moved = new.add_working_time(clock.started_at, allowed)
        warnings = tuple(w for w in clock.warnings if w != guessed) + moved.warnings
        recounted = replace(clock, due_at=moved.due_at, warnings=warnings)
        rules = await policies.get(row["policy_id"], row["policy_version"])
        await repo.update_clock(uow.session, row["clock_id"], row_values(recounted, rules, new))
    return len(rows)


def guess_warning(year: int) -> str:
    """The warning shared.workdays puts on a deadline counted without that year's table (same text)."""
    return f"no holiday table for {year}: counted weekends only; load the year's schedule"


BREACH_DETECTION_DELAY = Gauge(
    "sla_breach_detection_delay_seconds",
    "Seconds between a clock's due time and the red card (sla.breached) being written, for the latest breach",
)


# --------------------------------------------------------------------- the ticker


def signal_event(row: RowMapping, name: str, clock: Clock, now: datetime) -> EventBase:
    """The event a threshold writes (黄牌 / 红牌 / 催办 / 督办)."""
    kind = signal_kind(name)
    common = {"clock_id": row["clock_id"], "clock": clock.kind, "unit": row["unit"]}
    if kind == "warning":
        payload: Any = SlaWarningData(**common, due_at=clock.due_at, threshold=name, level="yellow" if name == "yellow" else "info")
        cls: Any = SlaWarning
    elif kind == "breached":
        payload, cls = SlaBreachedData(**common, due_at=clock.due_at), SlaBreached
    elif kind == "urged":
        n = int(name.split("-", 1)[1])
        payload, cls = SlaUrgedData(**common, overdue_working_days=n, sequence=n), SlaUrged
    else:
        payload = SlaEscalatedData(
            reason="overdue", clock_id=row["clock_id"], unit=row["unit"],
            detail=f"{row['name']} clock overdue since {clock.due_at.isoformat()}",
        )
        cls = SlaEscalated
    return make_event(cls, payload=payload, producer=SERVICE, actor=ACTOR, case_id=row["case_id"], occurred_at=now)


async def tick(uow: UnitOfWork, now: datetime, batch: int) -> tuple[int, int]:
    """Fire the thresholds reached by ``now`` on a batch of claimed clocks; returns
    (clocks claimed, events written). The signal rows, the events and the clocks' next
    times commit together, so a crash in between fires nothing twice and loses nothing."""
    rows = await repo.claim_due(uow.session, now, batch)
    if not rows:
        return 0, 0
    calendar = await repo.load_calendar(uow.session)
    policies = Policies(uow)
    written = 0
    for row in rows:
        rules = await policies.get(row["policy_id"], row["policy_version"])
        clock = to_domain(row)
        names = due_signals(clock, now, rules, calendar)
        for name in names:
            event = signal_event(row, name, clock, now)
            first = await repo.insert_signal(
                uow.session,
                {"clock_id": row["clock_id"], "generation": row["generation"], "signal": name, "case_id": row["case_id"],
                 "unit": row["unit"], "event_id": str(event.id), "fired_at": now},
            )
            if first:
                uow.emit(event)
                written += 1
                if name == "red":
                    # How late the red card is, against its due time: the detector's health.
                    BREACH_DETECTION_DELAY.set(max(0.0, (now - clock.due_at).total_seconds()))
        await repo.update_clock(uow.session, row["clock_id"], row_values(fired(clock, names), rules, calendar))
    await uow.commit()
    return len(rows), written


async def run_ticker(runtime: Runtime, ctx: SlaContext) -> None:
    """Claim and fire until cancelled; sleep until the earliest next threshold (capped), so a
    breach is written within about ``tick_max_sleep_seconds`` of its due time."""
    settings = ctx.settings
    while True:
        try:
            async with runtime.uow() as uow:
                await ctx.refresh(uow)
            claimed = batch = settings.tick_batch
            while claimed == batch:  # a backlog (after downtime): drain it before sleeping
                async with runtime.uow() as uow:
                    claimed, _ = await tick(uow, ctx.now(), batch)
            async with runtime.uow() as uow:
                earliest = await repo.earliest_signal(uow.session)
            sleep = settings.tick_max_sleep_seconds
            if earliest is not None:
                sleep = min(sleep, max(0.0, (earliest - ctx.now()).total_seconds()))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sla ticker failed; retrying")
            sleep = settings.tick_max_sleep_seconds
        ctx.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ctx.wake.wait(), sleep)


async def start_ticker(runtime: Runtime) -> None:
    ctx = SlaContext(runtime.settings)  # type: ignore[arg-type]
    runtime.extras["sla"] = ctx
    if ctx.settings.ticker_enabled:
        ctx.task = asyncio.create_task(run_ticker(runtime, ctx), name="sla-ticker")


async def stop_ticker(runtime: Runtime) -> None:
    ctx: SlaContext | None = runtime.extras.get("sla")
    if ctx is not None and ctx.task is not None:
        ctx.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ctx.task
