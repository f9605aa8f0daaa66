"""The sender loop: picks due messages and sends them through the channel adapters.

Each round claims a batch with ``FOR UPDATE SKIP LOCKED`` (replicas share the work) and
leases it (``next_attempt_at`` moved ahead), commits, then sends outside any transaction,
so a slow gateway never holds a lock; a sender that dies mid-way leaves its batch to be
picked up again when the lease runs out (at-least-once; the webhook's Idempotency-Key
makes the repeat harmless). Quiet hours and the rate limit are applied at send time.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from notify import domain, repository
from notify.channels import ChannelAdapter, Delivery, SendResult
from notify.service import BODY_CONTEXT, PHONE_CONTEXT, NotifyContext
from shared.tasks import stop_task
from shared.service import Runtime

log = logging.getLogger(__name__)

UNCONFIGURED_RETRY = timedelta(seconds=60)


class Sender:
    def __init__(self, runtime: Runtime, ctx: NotifyContext, adapters: dict[str, ChannelAdapter]) -> None:
        self.runtime = runtime
        self.ctx = ctx
        self.adapters = adapters
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="notify-sender")

    async def stop(self) -> None:
        await stop_task(self._task)

    async def _run(self) -> None:
        settings = self.ctx.settings
        while True:
            try:
                handled = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sender round failed; trying again")
                handled = 0
            if handled < settings.sender_batch_size:  # a full batch: more may be waiting, go on at once
                await asyncio.sleep(settings.sender_poll_seconds)

    async def tick(self) -> int:
        """One round: claim a batch of due messages and deliver each; the number handled."""
        now = self.ctx.now()
        settings = self.ctx.settings
        async with self.runtime.uow() as uow:
            batch = await repository.claim_due(
                uow.session, now, now + timedelta(seconds=settings.send_lease_seconds), settings.sender_batch_size
            )
            await uow.commit()
        for row in batch:
            try:
                await self.deliver(row)
            except Exception:
                # The lease brings it back; one bad message must not stop the others.
                log.exception("delivering message %s failed", row["id"], extra={"case_id": row["case_id"]})
        return len(batch)

    async def deliver(self, row: dict[str, Any]) -> None:
        ctx, settings = self.ctx, self.ctx.settings
        now = ctx.now()
        async with self.runtime.uow() as uow:
            session = uow.session
            if row["channel"] == "sms" and not row["urgent"]:
                until = domain.quiet_until(now, *ctx.quiet)
                if until is not None:
                    await repository.set_message(session, row["id"], state="held", next_attempt_at=until,
                                                 last_error="quiet hours")  # fmt: skip
                    await uow.commit()
                    return
            # Push channels only: an inbox does not buzz, and the 12345 system is no person to spare.
            if row["channel"] in ("sms", "wechat") and not row["urgent"]:
                window = timedelta(seconds=settings.rate_limit_window_seconds)
                sends = await repository.recent_sends(session, row["recipient"], row["channel"], now - window)
                until = domain.rate_limited_until(sends, now, limit=settings.rate_limit_count, window=window)
                if until is not None:
                    await repository.set_message(session, row["id"], state="queued", next_attempt_at=until,
                                                 last_error="rate limited")  # fmt: skip
                    await uow.commit()
                    return
            adapter = self.adapters.get(row["channel"])
            if adapter is None:
                await repository.set_message(session, row["id"], state="queued", next_attempt_at=now + UNCONFIGURED_RETRY,
                                             last_error=f"channel {row['channel']} not configured")  # fmt: skip
                await uow.commit()
                return
            to = None
            if row["channel"] == "sms" and row["case_id"]:
                recipient = await repository.get_recipient(session, row["case_id"])
                if recipient and recipient["phone_enc"]:
                    to = ctx.keys.decrypt(recipient["phone_enc"], context=PHONE_CONTEXT)
        delivery = Delivery(
            message_id=row["id"], event_id=str(row["event_id"]), case_id=row["case_id"], recipient=row["recipient"],
            kind=row["kind"], text=ctx.keys.decrypt(row["body_enc"], context=BODY_CONTEXT), payload=row["payload"], to=to,
        )  # fmt: skip
        result = await adapter.send(delivery)
        await self.record(row, result)

    async def record(self, row: dict[str, Any], result: SendResult) -> None:
        ctx, settings = self.ctx, self.ctx.settings
        now = ctx.now()
        attempt = row["attempts"] + 1
        values: dict[str, Any] = {"attempts": attempt, "last_error": result.error}
        outcome = result.state
        if result.state == "sent":
            values |= {"state": "sent", "sent_at": now}
        elif result.state == "delivered":
            values |= {"state": "delivered", "sent_at": now, "delivered_at": now}
        elif result.state == "retry" and attempt < settings.max_attempts:
            outcome = "failed"
            delay = domain.backoff(attempt, base=settings.backoff_seconds, cap=settings.max_backoff_seconds)
            values |= {"state": "failed", "next_attempt_at": now + delay}
        else:
            outcome = "dead"
            values |= {"state": "dead"}
            log.warning("message %s (%s) dead-lettered after %s tries: %s", row["id"], row["channel"], attempt,
                        result.error, extra={"case_id": row["case_id"]})  # fmt: skip
        async with self.runtime.uow() as uow:
            await repository.set_message(uow.session, row["id"], **values)
            await repository.add_attempt(uow.session, row["id"], attempt, now, outcome, result.status_code, result.error)
            await uow.commit()
