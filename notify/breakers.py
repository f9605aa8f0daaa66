"""A circuit breaker on each outbound gateway (SMS, WeChat, the 12345 webhook).

A gateway that keeps failing is not hammered: after ``breaker_failures`` failed tries in a row
its breaker opens and, for ``breaker_open_seconds``, the sender puts that channel's messages
off without trying them (no attempt counted, so none is dead-lettered for the gateway's
outage). Then one try goes through (half-opened): if it succeeds the breaker closes and the
waiting messages go out; if it fails the breaker opens again.

What counts as the gateway failing is the adapter's ``retry`` outcome — no answer, a 5xx,
408/425/429 — not a permanent 4xx (the gateway answered; the message is what is wrong).
The per-message backoff (``domain.backoff``) stays: it spaces one message's tries while the
gateway is up; the breaker is about the gateway, across messages.

The state machine is purgatory's (``AsyncCircuitBreakerFactory``, in memory, so one per
replica: each replica learns a gateway is down from its own tries). The state shows on
``/metrics`` (``jiesu_notify_gateway_breaker_state``) and in ``/ready``'s checks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import Context, OpenedState

from notify.channels import ChannelAdapter, Delivery, SendResult
from shared import metrics


@dataclass(frozen=True)
class Opened:
    """The channel's breaker is open: the message was not tried; try again in ``retry_in`` seconds."""

    channel: str
    retry_in: float


class _GatewayFailed(Exception):
    """Raised inside the breaker so that purgatory counts the failure; carries the outcome."""

    def __init__(self, result: SendResult) -> None:
        super().__init__(result.error)
        self.result = result


class GatewayBreakers:
    """One breaker per channel name; the inbox (no gateway) never goes through one."""

    def __init__(self, service: str, channels: list[str], *, failures: int, open_seconds: float) -> None:
        self.service = service
        self.open_seconds = open_seconds
        self.factory = AsyncCircuitBreakerFactory(default_threshold=failures, default_ttl=open_seconds)
        self.factory.add_listener(self._on_event)
        self._contexts: dict[str, Context] = {}
        self.channels = list(channels)
        for channel in self.channels:
            metrics.GATEWAY_BREAKER_STATE.labels(service, channel).state("closed")

    async def send(self, adapter: ChannelAdapter, delivery: Delivery) -> SendResult | Opened:
        breaker = await self.factory.get_breaker(adapter.name)
        self._contexts[adapter.name] = breaker.context
        try:
            async with breaker:
                result = await adapter.send(delivery)
                if result.state == "retry":
                    raise _GatewayFailed(result)
        except OpenedState as opened:
            metrics.GATEWAY_SHORT_CIRCUITS.labels(self.service, adapter.name).inc()
            return Opened(adapter.name, self._retry_in(opened.opened_at))
        except _GatewayFailed as failed:
            return failed.result
        return result

    def _retry_in(self, opened_at: float | None) -> float:
        if opened_at is None:
            return 0.0
        return max(0.0, opened_at + self.open_seconds - time.time())

    def _on_event(self, name: str, event_type: str, event: Any) -> None:
        if event_type == "state_changed":
            metrics.GATEWAY_BREAKER_STATE.labels(self.service, name).state(event.state)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Each channel's breaker for ``/ready``: state, failures in a row, seconds until the next try."""
        found: dict[str, dict[str, Any]] = {}
        for channel in self.channels:
            context = self._contexts.get(channel)
            if context is None:
                found[channel] = {"state": "closed", "failures": 0}
                continue
            entry: dict[str, Any] = {"state": context.state, "failures": context.failure_count or 0}
            if context.state == "opened":
                entry["retry_in_seconds"] = round(self._retry_in(context.opened_at), 3)
            found[channel] = entry
        return found
