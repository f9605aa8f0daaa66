"""Scoring's one event handler (``apply_batch``): a batch of events — the live consumer's, one
event alone, or a rebuild's thousands — as a few set-based statements.

``BatchPlan`` takes the events of a batch in order (pure, one event at a time, so that the
rebuild can decode and plan in slices) and then gives the statements to run in order:

- ``case_status`` of every case in the batch: one MERGE (``shared.case_status``);
- per order-safe part of the batch (``order_safe_parts``): the case-level facts folded per
  case in Python into one row each and applied by one MERGE (``_CASE_FACTS``), instead of
  one statement per kind of case event; then the other writes in ``BATCH_ORDER``, each one
  set-based statement per round (``scoring.batch``).

The case-level rules are written here once, in the MERGE (``_case_facts_merge``) and the
fold that feeds it (``fold_case_facts``). Why the fold is exact — each rule composes, so a
batch gives what its events give in batches of one: "keep" columns take the first value ever given (``coalesce(old, first of the batch)``),
"take" columns the last one (``coalesce(last of the batch, old)``), received's place is
kept and triage's taken (triage wins whatever the order), times that only grow take the
greatest, and the answer (解决) is the one with the latest time, ties going to the later
event. A new row is the fold applied to an empty row (NULL, ``solved_on_spot`` false,
``current_round`` 0, the columns' defaults).

MERGE, not INSERT … ON CONFLICT, because the update needs values that are not columns of
the row (the first received place besides the last triaged one). MERGE is not safe
against a concurrent insert of the same case (PostgreSQL 15): a rebuild is the single
writer (the live consumer is stopped meanwhile), and the live consumer's partitions keep
each case with one replica; if it ever failed, the consumer applies the batch again
event by event (batches of one, whose MERGE meets the other's row as an update).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.sql import Executable

from scoring.handlers import (
    _PLACE,
    BATCH_ORDER,
    CASE_ACCEPTED,
    CASE_CLOSED,
    CASE_MERGED,
    CASE_RECEIVED,
    CASE_REJECTED,
    CASE_REOPENED,
    CASE_RESOLVED,
    CASE_TRIAGED,
    Rows,
    facts,
    order_sensitive,
)
from shared.case_status import CaseStatusBatch
from shared.db import UnitOfWork
from shared.events import EventBase

# A batch's work as statements with their parameters, in the order to run them.
Plan = list[tuple[Executable, dict[str, list[Any]]]]

CASE_WRITES = frozenset(w.name for w in (
    CASE_RECEIVED, CASE_ACCEPTED, CASE_REJECTED, CASE_MERGED, CASE_TRIAGED, CASE_RESOLVED, CASE_CLOSED, CASE_REOPENED,
))  # fmt: skip

# --------------------------------------------------------------------------- case facts, folded

_KEEP = ("tracking_no", "channel", "received_at", "first_unit")  # received's own columns, kept
# The fold's row: the value of each rule for the batch (None when no event gave one).
_FOLD_TYPES: dict[str, str] = {
    "case_id": "text",
    **{c: ("timestamptz" if c == "received_at" else "text") for c in _KEEP},
    **{f"r_{c}": "text" for c in _PLACE},  # first place received
    **{f"t_{c}": "text" for c in _PLACE},  # last place triaged
    "solved_on_spot": "boolean",  # the last received's
    "accepted_at": "timestamptz",  # first
    "rejected_at": "timestamptz",  # first
    "merged_into": "text",  # last
    "resolved_at": "timestamptz",  # latest …
    "solved": "boolean",  # … and its answer
    "closed_at": "timestamptz",  # greatest
    "current_round": "int",  # greatest
}


def _case_facts_merge() -> Any:
    columns = ", ".join(_FOLD_TYPES)
    arrays = ", ".join(f"CAST(:{c} AS {t}[])" for c, t in _FOLD_TYPES.items())

    def rules(old) -> dict[str, str]:
        """Each column of case_facts after the fold, from ``old`` (the stored row or an
        empty one) and ``v`` (the fold's row)."""
        f = (lambda c: f"f.{c}") if old else (lambda c: {"solved_on_spot": "false", "current_round": "0"}.get(c, "NULL"))
        return {
            **{c: f"coalesce({f(c)}, v.{c})" for c in _KEEP},
            **{c: f"coalesce(v.t_{c}, {f(c)}, v.r_{c})" for c in _PLACE},
            "solved_on_spot": f"coalesce(v.solved_on_spot, {f('solved_on_spot')})",
            "accepted_at": f"coalesce({f('accepted_at')}, v.accepted_at)",
            "rejected_at": f"coalesce({f('rejected_at')}, v.rejected_at)",
            "merged_into": f"coalesce(v.merged_into, {f('merged_into')})",
            "solved": (
                f"CASE WHEN v.resolved_at IS NOT NULL AND ({f('resolved_at')} IS NULL OR v.resolved_at >= {f('resolved_at')}) "
                f"THEN v.solved ELSE {f('solved')} END"
            ),
            "resolved_at": f"greatest({f('resolved_at')}, v.resolved_at)",
            "closed_at": f"greatest({f('closed_at')}, v.closed_at)",
            "current_round": f"greatest({f('current_round')}, v.current_round)",
        }

    update = ",\n    ".join(f"{c} = {rule}" for c, rule in rules(True).items())
    new = rules(False)
    return text(f"""
MERGE INTO case_facts AS f
USING (SELECT * FROM unnest({arrays}) AS v({columns})) AS v
ON f.case_id = v.case_id
WHEN MATCHED THEN UPDATE SET
    {update}
WHEN NOT MATCHED THEN INSERT (case_id, {", ".join(new)})
VALUES (v.case_id, {", ".join(new.values())})
""")


_CASE_FACTS = _case_facts_merge()


def fold_case_facts(rows: Sequence[tuple[Any, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The case writes' rows (in event order) folded per case into one row for ``_CASE_FACTS`` (pure)."""
    folded: dict[str, dict[str, Any]] = {}
    for write, row in rows:
        f = folded.get(row["case_id"])
        if f is None:
            f = folded[row["case_id"]] = dict.fromkeys(_FOLD_TYPES)
            f["case_id"] = row["case_id"]
        if write is CASE_RECEIVED:
            for c in _KEEP:
                if f[c] is None:
                    f[c] = row[c]
            for c in _PLACE:
                if f[f"r_{c}"] is None:
                    f[f"r_{c}"] = row[c]
            f["solved_on_spot"] = row["solved_on_spot"]
        elif write is CASE_TRIAGED:
            for c in _PLACE:
                if row[c] is not None:
                    f[f"t_{c}"] = row[c]
        elif write is CASE_ACCEPTED or write is CASE_REJECTED:
            column = "accepted_at" if write is CASE_ACCEPTED else "rejected_at"
            if f[column] is None:
                f[column] = row[column]
        elif write is CASE_MERGED:
            if row["merged_into"] is not None:
                f["merged_into"] = row["merged_into"]
        elif write is CASE_RESOLVED:
            if f["resolved_at"] is None or row["resolved_at"] >= f["resolved_at"]:
                f["resolved_at"], f["solved"] = row["resolved_at"], row["solved"]
        elif write is CASE_CLOSED or write is CASE_REOPENED:
            column = "closed_at" if write is CASE_CLOSED else "current_round"
            if row[column] is not None and (f[column] is None or row[column] > f[column]):
                f[column] = row[column]
        else:  # a new kind of case write must get its rule here
            raise ValueError(f"no fold for {write.name}")
    return list(folded.values())


# --------------------------------------------------------------------------- the batch


def order_safe_parts(count: int, events: Sequence[EventBase], start: int = 0) -> list[tuple[int, int]]:
    """Consecutive parts (start, end) of the batch, none of them order-sensitive: a sensitive
    one is cut in halves until no part is (a single event never is)."""
    part = events[start : start + count]
    if count <= 1 or not order_sensitive(list(part)):
        return [(start, start + count)]
    half = count // 2
    return order_safe_parts(half, events, start) + order_safe_parts(count - half, events, start + half)


class BatchPlan:
    """Events in order (a consumer's batch, or a rebuild's), gathered one event at a time,
    then planned as a few set-based statements (pure)."""

    def __init__(self) -> None:
        self.events: list[EventBase] = []
        self._facts: list[Rows] = []
        self._status = CaseStatusBatch()

    def add(self, event: EventBase) -> None:
        self.events.append(event)
        self._facts.append(facts(event))
        self._status.add(event)

    def statements(self) -> Plan:
        plan: Plan = []
        status = self._status.statement()
        if status is not None:
            plan.append(status)
        for start, end in order_safe_parts(len(self.events), self.events):
            case_rows: list[tuple[Any, dict[str, Any]]] = []
            grouped: dict[str, list[dict[str, Any]]] = {}
            for rows in self._facts[start:end]:
                for write, row in rows:
                    if write.name in CASE_WRITES:
                        case_rows.append((write, row))
                    else:
                        grouped.setdefault(write.name, []).append(row)
            if case_rows:
                folded = fold_case_facts(case_rows)
                plan.append((_CASE_FACTS, {c: [row[c] for row in folded] for c in _FOLD_TYPES}))
            for write in BATCH_ORDER:
                if write.name in grouped:
                    plan.extend(write.plan(grouped[write.name]))
        return plan


def plan_events_many(events: Sequence[EventBase]) -> Plan:
    plan = BatchPlan()
    for event in events:
        plan.add(event)
    return plan.statements()


async def apply_batch(uow: UnitOfWork, events: list[EventBase]) -> None:
    """Scoring's one event handler (``shared.consumer``): a partition batch, or one event,
    planned like a rebuild's. Two replicas meet on one case only while partitions move
    between them; a MERGE that then meets the other's insert fails the batch, which the
    consumer applies again event by event."""
    for statement, params in plan_events_many(events):
        await uow.session.execute(statement, params)
