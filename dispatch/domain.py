"""Dispatch's rules, free of I/O: the life of a dispatch order (交办单) and its limits.

The state machine is a transition table: (state, action) → next state, with guards that
say why an action is refused. An action not allowed in the current state is answered
with the state and the actions that are allowed (the API turns it into a 409).

    dispatched ──sign──▶ signed ──file_plan / report_progress──▶ in_progress
        │                  │                                          │
        └─return─▶ returned ──review(upheld)──▶ reassigned (a new order goes to the right unit)
                       └────review(rejected)──▶ dispatched (back to the same unit)
    signed / in_progress ──survey (现场勘查)──▶ in_progress
    signed / in_progress ──resolve──▶ resolved ──verify(pass)──▶ verified ──close──▶ closed
                                          └──verify(fail)──▶ in_progress
    closed ──reopen (重办, unsatisfied rating)──▶ dispatched (redo round + 1)
    in_progress ──request_extension──▶ (state kept; an extension request is pending)

A village's order (村级) is claimed instead of signed, and reported up instead of returned;
a township's order can be passed down to one of its villages (``dispatch.access`` says
whose order is which):

    dispatched ──claim (认领)──▶ signed
    dispatched / signed / in_progress ──report_up (上报) / pass_down (下派)──▶ reassigned
        (the township, or the village, gets a new order of its own)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class OrderState(StrEnum):
    dispatched = "dispatched"  # waiting to be signed (签收) or returned (退单)
    returned = "returned"  # waiting for the centre's review
    reassigned = "reassigned"  # return upheld: this order is over, another unit has the case
    signed = "signed"
    in_progress = "in_progress"
    resolved = "resolved"  # answered (答复); waiting for the township's verification (核验)
    verified = "verified"
    closed = "closed"  # 销号、公示


class Action(StrEnum):
    sign = "sign"
    return_order = "return"
    review_return = "review_return"
    file_plan = "file_plan"
    report_progress = "report_progress"
    request_extension = "request_extension"
    decide_extension = "decide_extension"
    resolve = "resolve"
    verify = "verify"
    close = "close"
    reopen = "reopen"
    claim = "claim"  # 认领: a village takes the matter as its own
    report_up = "report_up"  # 上报: a village sends it up to its township
    pass_down = "pass_down"  # 下派: the township sends it down to a village
    survey = "survey"  # 现场勘查: the unit surveys on site, with photos


TRANSITIONS: dict[tuple[OrderState, Action], OrderState | None] = {
    # None: the next state depends on the decision (see next_state)
    (OrderState.dispatched, Action.sign): OrderState.signed,
    (OrderState.dispatched, Action.return_order): OrderState.returned,
    (OrderState.returned, Action.review_return): None,
    (OrderState.signed, Action.survey): OrderState.in_progress,
    (OrderState.in_progress, Action.survey): OrderState.in_progress,
    (OrderState.signed, Action.file_plan): OrderState.in_progress,
    (OrderState.signed, Action.report_progress): OrderState.in_progress,
    (OrderState.signed, Action.resolve): OrderState.resolved,
    (OrderState.signed, Action.request_extension): OrderState.signed,
    (OrderState.in_progress, Action.file_plan): OrderState.in_progress,
    (OrderState.in_progress, Action.report_progress): OrderState.in_progress,
    (OrderState.in_progress, Action.request_extension): OrderState.in_progress,
    (OrderState.in_progress, Action.resolve): OrderState.resolved,
    (OrderState.signed, Action.decide_extension): OrderState.signed,
    (OrderState.in_progress, Action.decide_extension): OrderState.in_progress,
    (OrderState.resolved, Action.verify): None,
    (OrderState.verified, Action.close): OrderState.closed,
    (OrderState.closed, Action.reopen): OrderState.dispatched,
    (OrderState.dispatched, Action.claim): OrderState.signed,
    **{(state, handover): OrderState.reassigned
       for state in (OrderState.dispatched, OrderState.signed, OrderState.in_progress)
       for handover in (Action.report_up, Action.pass_down)},
}


class Refused(Exception):
    """An action the rules do not allow; ``reason`` is for the clerk, ``code`` for the API."""

    def __init__(self, code: str, reason: str, *, state: OrderState, allowed: list[str]) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.state = state
        self.allowed = allowed


def allowed_actions(state: OrderState) -> list[str]:
    return sorted({action.value for (s, action) in TRANSITIONS if s == state})


def next_state(state: OrderState, action: Action, *, decision: bool | None = None) -> OrderState:
    """The state after ``action``; raises Refused when the action is not allowed now.

    ``decision`` answers the actions that branch: review_return (True = upheld) and
    verify (True = passed).
    """
    if (state, action) not in TRANSITIONS:
        raise Refused(
            "invalid-state",
            f"cannot {action.value} an order that is {state.value}",
            state=state,
            allowed=allowed_actions(state),
        )
    target = TRANSITIONS[(state, action)]
    if target is not None:
        return target
    if decision is None:
        raise ValueError(f"{action.value} needs a decision")
    if action is Action.review_return:
        return OrderState.reassigned if decision else OrderState.dispatched
    return OrderState.verified if decision else OrderState.in_progress


# --------------------------------------------------------------------------- returns (退单)


@dataclass(frozen=True)
class ReturnRecord:
    reason_code: str
    reviewed: bool


def check_return(
    *, reason_code: str, within_window: bool, earlier: list[ReturnRecord], state: OrderState
) -> None:
    """A unit returns an order only within the return window (default 2 working days of
    dispatch), with a reason, and not twice for the same reason without a review."""
    next_state(state, Action.return_order)
    if not within_window:
        raise Refused(
            "return-window-closed", "the return window has passed; sign the order or ask for an extension",
            state=state, allowed=allowed_actions(state),
        )
    if any(r.reason_code == reason_code and not r.reviewed for r in earlier):
        raise Refused(
            "return-repeated", f"this order was already returned for '{reason_code}' and is awaiting review",
            state=state, allowed=allowed_actions(state),
        )


# --------------------------------------------------------------------------- extensions (延期)


@dataclass(frozen=True)
class ExtensionPolicy:
    """At most 3 × 3 working days, or once ≤ 10; long-cycle matters up to 180 days."""

    max_short: int = 3
    short_days: int = 3
    single_max_days: int = 10
    long_cycle_max_days: int = 180


@dataclass(frozen=True)
class ExtensionHistory:
    approved_days: list[int] = field(default_factory=list)
    long_cycle: bool = False


def check_extension(days: int, history: ExtensionHistory, *, long_cycle: bool, policy: ExtensionPolicy = ExtensionPolicy()) -> None:
    """Raise Refused (code ``extension-limit``) when another extension of ``days`` is over the limits."""

    def refuse(reason: str) -> None:
        raise Refused("extension-limit", reason, state=OrderState.in_progress, allowed=[])

    if days <= 0:
        refuse("an extension is a positive number of working days")
    if long_cycle:
        if sum(history.approved_days) + days > policy.long_cycle_max_days:
            refuse(f"long-cycle extensions total at most {policy.long_cycle_max_days} days")
        return
    granted = history.approved_days
    if len(granted) == 1 and granted[0] > policy.short_days:
        refuse("a single long extension (over 3 working days) was already granted; no more are allowed")
    if not granted and days > policy.short_days:
        if days > policy.single_max_days:
            refuse(f"one extension is at most {policy.single_max_days} working days (or declare it long-cycle)")
        return  # the single long extension
    if days > policy.short_days:
        refuse(f"after a short extension, each further one is at most {policy.short_days} working days")
    if len(granted) >= policy.max_short:
        refuse(f"at most {policy.max_short} extensions of {policy.short_days} working days")


# --------------------------------------------------------------------------- redo and escalation
# 督办 after the third redo is applied once, by SLA, from ``case.reopened`` (``sla.domain.redo_escalation``;
# the event carries the round dispatch opened), so it is not written here a second time. A dispute
# among three or more units over who leads is not modelled (a whistle's lead is named by the
# caller; a return's reasons do not include "the lead is another's"), so no rule stands for it.


def order_number(county_prefix: str, year: int, sequence: int) -> str:
    """交办单 number, e.g. JB-XC-2026-000042."""
    return f"JB-{county_prefix}-{year}-{sequence:06d}"
