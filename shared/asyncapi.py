"""The AsyncAPI 3.0 document of the platform's topics, generated — never written by hand.

``python -m shared.asyncapi`` (``make schema``) regenerates ``shared/schema/asyncapi.json``;
a test checks the committed file equals what the code generates, and validates it with the
AsyncAPI project's own parser (``@asyncapi/parser``, run with Node). Every service serves the
committed file at ``GET /asyncapi.json`` (shared.service).

What it is made from:

- the channels: ``case-lifecycle`` (``shared.events.TOPIC``), ``org-directory`` (the
  directory's snapshots, ``shared.orgfollow``), ``holiday-tables`` (``shared.holidays``), ``platform-epoch``
  (``shared.bus``) and one
  dead-letter topic per consuming service (``shared.bus.dlq_topic``);
- one message per lifecycle event type, its payload the event model's JSON Schema
  (``shared.events``, the same as ``case-lifecycle.schema.json``), its headers the CloudEvents
  attributes ``shared.cloudevents.to_headers`` writes, its key ``EventBase.partition_key``;
- who publishes and who subscribes: each service's ``ServiceSpec`` — ``publishes`` (enforced
  when an event is emitted, ``shared.db.UnitOfWork.emit``), ``handles``, ``follow_org``.

``build_document`` is pure (it takes the services' roles); ``service_roles`` imports each
service's ``SPEC`` (the services the ops registry lists) — done only by this generator and its
test, never by a running service, which serves the committed file.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.bus import EPOCH_TOPIC, dlq_topic
from shared.cloudevents import CONTENT_TYPE, SOURCE_PREFIX, SPECVERSION, to_headers
from shared.events import EVENT_TYPES, SCHEMA_VERSION, TOPIC, EventBase, json_schema
from shared.holidays import HOLIDAY_TOPIC, TABLE_TYPE
from shared.lifecycle import LABELS
from shared.orgdata import OrgDirectory
from shared.orgfollow import SNAPSHOT_KEY, SNAPSHOT_TYPE

DOCUMENT = Path(__file__).parent / "schema" / "asyncapi.json"
ORG_TOPIC = "org-directory"  # ServiceSettings.org_topic's default


KAFKA_BINDING = "0.5.0"

# What each CloudEvents header means; ``to_headers`` decides which are written. A header it
# writes that is not described here stops the generator (KeyError): document it first.
CE_HEADERS: dict[str, dict[str, Any]] = {
    "ce_specversion": {"type": "string", "const": SPECVERSION, "description": "CloudEvents spec version"},
    "ce_id": {"type": "string", "format": "uuid", "description": "the event id (also the body's id); consumers deduplicate on it"},
    "ce_type": {"type": "string", "description": "the event type: a consumer skips a type it does not handle from this header alone"},
    "ce_source": {"type": "string", "description": f"{SOURCE_PREFIX}<service> that wrote the event"},
    "ce_time": {"type": "string", "format": "date-time", "description": "when it happened (UTC)"},
    "ce_schemaversion": {"type": "string", "description": "the contract version the body follows"},
    "content-type": {"type": "string", "const": CONTENT_TYPE},
    "ce_subject": {"type": "string", "description": "the case id (absent on events not about one case)"},
    "ce_correlationid": {"type": "string", "format": "uuid", "description": "the first event of the chain"},
    "ce_causationid": {"type": "string", "format": "uuid", "description": "the event that caused this one"},
}
# The CloudEvents distributed-tracing extension (shared.tracing): written with the event into
# the outbox when tracing is on, so never required.
TRACE_HEADERS: dict[str, dict[str, Any]] = {
    "ce_traceparent": {
        "type": "string", "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
        "description": "W3C traceparent of the span the event was written under (absent when tracing is off)",
    },
    "ce_tracestate": {"type": "string", "description": "W3C tracestate travelling with ce_traceparent, when there is one"},
}  # fmt: skip
# What the consumer adds when it parks an event (shared.consumer ``_publish_dead_letters``).
DLQ_HEADERS: dict[str, dict[str, Any]] = {
    "dlq_error": {"type": "string", "description": "why it was parked (the last error, at most 4000 characters)"},
    "dlq_attempts": {"type": "string", "description": "how many times the handler tried it"},
    "dlq_service": {"type": "string", "description": "the service that parked it"},
    "dlq_original": {"type": "string", "description": "<topic>/<partition>/<offset> it came from"},
}


@dataclass(frozen=True)
class ServiceRole:
    """What one service does with the topics (from its ServiceSpec)."""

    name: str
    publishes: frozenset[str]
    handles: frozenset[str]
    follows_org: bool
    follows_holidays: bool = False


def service_modules() -> list[str]:
    """The services' app modules (each with a ``SPEC``), from the one list of them the ops tool keeps."""
    from services.ops.registry import SERVICES  # the generator's only reach outside shared/

    return [entry.app for entry in SERVICES.values()]


def service_roles(modules: Iterable[str] | None = None) -> list[ServiceRole]:
    roles = []
    for module in modules if modules is not None else service_modules():
        spec = importlib.import_module(module).SPEC
        if spec.publishes is None:
            raise ValueError(f"{module}.SPEC declares no publishes: the document cannot name its publishers")
        roles.append(ServiceRole(spec.name, frozenset(spec.publishes), frozenset(spec.handles), spec.follow_org, spec.follow_holidays))
    return roles


def _camel(name: str) -> str:
    parts = re.split(r"[^A-Za-z0-9]+", name)
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def _draft07(node: Any, prefix: str) -> Any:
    """Pydantic's JSON Schema (2020-12) as AsyncAPI's schema dialect (a draft-07 superset) reads it:
    ``$defs`` references pointed at ``prefix``, ``prefixItems`` as the array form of ``items``."""
    if isinstance(node, list):
        return [_draft07(item, prefix) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
            out[key] = prefix + value.removeprefix("#/$defs/")
        elif key == "prefixItems":
            out["items"] = _draft07(value, prefix)
            if node.get("items") is False or "maxItems" in node:
                out["additionalItems"] = False
        elif key == "items" and "prefixItems" in node:
            continue
        elif key in ("$defs", "$schema", "$id", "discriminator"):
            continue
        else:
            out[key] = _draft07(value, prefix)
    return out


def _headers_schema(event_type: str, producers: Sequence[str], case_scoped: bool, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    example = EventBase.model_construct(
        id=uuid.UUID(int=1), type=event_type, schema_version=SCHEMA_VERSION, case_id="c" if case_scoped else None,
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC), producer="p", causation_id=uuid.UUID(int=2),
        correlation_id=uuid.UUID(int=3),
    )  # fmt: skip
    names = [name for name, _ in to_headers(example)]
    properties = {name: dict(CE_HEADERS[name]) for name in names} | {k: dict(v) for k, v in TRACE_HEADERS.items()}
    properties["ce_type"] = {**properties["ce_type"], "const": event_type}
    properties["ce_schemaversion"] = {**properties["ce_schemaversion"], "const": str(SCHEMA_VERSION)}
    if producers:
        properties["ce_source"] = {**properties["ce_source"], "enum": [f"{SOURCE_PREFIX}{p}" for p in producers]}
    required = [n for n in names if n not in ("ce_correlationid", "ce_causationid")]
    if extra:
        properties |= extra
        required += list(extra)
    return {"type": "object", "properties": properties, "required": required}


def build_document(roles: Sequence[ServiceRole]) -> dict[str, Any]:
    """The AsyncAPI 3.0 document for these services (pure)."""
    schema = json_schema()
    refs = {etype: ref.rsplit("/", 1)[-1] for etype, ref in schema["discriminator"]["mapping"].items()}
    schemas = {name: _draft07(body, "#/components/schemas/") for name, body in schema["$defs"].items()}
    known = set(EVENT_TYPES)
    for role in roles:
        unknown = (role.publishes | role.handles) - known
        if unknown:
            raise ValueError(f"{role.name} names event types the contract does not have: {sorted(unknown)}")

    messages: dict[str, Any] = {}
    lifecycle_messages: dict[str, Any] = {}
    for etype, cls in EVENT_TYPES.items():
        producers = sorted(r.name for r in roles if etype in r.publishes)
        consumers = sorted(r.name for r in roles if etype in r.handles)
        mid = _camel(etype)
        case_scoped = cls.case_scoped
        key_doc = "the case id: every event of a case on one partition, in order" if case_scoped else (
            "the subject it is about (EventBase.partition_key): " + ("grid-worker:<worker id>" if etype == "grid.activity" else "its id"))  # fmt: skip
        messages[mid] = {
            "name": etype,
            "title": etype,
            "summary": LABELS.get(etype, etype),  # the citizen-timeline words, where the type has them
            "description": f"Published by {', '.join(producers) or 'no service yet'}; handled by {', '.join(consumers) or 'no service'}.",
            "contentType": CONTENT_TYPE,
            "headers": _headers_schema(etype, producers, case_scoped),
            "payload": {"$ref": f"#/components/schemas/{refs[etype]}"},
            "correlationId": {"location": "$message.header#/ce_correlationid", "description": "the chain's first event"},
            "bindings": {"kafka": {"key": {"type": "string", "description": key_doc}, "bindingVersion": KAFKA_BINDING}},
            "x-publishers": producers,
            "x-subscribers": consumers,
        }
        lifecycle_messages[mid] = {"$ref": f"#/components/messages/{mid}"}

    org_schemas = OrgDirectory.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, body in org_schemas.pop("$defs", {}).items():
        if name in schemas and schemas[name] != _draft07(body, "#/components/schemas/"):
            raise ValueError(f"two different schemas named {name}")
        schemas[name] = _draft07(body, "#/components/schemas/")
    schemas["OrgDirectory"] = _draft07(org_schemas, "#/components/schemas/")
    schemas["OrgSnapshot"] = {
        "type": "object",
        "required": ["version", "document", "changed_at"],
        "properties": {
            "version": {"type": "integer", "minimum": 1, "description": "the directory version; the newest wins"},
            "document": {"$ref": "#/components/schemas/OrgDirectory"},
            "changed_at": {"type": "string", "format": "date-time"},
        },
    }
    messages["orgSnapshot"] = {
        "name": SNAPSHOT_TYPE,
        "title": SNAPSHOT_TYPE,
        "summary": "One version of the organisation directory (units, users, the dispatch catalogue 派单目录).",
        "contentType": CONTENT_TYPE,
        "headers": {
            "type": "object",
            "required": ["ce_specversion", "ce_id", "ce_type", "ce_source", "ce_subject", "ce_time", "content-type"],
            "properties": {
                **{k: CE_HEADERS[k] for k in ("ce_specversion", "ce_time", "content-type")},
                "ce_id": {"type": "string", "description": "a fresh id per message"},
                "ce_type": {"type": "string", "const": SNAPSHOT_TYPE},
                "ce_source": {"type": "string", "description": "directory (or a tool)"},
                "ce_subject": {"type": "string", "description": "org@<version>"},
            },
        },
        "payload": {"$ref": "#/components/schemas/OrgSnapshot"},
        "bindings": {"kafka": {"key": {"type": "string", "const": SNAPSHOT_KEY.decode()}, "bindingVersion": KAFKA_BINDING}},
    }
    schemas["HolidayTable"] = {
        "type": "object",
        "required": ["year", "holidays", "workdays", "loaded_at", "loaded_by"],
        "properties": {
            "year": {"type": "integer", "minimum": 2000, "maximum": 2100},
            "holidays": {"type": "array", "items": {"type": "string", "format": "date"}, "description": "days off (放假)"},
            "workdays": {"type": "array", "items": {"type": "string", "format": "date"}, "description": "make-up working days (调休上班)"},
            "loaded_at": {"type": "string", "format": "date-time", "description": "the later load of a year wins"},
            "loaded_by": {"type": "string"},
        },
    }
    messages["holidayTable"] = {
        "name": TABLE_TYPE,
        "title": TABLE_TYPE,
        "summary": "A year's holiday schedule (节假日安排) as loaded in the directory; it wins over the packaged calendar.",
        "contentType": CONTENT_TYPE,
        "headers": {
            "type": "object",
            "required": ["ce_type"],
            "properties": {"ce_type": {"type": "string", "const": TABLE_TYPE}},
        },
        "payload": {"$ref": "#/components/schemas/HolidayTable"},
        "bindings": {"kafka": {"key": {"type": "string", "pattern": "^[0-9]{4}$", "description": "the year"},
                               "bindingVersion": KAFKA_BINDING}},
    }
    messages["brokerEpoch"] = {
        "name": "platform.epoch",
        "title": "broker epoch",
        "summary": "The broker's epoch: the record at offset 0 wins. A service whose stored epoch differs "
        "takes the broker for a fresh one and republishes the outbox rows it still keeps.",
        "payload": {"type": "string", "pattern": "^[0-9a-f]{32}$", "description": "a UUID in hex, written by whoever found the topic empty"},
    }
    messages["deadLetter"] = {
        "name": "dead-letter",
        "title": "a parked lifecycle record",
        "summary": "A case-lifecycle record a service's handler could not apply, copied as it came (key, "
        "headers, body) with why; the row in that service's dead_letters table is the one operators act on.",
        "description": "The body is the record's bytes as they came off case-lifecycle: usually one of the "
        "lifecycle events, but a malformed record (why it was parked) need not match any.",
        "headers": {"type": "object", "required": list(DLQ_HEADERS), "properties": {**CE_HEADERS, **DLQ_HEADERS}},
        "payload": {"description": "the original body (see case-lifecycle's messages)"},
    }

    lifecycle = TOPIC
    channels: dict[str, Any] = {
        "caseLifecycle": {
            "address": lifecycle,
            "title": "case lifecycle (诉求全流程)",
            "description": "Every event of every case, CloudEvents 1.0 in Kafka binary mode; the contract is "
            "shared/events.py (JSON Schema: shared/schema/case-lifecycle.schema.json). Fields are only ever added.",
            "messages": lifecycle_messages,
            "bindings": {"kafka": {"topic": lifecycle, "bindingVersion": KAFKA_BINDING}},
        },
        "orgDirectory": {
            "address": ORG_TOPIC,
            "title": "organisation directory",
            "description": "One partition; every version of the org directory, read from the beginning by every process.",
            "messages": {"orgSnapshot": {"$ref": "#/components/messages/orgSnapshot"}},
            "bindings": {"kafka": {"topic": ORG_TOPIC, "partitions": 1, "bindingVersion": KAFKA_BINDING}},
        },
        "holidayTables": {
            "address": HOLIDAY_TOPIC,
            "title": "holiday tables",
            "description": "One partition, compacted: the latest table of each year, read from the beginning by every "
            "service that counts working days (shared.holidays).",
            "messages": {"holidayTable": {"$ref": "#/components/messages/holidayTable"}},
            "bindings": {"kafka": {"topic": HOLIDAY_TOPIC, "partitions": 1, "bindingVersion": KAFKA_BINDING}},
        },
        "platformEpoch": {
            "address": EPOCH_TOPIC,
            "title": "broker epoch",
            "description": "One partition, kept forever (retention -1).",
            "messages": {"brokerEpoch": {"$ref": "#/components/messages/brokerEpoch"}},
            "bindings": {"kafka": {"topic": EPOCH_TOPIC, "partitions": 1, "bindingVersion": KAFKA_BINDING}},
        },
    }
    operations: dict[str, Any] = {}
    everyone = sorted(r.name for r in roles)
    for role in sorted(roles, key=lambda r: r.name):
        svc = _camel(role.name)
        if role.publishes:
            operations[f"{svc}PublishesLifecycle"] = {
                "action": "send",
                "title": f"{role.name} publishes",
                "summary": f"{role.name} writes these events to its outbox; its relay publishes them in order.",
                "channel": {"$ref": "#/channels/caseLifecycle"},
                "messages": [{"$ref": f"#/channels/caseLifecycle/messages/{_camel(t)}"} for t in sorted(role.publishes)],
            }
        if role.handles:
            operations[f"{svc}ConsumesLifecycle"] = {
                "action": "receive",
                "title": f"{role.name} consumes",
                "summary": f"{role.name}'s consumer group applies these types and skips the others by ce_type, unread.",
                "channel": {"$ref": "#/channels/caseLifecycle"},
                "messages": [{"$ref": f"#/channels/caseLifecycle/messages/{_camel(t)}"} for t in sorted(role.handles)],
            }
            dlq = dlq_topic(lifecycle, role.name)
            channel_id = _camel(f"dlq-{role.name}")
            channels[channel_id] = {
                "address": dlq,
                "title": f"{role.name}'s dead letters",
                "description": f"What {role.name}'s consumer parked. No service reads it; operators do (jiesu-ops, /api/v1/admin/dead-letters).",
                "messages": {"deadLetter": {"$ref": "#/components/messages/deadLetter"}},
                "bindings": {"kafka": {"topic": dlq, "bindingVersion": KAFKA_BINDING}},
            }
            operations[f"{svc}ParksDeadLetters"] = {
                "action": "send",
                "title": f"{role.name} parks",
                "channel": {"$ref": f"#/channels/{channel_id}"},
                "messages": [{"$ref": f"#/channels/{channel_id}/messages/deadLetter"}],
            }
        if role.follows_org:
            operations[f"{svc}FollowsOrg"] = {
                "action": "receive",
                "title": f"{role.name} follows the org directory",
                "channel": {"$ref": "#/channels/orgDirectory"},
                "messages": [{"$ref": "#/channels/orgDirectory/messages/orgSnapshot"}],
            }
        if role.follows_holidays:
            operations[f"{svc}FollowsHolidays"] = {
                "action": "receive",
                "title": f"{role.name} follows the holiday tables",
                "channel": {"$ref": "#/channels/holidayTables"},
                "messages": [{"$ref": "#/channels/holidayTables/messages/holidayTable"}],
            }
    operations["directoryPublishesHolidays"] = {
        "action": "send",
        "title": "directory publishes the holiday tables",
        "summary": "The directory publishes a table when it is loaded, and every table whenever it starts.",
        "channel": {"$ref": "#/channels/holidayTables"},
        "messages": [{"$ref": "#/channels/holidayTables/messages/holidayTable"}],
    }
    operations["directoryPublishesOrg"] = {
        "action": "send",
        "title": "directory publishes",
        "summary": "The directory publishes every new version, and the current one whenever it starts.",
        "channel": {"$ref": "#/channels/orgDirectory"},
        "messages": [{"$ref": "#/channels/orgDirectory/messages/orgSnapshot"}],
    }
    operations["everyServiceKeepsTheEpoch"] = {
        "action": "send",
        "title": "every service writes the epoch when it finds none",
        "summary": f"Written and read by {', '.join(everyone)} (shared.bus.ensure_epoch / read_epoch).",
        "channel": {"$ref": "#/channels/platformEpoch"},
        "messages": [{"$ref": "#/channels/platformEpoch/messages/brokerEpoch"}],
    }
    operations["everyServiceReadsTheEpoch"] = {
        "action": "receive",
        "title": "every service reads the epoch",
        "channel": {"$ref": "#/channels/platformEpoch"},
        "messages": [{"$ref": "#/channels/platformEpoch/messages/brokerEpoch"}],
    }

    return {
        "asyncapi": "3.0.0",
        "id": f"urn:jiesu:events:v{SCHEMA_VERSION}",
        "info": {
            "title": "接诉即办 platform events",
            "version": str(SCHEMA_VERSION),
            "description": "The Kafka topics of the platform: the case lifecycle, the organisation directory, "
            "the broker epoch and each consumer's dead letters. Generated from shared/events.py and the "
            "services' ServiceSpec by `python -m shared.asyncapi`; do not edit by hand.",
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "kafka": {
                "host": "kafka:9092",
                "protocol": "kafka",
                "description": "The platform's broker (KAFKA_BOOTSTRAP_SERVERS).",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def generate() -> str:
    return render(build_document(service_roles()))


def main(argv: list[str]) -> int:
    DOCUMENT.write_text(generate())
    print(f"wrote {DOCUMENT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
