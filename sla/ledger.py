"""The cases and clocks a batch of events touches: read once, changed in memory, written
back with a few set statements.

The consumer hands sla a whole partition batch (``shared.consumer``'s batch handler). One
``Ledger`` per batch reads the batch's cases and all their clocks in one query each (the
clocks locked, as the ticker and a holiday recount would lock them), the holiday tables
and the policies once; the handlers (``sla.handlers``) then change the rows in memory
with the pure rules of ``sla.domain``, in the order of the events; ``flush`` writes the
final rows: new clocks in one insert, changed clocks in one update, cases in one upsert.
A batch of one event is the per-event path, so both give the same rows.

What the old one-row-at-a-time statements decided is decided here the same way: a clock
whose id exists already (any state) is not started again (``ON CONFLICT DO NOTHING``); a
case row appears only when a handler writes to it; a policy is the most specific one in
force at the event time (``sla.domain.choose_policy``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from shared.db import UnitOfWork
from shared.deadlines import extended_due
from shared.events import ClockKind, ResolutionClass, Urgency
from shared.workdays import Deadline, WorkingCalendar
from sla import repository as repo
from sla.domain import (
    Policy, PolicyVersion, choose_policy, clock_until, extend, pause, policy_from_limits, resume, start_clock, start_timer, stop,
)  # fmt: skip
from sla.service import row_values, to_domain

OPEN_STATES = frozenset(repo.OPEN_STATES)

# What a case row holds when a handler first writes it (the table's defaults).
NEW_CASE = {
    "category": None, "region": None, "urgency": None, "policy_id": None, "policy_version": None, "closed": False, "redo_round": 0,
    "task": False,
}  # fmt: skip


class PolicyBook:
    """Every policy version, read once per batch (a version never changes once written)."""

    def __init__(self, rows: Iterable[Any]) -> None:
        self.versions = [
            PolicyVersion(r["policy_id"], r["version"], r["region"], r["category"], r["urgency"], r["effective_from"]) for r in rows
        ]
        self._limits = {(r["policy_id"], r["version"]): r["limits"] for r in rows}
        self._parsed: dict[tuple[str, int], Policy] = {}

    def get(self, policy_id: str, version: int) -> Policy:
        key = (policy_id, version)
        policy = self._parsed.get(key)
        if policy is None:
            policy = self._parsed[key] = policy_from_limits(version, self._limits.get(key) or {})
        return policy

    def for_case(self, *, region: str | None, category: str | None, urgency: str | None, at: datetime) -> PolicyVersion:
        chosen = choose_policy(self.versions, region=region, category=category, urgency=urgency, at=at)
        assert chosen is not None, "the default policy is created by the migration"
        return chosen


class Ledger:
    """The batch's cases and clocks, as the events so far have left them."""

    def __init__(self, uow: UnitOfWork, calendar: WorkingCalendar, policies: PolicyBook) -> None:
        self.uow = uow
        self.calendar = calendar
        self.policies = policies
        self._cases: dict[str, dict[str, Any]] = {}
        self._clocks: dict[str, dict[str, dict[str, Any]]] = {}  # case → clock id → row
        self._new_clocks: dict[str, dict[str, Any]] = {}
        self._changed_clocks: dict[str, dict[str, Any]] = {}
        self._dirty_cases: set[str] = set()

    @classmethod
    async def load(cls, uow: UnitOfWork, case_ids: Iterable[str], calendar: WorkingCalendar) -> Ledger:
        ids = sorted(set(case_ids))
        session = uow.session
        ledger = cls(uow, calendar, PolicyBook(await repo.all_policies(session)))
        ledger._clocks = {case_id: {} for case_id in ids}
        raw = await repo.driver(session)
        for row in await repo.cases_by_id(raw, ids):
            ledger._cases[row["case_id"]] = dict(row)
        for row in await repo.clocks_of_cases(raw, ids):
            ledger._clocks[row["case_id"]][row["clock_id"]] = dict(row)
        return ledger

    # ------------------------------------------------------------------ cases

    def case(self, case_id: str) -> dict[str, Any] | None:
        return self._cases.get(case_id)

    def closed(self, case_id: str) -> bool:
        case = self._cases.get(case_id)
        return bool(case and case["closed"])

    def upsert_case(self, case_id: str, **values: Any) -> None:
        """Like ``INSERT … ON CONFLICT DO UPDATE`` of these columns (DO NOTHING without any)."""
        case = self._cases.get(case_id)
        if case is None:
            case = self._cases[case_id] = {"case_id": case_id, **NEW_CASE}
            self._dirty_cases.add(case_id)
        if values:
            case.update(values)
            self._dirty_cases.add(case_id)

    def case_policy(self, case_id: str, at: datetime, *, category: str | None = None) -> tuple[str, int]:
        """The policy the case started under (pinned at triage), else the one in force at ``at``."""
        case = self._cases.get(case_id)
        if case is not None and case["policy_id"] is not None:
            return case["policy_id"], case["policy_version"]
        chosen = self.policies.for_case(
            region=case["region"] if case else None, category=category or (case["category"] if case else None),
            urgency=case["urgency"] if case else None, at=at,
        )
        return chosen.policy_id, chosen.version

    # ------------------------------------------------------------------ clocks

    def case_clocks(self, case_id: str) -> list[dict[str, Any]]:
        """Every clock of the case in the order the API lists them (start time, then id)."""
        return sorted(self._clocks[case_id].values(), key=lambda c: (c["started_at"], c["clock_id"]))

    def open_clocks(self, case_id: str, *, names: Iterable[str] | None = None, unit: str | None = None) -> list[dict[str, Any]]:
        wanted = None if names is None else set(names)
        rows = [
            c for c in self._clocks[case_id].values()
            if c["state"] in OPEN_STATES and (wanted is None or c["name"] in wanted) and (unit is None or c["unit"] == unit)
        ]  # fmt: skip
        return sorted(rows, key=lambda c: c["clock_id"])

    def start(
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
        due: Deadline | None = None,
        key: str | None = None,
        policy: tuple[str, int] | None = None,
        subject: str = "case",
    ) -> bool:
        """A new clock; the same event (redelivered, replayed) finds the one it started.
        ``due``: a deadline set by its owner (the order's, by dispatch); ``limit``: calendar
        time set by the event; otherwise the policy's limit for the kind."""
        name = name or kind.value
        clock_id = ":".join([case_id, name, unit or "-", str(round), *([key] if key else [])])
        if clock_id in self._clocks[case_id]:
            return False
        policy_id, version = policy or self.case_policy(case_id, at)
        rules = self.policies.get(policy_id, version)
        if due is not None:
            clock = clock_until(kind, at, due, version, unit=unit)
        elif limit is not None:
            clock = start_timer(kind, at, limit, version, unit=unit)
        else:
            clock = start_clock(kind, at, rules, self.calendar, unit=unit, urgency=urgency)
        row = {
            "clock_id": clock_id, "case_id": case_id, "subject": subject, "unit": unit, "kind": kind.value, "name": name,
            "round": round, "role": role, "resolution_class": resolution_class.value if resolution_class else None,
            "policy_id": policy_id, "policy_version": version, "started_at": clock.started_at,
            "paused_total": timedelta(0), "generation": 0,
            **row_values(clock, rules, self.calendar),
        }  # fmt: skip
        self._clocks[case_id][clock_id] = self._new_clocks[clock_id] = row
        return True

    def _change(self, rows: list[dict[str, Any]], change, at: datetime | None = None) -> int:
        for row in rows:
            rules = self.policies.get(row["policy_id"], row["policy_version"])
            before = to_domain(row)
            after = change(before)
            values = row_values(after, rules, self.calendar)
            if after.paused_at is None and before.paused_at is not None:
                assert at is not None
                values["paused_total"] = row["paused_total"] + self.calendar.working_time_between(before.paused_at, at)
            if after.fired != before.fired and not after.fired:
                values["generation"] = row["generation"] + 1  # a new deadline: its thresholds fire anew
            row.update(values)
            if row["clock_id"] not in self._new_clocks:
                self._changed_clocks[row["clock_id"]] = row
        return len(rows)

    def stop(self, case_id: str, at: datetime, *, names: tuple[str, ...] | None = None, unit: str | None = None) -> int:
        return self._change(self.open_clocks(case_id, names=names, unit=unit), lambda c: stop(c, at))

    def pause(self, case_id: str, at: datetime, *, unit: str | None = None) -> int:
        return self._change(self.open_clocks(case_id, unit=unit), lambda c: pause(c, at))

    def resume(self, case_id: str, at: datetime, *, unit: str | None = None, resolve_due: Deadline | None = None) -> int:
        """Paused clocks run again; the resolve clock takes ``resolve_due`` (the order's deadline as
        dispatch moved it) when the event carries it, the others move by the time paused."""
        rows = [r for r in self.open_clocks(case_id, unit=unit) if r["paused_at"] is not None]
        own = [r for r in rows if r["name"] != "resolve" or resolve_due is None]
        carried = [r for r in rows if r["name"] == "resolve" and resolve_due is not None]
        changed = self._change(own, lambda c: resume(c, at, self.calendar), at)
        return changed + self._change(carried, lambda c: resume(c, at, self.calendar, due=resolve_due), at)

    def extend(self, case_id: str, unit: str, at: datetime, working_days: float, *, due: Deadline | None = None) -> int:
        """The unit's resolve clock moves to the new deadline the event carries (dispatch's), or,
        for an event without it, to the one the same rule gives (``shared.deadlines``)."""
        rows = self.open_clocks(case_id, names=("resolve",), unit=unit)
        return self._change(rows, lambda c: extend(c, due or extended_due(self.calendar, c.due_at, at, working_days)))

    def move_due(self, case_id: str, unit: str, due: Deadline) -> int:
        """The unit's resolve clock takes the deadline its owner moved (dispatch's, after the
        on-site survey); its thresholds may fire again for it, as after an extension."""
        rows = self.open_clocks(case_id, names=("resolve",), unit=unit)
        return self._change(rows, lambda c: extend(c, due))

    def take_due(self, case_id: str, unit: str, name: str, due: datetime) -> int:
        """The unit's ``name`` clock takes the deadline its owner counted again on a new holiday
        table (dispatch's, ``case.deadline_moved``): only the due time moves — a card already
        given stays given, the ones still to come count from the new time."""
        rows = self.open_clocks(case_id, names=(name,), unit=unit)
        return self._change(rows, lambda c: replace(c, due_at=due))

    # ------------------------------------------------------------------ write back

    async def flush(self) -> bool:
        """The final rows: one statement per kind of write. True when a clock was started or changed."""
        if not (self._dirty_cases or self._new_clocks or self._changed_clocks):
            return False
        clocks_written = bool(self._new_clocks or self._changed_clocks)
        raw = await repo.driver(self.uow.session)
        if self._dirty_cases:
            await repo.upsert_cases(raw, [self._cases[c] for c in sorted(self._dirty_cases)])
        if self._new_clocks:
            await repo.insert_clocks(raw, list(self._new_clocks.values()))
        if self._changed_clocks:
            await repo.update_clocks(raw, list(self._changed_clocks.values()))
        self._dirty_cases.clear()
        self._new_clocks.clear()
        self._changed_clocks.clear()
        return clocks_written
