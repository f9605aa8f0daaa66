"""The organisation directory service: versions, the admin API, publishing, followers.

Pure editing rules first (no servers), then a running directory (real HTTP, its own
database and topics) per module, and one that is restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.directory import domain
from services.directory.app import create_app
from services.directory.service import parse_if_match
from services.directory.settings import DirectorySettings
from shared.actors import actor_headers
from shared.events import Role
from shared.orgdata import load_org
from shared.orgfollow import OrgFollower
from shared.problems import Problem
from shared.testing import Infra, eventually, running, service_settings, unique

SUPERVISOR = actor_headers("sup-wei", Role.centre_supervisor, "LB-XC-ZZZX")
#: The city centre's supervisor: the city's administrator, who edits the whole directory.
CITY_ADMIN = actor_headers("city-admin", Role.centre_supervisor, "LB-ZZZX")
CLERK = actor_headers("clerk-lan", Role.dept_clerk, "LB-XC-ZJJ")

NEW_VILLAGE = {"name": "新街社区", "kind": "village", "parent": "LB-XC-CG"}


def seed_document() -> dict:
    return json.loads(load_org().model_dump_json(exclude_defaults=True))


# --------------------------------------------------------------------------- pure rules


def test_put_unit_appends_a_new_unit_and_replaces_in_place() -> None:
    doc = seed_document()
    created = domain.put_unit(doc, "LB-XC-CG-XJ", NEW_VILLAGE)
    assert created.created and created.document["units"][-1]["code"] == "LB-XC-CG-XJ"
    assert "新街社区" in created.summary
    at = [u["code"] for u in doc["units"]].index("LB-XC-ZJJ")
    replaced = domain.put_unit(doc, "LB-XC-ZJJ", {"name": "忻城县住建局", "kind": "department", "parent": "LB-XC"})
    assert not replaced.created
    assert replaced.document["units"][at]["name"] == "忻城县住建局"
    assert len(replaced.document["units"]) == len(doc["units"])
    assert doc["units"][at]["name"] == "忻城县住房和城乡建设局"  # the input is not changed


def test_deleting_a_unit_in_use_names_what_uses_it() -> None:
    doc = seed_document()
    with pytest.raises(domain.Blocked) as township:
        domain.delete_unit(doc, "LB-XC-CG")
    assert set(township.value.children) == {"LB-XC-CG-ZZZX", "LB-XC-CG-CZ", "LB-XC-CG-CX", "LB-XC-CG-CD", "LB-XC-CG-BJ"}
    sanitation = [i for i, e in enumerate(doc["catalogue"]) if e["area"] == "LB-XC-CG"]
    assert len(sanitation) == 1 and township.value.catalogue == sanitation  # 城关镇's own sanitation line
    with pytest.raises(domain.Blocked) as grid:
        domain.delete_unit(doc, "LB-XC-CG-CD-G01")  # 城东社区's grid, where 覃某 works
    assert grid.value.users == ["demo-grid-worker"] and grid.value.children == []
    with pytest.raises(domain.Missing):
        domain.delete_unit(doc, "LB-XC-NOPE")
    edit = domain.delete_unit(doc, "LB-XC-CG-CD-G02")  # nobody works there, no line names it
    assert "LB-XC-CG-CD-G02" not in [u["code"] for u in edit.document["units"]]


def test_validate_names_every_problem_and_numbers_the_version() -> None:
    doc = domain.put_unit(seed_document(), "LB-XC-CG-XJ", {**NEW_VILLAGE, "parent": "LB-XC-NOPE"}).document
    doc = domain.put_user(doc, "gw-new", {"name": "网格员", "role": "grid_worker", "unit": "LB-XC-CG"}).document
    with pytest.raises(domain.Inconsistent) as bad:
        domain.validate(doc, 5)
    text = "\n".join(bad.value.problems)
    assert "parent LB-XC-NOPE does not exist" in text
    assert "gw-new" in text and "grid_worker" in text
    org, stored = domain.validate(domain.put_unit(seed_document(), "LB-XC-CG-XJ", NEW_VILLAGE).document, 5)
    assert org.version == 5 and stored["version"] == 5
    assert org.township_of("LB-XC-CG-XJ") == "LB-XC-CG"


def test_replace_catalogue_summarises_the_change() -> None:
    doc = seed_document()
    entries = [dict(e) for e in doc["catalogue"]]
    [sanitation] = [i for i, e in enumerate(entries) if e["area"] == "LB-XC-CG"]
    entries[sanitation] = {**entries[sanitation], "owner": "township"}
    entries.append({"subject_class": "environment", "area": "LB-XC-CG-CD", "owner": "LB-XC-CG-CD"})
    del entries[41]
    edit = domain.replace_catalogue(doc, entries)
    assert edit.summary == "catalogue: 98 entries (1 added, 1 removed, 1 changed)"


def test_resolve_names_the_deciding_line() -> None:
    org = load_org()
    lamp = domain.resolve(org, "infrastructure", "LB-XC-CG-CZ-G01", "西宁街路灯不亮")
    assert (lamp.owner, lamp.index) == ("LB-XC-ZJJ", 1)
    water = domain.resolve(org, "infrastructure", "LB-WX-TW-DT", "家里停水三天了")
    assert (water.owner, water.entry.matter) == ("LB-WX-SLJ", "农村供水")
    dispute = domain.resolve(org, "disputes", "LB-WX-TW-DT-G01", "邻里纠纷")
    assert (dispute.owner, dispute.index) == ("LB-WX-TW", 0)  # township-first default


def test_if_match_forms() -> None:
    assert parse_if_match('"7"') == parse_if_match("7") == parse_if_match('W/"7"') == 7
    assert parse_if_match(None) is None and parse_if_match("*") is None
    with pytest.raises(Problem) as bad:
        parse_if_match('"abc"')
    assert bad.value.status == 400


# --------------------------------------------------------------------------- a running directory


class SnapshotReader:
    """Every message on the org topic, from the start."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self.topic = topic
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False)
        self.seen: list[tuple[bytes | None, dict[str, bytes], dict]] = []
        self._assigned = False

    async def __aenter__(self) -> SnapshotReader:
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    async def messages(self) -> list[tuple[bytes | None, dict[str, bytes], dict]]:
        if not self._assigned:
            if self.topic not in await self.consumer.topics():
                return []
            tp = TopicPartition(self.topic, 0)
            self.consumer.assign([tp])
            await self.consumer.seek_to_beginning(tp)
            self._assigned = True
        batch = await self.consumer.getmany(timeout_ms=200)
        for records in batch.values():
            self.seen.extend((r.key, dict(r.headers), orjson.loads(r.value)) for r in records)
        return self.seen

    async def versions(self) -> list[int]:
        return [body["version"] for _, _, body in await self.messages()]


def directory_settings(infra: Infra) -> DirectorySettings:
    return service_settings(
        DirectorySettings, infra, topic=unique("lifecycle"), database=unique("directory"),
        org_topic=unique("org"), publish_retry_seconds=0.2,
    )


@pytest.fixture(scope="module")
async def directory(infra: Infra):
    settings = directory_settings(infra)
    async with running(create_app(settings), settings) as service:
        yield service


async def current_version(directory) -> int:
    answer = await directory.client.get("/api/v1/org", headers=SUPERVISOR)
    assert answer.status_code == 200
    return answer.json()["version"]


async def test_the_seed_is_version_one_and_readable_by_anyone(directory) -> None:
    first = await directory.client.get("/api/v1/org/versions/1", headers=SUPERVISOR)
    assert first.status_code == 200 and first.headers["etag"] == '"1"'
    body = first.json()
    assert body["changed_by"] == "seed" and body["summary"] == "seed: demo_org.json"
    seed = load_org()
    assert body["document"]["version"] == 1
    assert [u["code"] for u in body["document"]["units"]] == [u.code for u in seed.units]
    assert len(body["document"]["catalogue"]) == len(seed.catalogue) == 98

    unit = await directory.client.get("/api/v1/units/LB-XC-CG-CZ-G01")  # no actor headers: reading is open
    assert unit.status_code == 200
    assert unit.json()["unit"]["name"] == "城中社区第一网格"
    assert [a["code"] for a in unit.json()["ancestors"]] == ["LB-XC-CG-CZ", "LB-XC-CG", "LB-XC", "LB"]
    children = await directory.client.get("/api/v1/units/LB-WX-TW/children")
    assert [u["code"] for u in children.json()["items"]] == ["LB-WX-TW-ZZZX", "LB-WX-TW-TW", "LB-WX-TW-DT", "LB-WX-TW-LN", "LB-WX-TW-JL"]
    assert (await directory.client.get("/api/v1/units/LB-XC-NOPE")).status_code == 404
    user = await directory.client.get("/api/v1/users/demo-grid-worker-cz", headers=SUPERVISOR)
    assert user.json()["user"] == {"id": "demo-grid-worker-cz", "name": "网格员小潘", "role": "grid_worker", "unit": "LB-XC-CG-CZ-G01"}
    lamp = await directory.client.get(
        "/api/v1/resolve", params={"subject_class": "infrastructure", "area": "LB-XC-CG-CZ-G01", "text": "路灯不亮"}
    )
    assert lamp.status_code == 200
    assert lamp.json()["owner"] == "LB-XC-ZJJ" and lamp.json()["entry"]["matter"] == "路灯、市政道路、排水设施维修"
    bad_area = await directory.client.get("/api/v1/resolve", params={"subject_class": "infrastructure", "area": "XX"})
    assert bad_area.status_code == 422 and bad_area.json()["field"] == "area"

    async with SnapshotReader(directory.settings.kafka_bootstrap_servers, directory.settings.org_topic) as reader:
        await eventually(lambda: _has(reader, 1), what="version 1 on the org topic")
        key, headers, body = (await reader.messages())[0]
        assert key == b"org" and headers["ce_type"] == b"org.snapshot"
        assert body["document"]["units"][0]["code"] == "LB" and body["changed_at"]


async def _has(reader: SnapshotReader, version: int) -> bool:
    return version in await reader.versions()


async def test_supervisor_changes_are_new_versions_published_and_followed(directory, infra: Infra) -> None:
    settings = directory.settings
    follower = OrgFollower(infra.bootstrap_servers, settings.org_topic, initial=load_org(), retry_seconds=0.2)
    await follower.start()
    try:
        before = await directory.client.get("/api/v1/org", headers=SUPERVISOR)
        v = before.json()["version"]
        assert before.headers["etag"] == f'"{v}"'
        assert follower.current.owner_for("environment", "LB-XC-CG-CD-G01") == "LB-XC-ZJJ"

        village = await directory.client.put(
            "/api/v1/units/LB-XC-CG-XJ", json=NEW_VILLAGE, headers={**SUPERVISOR, "If-Match": f'"{v}"'}
        )
        assert village.status_code == 201, village.text
        assert village.json()["version"] == v + 1 and village.headers["etag"] == f'"{v + 1}"'
        assert village.json()["unit"] == {"code": "LB-XC-CG-XJ", **NEW_VILLAGE}

        catalogue = (await directory.client.get("/api/v1/catalogue")).json()
        entries = catalogue["entries"]
        [sanitation] = [i for i, e in enumerate(entries) if e["area"] == "LB-XC-CG"]
        assert entries[sanitation]["owner"] == "LB-XC-ZJJ"
        entries[sanitation]["owner"] = "township"  # 城关镇 takes its sanitation back from 住建局
        entries.append({"subject_class": "environment", "area": "LB-XC-CG-XJ", "owner": "LB-XC-CG-XJ", "matter": "社区环境卫生"})
        changed = await directory.client.put(
            "/api/v1/catalogue", json={"entries": entries}, headers={**CITY_ADMIN, "If-Match": str(v + 1)}
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["version"] == v + 2
        assert changed.json()["summary"] == "catalogue: 99 entries (1 added, 0 removed, 1 changed)"

        org = await follower.wait_for_version(v + 2, timeout=20)
        assert follower.version == v + 2 and org.version == v + 2
        assert org.owner_for("environment", "LB-XC-CG-CD-G01") == "LB-XC-CG"
        assert org.owner_for("environment", "LB-XC-CG-XJ") == "LB-XC-CG-XJ"
        resolved = await directory.client.get("/api/v1/resolve", params={"subject_class": "environment", "area": "LB-XC-CG-XJ"})
        assert resolved.json()["owner"] == "LB-XC-CG-XJ" and resolved.json()["entry_index"] == 98

        history = (await directory.client.get("/api/v1/org/versions", params={"limit": 2}, headers=SUPERVISOR)).json()
        assert [(i["version"], i["changed_by"]) for i in history["items"]] == [(v + 2, "city-admin"), (v + 1, "sup-wei")]
        assert history["items"][1]["summary"] == "unit LB-XC-CG-XJ (新街社区) created"
        assert history["next"] == v + 1
        rest = (await directory.client.get("/api/v1/org/versions", params={"before": history["next"]}, headers=SUPERVISOR)).json()
        assert rest["items"][-1]["version"] == 1 and rest["next"] is None

        async with SnapshotReader(infra.bootstrap_servers, settings.org_topic) as reader:
            await eventually(lambda: _has(reader, v + 2), what="the catalogue change on the topic")
            assert {v + 1, v + 2} <= set(await reader.versions())
    finally:
        await follower.stop()


async def test_a_clerk_reads_but_may_not_change(directory) -> None:
    v = await current_version(directory)
    refused = await directory.client.put("/api/v1/units/LB-XC-CG-CX2", json=NEW_VILLAGE, headers=CLERK)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["role"] == "dept_clerk"
    assert refused.json()["allowed_roles"] == ["centre_supervisor"]  # not ops: the directory decides who sees cases
    assert (await directory.client.delete("/api/v1/users/demo-citizen", headers=CLERK)).status_code == 403
    assert (await directory.client.put("/api/v1/units/LB-XC-CG-CX2", json=NEW_VILLAGE)).status_code == 401
    assert await current_version(directory) == v
    assert (await directory.client.get("/api/v1/units/LB-XC-CG-CX2")).status_code == 404


async def test_inconsistent_changes_are_refused_with_the_problems_named(directory) -> None:
    v = await current_version(directory)
    orphan = await directory.client.put(
        "/api/v1/units/LB-XC-CG-XX", json={**NEW_VILLAGE, "parent": "LB-XC-NOPE"}, headers=SUPERVISOR
    )
    assert orphan.status_code == 422
    assert orphan.json()["problems"] == ["unit LB-XC-CG-XX (新街社区): parent LB-XC-NOPE does not exist"]

    in_use = await directory.client.delete("/api/v1/units/LB-XC-CG", headers=SUPERVISOR)
    assert in_use.status_code == 409
    # its centre, its villages, and 新街社区 that the test before added
    assert in_use.json()["children"] == ["LB-XC-CG-ZZZX", "LB-XC-CG-CZ", "LB-XC-CG-CX", "LB-XC-CG-CD", "LB-XC-CG-BJ", "LB-XC-CG-XJ"]
    assert "LB-XC-CG-CZ" in in_use.json()["detail"]

    misplaced = await directory.client.put(
        "/api/v1/users/gw-x", json={"name": "网格员", "role": "grid_worker", "unit": "LB-XC-CG"}, headers=SUPERVISOR
    )
    assert misplaced.status_code == 422
    assert "a grid_worker works in a grid, not in a township (LB-XC-CG)" in misplaced.json()["problems"][0]

    entries = (await directory.client.get("/api/v1/catalogue")).json()["entries"]
    entries.append({"subject_class": "housing", "area": "LB-XC-CG", "owner": "LB-XB-ZJJ"})
    foreign = await directory.client.put("/api/v1/catalogue", json={"entries": entries}, headers=SUPERVISOR)
    assert foreign.status_code == 422
    assert "owner LB-XB-ZJJ belongs to LB-XB, not to the area's county LB-XC" in foreign.json()["problems"][0]

    unknown = await directory.client.put("/api/v1/catalogue", json={"entries": [{"subject_class": "weather", "area": "*", "owner": "township"}]}, headers=SUPERVISOR)
    assert unknown.status_code == 422 and "entries.0.subject_class" in unknown.json()["detail"]

    assert await current_version(directory) == v  # nothing was written

    # …while the same kinds of change that do hold together go through.
    grid = await directory.client.put(
        "/api/v1/units/LB-XC-CG-BJ-G03", json={"name": "板江村第三网格", "kind": "grid", "parent": "LB-XC-CG-BJ"}, headers=SUPERVISOR
    )
    assert grid.status_code == 201
    worker = await directory.client.put(
        "/api/v1/users/gw-x", json={"name": "网格员", "role": "grid_worker", "unit": "LB-XC-CG-BJ-G03"}, headers=SUPERVISOR
    )
    assert worker.status_code == 201
    blocked = await directory.client.delete("/api/v1/units/LB-XC-CG-BJ-G03", headers=SUPERVISOR)
    assert blocked.status_code == 409 and blocked.json()["users"] == ["gw-x"]
    assert (await directory.client.delete("/api/v1/users/gw-x", headers=SUPERVISOR)).status_code == 200
    gone = await directory.client.delete("/api/v1/units/LB-XC-CG-BJ-G03", headers=SUPERVISOR)
    assert gone.status_code == 200 and gone.json()["version"] == v + 4
    assert (await directory.client.delete("/api/v1/users/gw-x", headers=SUPERVISOR)).status_code == 404


async def test_a_stale_version_is_refused(directory) -> None:
    v = await current_version(directory)
    first = await directory.client.put(
        "/api/v1/users/dispatcher-2", json={"name": "调度员黄某", "role": "centre_dispatcher", "unit": "LB-XC-ZZZX"},
        headers={**SUPERVISOR, "If-Match": f'"{v}"'},
    )
    assert first.status_code == 201
    stale = await directory.client.put(
        "/api/v1/users/dispatcher-2", json={"name": "调度员黄某某", "role": "centre_dispatcher", "unit": "LB-XC-ZZZX"},
        headers={**SUPERVISOR, "If-Match": f'"{v}"'},
    )
    assert stale.status_code == 412
    assert stale.json()["current_version"] == v + 1 and stale.headers["etag"] == f'"{v + 1}"'
    user = (await directory.client.get("/api/v1/users/dispatcher-2", headers=SUPERVISOR)).json()
    assert user["user"]["name"] == "调度员黄某" and user["version"] == v + 1

    # Two supervisors on the same version at once: exactly one wins, the other is told.
    async def rename(name: str):
        return await directory.client.put(
            "/api/v1/users/dispatcher-2", json={"name": name, "role": "centre_dispatcher", "unit": "LB-XC-ZZZX"},
            headers={**SUPERVISOR, "If-Match": str(v + 1)},
        )

    answers = await asyncio.gather(rename("调度员甲"), rename("调度员乙"))
    statuses = sorted(a.status_code for a in answers)
    assert statuses in ([200, 409], [200, 412]), [a.text for a in answers]
    winner = next(a for a in answers if a.status_code == 200).json()["user"]["name"]
    assert await current_version(directory) == v + 2
    assert (await directory.client.get("/api/v1/users/dispatcher-2", headers=SUPERVISOR)).json()["user"]["name"] == winner


async def test_a_restart_republishes_the_current_version(infra: Infra) -> None:
    settings = directory_settings(infra)
    async with SnapshotReader(infra.bootstrap_servers, settings.org_topic) as reader:
        async with running(create_app(settings), settings) as service:
            await eventually(lambda: _has(reader, 1), what="version 1 published at the first start")
            added = await service.client.put("/api/v1/units/LB-XC-CG-XJ", json=NEW_VILLAGE, headers=SUPERVISOR)
            assert added.status_code == 201 and added.json()["version"] == 2
            await eventually(lambda: _has(reader, 2), what="version 2 published after the change")
        assert await reader.versions() == [1, 2]

        async with running(create_app(settings), settings) as service:
            assert (await service.client.get("/api/v1/org", headers=SUPERVISOR)).json()["version"] == 2  # not seeded again

            async def republished() -> bool:
                return (await reader.versions()).count(2) == 2

            await eventually(republished, what="version 2 published again at the second start")
            assert await reader.versions() == [1, 2, 2]
            # A follower that starts now ends at the current version, with the change in it.
            follower = OrgFollower(infra.bootstrap_servers, settings.org_topic, initial=load_org())
            await follower.start()
            try:
                org = await follower.wait_for_version(2, timeout=20)
                assert org.township_of("LB-XC-CG-XJ") == "LB-XC-CG"
            finally:
                with contextlib.suppress(Exception):
                    await follower.stop()


async def test_ready_and_problem_documents(directory) -> None:
    ready = await directory.client.get("/ready")
    assert ready.status_code == 200 and ready.json()["service"] == "directory"
    missing = await directory.client.get("/api/v1/org/versions/9999", headers=SUPERVISOR)
    assert missing.status_code == 404 and missing.json()["type"].endswith("/no-such-version")


@pytest.mark.slow
async def test_python_m_services_directory_reads_its_settings_from_the_environment(infra: Infra, tmp_path) -> None:
    from shared.ports import free_port
    from shared.testing import ServiceProcess, service_env

    seed = tmp_path / "my_org.json"
    seed.write_text(json.dumps({**seed_document(), "name": "测试市"}, ensure_ascii=False), encoding="utf-8")
    topic, port = unique("org"), free_port()
    env = service_env(
        infra, "DIRECTORY_", topic=unique("lifecycle"), database=unique("directory"), port=port,
        DIRECTORY_SEED_FILE=str(seed), DIRECTORY_ORG_TOPIC=topic,
    )
    process = ServiceProcess("services.directory", env, port, tmp_path / "directory.log")
    process.start()
    try:
        await process.wait_ready(90)
        follower = OrgFollower(infra.bootstrap_servers, topic, initial=load_org(), retry_seconds=0.2)
        await follower.start()
        try:
            org = await follower.wait_for_version(1, timeout=30)
            assert org.name == "测试市"
        finally:
            await follower.stop()
    finally:
        process.stop()

    # A seed that does not hold together stops the service at start, naming the problem.
    broken = seed_document()
    broken["units"][3]["parent"] = "LB-NOPE"
    seed.write_text(json.dumps(broken, ensure_ascii=False), encoding="utf-8")
    env["DIRECTORY_DATABASE_URL"] = infra.database_url(unique("directory"))
    bad = ServiceProcess("services.directory", env, port, tmp_path / "broken.log")
    bad.start()
    try:
        with pytest.raises(RuntimeError, match="exited"):
            await bad.wait_ready(90)
        assert "parent LB-NOPE does not exist" in (tmp_path / "broken.log").read_text(encoding="utf-8")
    finally:
        bad.stop()


async def test_the_document_and_users_are_for_staff_while_units_and_the_catalogue_are_open(directory):
    assert (await directory.client.get("/api/v1/org")).status_code == 401
    citizen = actor_headers("c", Role.citizen)
    for path in ("/api/v1/org", "/api/v1/org/versions", "/api/v1/org/versions/1", "/api/v1/users/demo-grid-worker"):
        assert (await directory.client.get(path, headers=citizen)).status_code == 403, path
    clerk = actor_headers("clerk", Role.dept_clerk, "LB-XC-ZJJ")
    assert (await directory.client.get("/api/v1/users/demo-grid-worker", headers=clerk)).status_code == 200
    for path in ("/api/v1/units/LB-WX-TW", "/api/v1/catalogue"):
        assert (await directory.client.get(path)).status_code == 200, path  # published: who handles what


async def test_a_fresh_broker_gets_the_current_version_without_a_restart(infra: Infra, tmp_path) -> None:
    """Issue #22 item 5: the broker is lost and comes back empty (a new platform epoch); the
    directory, still running, publishes its current version there, so a service started
    afterwards has the org. The broker is a private one, so the session's is untouched."""
    from services.dev.devstack import TansuBroker
    from shared.ports import free_port

    broker = TansuBroker(free_port(), log_path=tmp_path / "broker.log")
    broker.start()
    try:
        private = Infra(postgres_url=infra.postgres_url, bootstrap_servers=broker.bootstrap_servers)
        settings = directory_settings(private)
        async with running(create_app(settings), settings) as service:
            async with SnapshotReader(broker.bootstrap_servers, settings.org_topic) as reader:
                await eventually(lambda: _has(reader, 1), what="version 1 published at the start")
                added = await service.client.put("/api/v1/units/LB-XC-CG-XJ", json=NEW_VILLAGE, headers=SUPERVISOR)
                assert added.status_code == 201 and added.json()["version"] == 2
                await eventually(lambda: _has(reader, 2), what="version 2 published before the broker is lost")

            broker.stop()
            broker.start()  # in-memory storage: a fresh, empty broker on the same address

            follower = OrgFollower(broker.bootstrap_servers, settings.org_topic, initial=load_org())
            await eventually(_started(follower), timeout=30, what="a follower to connect to the fresh broker")
            try:
                org = await follower.wait_for_version(2, timeout=30)
                assert org.township_of("LB-XC-CG-XJ") == "LB-XC-CG"
            finally:
                with contextlib.suppress(Exception):
                    await follower.stop()
    finally:
        broker.stop()


def _started(follower: OrgFollower):
    async def start() -> bool:
        try:
            await follower.start()
        except Exception:
            return False
        return True

    return start
