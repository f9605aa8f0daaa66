"""CloudEvents 1.0, Kafka protocol binding, binary content mode.

Context attributes travel as ``ce_*`` headers so that a consumer can skip a type it does
not handle by looking at ``ce_type`` alone, without decoding the body. The body is the
event's JSON (``content-type: application/json``); the message key is the case id so that
every event of a case lands on one partition, in order.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.events import EventBase, decode_event, encode_event

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"
SOURCE_PREFIX = "/jiesu/"

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class KafkaMessage:
    """What goes on (or comes off) the wire."""

    key: bytes
    value: bytes
    headers: Headers


def to_headers(event: EventBase) -> Headers:
    headers: Headers = [
        ("ce_specversion", SPECVERSION.encode()),
        ("ce_id", str(event.id).encode()),
        ("ce_type", event.type.encode()),
        ("ce_source", f"{SOURCE_PREFIX}{event.producer}".encode()),
        ("ce_time", event.occurred_at.isoformat().replace("+00:00", "Z").encode()),
        ("ce_schemaversion", str(event.schema_version).encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]
    if event.case_id:
        headers.append(("ce_subject", event.case_id.encode()))
    if event.correlation_id:
        headers.append(("ce_correlationid", str(event.correlation_id).encode()))
    if event.causation_id:
        headers.append(("ce_causationid", str(event.causation_id).encode()))
    return headers


def to_message(event: EventBase) -> KafkaMessage:
    return KafkaMessage(key=event.partition_key.encode(), value=encode_event(event), headers=to_headers(event))


def _text(value: bytes | bytearray | str) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else value


def header(headers: Headers | tuple | None, name: str) -> str | None:
    """The first header of that name, decoded; None when absent."""
    for key, value in headers or ():
        if key == name:
            return _text(value)
    return None


def attributes(headers: Headers | tuple | None) -> dict[str, str]:
    """Every header decoded, the first of each name (what ``header`` reads), in one pass:
    a consumer reads several of a record's attributes, and each ``header`` call walks them all."""
    found: dict[str, str] = {}
    for key, value in headers or ():
        if key not in found:
            found[key] = _text(value)
    return found


class MalformedEvent(ValueError):
    """A message that is not a valid CloudEvent of our contract (it goes to the DLQ)."""


def from_message(value: bytes | None, headers: Headers | tuple | None) -> EventBase:
    """Decode a message, checking that the binary-mode headers agree with the body."""
    return from_attributes(value, attributes(headers))


def from_attributes(value: bytes | None, attrs: dict[str, str]) -> EventBase:
    """``from_message`` for headers already read by ``attributes``."""
    if attrs.get("ce_specversion") != SPECVERSION:
        raise MalformedEvent(f"ce_specversion must be {SPECVERSION}, got {attrs.get('ce_specversion')!r}")
    if value is None:
        raise MalformedEvent("empty message body")
    try:
        event = decode_event(value)
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        raise MalformedEvent(f"body does not match the case-lifecycle schema: {exc}") from exc
    if attrs.get("ce_id") != str(event.id) or attrs.get("ce_type") != event.type:
        raise MalformedEvent("ce_id/ce_type headers disagree with the body")
    return event
