"""A Jepsen-style account of a run: what was sent, acknowledged, lost, duplicated, reordered.

Pure functions over what the run observed — the appeals the load generator got a 201 for,
the events on the topic (in partition order, duplicates included), and what each service
says it applied per case — so the verdict can be tested on its own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from shared.events import EventBase


@dataclass
class StageCount:
    """One service's effects compared with the topic: per case, distinct events applied."""

    service: str
    cases_expected: int
    cases_seen: int
    lost_effects: int  # events on the topic the service never applied
    duplicated_effects: int  # events applied more than once
    missing_cases: list[str] = field(default_factory=list)
    # events applied in an earlier transaction than their cause (see ``effects_before_cause``)
    out_of_order_effects: int = 0
    still_held: int = 0  # events left waiting for a cause at the end (held_events)
    dead_letters: int = 0  # events the service parked


@dataclass
class Verdict:
    sent: int
    acknowledged: int
    received_on_topic: int
    lost: list[str]  # acknowledged appeals with no case.received on the topic
    duplicated: list[str]  # acknowledged appeals with more than one distinct case.received
    reordered: list[str]  # cases whose events from one producer are out of causal order
    stages: list[StageCount]

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.reordered) and all(
            s.lost_effects == 0 and s.duplicated_effects == 0 and not s.missing_cases
            and s.out_of_order_effects == 0 and s.still_held == 0 and s.dead_letters == 0
            for s in self.stages
        )  # fmt: skip

    def table(self) -> str:
        lines = [
            f"sent {self.sent}  acknowledged {self.acknowledged}  on the topic {self.received_on_topic}  "
            f"lost {len(self.lost)}  duplicated {len(self.duplicated)}  reordered {len(self.reordered)}",
            f"{'stage':<10} {'cases':>7} {'seen':>7} {'lost effects':>13} {'applied twice':>14} {'out of order':>13}"
            f" {'still held':>11} {'dead letters':>13}",
        ]
        for s in self.stages:
            lines.append(
                f"{s.service:<10} {s.cases_expected:>7} {s.cases_seen:>7} {s.lost_effects:>13} {s.duplicated_effects:>14}"
                f" {s.out_of_order_effects:>13} {s.still_held:>11} {s.dead_letters:>13}"
            )
        return "\n".join(lines)


def distinct_by_case(events: Iterable[EventBase]) -> dict[str, list[EventBase]]:
    """Each case's events in topic order, each event once (its first appearance)."""
    seen: set = set()
    out: dict[str, list[EventBase]] = defaultdict(list)
    for event in events:
        if event.case_id is None or event.id in seen:
            continue
        seen.add(event.id)
        out[event.case_id].append(event)
    return out


def out_of_order(case_events: list[EventBase]) -> bool:
    """True when an event of a producer comes before the event of the same producer that caused it.

    Only the order within one producer is promised (one outbox, published in order): two
    services' events about a case may interleave, which consumers must and do tolerate.
    """
    position = {e.id: i for i, e in enumerate(case_events)}
    for i, event in enumerate(case_events):
        cause = event.causation_id
        if cause in position and position[cause] > i:
            cause_event = case_events[position[cause]]
            if cause_event.producer == event.producer:
                return True
    return False


def effects_before_cause(
    case_events: list[EventBase], applied_at: Mapping[str, object], requires: Mapping[str, frozenset[str]]
) -> int:
    """How many of a case's events a service applied before a cause of theirs: in an earlier
    transaction than the event that caused them (``causation_id``), or than every event of a
    type the service declares they require (``requires``), or with such a cause on the topic
    never applied at all.

    ``applied_at`` is the service's inbox (``processed_events``: event id -> ``processed_at``,
    the applying transaction's start). Events applied in one transaction share it, so an
    order inside one transaction is not seen (the consumer applies a batch in topic order and
    releases held events after their cause); nor is an event the service applied without its
    inbox (intake's own, applied as they are written, before anything can follow from them).
    """
    by_id = {e.id: e for e in case_events}
    count = 0
    for event in case_events:
        at = applied_at.get(str(event.id))
        if at is None:
            continue
        late = False
        cause = by_id.get(event.causation_id) if event.causation_id is not None else None
        if cause is not None:
            cause_at = applied_at.get(str(cause.id))
            late = cause_at is not None and cause_at > at  # type: ignore[operator]
        for kind in requires.get(event.type, frozenset()):
            of_kind = [e for e in case_events if e.type == kind]
            if not of_kind:
                continue  # not on the topic: nothing to be late for
            times = [applied_at[str(e.id)] for e in of_kind if str(e.id) in applied_at]
            late = late or not times or min(times) > at  # type: ignore[type-var,operator]
        count += late
    return count


def check(
    *,
    sent: int,
    acknowledged: Mapping[str, str],  # idempotency key → case id
    events: list[EventBase],
    applied: Mapping[str, Mapping[str, int]],  # service → case id → distinct events applied
    handled_by: Mapping[str, frozenset[str] | None] | None = None,  # service → event types it counts (None: all)
    applied_at: Mapping[str, Mapping[str, object]] | None = None,  # service → its inbox: event id → when applied
    requires: Mapping[str, Mapping[str, frozenset[str]]] | None = None,  # service → its declared causes
    still_held: Mapping[str, int] | None = None,  # service → events left in held_events
    dead_letters: Mapping[str, int] | None = None,  # service → events parked
) -> Verdict:
    by_case = distinct_by_case(events)
    received: dict[str, int] = defaultdict(int)
    for case_id, case_events in by_case.items():
        received[case_id] = sum(e.type == "case.received" for e in case_events)
    acked_cases = set(acknowledged.values())
    stages = []
    for service, per_case in applied.items():
        types = (handled_by or {}).get(service)
        lost = duplicated = 0
        missing = []
        for case_id in sorted(acked_cases):
            expected = sum(1 for e in by_case.get(case_id, []) if types is None or e.type in types)
            got = per_case.get(case_id)
            if got is None:
                if expected:
                    missing.append(case_id)
                    lost += expected
                continue
            lost += max(0, expected - got)
            duplicated += max(0, got - expected)
        inbox = (applied_at or {}).get(service, {})
        declared = (requires or {}).get(service, {})
        early = sum(effects_before_cause(by_case.get(c, []), inbox, declared) for c in acked_cases) if inbox else 0
        stages.append(
            StageCount(
                service, len(acked_cases), sum(c in per_case for c in acked_cases), lost, duplicated, missing,
                early, (still_held or {}).get(service, 0), (dead_letters or {}).get(service, 0),
            )  # fmt: skip
        )
    return Verdict(
        sent=sent,
        acknowledged=len(acknowledged),
        received_on_topic=sum(1 for c in acked_cases if received.get(c)),
        lost=sorted(c for c in acked_cases if not received.get(c)),
        duplicated=sorted(c for c in acked_cases if received.get(c, 0) > 1),
        reordered=sorted(c for c in acked_cases if out_of_order(by_case.get(c, []))),
        stages=stages,
    )
