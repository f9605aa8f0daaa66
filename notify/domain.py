"""Notify's rules, free of I/O (pure functions, tested without a database).

- 回访: a callback is made on the working day after closure — from 09:00 Beijing, due by the
  end of that day (``shared.callback``, the window SLA's callback clock uses too); an
  unreachable citizen is tried again by the same rule (the next working day's window), up to
  three attempts, then the callback is closed as unreachable.
- Quiet hours (22:00–07:00 Beijing time by default): an SMS is held until morning unless urgent.
- Per-recipient rate limit: at most N messages per window per channel; later ones wait.
- Which messages an event causes, to whom, on which channel (``plan_messages``).
- One-time rating tokens: random, stored only as a hash, bound to a case and a round.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal

from shared.callback import CallbackWindow, callback_window
from shared.errors import Conflict, DomainError, Expired, Forbidden
from shared.events import Channel as AppealChannel, EventBase  # the appeal's channel; ``Channel`` below is a message's
from shared.lifecycle import LABELS, status_after
from shared.workdays import DAY, LOCAL, WorkingCalendar

Channel = Literal["sms", "wechat", "inbox", "hotline"]
CHANNELS: tuple[str, ...] = ("sms", "wechat", "inbox", "hotline")
MESSAGE_STATES = ("queued", "held", "sending", "sent", "delivered", "failed", "dead")
CALLBACK_RESULTS = ("满意", "基本满意", "不满意")

# --------------------------------------------------------------------------- callbacks (回访)


@dataclass(frozen=True)
class CallbackOutcome:
    state: Literal["open", "done", "unreachable"]
    attempts: int
    window: CallbackWindow | None  # the next try's window when still open
    emit_completed: bool  # write case.callback_completed now


def record_attempt(
    calendar: WorkingCalendar,
    *,
    attempts_before: int,
    reached: bool,
    at: datetime,
    max_attempts: int = 3,
) -> CallbackOutcome:
    """One callback attempt: reached → done; unreachable → retried the next working day,
    and after the last attempt closed as unreachable (counted so)."""
    attempts = attempts_before + 1
    if reached:
        return CallbackOutcome("done", attempts, None, True)
    if attempts >= max_attempts:
        return CallbackOutcome("unreachable", attempts, None, True)
    return CallbackOutcome("open", attempts, callback_window(calendar, at), False)


def callback_view(opens_at: datetime, due_at: datetime, now: datetime) -> Literal["upcoming", "due", "overdue"]:
    """Upcoming before the window opens; due while it is open; overdue from ``due_at`` on —
    the instant SLA's callback clock shows its red card (both from ``shared.callback``)."""
    if now < opens_at:
        return "upcoming"
    if now < due_at:
        return "due"
    return "overdue"


# --------------------------------------------------------------------------- quiet hours, limits, retries


def parse_hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def quiet_until(now: datetime, start: time, end: time) -> datetime | None:
    """When ``now`` lies in the quiet hours, the moment they end (UTC); else None.

    The window may wrap midnight (22:00–07:00) or not (12:00–14:00)."""
    local = now.astimezone(LOCAL)
    t = local.time()
    if start == end:
        return None
    if start < end:
        if start <= t < end:
            return datetime.combine(local.date(), end, LOCAL).astimezone(UTC)
        return None
    if t >= start:
        return datetime.combine(local.date() + DAY, end, LOCAL).astimezone(UTC)
    if t < end:
        return datetime.combine(local.date(), end, LOCAL).astimezone(UTC)
    return None


def rate_limited_until(sent: Iterable[datetime], now: datetime, *, limit: int, window: timedelta) -> datetime | None:
    """None when one more message may go now; else the moment the oldest in the window ages out."""
    recent = sorted(t for t in sent if now - window < t <= now)
    if len(recent) < limit:
        return None
    return recent[len(recent) - limit] + window


def backoff(attempt: int, *, base: float, cap: float) -> timedelta:
    """Exponential backoff after the ``attempt``-th failed try (1 → base, 2 → 2·base, …)."""
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempt - 1)))


# --------------------------------------------------------------------------- rating tokens


def new_token() -> tuple[str, str]:
    """(token for the citizen's link, its hash to store). 192 random bits."""
    token = secrets.token_urlsafe(24)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenRefusal:
    kind: type[DomainError]  # not this case's link: Forbidden; used or stale: Conflict; past its time: Expired
    code: str
    detail: str


def check_token(
    *,
    found: bool,
    token_case: str | None,
    token_round: int | None,
    used_at: datetime | None,
    expires_at: datetime | None,
    case_id: str,
    current_round: int,
    now: datetime,
) -> TokenRefusal | None:
    """Why a rating token is refused, or None when it may be used."""
    if not found or token_case != case_id:
        # A foreign token says nothing about the case it belongs to.
        return TokenRefusal(Forbidden, "rating-token-invalid", "this rating link does not belong to this case")
    if used_at is not None:
        return TokenRefusal(Conflict, "rating-token-used", "this rating link was already used; each link rates once")
    if token_round != current_round:
        return TokenRefusal(
            Conflict, "rating-token-stale",
            f"this link is for handling round {token_round}; the case is now in round {current_round} (重办)",
        )
    if expires_at is not None and now >= expires_at:
        return TokenRefusal(Expired, "rating-token-expired", "this rating link has expired")
    return None


def sampled_for_questionnaire(case_id: str, every: int) -> bool:
    """1 in ``every`` closed cases, deterministic by case id (the same case is always in or out)."""
    if every <= 1:
        return True
    return int(hashlib.sha256(case_id.encode()).hexdigest()[:12], 16) % every == 0


QUESTIONS: tuple[dict[str, Any], ...] = (
    {"id": "overall", "text": "您对本次诉求办理结果是否满意？", "choices": list(CALLBACK_RESULTS)},
    {"id": "contacted", "text": "承办单位是否主动与您联系？", "choices": ["是", "否"]},
    {"id": "timely", "text": "办理是否及时？", "choices": ["及时", "一般", "不及时"]},
    {"id": "suggestion", "text": "您还有什么意见或建议？", "choices": None},
)

# --------------------------------------------------------------------------- which messages an event causes


@dataclass(frozen=True)
class CaseView:
    """What notify knows of a case when it plans messages (its own projection)."""

    case_id: str
    tracking_no: str | None = None
    channel: str | None = None  # intake channel: app / wechat / hotline / …
    has_phone: bool = False
    citizen_ref: str | None = None
    external_ref: str | None = None
    urgency: str | None = None
    round: int = 0
    units: tuple[str, ...] = ()
    unit_names: dict[str, str] = field(default_factory=dict)
    first_unit: str | None = None  # 首问负责制: the unit that first learned of the case
    # 督办: the command centre (综治中心) serving the escalated unit, which supervises the case
    # from then on (set by the caller from the org directory, for ``sla.escalated`` only).
    centre: str | None = None


@dataclass(frozen=True)
class Planned:
    kind: str  # template name, e.g. "citizen.accepted"
    recipient: str
    channel: str
    urgent: bool = False
    data: dict[str, Any] = field(default_factory=dict)


def citizen_recipient(case: CaseView) -> str:
    return f"citizen:{case.citizen_ref or case.case_id}"


def unit_recipient(unit: str, role: Literal["duty", "head"] = "duty") -> str:
    return f"unit:{unit}:{role}"


HOTLINE_RECIPIENT = "hotline:12345"

# Status changes the 12345 system is told about for the tickets it pushed.
HOTLINE_STATUS_EVENTS = frozenset({
    "case.accepted", "case.rejected", "case.dispatched", "case.resolved", "case.closed",
    "case.reopened", "case.callback_completed", "case.rated",
})  # fmt: skip

# Citizen messages per event type: the template kind.
CITIZEN_KINDS = {
    "case.accepted": "citizen.accepted",
    "case.rejected": "citizen.rejected",
    "case.dispatched": "citizen.dispatched",
    "case.resolved": "citizen.resolved",
    "case.closed": "citizen.closed",
    "case.reopened": "citizen.reopened",
}


def has_citizen(channel: str | None) -> bool:
    """A task item (自上而下的任务, channel ``task``) is the centre's directive, not a citizen's
    appeal: nobody is called back or asked to rate it (its verification is the township's or
    the centre's). A case whose channel is not known yet is taken to be an appeal."""
    return channel != AppealChannel.task.value


def delivered_when_queued(channel: str) -> bool:
    """The in-app inbox: the message row is the inbox entry, so it is delivered the moment it
    is queued — no gateway to call, nothing to claim, retry or log as a try (the sender's
    claim, lease and attempt log are for sends that leave notify)."""
    return channel == "inbox"


def _citizen_channels(case: CaseView) -> list[str]:
    channels = ["sms"] if case.has_phone else []
    if case.channel == "wechat":
        channels.append("wechat")
    if case.channel == "app":
        channels.append("inbox")
    return channels


def _payload(event: EventBase) -> dict[str, Any]:
    payload = getattr(event, "payload", None)
    return payload.model_dump(mode="json") if payload is not None else {}


def plan_messages(event: EventBase, case: CaseView, *, extra: dict[str, Any] | None = None) -> list[Planned]:
    """The messages ``event`` causes: to the citizen, to units, and the 12345 status webhook.

    ``extra`` carries what the handler prepared for the templates (the rating link, the callback day).
    """
    data = {**_payload(event), "case_id": case.case_id, "tracking_no": case.tracking_no, **(extra or {})}
    urgent = case.urgency in ("urgent", "emergency")
    out: list[Planned] = []

    kind = CITIZEN_KINDS.get(event.type)
    if kind is not None:
        if event.type == "case.dispatched" and data.get("role") == "co":
            kind = None  # the citizen hears about the lead unit, not every co-handler
    if kind is not None:
        if event.type == "case.dispatched":
            data["unit_name"] = data.get("unit_name") or case.unit_names.get(data.get("unit", ""), data.get("unit"))
        for channel in _citizen_channels(case):
            out.append(Planned(kind, citizen_recipient(case), channel, urgent, data))

    for unit, role, unit_kind, unit_urgent in _unit_targets(event, case):
        extra_data: dict[str, Any] = {"unit": unit}
        if unit_kind.endswith((".first_unit", ".centre")):
            # The copy names who handles the case, so the first unit knows whom to press.
            handlers = [data["unit"]] if data.get("unit") else list(case.units)
            extra_data["handler_name"] = "、".join(case.unit_names.get(h, h) for h in handlers) or "未定"
        out.append(Planned(unit_kind, unit_recipient(unit, role), "inbox", unit_urgent, {**data, **extra_data}))

    if case.channel == "hotline" and event.type in HOTLINE_STATUS_EVENTS:
        out.append(Planned("hotline.status", HOTLINE_RECIPIENT, "hotline", False, {
            **data,
            "ticket_no": case.external_ref,
            "status": status_after(event.type) or event.type.split(".", 1)[1],
            "label": LABELS.get(event.type, event.type),
            "event_type": event.type,
        }))
    return out


def _unit_targets(event: EventBase, case: CaseView) -> list[tuple[str, str, str, bool]]:
    """(unit, duty|head, template kind, urgent) for unit-facing messages."""
    p = getattr(event, "payload", None)
    t = event.type
    if t == "case.dispatched":
        return [(p.unit, "duty", "unit.dispatched", False)]
    if t == "case.county_called":
        return [(u, "duty", "unit.county_called", True) for u in p.units]
    if t == "case.whistle_blown":
        called = [(u, "duty", "unit.whistle_blown", True) for u in _unique([p.lead_unit, *p.co_units])]
        # 网格吹哨: a whistle from a village or grid is copied to its township, which verifies
        # what the departments answer.
        below = p.blown_by is not None and p.blown_by != p.township
        return called + ([(p.township, "duty", "unit.whistle_blown.township", False)] if below else [])
    if t == "hotspot.detected":
        # 预警提醒: the head of the unit that handles the matter (the township's, for a place no
        # order has named yet; ``warned_unit``, the unit insight opens the warning for) and the
        # county's command centre, which may turn it into a task.
        return [(u, role, "unit.hotspot", False) for u, role in ((p.warned_unit, "head"), (p.centre, "duty")) if u]
    if t in ("sla.warning", "sla.breached", "sla.urged", "sla.escalated"):
        units: Sequence[str] = [p.unit] if p.unit else case.units
        kind = {"sla.warning": "unit.yellow_card", "sla.breached": "unit.red_card",
                "sla.urged": "unit.urged", "sla.escalated": "unit.escalated"}[t]  # fmt: skip
        red = t in ("sla.breached", "sla.escalated")
        targets = _card_targets(units, kind, red) + _first_unit_copies(event, case, units, kind, red)
        if t == "sla.escalated" and case.centre is not None and case.centre not in units:
            # 督办 is the centre's: it is told, urgently, besides the unit and its head.
            targets.append((case.centre, "duty", "unit.escalated.centre", True))
        return targets
    if t == "sla.warning_signal":
        # An early warning's card (预警信息处置 run like a case): told to the unit warned by the
        # same rule as a case's card — its duty inbox, and its head for a red card or 督办.
        kind = {"warning": "unit.warning.yellow_card", "breached": "unit.warning.red_card",
                "urged": "unit.warning.urged", "escalated": "unit.warning.escalated"}[p.signal]  # fmt: skip
        return _card_targets([p.unit], kind, p.signal in ("breached", "escalated"))
    if t == "grid.warning":
        # A missed grid duty: told to the grid (its worker signs in with it) and to the
        # village or community above it, which answers for its grids.
        kind = {"visit_missed": "grid.visit_missed", "mailbox_missed": "grid.mailbox_missed"}[p.kind]
        return [(u, "duty", kind, False) for u in _unique([p.grid, *([p.village] if p.village else [])])]
    return []


def _card_targets(units: Sequence[str], kind: str, red: bool) -> list[tuple[str, str, str, bool]]:
    """A card (黄牌 / 红牌), an urging or escalation: to each unit's duty inbox, and to its head
    as well for a red card or an escalation (urgent then)."""
    targets = [(u, "duty", kind, red) for u in units]
    if red:
        targets += [(u, "head", kind, True) for u in units]
    return targets


# 首问负责制 (docs/rules.md): the first-responsible unit is held to account for the case
# whoever handles it, so it is copied on the case's cards — yellow (not the earlier reminders)
# and red — and its urgings (催办), in its duty inbox.
FIRST_UNIT_COPIED = frozenset({"sla.warning", "sla.breached", "sla.urged"})


def _first_unit_copies(
    event: EventBase, case: CaseView, handlers: Sequence[str], kind: str, red: bool
) -> list[tuple[str, str, str, bool]]:
    """The copy of a card or an urging for the case's first-responsible unit; none when that
    unit is the one carded (it has the message already) or the case names none."""
    first = case.first_unit
    if first is None or first in handlers or event.type not in FIRST_UNIT_COPIED:
        return []
    if event.type == "sla.warning" and event.payload.level != "yellow":  # type: ignore[attr-defined]
        return []
    return [(first, "duty", f"{kind}.first_unit", red)]


def _unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)
