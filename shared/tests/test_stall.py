"""A consumer that waits says where, and one that cannot commit goes on (issue #22: after a
broker loss an SLA replica's log went silent for minutes and it never caught up)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import pytest

from shared import consumer as consumer_module
from shared.bus import ensure_topics
from shared.service import topic_specs
from shared.testing import Infra, eventually, free_port, publish, running, service_settings, unique
from shared.tests.probe import ProbeSettings
from shared.tests.test_delivery import progress
from shared.tests.test_ops import Switches, _has, probe_app, probe_rows


class _Lines(logging.Handler):
    """The consumer's log lines, kept on its own logger: a service's start replaces the
    root's handlers (shared.logs), pytest's lines among them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def lines():  # noqa: F811 — this module's own capture, under the usual name
    lines = _Lines()
    logger = logging.getLogger("shared.consumer")
    logger.addHandler(lines)
    try:
        yield lines
    finally:
        logger.removeHandler(lines)


def _said(lines: _Lines, text: str) -> bool:
    return any(text in record.getMessage() for record in lines.records)


async def _logged(lines: _Lines, text: str) -> bool:
    return _said(lines, text)


async def test_a_loop_waiting_on_one_step_says_so_in_the_log(infra: Infra, monkeypatch, lines):
    monkeypatch.setattr(consumer_module, "STALL_WARN_SECONDS", 0.5)
    monkeypatch.setattr(consumer_module, "WATCH_EVERY_SECONDS", 0.1)
    topic = unique("lifecycle")
    settings = service_settings(ProbeSettings, infra, topic=topic, database=unique("probe"))
    switches = Switches()
    switches.gate.clear()  # the handler waits until the test opens the gate
    async with running(probe_app(settings, switches), settings) as probe:
        await publish(infra.bootstrap_servers, topic, progress("c-stall", 1))
        await eventually(lambda: _logged(lines, "consumer loop has been waiting on apply 1 events"), timeout=30, what="the stall said")
        stalled = [r.getMessage() for r in lines.records if "waiting on" in r.getMessage()]
        assert stalled and "for" in stalled[0]  # the step named, and for how long
        switches.gate.set()
        await eventually(lambda: _has(probe_rows(probe), 1), timeout=30, what="the event handled once the step ends")
        assert await probe_rows(probe) == [1]


def test_a_stall_is_a_long_fetch_or_a_long_time_out_of_the_group_not_a_long_apply():
    after = 60.0
    assert consumer_module.stall_reason(100.0, None, None, after) is None
    assert consumer_module.stall_reason(100.0, ("fetch", 50.0), None, after) is None
    assert "fetch" in consumer_module.stall_reason(110.0, ("fetch", 50.0), None, after)
    # The database or a handler holds a long apply: a new Kafka client would not help.
    assert consumer_module.stall_reason(500.0, ("apply 3 events", 50.0), None, after) is None
    assert consumer_module.stall_reason(100.0, None, 50.0, after) is None
    assert "out of its group" in consumer_module.stall_reason(110.0, None, 50.0, after)
    assert consumer_module.stall_reason(100.0, None, None, after, failing_since=50.0) is None
    assert "every fetch has failed" in consumer_module.stall_reason(110.0, None, None, after, failing_since=50.0)
    # A loop that ended is renewed at once: nothing else would start it again.
    assert consumer_module.stall_reason(100.0, None, None, after, ended="RuntimeError()") == "its loop ended: RuntimeError()"


async def test_a_loop_ended_is_told_by_its_error_and_a_running_one_is_not():
    async def fail():
        raise RuntimeError("boom")

    running_task = asyncio.create_task(asyncio.sleep(10))
    failed = asyncio.create_task(fail())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert consumer_module.loop_ended(None) is None
    assert consumer_module.loop_ended(running_task) is None
    assert consumer_module.loop_ended(failed) == "RuntimeError('boom')"
    running_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running_task
    assert consumer_module.loop_ended(running_task) == "cancelled"


async def _fetch_waits_for_good(*args, **kwargs):
    await asyncio.Event().wait()


async def _fetch_raises_unexpected(*args, **kwargs):
    raise RuntimeError("not a KafkaError")


async def _fetch_fails(*args, **kwargs):
    from aiokafka.errors import KafkaError

    raise KafkaError("Unexpected error during coordination AssertionError()")


# The three ways a Kafka client was seen, or can be, stuck for good, each as a broken fetch:
# (the broken fetch, the log line that shows it took effect, the reason the renewal gives).
STUCK_CLIENTS = {
    # aiokafka's fetch waits for a rebalance to end without a bound; after a broker loss a
    # member was seen never to come back (issue #22).
    "a fetch that waits for good": (_fetch_waits_for_good, None, "its loop has waited inside a fetch"),
    # CI saw scoring's consumer loop end after a broker loss while its process lived on:
    # /ready said "consumer stopped" for minutes, 906 events behind, nothing started it again.
    "a loop ended by an unexpected error": (
        _fetch_raises_unexpected, "consumer loop died", "its loop ended: RuntimeError('not a KafkaError')"
    ),
    # aiokafka wraps an unexpected error of its coordination task in a KafkaError that every
    # later fetch raises again: the loop goes round saying "fetch failed" for good.
    "every fetch failing": (_fetch_fails, "fetch failed", "every fetch has failed for"),
}  # fmt: skip


@pytest.mark.parametrize("how", STUCK_CLIENTS)
async def test_a_client_stuck_for_good_is_replaced_and_the_events_after_are_applied(infra: Infra, monkeypatch, lines, how):
    broken_fetch, took_effect, reason = STUCK_CLIENTS[how]
    monkeypatch.setattr(consumer_module, "RENEW_AFTER_SECONDS", 1.0)
    monkeypatch.setattr(consumer_module, "WATCH_EVERY_SECONDS", 0.2)
    async with joined_probe(infra) as (probe, topic):
        consumer = probe.runtime.consumer
        await publish(infra.bootstrap_servers, topic, progress("c-before", 1))
        await eventually(lambda: _has(probe_rows(probe), 1), timeout=30, what="the first event handled")
        stuck = consumer._consumer
        stuck.getmany = broken_fetch  # this client only: its successor fetches as usual
        if took_effect is None:
            await asyncio.sleep(consumer_module.IDLE_WAIT_SECONDS * 1.5)  # the fetch in flight has ended
        else:
            await eventually(lambda: _logged(lines, took_effect), timeout=30, what=took_effect)
        await publish(infra.bootstrap_servers, topic, progress("c-after", 2))
        await eventually(lambda: _has(probe_rows(probe), 2), timeout=60, what="the event after the client stuck handled")
        assert consumer._consumer is not stuck and consumer.running
        assert _said(lines, f"renews its Kafka consumer: {reason}")
        assert sorted(await probe_rows(probe)) == [1, 2]


async def _joined_any(consumer) -> bool:
    return consumer.joined


@contextlib.asynccontextmanager
async def joined_probe(infra: Infra):
    """A probe service on a topic of its own, once its consumer has joined the group."""
    topic = unique("lifecycle")
    settings = service_settings(ProbeSettings, infra, topic=topic, database=unique("probe"))
    async with running(probe_app(settings, Switches()), settings) as probe:
        await eventually(lambda: _joined_any(probe.runtime.consumer), timeout=60, what="the member joined")
        yield probe, topic


async def test_an_offset_commit_without_an_answer_is_given_up_and_the_loop_goes_on(infra: Infra, monkeypatch, lines):
    # A bound of zero: every commit is abandoned at once, as one waiting on a coordinator
    # that never answers is after COMMIT_TIMEOUT_SECONDS.
    monkeypatch.setattr(consumer_module, "COMMIT_TIMEOUT_SECONDS", 0)
    topic = unique("lifecycle")
    settings = service_settings(ProbeSettings, infra, topic=topic, database=unique("probe"))
    async with running(probe_app(settings, Switches()), settings) as probe:
        await publish(infra.bootstrap_servers, topic, progress("c-commit", 1))
        await eventually(lambda: _has(probe_rows(probe), 1), timeout=30, what="the first event handled")
        assert _said(lines, "got no answer in 0s")
        # The loop is not stuck behind the abandoned commit: later events are applied too.
        await publish(infra.bootstrap_servers, topic, progress("c-commit-2", 2), progress("c-commit-3", 3))
        await eventually(lambda: _has(probe_rows(probe), 3), timeout=30, what="the later events handled")
        assert sorted(await probe_rows(probe)) == [1, 2, 3]


async def test_commits_that_never_answer_neither_slow_the_loop_nor_make_it_look_behind(infra: Infra, monkeypatch, lines):
    """After a broker loss the development broker answered every offset commit with
    UNKNOWN_TOPIC_OR_PARTITION for minutes, and each batch's commit held the loop for its
    bound: every service fell behind (issue #22). Here every commit waits for good: the
    events are still applied at once, the lag counts from what was handled, and /ready says
    the commits are failing."""
    monkeypatch.setattr(consumer_module, "COMMIT_TIMEOUT_SECONDS", 5.0)
    async with joined_probe(infra) as (probe, topic):
        consumer = probe.runtime.consumer

        async def never_answers(*args, **kwargs):
            await asyncio.Event().wait()

        consumer._consumer.commit = never_answers
        for n in (1, 2, 3):
            started = time.monotonic()
            await publish(infra.bootstrap_servers, topic, progress(f"c-commit-{n}", n))
            await eventually(lambda n=n: _has(probe_rows(probe), n), timeout=20, what=f"event {n} applied")
            assert time.monotonic() - started < 3, f"event {n} waited on the commit before it"
        assert consumer.lag_total() == 0  # handled is not behind, whatever the group holds
        await asyncio.sleep(consumer_module.COMMIT_TIMEOUT_SECONDS + 1)
        assert consumer.commits_failing_since is not None
        ready = (await probe.client.get("/ready")).json()
        assert ready["checks"]["offset_commits"].startswith("failing for")
        assert ready["checks"]["consumer_lag_total"] == 0


async def test_a_member_left_without_partitions_says_so(infra: Infra, monkeypatch, lines):
    """Two replicas on a topic of one partition: the second has nothing, and says so."""
    monkeypatch.setattr(consumer_module, "STALL_WARN_SECONDS", 0.5)
    monkeypatch.setattr(consumer_module, "WATCH_EVERY_SECONDS", 0.1)
    topic = unique("lifecycle")
    settings = service_settings(ProbeSettings, infra, topic=topic, database=unique("probe")).model_copy(update={"kafka_partitions": 1})
    # Made here: a service makes its topics only on a fresh broker, and one asked for by
    # name before that gets the broker's default partitions.
    await ensure_topics(infra.bootstrap_servers, topic_specs(settings))
    async with running(probe_app(settings, Switches()), settings) as first:
        await eventually(lambda: _joined(first), timeout=60, what="the first replica joined")
        assert not _said(lines, "has had no partitions")
        second = settings.model_copy(update={"port": free_port()})
        async with running(probe_app(second, Switches()), second):
            await eventually(lambda: _logged(lines, f"has had no partitions of {topic}"), timeout=60, what="the idle replica said")


async def _joined(service) -> bool:
    return service.runtime.consumer.joined and len(service.runtime.consumer.lag()) == 1


async def test_a_relay_whose_broker_stops_answering_gives_up_the_batch_and_sends_it_later(infra: Infra, monkeypatch):
    """The broker frozen (SIGSTOP) while the relay publishes: the relay gives the batch up
    after its bound, replaces a producer that will not stop, and sends every row once the
    broker answers again (issue #22: intake's relay went silent after a broker loss)."""
    import os
    import signal

    from shared import relay as relay_module
    from shared.tests.test_delivery import progress as event

    if infra.broker is None or infra.broker.pid is None:
        pytest.skip("needs the embedded broker (its process is frozen)")
    monkeypatch.setattr(relay_module, "PUBLISH_TIMEOUT_SECONDS", 1.0)
    monkeypatch.setattr(relay_module, "PRODUCER_STOP_SECONDS", 0.5)
    relay_lines = _Lines()
    logging.getLogger("shared.relay").addHandler(relay_lines)
    topic = unique("lifecycle")
    settings = service_settings(ProbeSettings, infra, topic=topic, database=unique("probe"))
    try:
        async with running(probe_app(settings, Switches()), settings) as probe:
            runtime = probe.runtime
            await eventually(lambda: _is_leader(runtime.relay), timeout=30, what="the relay leads")
            async with runtime.uow() as uow:  # a first row: the relay's producer is up
                uow.emit(event("c-before", 0))
                await uow.commit()
            await eventually(lambda: _backlog_is(runtime.relay, 0), timeout=30, what="the first row sent")
            os.kill(infra.broker.pid, signal.SIGSTOP)
            try:
                async with runtime.uow() as uow:
                    uow.emit(event("c-frozen", 1))
                    await uow.commit()
                await eventually(lambda: _logged(relay_lines, "relay error"), timeout=20, what="the relay gives the batch up")
            finally:
                os.kill(infra.broker.pid, signal.SIGCONT)
            await eventually(lambda: _backlog_is(runtime.relay, 0), timeout=60, what="the row sent once the broker answers")
            said = [r.getMessage() for r in relay_lines.records]
            assert any("TimeoutError" in line for line in said if "relay error" in line), said
    finally:
        logging.getLogger("shared.relay").removeHandler(relay_lines)


async def _is_leader(relay) -> bool:
    return relay.is_leader


async def _backlog_is(relay, n: int) -> bool:
    return await relay.backlog() == n
