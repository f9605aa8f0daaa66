"""shared.tracing without the services: off by default, a batch's traces kept apart, trace ids in the logs."""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared import tracing
from shared.db import UnitOfWork
from shared.events import AcceptedData, CaseAccepted, make_event, system_actor
from shared.logs import configure_logging, get_logger


def accepted(case_id: str, number: int) -> CaseAccepted:
    return make_event(CaseAccepted, case_id=case_id, producer="intake", actor=system_actor("intake"),
                      payload=AcceptedData(tracking_no=f"XC-20261123-{number:06d}", notice="已受理"))  # fmt: skip


def test_without_the_endpoint_a_service_sets_nothing_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(tracing.ENDPOINT_ENV, raising=False)
    off = tracing.Tracing("dispatch")
    assert (off.provider, off.tracer, off.on) == (None, None, False)


def test_with_the_endpoint_a_service_exports_under_its_own_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tracing.ENDPOINT_ENV, "http://127.0.0.1:4318")
    on = tracing.Tracing("sla")
    assert on.on and on.provider.resource.attributes["service.name"] == "sla"


def test_each_event_of_a_batch_continues_its_own_trace_and_the_batch_is_linked() -> None:
    exporter = InMemorySpanExporter()
    with tracing.export_to(exporter):
        producer, consumer = tracing.Tracing("intake"), tracing.Tracing("dispatch")
    first, second = accepted("C-1", 1), accepted("C-2", 2)
    carried = {}
    for event in (first, second):  # each filed by its own request: two traces
        with producer.tracer.start_as_current_span(f"file {event.case_id}"):
            carried[event.id] = tracing.context_of(dict(tracing.headers_of()))
    traces: dict = {}
    with tracing.applying(consumer.tracer, "case-lifecycle", [first, second], carried, traces):
        # What the handler emits in the second event's name travels in the second's trace.
        emitted = make_event(CaseAccepted, producer="dispatch", actor=system_actor("dispatch"), caused_by=second,
                             payload=AcceptedData(tracking_no="XC-20261123-000002", notice="已受理"))  # fmt: skip
        uow = UnitOfWork(None)  # type: ignore[arg-type]  # no session: only its traces are read
        uow.traces = traces
        headers = dict(uow.trace_headers(emitted))

    spans = {s.name: s for s in exporter.get_finished_spans()}
    filed_1, filed_2 = spans["file C-1"], spans["file C-2"]
    applied = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    by_case = {s.attributes["jiesu.case_id"]: s for s in applied}
    assert by_case["C-1"].parent.span_id == filed_1.context.span_id
    assert by_case["C-2"].parent.span_id == filed_2.context.span_id
    assert by_case["C-1"].context.trace_id != by_case["C-2"].context.trace_id
    # The span the handler ran under links the other event's trace, and that one links back.
    assert [link.context.trace_id for link in by_case["C-1"].links] == [filed_2.context.trace_id]
    assert [link.context.span_id for link in by_case["C-2"].links] == [by_case["C-1"].context.span_id]
    _version, trace_id, parent_id, _flags = headers["ce_traceparent"].split("-")
    assert (int(trace_id, 16), int(parent_id, 16)) == (filed_2.context.trace_id, by_case["C-2"].context.span_id)


def test_a_log_line_under_a_span_carries_its_trace_id(capsys: pytest.CaptureFixture[str]) -> None:
    with tracing.export_to(InMemorySpanExporter()):
        service = tracing.Tracing("notify")
    configure_logging("notify")
    log = get_logger("shared.tests.tracing")
    try:
        with service.tracer.start_as_current_span("deliver") as span:
            log.info("under a span")
            logging.getLogger("shared.tests.tracing.stdlib").warning("a standard-library line")
        log.info("outside")
    finally:
        logging.getLogger().handlers = []
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    under = [line for line in lines if line["event"] in ("under a span", "a standard-library line")]
    assert len(under) == 2
    for line in under:
        assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
        assert line["span_id"] == format(span.get_span_context().span_id, "016x")
    [outside] = [line for line in lines if line["event"] == "outside"]
    assert "trace_id" not in outside
