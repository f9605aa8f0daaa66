"""Sla's use cases: the ticker that fires the clocks' thresholds, and a holiday table followed
that recounts the clocks SLA itself computed (lifecycle events change clocks through ``sla.ledger``).
Each runs inside one unit of work; only it commits (``shared.db.transactional`` for those a
route calls), and it refuses with the domain errors of ``shared.errors``."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Gauge
from sqlalchemy.engine import RowMapping

from shared.tasks import stop_task
from shared.db import UnitOfWork, transactional
from shared.errors import Conflict
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
    SlaWarningSignal,
    SlaWarningSignalData,
    make_event,
    system_actor,
)
from shared.service import Runtime
from shared.wakeup import Wakeup
from shared.holidays import HolidayFollower
from shared.workdays import PACKAGED_CALENDAR, WorkingCalendar, guessed_year_warning
from sla import repository as repo
from sla.domain import (
    Clock,
    Policy,
    carried_kind,
    due_signals,
    fired,
    next_signal_at,
    policy_from_limits,
    recount,
    signal_kind,
)
from sla.settings import SlaSettings

log = logging.getLogger(__name__)
SERVICE = "sla"
ACTOR = system_actor(SERVICE)
# NOTIFY'd after a commit that started or moved a clock (or moved the shared now): every
# replica's ticker reads its next due time again.
TICKER_CHANNEL = "jiesu_sla_ticker"
# A ticker round that failed (the database away) is tried again after this long.
RETRY_SECONDS = 1.0


# --------------------------------------------------------------------- context (the movable now)


@dataclass
class SlaContext:
    """What the running service holds: its settings, the time-travel offset, the ticker."""

    settings: SlaSettings
    offset: timedelta = timedelta(0)
    # Wakes the ticker here and in the other replicas (set at start-up: it needs the engine).
    wakeup: Wakeup | None = None
    task: asyncio.Task[None] | None = None
    # The holiday tables the directory publishes, followed (set at start-up: shared.service).
    holidays: HolidayFollower | None = None
    recounts: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def calendar(self) -> WorkingCalendar:
        """The packaged calendar overlaid by the tables followed: read per use, a table moves it."""
        return self.holidays.calendar if self.holidays is not None else PACKAGED_CALENDAR

    def wake_ticker(self) -> None:
        """After a commit that started or moved a clock, or moved the now (``UnitOfWork.after_commit``):
        every replica's ticker reads its next due time again instead of sleeping through it."""
        if self.wakeup is not None:
            self.wakeup.nudge()

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


async def recount_own_clocks(uow: UnitOfWork, year: int, old: WorkingCalendar, new: WorkingCalendar) -> int:
    """A holiday table for ``year`` took effect: recount the open clocks SLA computed itself
    that guessed that year (weekends only), on the new calendar (``sla.domain.recount``).
    A deadline another service owns (an order's, dispatch's; a warning's, insight's) is never
    recounted here: its owner moves it and the new time travels on an event. Returns how
    many clocks moved (0 when another replica, or a previous start, already recounted them)."""
    guessed = guess_warning(year)
    policies = Policies(uow)
    rows = [r for r in await repo.open_clocks_warned(uow.session, guessed) if not carried_kind(ClockKind(r["kind"]))]
    for row in rows:
        recounted = recount(to_domain(row), old, new, guessed)
        rules = await policies.get(row["policy_id"], row["policy_version"])
        await repo.update_clock(uow.session, row["clock_id"], row_values(recounted, rules, new))
    await uow.commit()
    return len(rows)


def follow_calendar(runtime: Runtime, ctx: SlaContext) -> None:
    """On each holiday table the service follows, recount its own clocks (in a task of their own:
    the follower must not wait on the database) and wake the ticker."""

    async def recount_year(year: int, old: WorkingCalendar, new: WorkingCalendar) -> None:
        for attempt in range(5):
            try:
                async with runtime.uow() as uow:
                    moved = await recount_own_clocks(uow, year, old, new)
                if moved:
                    log.info("holiday table %d: %d of sla's own clocks recounted", year, moved)
                    ctx.wake_ticker()
                return
            except Exception:
                log.exception("recounting clocks for holiday table %d failed (attempt %d)", year, attempt + 1)
                await asyncio.sleep(RETRY_SECONDS)

    def changed(year: int, old: WorkingCalendar, new: WorkingCalendar) -> None:
        task = asyncio.create_task(recount_year(year, old, new), name=f"sla-recount:{year}")
        ctx.recounts.add(task)
        task.add_done_callback(ctx.recounts.discard)

    if ctx.holidays is not None:
        ctx.holidays.on_change.append(changed)
        # Tables followed before this hook was set (the follower starts first): each as if it
        # had just arrived over the others.
        tables = dict(ctx.holidays.tables)
        for year, loaded in tables.items():
            before = WorkingCalendar([t.table for y, t in tables.items() if y != year])
            changed(year, before, before.with_table(loaded.table))


# --------------------------------------------------------------------- policies


@transactional
async def write_policy(
    uow: UnitOfWork, ctx: SlaContext, policy_id: str, *, scope: dict[str, Any], limits: dict[str, Any],
    effective_from: datetime | None, created_by: str, note: str | None,
) -> RowMapping:  # fmt: skip
    """A new version of a policy; a policy keeps the scope (region, category, urgency) it was
    first written for, and two writers of the same next version: the second is refused."""
    await ctx.refresh(uow)
    latest = await repo.get_policy(uow.session, policy_id)
    if latest is not None and {k: latest[k] for k in scope} != scope:
        raise Conflict(
            f"policy {policy_id} covers region={latest['region']} category={latest['category']} "
            f"urgency={latest['urgency']}; a new version keeps its scope (write another policy for another scope)",
            code="policy-scope", field="region/category/urgency",
        )
    version = (latest["version"] + 1) if latest else 1
    created = await repo.insert_policy_version(
        uow.session,
        {"policy_id": policy_id, "version": version, **scope, "limits": limits,
         "effective_from": effective_from or ctx.now(), "created_by": created_by, "note": note},
    )  # fmt: skip
    if not created:
        raise Conflict(f"version {version} of policy {policy_id} was just written by someone else; read it and retry",
                       code="policy-version-taken")  # fmt: skip
    return await repo.get_policy(uow.session, policy_id, version)


def guess_warning(year: int) -> str:
    """The warning shared.workdays puts on a deadline counted without that year's table."""
    return guessed_year_warning(year)


BREACH_DETECTION_DELAY = Gauge(
    "sla_breach_detection_delay_seconds",
    "Seconds between a clock's due time and the red card (sla.breached) being written, for the latest breach",
)


# --------------------------------------------------------------------- the ticker


def warning_signal_event(row: RowMapping, name: str, clock: Clock, now: datetime) -> SlaWarningSignal:
    """The event a threshold of an early warning's clock writes: the case's rules, its own type
    (a warning is not a case: no case_id, partitioned with the warning's own events)."""
    kind = signal_kind(name)
    level = "red" if kind != "warning" else ("yellow" if name == "yellow" else "info")
    payload = SlaWarningSignalData(
        warning_id=row["case_id"], clock_id=row["clock_id"], clock=clock.kind.value, unit=row["unit"], round=row["round"],
        signal=kind, threshold=name, level=level, due_at=clock.due_at,
        sequence=int(name.split("-", 1)[1]) if kind == "urged" else None,
    )  # fmt: skip
    return make_event(SlaWarningSignal, payload=payload, producer=SERVICE, actor=ACTOR, occurred_at=now)


def signal_event(row: RowMapping, name: str, clock: Clock, now: datetime) -> EventBase:
    """The event a threshold writes (黄牌 / 红牌 / 催办 / 督办)."""
    if row["subject"] == "warning":
        return warning_signal_event(row, name, clock, now)
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


async def tick(uow: UnitOfWork, now: datetime, batch: int, calendar: WorkingCalendar = PACKAGED_CALENDAR) -> tuple[int, int]:
    """Fire the thresholds reached by ``now`` on a batch of claimed clocks; returns
    (clocks claimed, events written). The signal rows, the events and the clocks' next
    times commit together, so a crash in between fires nothing twice and loses nothing."""
    rows = await repo.claim_due(uow.session, now, batch)
    if not rows:
        return 0, 0
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
    """Claim and fire until cancelled; then sleep until the earliest next threshold, or at most
    ``tick_max_sleep_seconds`` (a fallback), woken early by a commit that starts or moves a
    clock here or in another replica (``SlaContext.wake_ticker``)."""
    settings = ctx.settings
    wakeup = ctx.wakeup
    assert wakeup is not None
    while True:
        # Cleared before the due times are read: a clock committed from here on wakes the sleep below.
        wakeup.event.clear()
        try:
            await wakeup.listen()
            async with runtime.uow() as uow:
                await ctx.refresh(uow)
            claimed = batch = settings.tick_batch
            while claimed == batch:  # a backlog (after downtime): drain it before sleeping
                async with runtime.uow() as uow:
                    claimed, _ = await tick(uow, ctx.now(), batch, ctx.calendar)
            async with runtime.uow() as uow:
                earliest = await repo.earliest_signal(uow.session)
            sleep = settings.tick_max_sleep_seconds
            if earliest is not None:
                sleep = min(sleep, max(0.0, (earliest - ctx.now()).total_seconds()))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sla ticker failed; retrying")
            sleep = min(RETRY_SECONDS, settings.tick_max_sleep_seconds)
        await wakeup.sleep(sleep)


async def start_ticker(runtime: Runtime) -> None:
    """The ticker of the service's context (``runtime.context``), woken by commits."""
    ctx: SlaContext = runtime.context
    ctx.wakeup = Wakeup(runtime.engine, TICKER_CHANNEL, name="sla-ticker")
    follow_calendar(runtime, ctx)
    if ctx.settings.ticker_enabled:
        ctx.task = asyncio.create_task(run_ticker(runtime, ctx), name="sla-ticker")


async def stop_ticker(runtime: Runtime) -> None:
    ctx: SlaContext = runtime.context
    if ctx is not None:
        await stop_task(ctx.task)
        for recounting in list(ctx.recounts):
            await stop_task(recounting)
        if ctx.wakeup is not None:
            await ctx.wakeup.close()
