"""The AsyncAPI document (shared/asyncapi.py): committed as generated, valid by the AsyncAPI
project's own parser (Node, installed by `make asyncapi-parser`), true to the services' specs,
and served."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from shared.asyncapi import DOCUMENT, build_document, generate, render, service_roles
from shared.events import EVENT_TYPES, TOPIC

CHECKER = Path(__file__).parent / "asyncapi"


def parse(document: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """What @asyncapi/parser says of a document: {"valid", "errors", "warnings"}."""
    node = shutil.which("node")
    if node is None or not (CHECKER / "node_modules" / "@asyncapi" / "parser").is_dir():
        pytest.fail("node or @asyncapi/parser is missing: `make asyncapi-parser` installs them")
    path = tmp_path / "asyncapi.json"
    path.write_text(render(document))
    run = subprocess.run([node, str(CHECKER / "validate.mjs"), str(path)], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip(), run.stderr
    verdict = json.loads(run.stdout.strip().splitlines()[-1])
    assert run.returncode == (0 if verdict["valid"] else 1), run.stderr
    return verdict


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_document(service_roles())


def test_the_committed_document_is_the_generated_one() -> None:
    assert DOCUMENT.read_text() == generate(), "run `make schema` (python -m shared.asyncapi) and commit the result"


def test_the_asyncapi_parser_accepts_the_document(document, tmp_path) -> None:
    verdict = parse(document, tmp_path)
    assert verdict == {"valid": True, "errors": [], "warnings": []}


@pytest.mark.parametrize(
    "breakage",
    [
        "an operation that names a channel that does not exist",
        "a channel message whose payload is not a schema",
        "a version AsyncAPI does not have",
    ],
)
def test_the_parser_rejects_a_broken_document(document, tmp_path, breakage) -> None:
    """The check can fail: each broken copy is refused with an error."""
    broken = copy.deepcopy(document)
    if breakage.startswith("an operation"):
        broken["operations"]["intakePublishesLifecycle"]["channel"] = {"$ref": "#/channels/noSuchChannel"}
    elif breakage.startswith("a channel message"):
        broken["components"]["messages"]["caseReceived"]["payload"] = {"type": 42}
    else:
        broken["asyncapi"] = "3.0.7"
    verdict = parse(broken, tmp_path)
    assert not verdict["valid"] and verdict["errors"], verdict


def test_every_event_type_is_a_message_with_its_publishers_and_subscribers(document) -> None:
    roles = {r.name: r for r in service_roles()}
    lifecycle = document["channels"]["caseLifecycle"]
    assert lifecycle["address"] == TOPIC
    messages = document["components"]["messages"]
    names = {m["name"] for m in messages.values()}
    assert set(EVENT_TYPES) <= names
    for message in messages.values():
        etype = message["name"]
        if etype not in EVENT_TYPES:
            continue
        publishers = sorted(n for n, r in roles.items() if etype in r.publishes)
        assert publishers, f"no service declares it publishes {etype}"
        assert message["x-publishers"] == publishers
        assert message["x-subscribers"] == sorted(n for n, r in roles.items() if etype in r.handles)
        assert message["headers"]["properties"]["ce_type"]["const"] == etype
        assert message["headers"]["properties"]["ce_source"]["enum"] == [f"/jiesu/{p}" for p in publishers]
        ref = message["payload"]["$ref"].rsplit("/", 1)[-1]
        assert document["components"]["schemas"][ref]["properties"]["type"]["const"] == etype
    # Each consuming service has its dead-letter channel; the epoch, the org directory and the holiday tables are there.
    addresses = {c["address"] for c in document["channels"].values()}
    consumers = {n for n, r in roles.items() if r.handles}
    assert {f"{TOPIC}.dlq.{n}" for n in consumers} | {TOPIC, "org-directory", "holiday-tables", "platform-epoch"} == addresses
    sends = {op["title"] for op in document["operations"].values() if op["action"] == "send"}
    assert {"directory publishes", "directory publishes the holiday tables"} <= sends
    # Every service that counts working days follows the one calendar (shared.holidays).
    followers = {op["title"].split()[0] for op in document["operations"].values() if op["title"].endswith("follows the holiday tables")}
    assert followers == {n for n, r in roles.items() if r.follows_holidays} and {"dispatch", "sla", "notify"} <= followers


def test_a_service_cannot_emit_a_type_it_does_not_declare() -> None:
    """The publishers the document names are kept true where events are written."""
    from shared.db import UndeclaredEvent, UnitOfWork
    from shared.events import GridActivity, GridActivityData, make_event, system_actor

    uow = UnitOfWork(None, publishes=frozenset({"case.received"}))  # type: ignore[arg-type]  # emit only queues
    event = make_event(GridActivity, payload=GridActivityData(worker_id="w1", grid="LB-WX-TW-G1", kind="login"),
                       producer="intake", actor=system_actor("intake"))  # fmt: skip
    with pytest.raises(UndeclaredEvent, match="grid.activity"):
        uow.emit(event)
    assert uow.pending == []


async def test_every_service_serves_the_document() -> None:
    import httpx

    from shared.service import build_app
    from shared.settings import ServiceSettings, load_settings
    from shared.tests.test_http import SPEC  # a service built from the shared plumbing; its lifespan never runs

    app = build_app(SPEC, load_settings(ServiceSettings))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        response = await client.get("/asyncapi.json")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json() == json.loads(DOCUMENT.read_text())
