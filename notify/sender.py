"""The sender loop: picks due messages and sends them through the channel adapters.

Each round locks a batch with ``FOR UPDATE SKIP LOCKED`` (replicas share the work), puts off
what must wait (quiet hours, rate limit, channel missing) and leases the rest
(``next_attempt_at`` moved ahead) in that one transaction, commits, then sends outside any transaction,
so a slow gateway never holds a lock, and records the round's outcomes in one transaction;
a sender that dies mid-way leaves its batch to be picked up again when the lease runs out
(at-least-once; the webhook's Idempotency-Key makes the repeat harmless). A message put
off is written once for it (its new due time), never leased first.

Between rounds it sleeps until the next message falls due (read from the database after
each round), at most ``sender_max_sleep_seconds``; a commit that queues a message, in this
replica or another, wakes it at once (``NotifyContext.wake_sender``, ``shared.wakeup``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from opentelemetry.trace import SpanKind

from notify import domain, repository
from notify.breakers import GatewayBreakers, Opened
from notify.channels import ChannelAdapter, Delivery, SendResult
from notify.service import BODY_CONTEXT, PHONE_CONTEXT, NotifyContext
from shared import tracing
from shared.tasks import stop_task
from shared.service import Runtime
from shared.wakeup import Wakeup

log = logging.getLogger(__name__)

UNCONFIGURED_RETRY = timedelta(seconds=60)
# NOTIFY'd after a commit that queued a message: every replica's sender looks at once.
SENDER_CHANNEL = "jiesu_notify_sender"
# A message due but claimed by another replica's round in flight: look again after this long.
BUSY_SECONDS = 0.1
# A round that failed (the database away) is tried again after this long.
RETRY_SECONDS = 1.0


class Sender:
    def __init__(
        self, runtime: Runtime, ctx: NotifyContext, adapters: dict[str, ChannelAdapter], breakers: GatewayBreakers
    ) -> None:
        self.runtime = runtime
        self.ctx = ctx
        self.adapters = adapters
        self.breakers = breakers
        self.tracer = runtime.tracing.tracer if runtime.tracing is not None else None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.ctx.sender_wakeup = Wakeup(self.runtime.engine, SENDER_CHANNEL, name="notify-sender")
        self._task = asyncio.create_task(self._run(), name="notify-sender")

    async def stop(self) -> None:
        await stop_task(self._task)
        if self.ctx.sender_wakeup is not None:
            await self.ctx.sender_wakeup.close()

    async def _run(self) -> None:
        settings = self.ctx.settings
        wakeup = self.ctx.sender_wakeup
        assert wakeup is not None
        while True:
            # Cleared before the round reads what is due: a message queued from here on wakes the sleep below.
            wakeup.event.clear()
            try:
                await wakeup.listen()
                if await self.tick() >= settings.sender_batch_size:
                    continue  # a full batch: more may be waiting, go on at once
                sleep = await self.seconds_to_next_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sender round failed; trying again")
                sleep = min(RETRY_SECONDS, settings.sender_max_sleep_seconds)
            await wakeup.sleep(sleep)

    async def seconds_to_next_due(self) -> float:
        """How long the sender may sleep: until the next message falls due, at most
        ``sender_max_sleep_seconds`` (a fallback for a wake-up lost)."""
        longest = self.ctx.settings.sender_max_sleep_seconds
        async with self.runtime.uow() as uow:
            due = await repository.next_due(uow.session)
        if due is None:
            return longest
        # Due already yet not claimed: another replica's round holds it (or its record is
        # on the way); look again shortly.
        return min(longest, max(BUSY_SECONDS, (due - self.ctx.now()).total_seconds()))

    async def tick(self) -> int:
        """One round: claim a batch of due messages and deliver each; the number handled.

        Two short transactions per round, not two or three per message: lock the batch and
        read what deciding needs (recent sends for the rate limit, sealed phones), put off
        there and then what must wait (quiet hours, rate limit, channel missing: one write
        each, the new due time) and lease the rest; then, outside any transaction, send
        message by message; then record every outcome (and every message put off after its
        lease: a gateway's breaker open, the rate limit reached by this round's own sends)."""
        now = self.ctx.now()
        settings = self.ctx.settings
        window = timedelta(seconds=settings.rate_limit_window_seconds)
        put_off: list[dict[str, Any]] = []
        async with self.runtime.uow() as uow:
            due = await repository.claim_due(uow.session, now, settings.sender_batch_size)
            limited = {(r["recipient"], r["channel"]) for r in due if _rate_limited_channel(r)}
            sends = await repository.recent_sends_many(uow.session, limited, now - window)
            batch = []
            for row in due:
                later = self.put_off_now(row, sends, now)
                if later is not None:
                    put_off.append(later)
                    continue
                batch.append(row)
            await repository.put_off_messages(uow.session, put_off)
            await repository.lease_messages(
                uow.session, [r["id"] for r in batch], now + timedelta(seconds=settings.send_lease_seconds)
            )
            sms = {r["case_id"] for r in batch if r["channel"] == "sms" and r["case_id"]}
            phones = await repository.phones_of(uow.session, sms)
            await uow.commit()
        if not batch:
            return len(due)
        round_ = _Round(put_off=[], outcomes=[])
        for row in batch:
            try:
                await self.deliver(row, sends, phones, round_)
            except Exception:
                # The lease brings it back; one bad message must not stop the others.
                log.exception("delivering message %s failed", row["id"], extra={"case_id": row["case_id"]})
        await self.record(round_)
        return len(due)

    def put_off_now(self, row: dict[str, Any], sends: dict[tuple[str, str], list[datetime]], now: datetime) -> dict[str, Any] | None:
        """Why a due message must wait, decided before it is leased (so waiting costs one write):
        quiet hours for a non-urgent SMS, the recipient's rate limit, a channel not configured."""
        ctx = self.ctx
        if row["channel"] == "sms" and not row["urgent"]:
            until = domain.quiet_until(now, *ctx.quiet)
            if until is not None:
                return _put_off(row, "held", until, "quiet hours")
        limited = self.rate_limited(row, sends, now)
        if limited is not None:
            return limited
        if row["channel"] not in self.adapters:
            return _put_off(row, "queued", now + UNCONFIGURED_RETRY, f"channel {row['channel']} not configured")
        return None

    def rate_limited(self, row: dict[str, Any], sends: dict[tuple[str, str], list[datetime]], now: datetime) -> dict[str, Any] | None:
        """The recipient's rate limit (``domain.rate_limited_until``) as a put-off, or None."""
        if not _rate_limited_channel(row):
            return None
        settings = self.ctx.settings
        window = timedelta(seconds=settings.rate_limit_window_seconds)
        until = domain.rate_limited_until(sends.get((row["recipient"], row["channel"]), []), now,
                                          limit=settings.rate_limit_count, window=window)  # fmt: skip
        return _put_off(row, "queued", until, "rate limited") if until is not None else None

    async def deliver(
        self, row: dict[str, Any], sends: dict[tuple[str, str], list[datetime]], phones: dict[str, bytes], round_: _Round
    ) -> None:
        """Send one leased message; the outcome is recorded with the round's."""
        ctx = self.ctx
        now = ctx.now()
        # The sends of this round count too (only those already recorded were weighed before the
        # lease): more than the limit to one recipient in one round waits from the real send times.
        limited = self.rate_limited(row, sends, now)
        if limited is not None:
            round_.put_off.append(limited)
            return
        adapter = self.adapters[row["channel"]]
        phone = phones.get(row["case_id"]) if row["channel"] == "sms" else None
        delivery = Delivery(
            message_id=row["id"], event_id=str(row["event_id"]), case_id=row["case_id"], recipient=row["recipient"],
            kind=row["kind"], text=ctx.keys.decrypt(row["body_enc"], context=BODY_CONTEXT), payload=row["payload"],
            to=ctx.keys.decrypt(phone, context=PHONE_CONTEXT) if phone else None,
        )  # fmt: skip
        # Sent under the trace of the event that queued it (its stored traceparent): the
        # instrumented HTTP client then carries ``traceparent`` to the gateway or 12345.
        parent = tracing.from_traceparent(row.get("traceparent")) if self.tracer is not None else None
        attributes = {"kind": SpanKind.INTERNAL, "jiesu.message_id": row["id"], "jiesu.channel": row["channel"]}
        with tracing.sending(self.tracer, f"deliver {row['kind']}", parent, **attributes):
            if adapter.name in self.breakers.channels:
                tried = await self.breakers.send(adapter, delivery)
                if isinstance(tried, Opened):
                    # The gateway is down: the message waits, no try counted, until the breaker lets one through.
                    until = now + timedelta(seconds=tried.retry_in)
                    round_.put_off.append(_put_off(row, "queued", until, f"{tried.channel} gateway breaker open"))
                    return
                result = tried
            else:
                result = await adapter.send(delivery)
        sent_at = ctx.now()
        if result.state in ("sent", "delivered") and _rate_limited_channel(row):
            sends.setdefault((row["recipient"], row["channel"]), []).append(sent_at)  # the next message to them in this round counts this one
        round_.outcomes.append(self.outcome(row, result, sent_at))

    def outcome(self, row: dict[str, Any], result: SendResult, at: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
        """The message's change and its attempt row."""
        settings = self.ctx.settings
        attempt = row["attempts"] + 1
        change = {"message_id": row["id"], "attempts": attempt, "last_error": result.error, "sent_at": None,
                  "delivered_at": None, "next_attempt_at": None}  # fmt: skip
        outcome = result.state
        if result.state == "sent":
            change |= {"state": "sent", "sent_at": at}
        elif result.state == "delivered":
            change |= {"state": "delivered", "sent_at": at, "delivered_at": at}
        elif result.state == "retry" and attempt < settings.max_attempts:
            outcome = "failed"
            delay = domain.backoff(attempt, base=settings.backoff_seconds, cap=settings.max_backoff_seconds)
            change |= {"state": "failed", "next_attempt_at": at + delay}
        else:
            outcome = "dead"
            change |= {"state": "dead"}
            log.warning("message %s (%s) dead-lettered after %s tries: %s", row["id"], row["channel"], attempt,
                        result.error, extra={"case_id": row["case_id"]})  # fmt: skip
        attempt_row = {"message_id": row["id"], "attempt": attempt, "at": at, "outcome": outcome,
                       "status_code": result.status_code, "error": result.error}  # fmt: skip
        return change, attempt_row

    async def record(self, round_: _Round) -> None:
        """Every outcome of the round with its attempt, and every message put off after its lease
        (a gateway's open breaker, the rate limit reached within the round), in one transaction."""
        if not (round_.outcomes or round_.put_off):
            return
        async with self.runtime.uow() as uow:
            await repository.put_off_messages(uow.session, round_.put_off)
            await repository.record_outcomes(uow.session, [c for c, _ in round_.outcomes], [a for _, a in round_.outcomes])
            await uow.commit()


@dataclass
class _Round:
    put_off: list[dict[str, Any]]
    outcomes: list[tuple[dict[str, Any], dict[str, Any]]]


def _rate_limited_channel(row: dict[str, Any]) -> bool:
    """Push channels only: an inbox does not buzz, and the 12345 system is no person to spare."""
    return row["channel"] in ("sms", "wechat") and not row["urgent"]


def _put_off(row: dict[str, Any], state: str, until: datetime, why: str) -> dict[str, Any]:
    return {"message_id": row["id"], "state": state, "next_attempt_at": until, "last_error": why}
