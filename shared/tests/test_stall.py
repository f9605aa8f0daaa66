"""A consumer that waits says where, and one that cannot commit goes on (issue #22: after a
broker loss an SLA replica's log went silent for minutes and it never caught up)."""

from __future__ import annotations

import logging

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
