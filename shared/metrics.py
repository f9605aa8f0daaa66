"""Prometheus metrics shared by every service (labelled by service, so one process may host several in tests).

Names follow Prometheus conventions: the unit in the name (``_seconds``, ``_messages``,
``_events``, ``_connections``), ``_total`` for counters, and the labels ``service``,
``topic``, ``partition``, ``event_type``, ``outcome``. ``deploy/grafana/`` and
``deploy/prometheus/`` query these names; ``tests/test_deploy.py`` checks that every name
they use is defined here.

``RouteMetrics`` (installed by ``shared.service.build_app``) gives every service its HTTP
requests, errors and durations per route template and status class.

Counters and the histograms move as work happens; the gauges that describe state
(backlog, oldest row, dead letters, pool) are refreshed when ``/metrics`` is scraped
(``refresh_gauges`` in ``shared.service``), so they are never older than the scrape.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter, Enum, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# -- the outbox and its relay ------------------------------------------------------------
EVENTS_PUBLISHED = Counter(
    "jiesu_outbox_published_events_total", "Events the relay published from the outbox", ["service"]
)
OUTBOX_BACKLOG = Gauge(
    "jiesu_outbox_backlog_events", "Outbox rows not yet published (sent_at IS NULL)", ["service"]
)
OUTBOX_OLDEST_UNSENT = Gauge(
    "jiesu_outbox_oldest_unsent_age_seconds", "Age of the oldest unpublished outbox row (0 when none)", ["service"]
)
BROKER_RESETS = Counter(
    "jiesu_broker_resets_total", "Times a fresh (empty) broker was detected and the outbox republished", ["service"]
)

# -- the consumer ------------------------------------------------------------------------
EVENTS_HANDLED = Counter(
    "jiesu_consumer_events_total",
    "Events seen by the consumer, by type and outcome (handled, duplicate, skipped, failed, dead_lettered)",
    ["service", "event_type", "outcome"],
)
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
HANDLER_SECONDS = Histogram(
    "jiesu_consumer_handler_duration_seconds",
    "Time one handler call took for its batch (inside the transaction, commit excluded); event_type: the batch's, or 'mixed'",
    ["service", "event_type"],
    buckets=_LATENCY_BUCKETS,
)
BATCH_SECONDS = Histogram(
    "jiesu_consumer_batch_duration_seconds",
    "Time to apply one partition batch, database commit included",
    ["service"],
    buckets=_LATENCY_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "jiesu_consumer_lag_messages",
    "Messages behind the partition's high-water mark (not yet handled and committed); no sample while unknown (just after an assignment)",
    ["service", "topic", "partition"],
)
CONSUMER_LAG_SECONDS = Gauge(
    "jiesu_consumer_lag_seconds",
    "Age of the oldest unhandled message of the partition (from fetched record timestamps; 0 when caught up)",
    ["service", "topic", "partition"],
)
CONSUMER_COMMIT_FAILURES = Counter(
    "jiesu_consumer_commit_failures_total",
    "Offset commits that failed or got no answer (the events were handled; a new owner would fetch them again)",
    ["service"],
)
CONSUMER_RENEWALS = Counter(
    "jiesu_consumer_renewals_total",
    "Kafka consumer clients replaced because the member stalled while the broker answered (shared.consumer)",
    ["service"],
)
HELD_EVENTS = Gauge(
    "jiesu_consumer_held_events",
    "Events held until their cause (an earlier event of the case from another producer) is applied here",
    ["service"],
)
HELD_OLDEST_SECONDS = Gauge(
    "jiesu_consumer_held_oldest_age_seconds", "Age of the oldest held event (0 when none)", ["service"]
)
INBOX_PRUNED = Counter(
    "jiesu_inbox_pruned_events_total",
    "Event ids deleted from the inbox (processed_events) after inbox_retention_hours (shared.inbox)",
    ["service"],
)
DEAD_LETTERS_PARKED = Gauge(
    "jiesu_dead_letters_parked_events", "Dead letters waiting for an operator (status parked)", ["service"]
)

# -- the database pool -------------------------------------------------------------------
DB_POOL_CHECKED_OUT = Gauge(
    "jiesu_db_pool_checked_out_connections", "Database connections in use (checked out of the pool)", ["service"]
)
DB_POOL_SIZE = Gauge(
    "jiesu_db_pool_size_connections", "Most connections the pool will open (pool size + overflow)", ["service"]
)

# -- HTTP: requests, errors and duration per route (RED) ---------------------------------
# Labelled by the route TEMPLATE (``/api/v1/cases/{case_id}/status``), never the raw path, and by
# status class: the number of series is bounded by the routes the code declares, whatever
# paths clients send. Errors are the ``status_class="5xx"`` part of the request counter.
HTTP_REQUESTS = Counter(
    "jiesu_http_requests_total",
    "HTTP requests answered, by route template and status class (route 'unmatched': no route matched)",
    ["service", "method", "route", "status_class"],
)
HTTP_SECONDS = Histogram(
    "jiesu_http_request_duration_seconds",
    "Time from the request's arrival to the end of its answer, by route template and status class",
    ["service", "method", "route", "status_class"],
    buckets=_LATENCY_BUCKETS,
)
# Any other method string a client sends is counted as "other" (it cannot match a route anyway).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"


def route_template(scope: Mapping[str, Any]) -> str:
    """The template of the route that answered (set in the scope by the router), or
    ``unmatched``: an unknown path (404), a trailing-slash redirect, or a guard that answered
    before routing (413 by Content-Length)."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else UNMATCHED


def status_class(status: int) -> str:
    return f"{status // 100}xx"


class ResponseStatus:
    """An ASGI ``send`` that passes every message on and notes the answer's status: 500 until
    the app starts an answer (one that raised before it did is a server error)."""

    def __init__(self, send: Send) -> None:
        self.status = 500
        self._send = send

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self._send(message)


class RouteMetrics:
    """Pure ASGI middleware: counts and times every HTTP request of ``service`` by method,
    route template and status class. Pure ASGI (no BaseHTTPMiddleware) so streaming answers
    are timed to their last byte and nothing is buffered; an exception that escapes the app
    counts as the 500 the server answers with."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        noted = ResponseStatus(send)
        try:
            await self.app(scope, receive, noted)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "other"
            labels = (self.service, method, route_template(scope), status_class(noted.status))
            HTTP_REQUESTS.labels(*labels).inc()
            HTTP_SECONDS.labels(*labels).observe(time.perf_counter() - started)

# -- notify's gateways -------------------------------------------------------------------
GATEWAY_BREAKER_STATE = Enum(
    "jiesu_notify_gateway_breaker_state",
    "Circuit breaker of each outbound channel (sms, wechat, hotline): closed sends, opened holds "
    "the channel's messages, half-opened lets one try through (notify/breakers.py)",
    ["service", "channel"],
    states=["closed", "opened", "half-opened"],
)
GATEWAY_SHORT_CIRCUITS = Counter(
    "jiesu_notify_gateway_short_circuited_messages_total",
    "Messages put off without a try because their channel's breaker was open",
    ["service", "channel"],
)
