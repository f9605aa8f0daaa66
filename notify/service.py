"""Notify's use cases, each in one unit of work: queue the messages an event causes, record
a callback (回访), rate with a one-time token, answer a questionnaire, re-send a dead webhook.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from collections.abc import Callable
from typing import Any

import httpx

from notify import citizen, domain, repository
from notify.settings import NotifySettings
from notify.templates import render
from shared.signing import MemoryReplayGuard, parse_client_secrets
from shared.contact import contact_keyring
from shared.crypto import KeyRing
from shared.case_status import case_scope
from shared.db import UnitOfWork, transactional
from shared.events import (
    Actor,
    CallbackCompleted,
    CallbackCompletedData,
    CaseRated,
    EventBase,
    RatedData,
    Role,
    Satisfaction,
    make_event,
)
from shared.lifecycle import status_after
from shared.orgdata import OrgDirectory, load_org
from shared.privacy import scrub
from shared.scope import may_see_case
from shared.errors import Conflict, Forbidden, Invalid, NotFound, WrongState
from shared.wakeup import Wakeup
from shared.holidays import HolidayFollower
from shared.workdays import PACKAGED_CALENDAR, WorkingCalendar

log = logging.getLogger(__name__)

PHONE_CONTEXT = "notify.recipients.phone"
BODY_CONTEXT = "notify.messages.body"


class Clock:
    """Notify's sense of now. Moving it shifts time but lets it run on, so retries still fall due."""

    def __init__(self) -> None:
        self._offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def set(self, moment: datetime) -> None:
        self._offset = moment.astimezone(UTC) - datetime.now(UTC)

    def reset(self) -> None:
        self._offset = timedelta(0)


@dataclass
class NotifyContext:
    """What notify needs besides the database, built when the app is created."""

    settings: NotifySettings
    keys: KeyRing
    contact_keys: KeyRing
    clock: Clock = field(default_factory=Clock)
    http: httpx.AsyncClient | None = None  # opened at start-up
    gateway_clients: dict[str, bytes] = field(default_factory=dict)  # who may post delivery receipts
    gateway_replays: MemoryReplayGuard = field(default_factory=MemoryReplayGuard)
    # The holiday tables the directory publishes, followed (ServiceSpec.follow_holidays, set at
    # start-up); until then the packaged calendar. Read per use: a table loaded moves it.
    holidays: HolidayFollower | None = None

    @property
    def calendar(self) -> WorkingCalendar:
        return self.holidays.calendar if self.holidays is not None else PACKAGED_CALENDAR
    # Wakes the sender here and in the other replicas (set at start-up: it needs the engine).
    sender_wakeup: Wakeup | None = None
    # The sender of queued messages (notify.sender.Sender), started at start-up.
    sender: Any = None
    # The org directory: the seed file's until start-up, then the one notify follows (``Runtime.org``).
    org: Callable[[], OrgDirectory] | None = None

    def centre_serving(self, unit: str | None) -> str | None:
        """The command centre (综治中心) nearest above ``unit`` (``OrgDirectory.centre_of``);
        None when the unit is unknown or the directory not yet read."""
        if self.org is None or unit is None:
            return None
        org = self.org()
        return org.centre_of(unit) if org.has_unit(unit) else None

    @classmethod
    def from_settings(cls, settings: NotifySettings) -> NotifyContext:
        if settings.pii_keys is None:
            log.warning("NOTIFY_PII_KEYS not set: keeping phones with the development key (never in production)")
        dev_key = base64.b64encode(hashlib.sha256(b"jiesu development notify key").digest()).decode()
        keys = KeyRing.from_spec(settings.pii_keys.get_secret_value() if settings.pii_keys else f"dev:{dev_key}")
        contact = contact_keyring(settings.contact_keys.get_secret_value() if settings.contact_keys else None)
        gateways = parse_client_secrets(settings.gateway_clients.get_secret_value())
        seed = load_org(settings.org_file)
        return cls(settings=settings, keys=keys, contact_keys=contact, gateway_clients=gateways, org=lambda: seed)

    def now(self) -> datetime:
        return self.clock.now()

    def wake_sender(self) -> None:
        """After a commit that queued a message or made one due now (``UnitOfWork.after_commit``):
        the senders send it at once instead of at their next due time."""
        if self.sender_wakeup is not None:
            self.sender_wakeup.nudge()

    @property
    def quiet(self) -> tuple[Any, Any]:
        return domain.parse_hhmm(self.settings.quiet_start), domain.parse_hhmm(self.settings.quiet_end)


def case_view(row: dict[str, Any] | None, case_id: str) -> domain.CaseView:
    if row is None:
        return domain.CaseView(case_id=case_id)
    return domain.CaseView(
        case_id=case_id,
        tracking_no=row["tracking_no"],
        channel=row["channel"],
        has_phone=bool(row["phone_enc"]),
        citizen_ref=row["citizen_ref"],
        external_ref=row["external_ref"],
        urgency=row["urgency"],
        round=row["round"],
        units=tuple(row["units"] or ()),
        unit_names=dict(row["unit_names"] or {}),
        first_unit=row.get("first_unit"),
    )


def message_rows(
    ctx: NotifyContext, event: EventBase, recipient: dict[str, Any] | None, *, extra: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The ``messages`` rows ``event`` causes, given what is known of the case's recipients."""
    case = case_view(recipient, event.case_id or "")
    if event.type == "sla.escalated":
        # 督办 goes to the centre serving the escalated unit (else the case's township).
        unit = event.payload.unit  # type: ignore[attr-defined]
        case = replace(case, centre=ctx.centre_serving(unit or (recipient or {}).get("township")))
    now = ctx.now()
    rows = []
    for planned in domain.plan_messages(event, case, extra=extra):
        to_citizen = planned.recipient.startswith("citizen:")
        text = render(planned.kind, planned.channel, planned.data, to_citizen=to_citizen)
        payload = _webhook_body(event, planned, text) if planned.channel == "hotline" else None
        row = {
            "event_id": event.id, "event_type": event.type, "case_id": event.case_id,
            "recipient": planned.recipient, "channel": planned.channel, "kind": planned.kind,
            "body_enc": ctx.keys.encrypt(text, context=BODY_CONTEXT), "payload": payload,
            "urgent": planned.urgent, "state": "queued", "next_attempt_at": now, "attempts": 0,
            "sent_at": None, "delivered_at": None,  # every row the same keys: one executemany
        }  # fmt: skip
        if domain.delivered_when_queued(planned.channel):
            # Written once, as delivered: no claim, no outcome, no attempt row for the sender to add.
            row |= {"state": "delivered", "attempts": 1, "sent_at": now, "delivered_at": now}
        rows.append(row)
    return rows


def _webhook_body(event: EventBase, planned: domain.Planned, text: str) -> dict[str, Any]:
    """What 12345 is told: the status of its ticket, no personal data."""
    data = planned.data
    detail = next((data[k] for k in ("answer", "reason", "rating", "unit_name", "public_summary") if data.get(k)), None)
    return {
        "event_id": str(event.id),
        "event_type": event.type,
        "case_id": event.case_id,
        "ticket_no": data.get("ticket_no"),
        "tracking_no": data.get("tracking_no"),
        "status": data.get("status"),
        "label": data.get("label"),
        "text": text,
        "detail": scrub(str(detail)) if detail is not None else None,
        "occurred_at": event.occurred_at.isoformat(),
    }


# --------------------------------------------------------------------------- callbacks (回访)


async def visible_task(uow: UnitOfWork, org: OrgDirectory, actor: Actor, task_id: int, *, lock: bool = False) -> Any:
    """The task when the actor may see its case; otherwise NotFound as for a task that does
    not exist — naming the task, never its case, so ids cannot be probed."""
    task = await repository.get_callback(uow.session, task_id, lock=lock)
    where = await case_scope(uow, task["case_id"]) if task is not None else None
    if where is None or not may_see_case(org, actor, where):
        raise NotFound(f"no callback task {task_id}")
    return task


def _not_allowed(what: str, state: str, allowed: list[str], **extra: Any) -> WrongState:
    return WrongState(f"{what} is {state}; allowed: {', '.join(allowed) or 'nothing more'}", state=state,
                      allowed_actions=allowed, **extra)  # fmt: skip


@transactional
async def record_callback(
    uow: UnitOfWork, ctx: NotifyContext, org: OrgDirectory, task_id: int, *, reached: bool, rating: Satisfaction | None,
    comment: str | None, actor: Actor,
) -> dict[str, Any]:  # fmt: skip
    """回访 recorded by an operator who may see the task's case (``org``)."""
    task = await visible_task(uow, org, actor, task_id, lock=True)
    if reached and rating is None:
        raise Invalid("a reached citizen's rating is required (满意 / 基本满意 / 不满意)", field=None,
                      errors=[{"field": "rating", "message": "required when reached is true"}])  # fmt: skip
    if task["state"] != "open":
        raise _not_allowed(f"callback task {task_id}", task["state"], [], task_id=task_id)
    now = ctx.now()
    outcome = domain.record_attempt(
        ctx.calendar, attempts_before=task["attempts"], reached=reached, at=now,
        max_attempts=ctx.settings.callback_max_attempts,
    )  # fmt: skip
    comment = scrub(comment) if comment else None
    await repository.record_callback_attempt(
        uow.session, task_id=task_id, attempt=outcome.attempts, reached=reached,
        rating=rating.value if rating else None, comment=comment, operator=actor.id, at=now,
    )  # fmt: skip
    window = {"opens_at": outcome.window.opens_at, "due_at": outcome.window.due_at} if outcome.window else {}
    await repository.update_callback(
        uow.session, task_id, attempts=outcome.attempts, state=outcome.state,
        rating=rating.value if rating else None, comment=comment, **window,
    )  # fmt: skip
    emitted: list[str] = []
    if outcome.emit_completed:
        completed = make_event(
            CallbackCompleted, case_id=task["case_id"], producer="notify", actor=actor, occurred_at=now,
            payload=CallbackCompletedData(reached=reached, attempt=outcome.attempts, rating=rating, comment=comment,
                                          round=task["round"]),
        )  # fmt: skip
        uow.emit(completed)
        emitted.append(completed.type)
        if reached and rating is not None:
            if await _rate(uow, ctx, task["case_id"], task["round"], rating, "callback", comment, actor, completed, now):
                emitted.append("case.rated")
    await uow.commit()
    return {
        "task_id": task_id, "case_id": task["case_id"], "round": task["round"], "state": outcome.state,
        "attempts": outcome.attempts, "events": emitted,
        "next_opens_at": outcome.window.opens_at if outcome.window else None,
        "next_due_at": outcome.window.due_at if outcome.window else None,
    }  # fmt: skip


async def _rate(
    uow: UnitOfWork, ctx: NotifyContext, case_id: str, round_: int, rating: Satisfaction, source: str,
    comment: str | None, actor: Actor, caused_by: EventBase | None, now: datetime,
) -> bool:  # fmt: skip
    """Record the round's rating and write case.rated; False when the round was already rated."""
    if not await repository.insert_rating(uow.session, case_id=case_id, round=round_, rating=rating.value,
                                          source=source, comment=comment, rated_at=now):  # fmt: skip
        return False
    row = await repository.get_recipient(uow.session, case_id)
    units = list(row["units"]) if row and row["round"] == round_ else []
    uow.emit(make_event(
        CaseRated, case_id=case_id, producer="notify", actor=actor, caused_by=caused_by, occurred_at=now,
        payload=RatedData(rating=rating, round=round_, source=source, comment=comment, units=units),  # type: ignore[arg-type]
    ))  # fmt: skip
    return True


# --------------------------------------------------------------------------- one-time links


async def _spend_token(uow: UnitOfWork, ctx: NotifyContext, case_id: str, token: str, purpose: str) -> dict[str, Any]:
    digest = domain.token_hash(token)
    row = await repository.get_token(uow.session, digest, purpose)
    case = await repository.get_recipient(uow.session, case_id)
    now = ctx.now()
    refusal = domain.check_token(
        found=row is not None, token_case=row["case_id"] if row else None, token_round=row["round"] if row else None,
        used_at=row["used_at"] if row else None, expires_at=row["expires_at"] if row else None,
        case_id=case_id, current_round=case["round"] if case else 0, now=now,
    )  # fmt: skip
    if refusal is None and not await repository.use_token(uow.session, digest, now):
        refusal = domain.TokenRefusal(Conflict, "rating-token-used", "this rating link was already used; each link rates once")
    if refusal is not None:
        raise refusal.kind(refusal.detail, code=refusal.code, field="token")
    assert row is not None
    return {**row, "citizen_ref": case["citizen_ref"] if case else None}


def _citizen(token_row: dict[str, Any]) -> Actor:
    return Actor(id=f"citizen:{token_row['citizen_ref'] or token_row['case_id']}", role=Role.citizen)


@transactional
async def rate_with_token(
    uow: UnitOfWork, ctx: NotifyContext, case_id: str, *, token: str, rating: Satisfaction, comment: str | None
) -> dict[str, Any]:
    used = await _spend_token(uow, ctx, case_id, token, "rating")
    now = ctx.now()
    comment = scrub(comment) if comment else None
    if not await _rate(uow, ctx, case_id, used["round"], rating, "app", comment, _citizen(used), None, now):
        existing = await repository.get_rating(uow.session, case_id, used["round"])
        raise Conflict(f"round {used['round']} of this case is already rated ({existing['source'] if existing else '?'})",
                       code="already-rated", round=used["round"])  # fmt: skip
    return {"case_id": case_id, "round": used["round"], "rating": rating.value, "source": "app"}


async def questionnaire_for(uow: UnitOfWork, ctx: NotifyContext, case_id: str, token: str) -> dict[str, Any]:
    digest = domain.token_hash(token)
    row = await repository.get_token(uow.session, digest, "questionnaire")
    if row is None or row["case_id"] != case_id:
        raise Forbidden("this questionnaire link does not belong to this case", code="rating-token-invalid", field="token")
    return {"case_id": case_id, "round": row["round"], "answered": row["used_at"] is not None,
            "questions": list(domain.QUESTIONS)}  # fmt: skip


@transactional
async def answer_questionnaire(
    uow: UnitOfWork, ctx: NotifyContext, case_id: str, *, token: str, answers: dict[str, str]
) -> dict[str, Any]:
    known = {q["id"]: q for q in domain.QUESTIONS}
    errors = [{"field": f"answers.{k}", "message": "unknown question"} for k in answers if k not in known]
    errors += [
        {"field": f"answers.{k}", "message": f"choose one of {', '.join(known[k]['choices'])}"}
        for k, v in answers.items() if k in known and known[k]["choices"] and v not in known[k]["choices"]
    ]  # fmt: skip
    if "overall" not in answers:
        errors.append({"field": "answers.overall", "message": "required"})
    if errors:
        raise Invalid("the answers do not fit the questionnaire", field=None, errors=errors)
    used = await _spend_token(uow, ctx, case_id, token, "questionnaire")
    now = ctx.now()
    clean = {k: scrub(v) for k, v in answers.items()}
    await repository.insert_answers(uow.session, case_id=case_id, round=used["round"], answers=clean, answered_at=now)
    # The questionnaire's overall answer is the round's rating unless the round is rated already.
    rated = await _rate(uow, ctx, case_id, used["round"], Satisfaction(answers["overall"]), "questionnaire",
                        clean.get("suggestion"), _citizen(used), None, now)  # fmt: skip
    return {"case_id": case_id, "round": used["round"], "recorded": True, "rated": rated}


# --------------------------------------------------------------------------- webhooks


@transactional
async def resend_webhook(uow: UnitOfWork, ctx: NotifyContext, message_id: int) -> dict[str, Any]:
    row = await repository.get_message(uow.session, message_id, lock=True)
    if row is None or row["channel"] != "hotline":
        raise NotFound(f"no hotline webhook delivery {message_id}")
    if row["state"] != "dead":
        allowed = [] if row["state"] == "delivered" else ["wait for the retries"]
        raise _not_allowed(f"webhook delivery {message_id}", row["state"], allowed, message_id=message_id)
    # A fresh series of tries; the attempt log keeps the earlier ones.
    await repository.set_message(uow.session, message_id, state="queued", attempts=0, next_attempt_at=ctx.now(),
                                 last_error=None)  # fmt: skip
    uow.after_commit(ctx.wake_sender)
    return {"id": message_id, "state": "queued"}


# --------------------------------------------------------------------------- messages


@transactional
async def record_receipt(uow: UnitOfWork, ctx: NotifyContext, message_id: int, *, status: str, error: str | None) -> None:
    """A delivery receipt from the SMS gateway or WeChat backend, for a message that was sent."""
    row = await repository.get_message(uow.session, message_id, lock=True)
    if row is None:
        raise NotFound(f"no message {message_id}")
    if row["state"] not in ("sent", "delivered", "failed"):
        raise WrongState(f"message {message_id} is {row['state']}; a receipt fits a sent message", state=row["state"],
                         allowed_actions=[])  # fmt: skip
    values: dict[str, Any] = {"state": status, "last_error": error}
    if status == "delivered":
        values["delivered_at"] = ctx.now()
    else:
        values["next_attempt_at"] = ctx.now()  # the gateway gave up: try again (until max attempts)
        uow.after_commit(ctx.wake_sender)
    await repository.set_message(uow.session, message_id, **values)


@transactional
async def mark_read(uow: UnitOfWork, ctx: NotifyContext, recipient: str, message_id: int) -> None:
    if not await repository.mark_read(uow.session, recipient, message_id, ctx.now()):
        raise NotFound(f"no inbox message {message_id} for {recipient}")


# --------------------------------------------------------------------------- the citizen's page


def rating_view(row: dict[str, Any], case: dict[str, Any] | None) -> dict[str, Any]:
    """What the citizen reads before rating: the case's number, the answer (答复) and the public
    summary (公示), both kept masked as for the public, and the masked phone."""
    case = case or {}
    return {
        "case_id": row["case_id"], "round": row["round"], "tracking_no": case.get("tracking_no"),
        "answer": case.get("answer"), "public_summary": case.get("public_summary"),
        "phone_masked": case.get("phone_masked"), "expires_at": row["expires_at"],
    }  # fmt: skip


async def rating_page(uow: UnitOfWork, ctx: NotifyContext, case_id: str, token: str) -> dict[str, Any]:
    """The one-time link opened: the token checked as the rating will check it (not spent)."""
    digest = domain.token_hash(token)
    row = await repository.get_token(uow.session, digest, "rating")
    case = await repository.get_recipient(uow.session, case_id)
    refusal = domain.check_token(
        found=row is not None, token_case=row["case_id"] if row else None, token_round=row["round"] if row else None,
        used_at=row["used_at"] if row else None, expires_at=row["expires_at"] if row else None,
        case_id=case_id, current_round=case["round"] if case else 0, now=ctx.now(),
    )  # fmt: skip
    if refusal is not None:
        raise refusal.kind(refusal.detail, code=refusal.code, field="token")
    assert row is not None
    return rating_view(row, case)


def _code_rules(settings: NotifySettings) -> citizen.CodeRules:
    return citizen.CodeRules(
        minutes=settings.lookup_code_minutes, max_failures=settings.lookup_code_attempts,
        resend_seconds=settings.lookup_resend_seconds, per_hour=settings.lookup_codes_per_hour,
    )  # fmt: skip


def _latest(row: dict[str, Any] | None) -> citizen.LatestCode | None:
    if row is None:
        return None
    return citizen.LatestCode(issued_at=row["issued_at"], expires_at=row["expires_at"], failures=row["failures"], used_at=row["used_at"])


class TooSoon(Exception):
    """No code now: the appeal's codes are rate-limited (or its last code locked) until ``until``."""

    def __init__(self, until: datetime) -> None:
        super().__init__(until.isoformat())
        self.until = until


@transactional
async def send_lookup_code(uow: UnitOfWork, ctx: NotifyContext, tracking_no: str) -> bool:
    """A one-time code by SMS to the phone the appeal was filed with; False (and nothing sent)
    when no appeal of that number has a phone here — the caller answers alike either way."""
    case = await repository.recipient_by_tracking_no(uow.session, tracking_no)
    if case is None or not case["phone_enc"]:
        return False
    case = await repository.get_recipient(uow.session, case["case_id"], lock=True)  # one request at a time per appeal
    assert case is not None
    now, rules = ctx.now(), _code_rules(ctx.settings)
    issued = await repository.codes_since(uow.session, case["case_id"], now - timedelta(hours=1))
    latest = await repository.latest_code(uow.session, case["case_id"])
    until = citizen.send_refused_until(issued, _latest(latest), now, rules)
    if until is not None:
        raise TooSoon(until)
    code, digest = citizen.new_code(case["case_id"])
    await repository.insert_code(uow.session, case_id=case["case_id"], code_hash=digest, issued_at=now,
                                 expires_at=now + timedelta(minutes=rules.minutes))  # fmt: skip
    text = render("citizen.lookup_code", "sms", {"tracking_no": tracking_no, "code": code, "minutes": rules.minutes}, to_citizen=True)
    # Urgent: the citizen waits for it, so quiet hours do not hold it.
    await repository.insert_messages(uow.session, [{
        "event_id": uuid.uuid4(), "event_type": "lookup.code", "case_id": case["case_id"],
        "recipient": domain.citizen_recipient(case_view(case, case["case_id"])), "channel": "sms",
        "kind": "citizen.lookup_code", "body_enc": ctx.keys.encrypt(text, context=BODY_CONTEXT), "payload": None,
        "urgent": True, "state": "queued", "next_attempt_at": now,
    }])  # fmt: skip
    uow.after_commit(ctx.wake_sender)
    return True


class CodeRefused(Exception):
    def __init__(self, check: citizen.CodeCheck) -> None:
        super().__init__(check.verdict)
        self.check = check


async def look_up(uow: UnitOfWork, ctx: NotifyContext, tracking_no: str, code: str) -> dict[str, Any]:
    """The appeal's status and public timeline for the code sent to its phone; a wrong code is
    counted (committed even though the look-up is refused), a right one is spent."""
    async with uow:
        case = await repository.recipient_by_tracking_no(uow.session, tracking_no)
        latest = await repository.latest_code(uow.session, case["case_id"], lock=True) if case else None
        now, rules = ctx.now(), _code_rules(ctx.settings)
        matches = latest is not None and secrets.compare_digest(latest["code_hash"], citizen.code_hash(latest["case_id"], code))
        check = citizen.check_code(_latest(latest), matches=matches, now=now, rules=rules)
        if latest is not None and check.failures != latest["failures"]:
            await repository.update_code(uow.session, latest["id"], failures=check.failures)
        if check.verdict != "ok":
            await uow.commit()
            raise CodeRefused(check)
        assert case is not None and latest is not None
        await repository.update_code(uow.session, latest["id"], used_at=now)
        entries, status = await repository.timeline_and_status(uow.session, case["case_id"])
        await uow.commit()
    # The status in the timeline's words: the latest entry that moved it (shared.lifecycle).
    moved = [e for e in entries if status_after(e["event_type"]) is not None]
    return {
        "tracking_no": tracking_no, "status": status, "status_label": moved[-1]["label"] if moved else None,
        "phone_masked": case["phone_masked"],
        "answer": case["answer"], "public_summary": case["public_summary"],
        "timeline": [{k: e[k] for k in ("event_type", "label", "occurred_at", "detail")} for e in entries],
    }
