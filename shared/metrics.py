"""Prometheus metrics shared by every service (labelled by service, so one process may host several in tests)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_PUBLISHED = Counter(
    "jiesu_outbox_published_events_total", "Events the relay published from the outbox", ["service"]
)
OUTBOX_OLDEST_UNSENT = Gauge(
    "jiesu_outbox_oldest_unsent_age_seconds", "Age of the oldest unpublished outbox row", ["service"]
)
BROKER_RESETS = Counter(
    "jiesu_broker_resets_total", "Times a fresh (empty) broker was detected and the outbox republished", ["service"]
)
EVENTS_HANDLED = Counter(
    "jiesu_consumer_events_total",
    "Events seen by the consumer, by type and outcome (handled, duplicate, skipped, failed, dead_lettered)",
    ["service", "type", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "jiesu_consumer_handler_duration_seconds",
    "Time to handle one event, database commit included",
    ["service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
CONSUMER_LAG = Gauge(
    "jiesu_consumer_lag_messages", "Messages behind the partition's high-water mark", ["service", "partition"]
)
