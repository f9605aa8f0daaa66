"""The event contract: envelope rules, the wire format, the committed schema."""

import copy
import json
import uuid
from datetime import datetime, timedelta, timezone

import jsonschema
import pytest
from pydantic import ValidationError

from shared import schema as schema_tool
from shared.cloudevents import MalformedEvent, attributes, from_message, header, to_message
from shared.events import (
    EVENT_TYPES,
    TRACKING_NO_MAX_LENGTH,

    AcceptedData,
    CaseAccepted,
    CaseReceived,
    GridActivity,
    GridActivityData,
    ReceivedData,
    encode_event,
    json_schema,
    make_event,
    system_actor,
)


def received(case_id: str = "case-1") -> CaseReceived:
    return make_event(
        CaseReceived,
        case_id=case_id,
        producer="intake",
        actor=system_actor("intake"),
        payload=ReceivedData(tracking_no="XC-20261122-000001", channel="app", title="路灯不亮", description="村口路灯坏了"),
    )


def test_covers_the_whole_lifecycle():
    expected = {
        "case.received", "case.accepted", "case.rejected", "case.triaged", "case.merged", "case.dispatched",
        "case.signed", "case.returned", "case.return_reviewed", "case.county_called", "case.whistle_blown",
        "case.work_plan_filed", "case.progress_reported", "case.extension_requested", "case.extension_approved",
        "case.extension_denied", "case.resolved", "case.verified", "case.verification_failed", "case.closed",
        "case.callback_completed", "case.rated", "case.reopened", "sla.warning", "sla.breached", "sla.escalated",
        "sla.urged", "unit.rated", "grid.activity",
    }  # fmt: skip
    assert expected <= set(EVENT_TYPES)


def test_the_wire_union_reads_every_event_type():
    """decode_event (what every consumer reads the topic with) knows each type of the
    contract: a type left out of the union is refused by every consumer."""
    from shared.schema import event_refs

    assert set(event_refs(json_schema())) == set(EVENT_TYPES)


def test_caused_event_carries_the_chain():
    first = received()
    second = make_event(
        CaseAccepted, producer="intake", actor=system_actor("intake"), caused_by=first,
        payload=AcceptedData(tracking_no="XC-1", notice="已受理"),
    )
    assert second.case_id == first.case_id
    assert second.causation_id == first.id
    assert second.correlation_id == first.correlation_id == first.id


def test_times_are_aware_and_utc():
    local = datetime(2026, 10, 1, 8, 0, tzinfo=timezone(timedelta(hours=8)))
    event = received().model_copy(update={"occurred_at": local})
    again = CaseReceived.model_validate_json(encode_event(event))
    assert again.occurred_at.utcoffset() == timedelta(0)
    assert again.occurred_at == local
    with pytest.raises(ValidationError):
        CaseReceived.model_validate({**json.loads(encode_event(event)), "occurred_at": "2026-10-01T08:00:00"})


def test_case_events_need_a_case_but_grid_activity_does_not():
    with pytest.raises(ValidationError, match="needs a case_id"):
        make_event(CaseAccepted, producer="intake", actor=system_actor("intake"), payload=AcceptedData(tracking_no="x", notice="n"))
    activity = make_event(
        GridActivity, producer="intake", actor=system_actor("intake"),
        payload=GridActivityData(worker_id="w7", grid="TW-01-03", kind="patrol"),
    )
    assert activity.partition_key == "grid-worker:w7"


def test_binary_mode_headers_and_key():
    event = received("case-42")
    message = to_message(event)
    assert message.key == b"case-42"
    assert header(message.headers, "ce_specversion") == "1.0"
    assert header(message.headers, "ce_type") == "case.received"
    assert header(message.headers, "ce_id") == str(event.id)
    assert header(message.headers, "ce_subject") == "case-42"
    assert header(message.headers, "ce_source") == "/jiesu/intake"
    assert header(message.headers, "content-type") == "application/json"
    assert header(message.headers, "ce_time").endswith("Z")
    assert from_message(message.value, message.headers) == event


def test_malformed_messages_are_refused():
    message = to_message(received())
    with pytest.raises(MalformedEvent):
        from_message(b"{not json", message.headers)
    wrong_id = [(k, v if k != "ce_id" else str(uuid.uuid4()).encode()) for k, v in message.headers]
    with pytest.raises(MalformedEvent, match="disagree"):
        from_message(message.value, wrong_id)
    with pytest.raises(MalformedEvent, match="specversion"):
        from_message(message.value, [h for h in message.headers if h[0] != "ce_specversion"])
    # A repeated header is read as its first copy, by one look-up or by reading them all.
    spoofed = [*message.headers, ("ce_type", b"case.closed")]
    assert attributes(spoofed)["ce_type"] == header(spoofed, "ce_type") == "case.received"
    assert from_message(message.value, spoofed).type == "case.received"


def test_unknown_fields_from_a_newer_producer_are_ignored():
    body = json.loads(encode_event(received()))
    body["payload"]["field_from_the_future"] = 1
    body["new_envelope_field"] = "x"
    assert CaseReceived.model_validate(body).payload.title == "路灯不亮"


def test_committed_schema_matches_the_code():
    committed = json.loads(schema_tool.CURRENT.read_text())
    assert committed == json.loads(schema_tool.render(json_schema())), (
        "the event contract changed: run `python -m shared.schema` and commit the schema"
    )


def test_events_validate_against_the_committed_schema():
    validator = jsonschema.Draft202012Validator(json.loads(schema_tool.CURRENT.read_text()))
    assert validator.is_valid(json.loads(encode_event(received())))
    broken = json.loads(encode_event(received()))
    del broken["payload"]["tracking_no"]
    assert not validator.is_valid(broken)


def test_current_code_is_backward_compatible_with_every_published_version():
    published = schema_tool.published_versions()
    assert published, "no published schema version"
    current = json_schema()
    for version, old in published.items():
        assert schema_tool.breaking_changes(old, current) == [], f"breaks published v{version}"


def test_compatibility_check_catches_breaking_changes():
    old = json_schema()
    new = copy.deepcopy(old)
    del new["$defs"]["ReceivedData"]["properties"]["title"]
    new["$defs"]["SignedData"]["properties"]["unit"]["type"] = "integer"
    new["$defs"]["RatedData"]["required"].append("comment")
    found = schema_tool.breaking_changes(old, new)
    assert "case.received.payload.title: field removed" in found
    assert "case.signed.payload.unit: type changed from 'string' to 'integer'" in found
    assert "case.rated.payload.comment: field is now required" in found
    additive = copy.deepcopy(old)
    additive["$defs"]["ReceivedData"]["properties"]["new_optional"] = {"type": "string"}
    assert schema_tool.breaking_changes(old, additive) == []


def test_every_consumer_handles_every_case_scoped_event_and_scoring_grid_activity():
    """Each service's case_status follows the whole lifecycle; grid activity is not about a
    case and only scoring reads it; a grid warning only notify (it tells the grid); an early
    warning's steps sla too (it runs their clocks), and their cards notify (it tells the unit)."""
    from dispatch.handlers import HANDLES as DISPATCH
    from intake.handlers import HANDLES as INTAKE
    from notify.handlers import HANDLES as NOTIFY
    from scoring.handlers import HANDLES as SCORING
    from sla.handlers import HANDLES as SLA

    case_scoped = {t for t, cls in EVENT_TYPES.items() if cls.case_scoped}
    assert {"grid.activity", "grid.warning"}.isdisjoint(case_scoped)
    for handles in (DISPATCH, INTAKE):
        assert handles == case_scoped
    warning_steps = {"warning.opened", "warning.acknowledged", "warning.handled", "warning.closed", "warning.reopened"}
    assert SLA == case_scoped | warning_steps  # 预警信息处置 on the same clocks as a case
    assert NOTIFY == case_scoped | {"grid.warning", "hotspot.detected", "sla.warning_signal"}  # 预警提醒, and a warning's cards
    assert SCORING == case_scoped | {"grid.activity"}


def test_a_tracking_number_longer_than_every_consumer_stores_is_refused_where_made_and_read():
    longest = "X" * TRACKING_NO_MAX_LENGTH
    assert ReceivedData(tracking_no=longest, channel="app", title="t", description="d").tracking_no == longest
    for payload in (ReceivedData, AcceptedData):
        with pytest.raises(ValidationError, match="tracking_no"):
            payload.model_validate({"tracking_no": longest + "X", "channel": "app", "title": "t", "description": "d", "notice": "n"})
    # An event from a producer that does not check: refused on reading, never stored cut short.
    message = to_message(received())
    body = json.loads(message.value)
    body["payload"]["tracking_no"] = longest + "X"
    with pytest.raises(MalformedEvent, match="tracking_no"):
        from_message(json.dumps(body).encode(), message.headers)
