"""An order's deadlines (交办单时限): the one place their rules are written.

Dispatch owns the order, so dispatch computes each of its deadlines once, stores it and
carries it on the event that set it (``case.dispatched.due_at`` and ``return_due_at``,
``case.extension_approved.new_due_at``, ``case.resumed.due_at``, ``case.reopened.due_at``,
``case.dispatched.survey_due_at`` and ``case.surveyed.due_at``).
SLA runs its clocks on the carried times; it calls these functions itself only for an
event that does not carry the time (written before the field existed), so both services
still follow one rule. All times are working time on ``shared.workdays``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from shared.events import ResolutionClass
from shared.workdays import Deadline, WorkingCalendar

# 办理时限 by class (docs/rules.md): consultation 1–3 working days (the longest, 3, is the
# default), general 5, complex 15; a long-cycle matter starts like a complex one and is
# then extended, with approval, up to 180 days (延期).
RESOLVE_WORKING_DAYS: Mapping[ResolutionClass, float] = {
    ResolutionClass.consultation: 3,
    ResolutionClass.general: 5,
    ResolutionClass.complex: 15,
    ResolutionClass.long_cycle: 15,
}

# 退单: only within 1–2 working days of dispatch (the default is the longer, 2).
RETURN_WINDOW_WORKING_DAYS = 2.0


def resolve_due(
    calendar: WorkingCalendar, dispatched_at: datetime, resolution_class: ResolutionClass,
    limits: Mapping[ResolutionClass, float] = RESOLVE_WORKING_DAYS,
) -> Deadline:  # fmt: skip
    """When the order must be resolved (答复): its class's working days from dispatch."""
    return calendar.add_working_days(dispatched_at, limits[resolution_class])


def return_window_end(
    calendar: WorkingCalendar, dispatched_at: datetime, working_days: float = RETURN_WINDOW_WORKING_DAYS
) -> Deadline:
    """Until when the unit may return the order (退单)."""
    return calendar.add_working_days(dispatched_at, working_days)


# 现场勘查 (docs/rules.md, the guardrail story of 武宣县通挽镇江龙村: "两天后镇里派人现场勘查，
# 四天后护栏就安装好了"): a matter on site is surveyed within 2 working days of the order
# reaching the unit, and the work is done within 4 working days of the survey.
SURVEY_WORKING_DAYS = 2.0
AFTER_SURVEY_WORKING_DAYS = 4.0
# The subject classes whose matters are on site (facilities, roads, hazards, water, the
# environment): their orders run a survey clock. Other matters (a consultation, a dispute,
# a benefit) may still record a survey, without a clock of its own.
ON_SITE_SUBJECT_CLASSES = frozenset({
    "infrastructure", "public_safety", "transport", "water_supply", "environment", "urban_management",
})  # fmt: skip


def survey_due(
    calendar: WorkingCalendar, dispatched_at: datetime, subject_class: str | None,
    working_days: float = SURVEY_WORKING_DAYS, on_site: frozenset[str] = ON_SITE_SUBJECT_CLASSES,
) -> Deadline | None:  # fmt: skip
    """When the unit must have surveyed on site (现场勘查): ``working_days`` after the order
    reached it, for a matter on site; None for any other matter (no survey clock)."""
    if subject_class not in on_site:
        return None
    return calendar.add_working_days(dispatched_at, working_days)


def after_survey_due(
    calendar: WorkingCalendar, due_at: datetime, surveyed_at: datetime, working_days: float = AFTER_SURVEY_WORKING_DAYS
) -> Deadline:
    """The order's resolve deadline once surveyed: the work has ``working_days`` from the
    survey, and never less time than its class already gave it (a survey never shortens it)."""
    after = calendar.add_working_days(surveyed_at, working_days)
    return after if after.due_at > due_at else Deadline(due_at)


def extended_due(calendar: WorkingCalendar, due_at: datetime, approved_at: datetime, working_days: float) -> Deadline:
    """An approved extension (延期): the days granted count from the current deadline, or from
    the approval when the order is already overdue — an extension never shortens the time."""
    return calendar.add_working_days(max(due_at, approved_at), working_days)


def resumed_due(calendar: WorkingCalendar, due_at: datetime, paused_at: datetime, resumed_at: datetime) -> Deadline:
    """Waiting on the citizen does not count: the deadline moves on by the working time the
    order was suspended."""
    return calendar.add_working_time(due_at, calendar.working_time_between(paused_at, resumed_at))


# 1小时诉求服务模式 (docs/rules.md): a simple appeal taken at a walk-in window is answered
# within one hour of being received, by the person who received it (谁接待、谁负责). Clock
# time, not working time: the citizen is at the window now.
WINDOW_SIMPLE_HOURS = 1.0


def window_simple_due(received_at: datetime, hours: float = WINDOW_SIMPLE_HOURS) -> datetime:
    """When a simple window appeal must be resolved: ``hours`` after it was received."""
    return received_at + timedelta(hours=hours)


# 响应时限 (docs/rules.md): a unit called on a case — 乡呼县应, or a whistle (吹哨报到) from a
# township, a village or a grid (网格吹哨、部门报到) — reports (报到) within the response
# limit: 30 minutes for an emergency (departments on site within 30 min), one hour otherwise
# (as for signing an order). Clock time: a whistle is answered at once, holiday or not.
EMERGENCY_RESPONSE_MINUTES = 30
RESPONSE_MINUTES = 60


def response_minutes(urgency: str | None, asked: int | None = None) -> int:
    """The response limit of a call or whistle on a case of ``urgency``: the caller may ask for
    another (``asked``), but never more than 30 minutes for an emergency."""
    if urgency == "emergency":
        return EMERGENCY_RESPONSE_MINUTES if asked is None else min(asked, EMERGENCY_RESPONSE_MINUTES)
    return RESPONSE_MINUTES if asked is None else asked


def response_due(called_at: datetime, minutes: int) -> datetime:
    """When the called units must have reported (报到): ``minutes`` after the call."""
    return called_at + timedelta(minutes=minutes)


# 预警信息处置 (docs/rules.md): an early warning is acknowledged (签收) within 1 working day of
# being opened and handled (处置, what was done reported) within 5 working days — the general
# class's limit — counted again from the day the centre sends it back (重办). Insight opens
# the warning and carries both times on its events; nothing recomputes them.
WARNING_ACKNOWLEDGE_WORKING_DAYS = 1.0
WARNING_HANDLE_WORKING_DAYS = 5.0


def warning_acknowledge_due(
    calendar: WorkingCalendar, opened_at: datetime, working_days: float = WARNING_ACKNOWLEDGE_WORKING_DAYS
) -> Deadline:
    """When the unit warned must have acknowledged the warning (签收)."""
    return calendar.add_working_days(opened_at, working_days)


def warning_handle_due(
    calendar: WorkingCalendar, started_at: datetime, working_days: float = WARNING_HANDLE_WORKING_DAYS
) -> Deadline:
    """When the unit must have reported what it did (处置): from the warning's opening, or from
    the centre's sending it back (a new round)."""
    return calendar.add_working_days(started_at, working_days)
