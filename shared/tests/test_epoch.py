"""The broker epoch, read through one long-lived client (``shared.bus.EpochReader``): a look
costs a metadata request and a fetch, not a client's start and stop — and still sees a fresh
broker."""

from __future__ import annotations

import pytest

from shared.bus import EpochReader, TopicSpec, ensure_epoch, read_epoch
from shared.testing import Infra, unique


async def test_a_reader_keeps_one_client_that_fetches_nothing_between_looks(infra: Infra):
    specs = [TopicSpec(unique("lifecycle"), 1)]
    async with EpochReader(infra.bootstrap_servers) as reader:
        epoch = await ensure_epoch(infra.bootstrap_servers, specs, reader)
        client = reader._consumer
        assert client is not None
        for _ in range(3):
            assert await reader.read() == epoch
        assert reader._consumer is client, "a look started a new client"
        # No partition assigned between looks: its fetcher does not poll the epoch topic.
        assert client.assignment() == set()
    assert reader._consumer is None, "closing the reader stops its client"
    # A single look through a client of its own reads the same record.
    assert await read_epoch(infra.bootstrap_servers) == epoch


@pytest.mark.slow
async def test_a_kept_client_sees_a_fresh_broker_and_its_new_epoch(infra: Infra):
    if infra.broker is None:
        pytest.skip("needs the embedded broker to restart it")
    specs = [TopicSpec(unique("lifecycle"), 1)]
    async with EpochReader(infra.bootstrap_servers) as reader:
        before = await ensure_epoch(infra.bootstrap_servers, specs, reader)
        infra.broker.kill()  # in memory: the restarted broker is empty
        infra.broker.start()
        looks: list[str | None] = []
        for _ in range(10):
            try:
                looks.append(await reader.read())
                break
            except Exception:  # noqa: BLE001 - the kept connection died with the old broker
                continue  # the failed look stopped the client; the next one starts a new one
        assert looks == [None], "a fresh broker has no epoch yet"
        after = await ensure_epoch(infra.bootstrap_servers, specs, reader)
        assert after != before
        assert await reader.read() == after
