"""The test helpers that put events on a topic and read them back, against the real broker."""

from shared.events import CaseAccepted, AcceptedData, make_event, system_actor
from shared.testing import TopicReader, eventually, publish, unique


async def test_published_events_are_read_back_per_case_and_type(infra):
    topic = unique("helpers")
    first = make_event(CaseAccepted, case_id="C-1", producer="intake", actor=system_actor("intake"),
                       payload=AcceptedData(tracking_no="XC-20261123-000001", notice="已受理"))
    other = make_event(CaseAccepted, case_id="C-2", producer="intake", actor=system_actor("intake"),
                       payload=AcceptedData(tracking_no="XC-20261123-000002", notice="已受理"))
    await publish(infra.bootstrap_servers, topic, first, other)
    async with TopicReader(infra.bootstrap_servers, topic) as reader:
        seen = await eventually(lambda: reader.events(case_id="C-1"), what="C-1's event")
        assert [e.id for e in seen] == [first.id]
        # Different cases may sit on different partitions: only per-case order is promised.
        assert sorted(e.case_id for e in await reader.events(types="case.accepted")) == ["C-1", "C-2"]
        assert await reader.events(types="case.rated") == []
