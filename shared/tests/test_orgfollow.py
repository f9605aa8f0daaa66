"""OrgFollower: a service's own copy of the org directory, from the topic org-directory."""

from __future__ import annotations

import json

import orjson
from aiokafka import AIOKafkaProducer

from shared.bus import TopicSpec, ensure_topics
from shared.orgdata import load_org
from shared.orgfollow import OrgFollower, decode_snapshot, publish_snapshot
from shared.testing import Infra, eventually, unique

SNAPSHOT = [("ce_type", b"org.snapshot")]


def document(name: str = "来宾市 demo organisation", *, drop_parent_of: str | None = None) -> dict:
    doc = json.loads(load_org().model_dump_json(exclude_defaults=True))
    doc["name"] = name
    if drop_parent_of:
        for unit in doc["units"]:
            if unit["code"] == drop_parent_of:
                unit["parent"] = "LB-XC-NOPE"  # inconsistent: parse_org refuses it
    return doc


def snapshot(version: int, doc: dict) -> bytes:
    return orjson.dumps({"version": version, "document": doc, "changed_at": "2026-05-01T08:00:00+00:00"})


async def send(infra: Infra, topic: str, *messages: tuple[bytes, list[tuple[str, bytes]]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for value, headers in messages:
            await producer.send_and_wait(topic, value, key=b"org", headers=headers, partition=0)
    finally:
        await producer.stop()


def test_decode_snapshot_refuses_what_it_cannot_use() -> None:
    version, org = decode_snapshot(snapshot(3, document("v3")), SNAPSHOT)
    assert (version, org.name) == (3, "v3")
    assert decode_snapshot(b"{}", [("ce_type", b"org.other")]) is None  # not a snapshot: not an error
    for bad, why in (
        (b"not json", "not JSON"),
        (orjson.dumps({"document": document()}), "no positive integer version"),
        (orjson.dumps({"version": True, "document": document()}), "no positive integer version"),
        (snapshot(4, document(drop_parent_of="LB-XC-CG")), "parent LB-XC-NOPE does not exist"),
    ):
        try:
            decode_snapshot(bad, SNAPSHOT)
        except ValueError as exc:
            assert why in str(exc)
        else:
            raise AssertionError(f"accepted {bad[:40]!r}")


async def test_the_seed_until_a_snapshot_arrives_then_the_newest(infra: Infra) -> None:
    topic = unique("org")
    seed = load_org()
    follower = OrgFollower(infra.bootstrap_servers, topic, initial=seed, retry_seconds=0.1)
    await follower.start()
    try:
        # The directory has not even created its topic: the service works from the seed.
        assert follower.current is seed and follower.version == 0
        await ensure_topics(infra.bootstrap_servers, [TopicSpec(topic, 1)])
        await send(infra, topic, (snapshot(1, document("v1")), SNAPSHOT), (snapshot(2, document("v2")), SNAPSHOT))
        org = await follower.wait_for_version(2, timeout=20)
        assert org.name == "v2" and follower.current is org and follower.version == 2
        # A republished or older version changes nothing.
        await send(infra, topic, (snapshot(1, document("v1 again")), SNAPSHOT), (snapshot(3, document("v3")), SNAPSHOT))
        await follower.wait_for_version(3, timeout=20)
        assert follower.current.name == "v3" and follower.skipped == 0
    finally:
        await follower.stop()
    assert not follower.running


async def test_a_malformed_snapshot_is_skipped_and_the_previous_one_stays(infra: Infra) -> None:
    topic = unique("org")
    await ensure_topics(infra.bootstrap_servers, [TopicSpec(topic, 1)])
    changes: list[str] = []
    follower = OrgFollower(
        infra.bootstrap_servers, topic, initial=load_org(), retry_seconds=0.1, on_change=lambda org: changes.append(org.name)
    )
    await follower.start()
    try:
        await send(infra, topic, (snapshot(1, document("good v1")), SNAPSHOT))
        await follower.wait_for_version(1, timeout=20)
        await send(
            infra, topic,
            (b"\x00garbage", SNAPSHOT),
            (snapshot(2, document("broken v2", drop_parent_of="LB-WX-TW")), SNAPSHOT),
            (orjson.dumps({"version": 9}), [("ce_type", b"org.unrelated")]),  # another type: not a snapshot
        )

        async def two_skipped() -> bool:
            return follower.skipped == 2

        await eventually(two_skipped, timeout=20, what="the two bad snapshots skipped")
        assert follower.version == 1 and follower.current.name == "good v1"
        assert follower.current.unit("LB-WX-TW").parent == "LB-WX"

        await publish_snapshot(infra.bootstrap_servers, topic, 3, document("good v3"))  # as the directory does
        await follower.wait_for_version(3, timeout=20)
        assert follower.current.name == "good v3" and follower.skipped == 2
        assert changes == ["good v1", "good v3"]
    finally:
        await follower.stop()
