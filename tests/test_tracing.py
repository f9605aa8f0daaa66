"""One trace per appeal, through the running services (shared.tracing).

Intake, dispatch, SLA and notify run in this process with the development receiver standing
in for the gateways and 12345; every service exports to one ``InMemorySpanExporter``. An
appeal filed by ``POST /api/v1/appeals`` is followed from the request through intake's
relay to each consumer and out of notify to the WeChat gateway; a 12345 ticket (the only
kind of case whose status goes back to 12345: the hotline channel is filed by 12345's signed
push, never by ``POST /api/v1/appeals``) is followed from the push to the 12345 webhook.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from types import SimpleNamespace

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from intake.app import create_app as create_intake
from intake.settings import IntakeSettings
from shared import tracing
from shared.signing import signature_headers
from shared.testing import Infra, eventually, running, service_settings, unique
from tests.stack import platform

HOTLINE_SECRET = "trace-hotline-secret"
PUSH = "/api/v1/hotline/tickets"
APPEAL = {
    "title": "城东路路灯一排不亮", "description": "城关镇城东社区城东路一排路灯晚上一直不亮，已经三天了。",
    "channel": "wechat", "citizen_ref": "wx-openid-trace-1", "contact": {"name": "韦某", "phone": "13800002222"},
    "location": {"address": "忻城县城关镇城东社区城东路12号"},
}  # fmt: skip
TICKET = {"title": "城西社区路灯不亮", "description": "城关镇城西社区文化广场旁的路灯坏了一周", "caller_name": "李先生",
          "caller_phone": "13700000101", "address": "忻城县城关镇城西社区"}  # fmt: skip


@contextlib.asynccontextmanager
async def traced_platform(infra: Infra) -> AsyncIterator[SimpleNamespace]:
    """Intake, dispatch, SLA and notify exporting every span to one ``p.exporter``."""
    exporter = InMemorySpanExporter()
    hotline = {"hotline_clients": f"hotline12345:{HOTLINE_SECRET}"}
    with tracing.export_to(exporter):
        async with platform(infra, ("intake", "dispatch", "sla", "notify"), settings={"intake": hotline, "notify": {"test_clock": False}}) as p:
            p.exporter = exporter
            yield p


def service_of(span: ReadableSpan) -> str:
    return str(span.resource.attributes["service.name"])


def trace_of(exporter: InMemorySpanExporter, trace_id: int) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]


def parent_of(span: ReadableSpan, spans: list[ReadableSpan]) -> ReadableSpan:
    """The span's parent, which must be in the trace (nothing of it lost on the way)."""
    assert span.parent is not None, f"{span.name} of {service_of(span)} is a root"
    [parent] = [s for s in spans if s.context.span_id == span.parent.span_id]
    return parent


def chain(span: ReadableSpan, spans: list[ReadableSpan]) -> list[str]:
    """``service:span name`` from the root down to ``span``."""
    names = [f"{service_of(span)}:{span.name}"]
    while span.parent is not None:
        span = parent_of(span, spans)
        names.append(f"{service_of(span)}:{span.name}")
    return names[::-1]


def receiver_traceparent(message: dict) -> tuple[int, int]:
    """(trace id, parent span id) of the traceparent the receiver was called with."""
    _version, trace_id, span_id, _flags = message["headers"]["traceparent"].split("-")
    return int(trace_id, 16), int(span_id, 16)


async def test_an_appeal_filed_by_post_is_one_trace_to_the_wechat_gateway(infra: Infra) -> None:
    async with traced_platform(infra) as p:
        created = await p.intake.post("/api/v1/appeals", json=APPEAL)
        assert created.status_code == 201, created.text
        case_id, tracking_no = created.json()["case_id"], created.json()["tracking_no"]
        [root] = [s for s in p.exporter.get_finished_spans()
                  if s.kind == SpanKind.SERVER and s.attributes.get("http.route") == "/api/v1/appeals"]  # fmt: skip
        assert root.parent is None and service_of(root) == "intake"

        # The WeChat message about the case reached the gateway carrying the filing's trace.
        wechat = await eventually(lambda: p.receiver.messages(path="/wechat", contains=tracking_no), what="the WeChat message")
        call_trace, call_parent = receiver_traceparent(wechat[0])
        assert call_trace == root.context.trace_id

        def consumed_by(service: str) -> list[ReadableSpan]:
            return [s for s in trace_of(p.exporter, root.context.trace_id)
                    if s.kind == SpanKind.CONSUMER and service_of(s) == service]  # fmt: skip

        async def consumed_by_all() -> bool:
            return all(consumed_by(service) for service in ("dispatch", "sla", "notify"))

        await eventually(consumed_by_all, what="dispatch's, sla's and notify's spans in the trace")
        spans = trace_of(p.exporter, root.context.trace_id)

        # Each consumer's span of case.received is a child of the filing request: its context
        # crossed intake's outbox, relay and the topic.
        for service in ("dispatch", "sla", "notify"):
            received = [s for s in consumed_by(service) if s.name == "process case.received"]
            assert received, [s.name for s in consumed_by(service)]
            assert chain(received[0], spans) == ["intake:POST /api/v1/appeals", f"{service}:process case.received"]  # fmt: skip
            assert received[0].attributes["jiesu.case_id"] == case_id

        # What dispatch emitted on triage (case.dispatched) continues the trace through
        # dispatch's relay; notify's delivery of the WeChat message is the call's parent.
        async def notify_had_it_dispatched() -> list[ReadableSpan]:
            return [s for s in consumed_by("notify") if s.name == "process case.dispatched"]

        dispatched = await eventually(notify_had_it_dispatched, what="notify's span of case.dispatched")
        spans = trace_of(p.exporter, root.context.trace_id)
        assert chain(dispatched[0], spans) == [
            "intake:POST /api/v1/appeals", "dispatch:process case.triaged", "notify:process case.dispatched",
        ]  # fmt: skip
        async def the_call() -> list[ReadableSpan]:
            return [s for s in trace_of(p.exporter, root.context.trace_id) if s.context.span_id == call_parent]

        [call] = await eventually(the_call, what="notify's call span")
        assert (service_of(call), call.kind) == ("notify", SpanKind.CLIENT)
        path = chain(call, trace_of(p.exporter, root.context.trace_id))
        assert path[0] == "intake:POST /api/v1/appeals" and path[-2].startswith("notify:deliver citizen."), path


async def test_a_12345_ticket_is_one_trace_to_the_12345_webhook(infra: Infra) -> None:
    async with traced_platform(infra) as p:
        number = unique("T")
        body = json.dumps({"tickets": [{**TICKET, "ticket_no": number}]}, ensure_ascii=False).encode()
        headers = {**signature_headers("hotline12345", HOTLINE_SECRET.encode(), method="POST", path=PUSH, body=body),
                   "content-type": "application/json"}  # fmt: skip
        pushed = await p.intake.post(PUSH, content=body, headers=headers)
        assert pushed.status_code == 200, pushed.text
        [root] = [s for s in p.exporter.get_finished_spans() if s.kind == SpanKind.SERVER and s.attributes.get("http.route") == PUSH]

        async def webhooks() -> dict[str, dict]:
            found = {m["json"]["event_type"]: m for m in await p.receiver.messages(path="/hotline", contains=number)}
            return found if "case.dispatched" in found else {}

        told = await eventually(webhooks, what="12345 told of the dispatch")
        spans = trace_of(p.exporter, root.context.trace_id)
        for event_type, webhook in told.items():
            call_trace, call_parent = receiver_traceparent(webhook)
            assert call_trace == root.context.trace_id, event_type
            [call] = [s for s in spans if s.context.span_id == call_parent]
            path = chain(call, spans)
            assert path[0] == "intake:POST /api/v1/hotline/tickets", path
            assert path[-2:] == ["notify:deliver hotline.status", "notify:POST"], path
        assert chain(next(s for s in spans if s.context.span_id == receiver_traceparent(told["case.dispatched"])[1]), spans) == [
            "intake:POST /api/v1/hotline/tickets", "dispatch:process case.triaged", "notify:process case.dispatched",
            "notify:deliver hotline.status", "notify:POST",
        ]  # fmt: skip
        # SLA's clocks started in the same trace.
        assert [s for s in spans if service_of(s) == "sla" and s.name == "process case.received"]


async def test_off_without_the_endpoint_no_trace_travels(infra: Infra, monkeypatch) -> None:
    """Without OTEL_EXPORTER_OTLP_ENDPOINT nothing is set up: no provider, no trace headers in the outbox."""
    monkeypatch.delenv(tracing.ENDPOINT_ENV, raising=False)
    settings = service_settings(IntakeSettings, infra, topic=unique("lifecycle"), database=unique("intake"), org_topic=unique("org"))
    async with running(create_intake(settings), settings) as intake:
        assert intake.runtime.tracing is not None and intake.runtime.tracing.provider is None
        created = await intake.client.post("/api/v1/appeals", json={**APPEAL, "citizen_ref": None})
        assert created.status_code == 201, created.text
        async with intake.runtime.engine.connect() as conn:
            from sqlalchemy import select

            from shared.db import outbox

            rows = (await conn.execute(select(outbox.c.headers))).scalars().all()
        assert rows and not [name for headers in rows for name, _ in headers if name.startswith("ce_trace")]
