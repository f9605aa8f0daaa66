"""预警信息处置: an early warning handled like a case, counted, and the supervision list (督查).
Pure rules, no database, no broker.

A finding that warns a unit (``HotspotDetectedData.warned_unit``) opens one warning:

    open ──acknowledge (签收)──▶ acknowledged ──handle (处置, what was done)──▶ handled
    handled ──close (the centre)──▶ closed
    handled ──reopen (the centre: not good enough)──▶ acknowledged (round + 1, a new handling deadline)

The unit warned (its head or staff, or a unit above it) acknowledges and handles; the
county's centre closes or sends back. An action the state does not allow is refused with the
state and the actions allowed (409, as dispatch does for orders). The deadlines are
``shared.deadlines.warning_acknowledge_due`` / ``warning_handle_due``; a step is on time when
it is taken at or before the deadline in force.

Counted per unit (``unit_figures``): warnings received, acknowledged on time, handled on time,
closed, reopened — every rate divides a count of the unit's warnings by the warnings it
received, so each rate is a share of the same things.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from shared.errors import WrongState
from shared.events import Actor, Role
from shared.orgdata import OrgDirectory
from shared.scope import CENTRE_ROLES, DEPARTMENT_ROLES, area_of, covers


class State(StrEnum):
    open = "open"  # waiting to be acknowledged (待签收)
    acknowledged = "acknowledged"  # 已签收: being handled
    handled = "handled"  # 已处置: waiting for the centre
    closed = "closed"  # 已办结


class Action(StrEnum):
    acknowledge = "acknowledge"
    handle = "handle"
    close = "close"
    reopen = "reopen"


TRANSITIONS: dict[tuple[State, Action], State] = {
    (State.open, Action.acknowledge): State.acknowledged,
    (State.acknowledged, Action.handle): State.handled,
    (State.handled, Action.close): State.closed,
    (State.handled, Action.reopen): State.acknowledged,
}

#: The unit warned does these; the centre the others.
UNIT_ACTIONS = frozenset({Action.acknowledge, Action.handle})
#: The people of the unit warned: a township's or a department's head and staff.
UNIT_ROLES = frozenset({Role.township_staff, Role.township_head}) | DEPARTMENT_ROLES


# 黄牌 / 红牌 on a warning's clocks (sla.warning_signal); an early reminder (50%…) is no card.
CARD_RANK = {None: 0, "yellow": 1, "red": 2}


def worse_card(card: str | None, level: str) -> str | None:
    """The warning's card after a signal of ``level``: the worse of the two (a red card stays)."""
    new = level if level in CARD_RANK else None
    return new if CARD_RANK[new] > CARD_RANK[card] else card


def allowed_actions(state: State) -> list[str]:
    return sorted(action.value for (s, action) in TRANSITIONS if s == state)


def next_state(state: State, action: Action) -> State:
    """The state after ``action``; WrongState (409) naming what is allowed when it is not now."""
    if (state, action) not in TRANSITIONS:
        raise WrongState(
            f"cannot {action.value} a warning that is {state.value}", state=state.value, allowed_actions=allowed_actions(state)
        )
    return TRANSITIONS[(state, action)]


def on_time(done_at: datetime, due_at: datetime) -> bool:
    """A step meets its deadline when taken at or before it."""
    return done_at <= due_at


# --------------------------------------------------------------------------- who reads, who acts


def may_read(org: OrgDirectory, actor: Actor, unit: str) -> bool:
    """The unit warned and a unit above it; the centre (and the auditor) of an area the unit
    lies in — a county's departments are under the county. Nobody else."""
    if actor.role in UNIT_ROLES or actor.role in CENTRE_ROLES or actor.role is Role.auditor:
        return covers(org, area_of(org, actor), unit)
    return False


def may_act(org: OrgDirectory, actor: Actor, action: Action, unit: str) -> bool:
    """Acknowledge and handle: the people of the unit warned (or of a unit above it). Close and
    reopen: the centre serving an area the unit lies in."""
    if action in UNIT_ACTIONS:
        return actor.role in UNIT_ROLES and covers(org, area_of(org, actor), unit)
    return actor.role in CENTRE_ROLES and covers(org, area_of(org, actor), unit)


def caller_actions(org: OrgDirectory, actor: Actor, state: State, unit: str) -> list[str]:
    """What the screen offers this caller: the state's actions this caller may take (the same
    rule the routes enforce)."""
    return [name for name in allowed_actions(state) if may_act(org, actor, Action(name), unit)]


# --------------------------------------------------------------------------- counted (预警信息处置)


@dataclass
class UnitFigure:
    unit: str
    received: int = 0
    acknowledged_on_time: int = 0
    handled_on_time: int = 0
    closed: int = 0
    reopened: int = 0
    carded: int = 0  # given a red card (红牌) on its acknowledge or handle clock

    def rates(self) -> dict[str, float | None]:
        """Each a percentage of the warnings received (None when none were)."""
        return {
            f"{name}_rate": rate(getattr(self, name), self.received)
            for name in ("acknowledged_on_time", "handled_on_time", "closed", "reopened", "carded")
        }


def rate(count: int, of: int) -> float | None:
    return None if of == 0 else round(100 * count / of, 2)


def handled_on_time(row: Mapping[str, Any]) -> bool:
    """Handled, and every handling report of every round met the deadline then in force."""
    return row["handled_count"] > 0 and not row["handled_late"]


def unit_figures(rows: Iterable[Mapping[str, Any]]) -> list[UnitFigure]:
    """Per unit, over the warnings given (each row one warning, as stored): received,
    acknowledged on time, handled on time, closed, reopened at least once, red-carded."""
    figures: dict[str, UnitFigure] = {}
    for row in rows:
        f = figures.setdefault(row["unit"], UnitFigure(row["unit"]))
        f.received += 1
        f.acknowledged_on_time += bool(row["acknowledged_on_time"])
        f.handled_on_time += handled_on_time(row)
        f.closed += row["state"] == State.closed
        f.reopened += row["round"] > 0
        f.carded += row.get("card") == "red"
    return sorted(figures.values(), key=lambda f: f.unit)


# --------------------------------------------------------------------------- the supervision list (督查)

SUPERVISED_KINDS = ("persistent_unit", "rising", "same_spot")


def months_back(until: date, months: int) -> date:
    """The first day of the month ``months - 1`` months before ``until``'s: the last ``months``
    calendar months, the current one included."""
    if months < 1:
        raise ValueError("months must be at least 1")
    index = until.year * 12 + until.month - 1 - (months - 1)
    return date(index // 12, index % 12 + 1, 1)


@dataclass
class Recurring:
    """One unit's recurring problem of one subject class: what supervisors read."""

    unit: str
    subject_class: str
    findings: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    open_warnings: int = 0
    first_detected: date | None = None
    last_detected: date | None = None
    case_ids: list[str] = field(default_factory=list)


def supervision_list(
    findings: Iterable[Mapping[str, Any]], warning_states: Mapping[str, str], responsible: Any
) -> list[Recurring]:
    """Group the findings by the unit responsible (``responsible(row)``, the unit warned) and
    subject class: how many, of which kinds, over which days, with how many warnings still not
    closed and every case in the evidence. Most findings first: whom to press."""
    groups: dict[tuple[str, str], Recurring] = {}
    cases: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in findings:
        unit = responsible(row)
        if unit is None or row["kind"] not in SUPERVISED_KINDS:
            continue
        key = (unit, row["subject_class"])
        entry = groups.setdefault(key, Recurring(unit, row["subject_class"]))
        entry.findings += 1
        entry.kinds[row["kind"]] = entry.kinds.get(row["kind"], 0) + 1
        state = warning_states.get(row["finding_id"])
        entry.open_warnings += state is not None and state != State.closed
        day = row["detected_on"]
        entry.first_detected = day if entry.first_detected is None else min(entry.first_detected, day)
        entry.last_detected = day if entry.last_detected is None else max(entry.last_detected, day)
        cases[key] |= set(row["case_ids"])
    for key, entry in groups.items():
        entry.case_ids = sorted(cases[key])
    return sorted(groups.values(), key=lambda e: (-e.findings, -e.open_warnings, e.unit, e.subject_class))
