"""SLA rules, free of I/O: limits as data, clocks that pause and extend, and when to warn.

A clock runs for one case, or for one unit on a case (a lead and each co-handler have
their own). Its due time is computed from event times, never from when an event was
processed, so replaying the topic gives the same deadlines. Thresholds fire once each:
``due_signals`` returns only those not yet in ``clock.fired``.

    yellow   1 working day before the due time (黄牌), plus optional earlier shares (50%, 75%)
    red      at the due time (红牌)
    urge-N   every ``urge_every`` working days while overdue (催办)
    escalate ``escalate_after`` working days overdue (督办)

The order's own deadlines — resolve (办理时限) and the return window (退单) — are not SLA's
to set: dispatch owns the order, computes them once (``shared.deadlines``) and they arrive
on the events; a policy sets the limits of the clocks no other service shows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from shared.callback import callback_window
from shared.deadlines import resumed_due
from shared.workdays import Deadline, WorkingCalendar, subtract_working_time
from shared.events import ClockKind, Urgency

WORKING_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Policy:
    """The limits of one region × category × urgency; versioned so a case keeps its own.
    The resolve deadline and the return window are dispatch's (they come on the events)."""

    version: int = 1
    accept: timedelta = timedelta(days=1)  # calendar time
    dispatch_working_days: float = 0.5
    sign: timedelta = timedelta(hours=1)
    sign_emergency: timedelta = timedelta(minutes=30)
    first_contact: timedelta = timedelta(hours=24)
    verify_working_days: float = 2
    # No callback limit here: the callback (回访) falls due by one rule shared with notify's
    # queue (shared.callback), the same for every policy — a per-policy value would let the
    # two services show different due times for one closure.
    early_warnings: tuple[float, ...] = ()  # e.g. (0.5, 0.75) of the allowed time
    urge_every_working_days: float = 1
    escalate_after_working_days: float = 3


@dataclass(frozen=True)
class Clock:
    kind: ClockKind
    started_at: datetime
    due_at: datetime
    policy_version: int
    unit: str | None = None
    paused_at: datetime | None = None
    stopped_at: datetime | None = None
    fired: frozenset[str] = frozenset()
    warnings: tuple[str, ...] = ()  # e.g. a year without a holiday table


def start_clock(
    kind: ClockKind,
    started_at: datetime,
    policy: Policy,
    calendar: WorkingCalendar,
    *,
    unit: str | None = None,
    urgency: Urgency = Urgency.normal,
) -> Clock:
    """A new clock with its due time: calendar time for the hour limits, working time for the
    rest. The order's deadlines are not here: see ``clock_until``."""
    calendar_limits = {
        ClockKind.accept: policy.accept,
        ClockKind.sign: policy.sign_emergency if urgency is Urgency.emergency else policy.sign,
        ClockKind.first_contact: policy.first_contact,
    }
    if kind in calendar_limits:
        return Clock(kind, started_at, started_at + calendar_limits[kind], policy.version, unit)
    if kind in ORDER_DEADLINES:
        raise ValueError(f"the {kind.value} deadline is dispatch's: start it with clock_until and the carried time")
    if kind in WARNING_DEADLINES:
        raise ValueError(f"the {kind.value} deadline is insight's: start it with clock_until and the carried time")
    if kind is ClockKind.callback:
        # Due at the end of the callback day (shared.callback), the instant notify's queue
        # calls the task overdue: the red card never comes before the call could be made.
        window = callback_window(calendar, started_at)
        return Clock(kind, started_at, window.due_at, policy.version, unit, warnings=window.warnings)
    working_days = {
        ClockKind.dispatch: policy.dispatch_working_days,
        ClockKind.verify: policy.verify_working_days,
    }[kind]
    deadline = calendar.add_working_days(started_at, working_days)
    return Clock(kind, started_at, deadline.due_at, policy.version, unit, warnings=deadline.warnings)


# The clocks that run on a deadline of the dispatch order, which dispatch computes.
ORDER_DEADLINES = frozenset({ClockKind.resolve, ClockKind.return_window, ClockKind.survey})
# The clocks of an early warning (预警信息处置), on the deadlines insight computes and carries.
WARNING_DEADLINES = frozenset({ClockKind.warning_acknowledge, ClockKind.warning_handle})


def carried_kind(kind: ClockKind) -> bool:
    """Whether a clock of ``kind`` runs on a deadline another service owns and carries on its
    events (an order's, a warning's): SLA follows the carried time and never recounts it."""
    return kind in ORDER_DEADLINES or kind in WARNING_DEADLINES


def clock_until(kind: ClockKind, started_at: datetime, due: Deadline, policy_version: int, *, unit: str | None = None) -> Clock:
    """A clock whose due time was computed elsewhere: an order's deadline as dispatch set it."""
    return Clock(kind, started_at, due.due_at, policy_version, unit, warnings=due.warnings)


def recount(clock: Clock, old: WorkingCalendar, new: WorkingCalendar, guessed: str) -> Clock:
    """A clock counted on a guessed year (warning ``guessed``), counted again once the year's
    holiday table is loaded: the same working time from the same start on the new calendar —
    for the callback, its own rule on the new calendar."""
    if clock.kind is ClockKind.callback:
        moved = callback_window(new, clock.started_at)
    else:
        moved = new.add_working_time(clock.started_at, old.working_time_between(clock.started_at, clock.due_at))
    warnings = tuple(w for w in clock.warnings if w != guessed) + moved.warnings
    return replace(clock, due_at=moved.due_at, warnings=warnings)


def pause(clock: Clock, at: datetime) -> Clock:
    """Waiting on the citizen or an approved suspension: the clock stops counting."""
    return clock if clock.paused_at is not None or clock.stopped_at else replace(clock, paused_at=at)


def resume(clock: Clock, at: datetime, calendar: WorkingCalendar, *, due: Deadline | None = None) -> Clock:
    """The due time moves by the working time the clock was paused (``shared.deadlines``), or
    to ``due`` when the owner of the deadline already moved it (the order's, by dispatch)."""
    if clock.paused_at is None:
        return clock
    moved = due or resumed_due(calendar, clock.due_at, clock.paused_at, at)
    return replace(clock, paused_at=None, due_at=moved.due_at, warnings=clock.warnings + moved.warnings)


def extend(clock: Clock, due: Deadline) -> Clock:
    """An approved extension (延期) moves the due time to the new deadline (dispatch computes
    it: ``shared.deadlines.extended_due``); thresholds may fire again for it."""
    return replace(clock, due_at=due.due_at, fired=frozenset(), warnings=clock.warnings + due.warnings)


def stop(clock: Clock, at: datetime) -> Clock:
    return clock if clock.stopped_at else replace(clock, stopped_at=at)


def start_timer(kind: ClockKind, started_at: datetime, limit: timedelta, policy_version: int, *, unit: str | None = None) -> Clock:
    """A clock on calendar time with a limit set by the event itself (响应: a county call or
    whistle gives ``respond_within_minutes``)."""
    return Clock(kind, started_at, started_at + limit, policy_version, unit)


def _before_due(clock: Clock, policy: Policy, calendar: WorkingCalendar) -> list[tuple[str, datetime]]:
    """The warnings counted back from the due time or forward from the start (50%…, yellow)."""
    allowed = calendar.working_time_between(clock.started_at, clock.due_at)
    times = [(f"{int(share * 100)}%", calendar.add_working_time(clock.started_at, allowed * share).due_at) for share in policy.early_warnings]
    # The callback is owed on one working day, the one after closure: a yellow card "one
    # working day before" its end would fall before 09:00 that day, before the call can be made.
    if allowed > WORKING_DAY and clock.kind is not ClockKind.callback:
        times.append(("yellow", subtract_working_time(calendar, clock.due_at, WORKING_DAY)))
    return times


def _after_due(clock: Clock, policy: Policy, calendar: WorkingCalendar, horizon: int) -> list[tuple[str, datetime]]:
    """Urging and escalation: working time added to the due time, so never before it."""
    step = timedelta(days=policy.urge_every_working_days)
    times = [(f"urge-{n}", calendar.add_working_time(clock.due_at, step * n).due_at) for n in range(1, horizon + 1)]
    times.append(("escalate", calendar.add_working_days(clock.due_at, policy.escalate_after_working_days).due_at))
    return times


def signal_times(clock: Clock, policy: Policy, calendar: WorkingCalendar, *, horizon: int = 10) -> list[tuple[str, datetime]]:
    """Every threshold of the clock with the moment it is reached, in time order."""
    times = [*_before_due(clock, policy, calendar), ("red", clock.due_at), *_after_due(clock, policy, calendar, horizon)]
    return sorted(times, key=lambda item: item[1])


def due_signals(clock: Clock, now: datetime, policy: Policy, calendar: WorkingCalendar) -> list[str]:
    """Thresholds reached by ``now`` that have not fired yet (none once stopped or paused)."""
    if clock.stopped_at is not None or clock.paused_at is not None:
        return []
    return [name for name, at in signal_times(clock, policy, calendar) if at <= now and name not in clock.fired]


def fired(clock: Clock, names: list[str]) -> Clock:
    return replace(clock, fired=clock.fired | set(names))


def next_signal_at(clock: Clock, policy: Policy, calendar: WorkingCalendar) -> datetime | None:
    """When the ticker must look at the clock next: its earliest threshold not fired yet
    (None when stopped, paused, or every threshold has fired)."""
    if clock.stopped_at is not None or clock.paused_at is not None:
        return None
    if "red" not in clock.fired:
        # Urging and escalation come at or after the due time, which is pending itself: the
        # earliest is among the warnings and the due time (the same answer, a tenth of the work).
        return min([at for name, at in _before_due(clock, policy, calendar) if name not in clock.fired] + [clock.due_at])
    pending = [at for name, at in signal_times(clock, policy, calendar) if name not in clock.fired]
    return min(pending, default=None)


def signal_kind(name: str) -> str:
    """Which event a threshold writes: 'warning' (yellow, 50%…), 'breached', 'urged' or 'escalated'."""
    if name == "red":
        return "breached"
    if name.startswith("urge-"):
        return "urged"
    if name == "escalate":
        return "escalated"
    return "warning"


# 督办 after the third redo (重办): a case the citizen sent back three times is escalated to the
# centre's supervision. Fired once per case (the signal row ``<case>:redo_limit``), however many
# rounds follow; the round is the one dispatch opened, carried on ``case.reopened``.
REDO_ESCALATION_ROUND = 3


def redo_escalation(redo_round: int, limit: int = REDO_ESCALATION_ROUND) -> bool:
    """Whether a case reopened for round ``redo_round`` is due 督办 (the third redo and later;
    the caller fires it only once)."""
    return redo_round >= limit


def remaining(clock: Clock, now: datetime, calendar: WorkingCalendar) -> timedelta:
    """Working time left until the due time (negative when overdue); frozen while paused or stopped."""
    at = clock.stopped_at or clock.paused_at or now
    return calendar.working_time_between(at, clock.due_at)


def describe(amount: timedelta) -> str:
    """Remaining working time in plain words: '2 个工作日 3 小时', '超期 1 个工作日 2 小时'."""
    overdue = amount < timedelta(0)
    amount = abs(amount)
    days, rest = divmod(amount, WORKING_DAY)
    hours = int(rest.total_seconds() // 3600)
    minutes = int(rest.total_seconds() % 3600 // 60)
    parts = []
    if days:
        parts.append(f"{days} 个工作日")
    if hours:
        parts.append(f"{hours} 小时")
    if minutes and not days:
        parts.append(f"{minutes} 分钟")
    text = " ".join(parts) or "0 分钟"
    return f"超期 {text}" if overdue else text


@dataclass(frozen=True)
class PolicyVersion:
    """Where a stored policy version applies (None = any) and from when."""

    policy_id: str
    version: int
    region: str | None
    category: str | None
    urgency: str | None
    effective_from: datetime


def choose_policy(
    versions: list[PolicyVersion], *, region: str | None, category: str | None, urgency: str | None, at: datetime
) -> PolicyVersion | None:
    """The most specific policy matching the case (region 4, category 2, urgency 1), in its
    latest version in force at ``at`` (the event time, so a replay picks the same version);
    for an event older than every policy, the earliest version of the most specific."""

    def specificity(v: PolicyVersion) -> int:
        return (v.region is not None) * 4 + (v.category is not None) * 2 + (v.urgency is not None)

    matches = [
        v for v in versions
        if (v.region is None or v.region == region) and (v.category is None or v.category == category)
        and (v.urgency is None or v.urgency == urgency)
    ]  # fmt: skip
    in_force = [v for v in matches if v.effective_from <= at]
    if in_force:
        return max(in_force, key=lambda v: (specificity(v), v.version))
    return min(matches, key=lambda v: (-specificity(v), v.version), default=None)


# Policy limits as data: what an administrator sends, and how a version is stored.
_CALENDAR_LIMITS = {"accept_hours": "accept", "sign_minutes": "sign", "sign_emergency_minutes": "sign_emergency", "first_contact_hours": "first_contact"}
_NUMBER_LIMITS = (
    "dispatch_working_days", "verify_working_days",
    "urge_every_working_days", "escalate_after_working_days",
)  # fmt: skip


# Limits an SLA policy no longer sets: dispatch owns these deadlines (DISPATCH_RESOLVE_WORKING_DAYS,
# DISPATCH_RETURN_WINDOW_WORKING_DAYS). A version stored before keeps them in its row, unused.
DISPATCH_OWNED_LIMITS = ("resolve_working_days", "return_window_working_days")


def policy_from_limits(version: int, limits: dict) -> Policy:
    """A policy version from its stored limits: anything left out keeps the default (docs/rules.md);
    the order deadlines a version from before may still hold are dispatch's and are ignored."""
    base = Policy()
    values: dict = {"version": version}
    for key, attr in _CALENDAR_LIMITS.items():
        if key in limits:
            unit = timedelta(hours=1) if key.endswith("hours") else timedelta(minutes=1)
            values[attr] = unit * float(limits[key])
    for key in _NUMBER_LIMITS:
        if key in limits:
            values[key] = float(limits[key])
    if "early_warnings" in limits:
        values["early_warnings"] = tuple(sorted(float(share) for share in limits["early_warnings"]))
    return replace(base, **values)


def policy_limits(policy: Policy) -> dict:
    """Every limit of a policy, in the units an administrator writes them."""
    out: dict = {}
    for key, attr in _CALENDAR_LIMITS.items():
        unit = timedelta(hours=1) if key.endswith("hours") else timedelta(minutes=1)
        out[key] = getattr(policy, attr) / unit
    for key in _NUMBER_LIMITS:
        out[key] = getattr(policy, key)
    out["early_warnings"] = list(policy.early_warnings)
    return out
