"""The Kafka client's repeated lines are held back while the broker is away: one per message
per window, and the next one says how many like it were not logged."""

from __future__ import annotations

import json
import logging

import pytest

from shared.logs import RepeatLimiter, configure_logging


def test_one_line_per_message_per_window_and_the_next_tells_how_many_were_held_back() -> None:
    limiter = RepeatLimiter(window=30)
    key = ("aiokafka", "Unable connect to node with id %s: %s")
    assert limiter.allow(key, 0.0) == 0
    assert [limiter.allow(key, t) for t in (0.1, 5.0, 29.9)] == [None, None, None]
    other = ("aiokafka.consumer.fetcher", "Failed fetch messages from %s: %s")
    assert limiter.allow(other, 1.0) == 0  # another message has its own window
    assert limiter.allow(key, 30.0) == 3
    assert limiter.allow(key, 61.0) == 0


def test_a_services_log_holds_back_the_kafka_clients_repeats_and_nothing_else(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("scoring")
    try:
        kafka = logging.getLogger("aiokafka")
        for _ in range(50):
            kafka.error("Unable connect to node with id %s: %s", 111, "[Errno 111] Connection refused")
        kafka.warning("Marking the coordinator dead (node %s)", 111)
        ours = logging.getLogger("shared.consumer")
        for n in range(3):
            ours.warning("scoring fetch failed: %d", n)
    finally:
        logging.getLogger().handlers = []
    events = [json.loads(line)["event"] for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert events.count("Unable connect to node with id 111: [Errno 111] Connection refused") == 1
    assert "Marking the coordinator dead (node 111)" in events
    assert [e for e in events if e.startswith("scoring fetch failed")] == [f"scoring fetch failed: {n}" for n in range(3)]
