"""One trace per appeal: OpenTelemetry, set up in one place for every service.

Switched on by ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the standard OpenTelemetry variable; the
other ``OTEL_EXPORTER_OTLP_*`` and ``OTEL_TRACES_SAMPLER*`` variables are read by the SDK as
usual). Unset, nothing is set up: no provider, no instrumentation, no headers written, and
every helper here returns at its first line — tracing switched off costs nothing.

How a trace crosses the platform:
- the filing request's span (FastAPI instrumentation) is the root; its W3C ``traceparent``
  is written with the event into the outbox (the row's ``headers``, as the CloudEvents
  distributed-tracing extension ``ce_traceparent``/``ce_tracestate``, Kafka binary mode);
- the relay publishes the row's headers as they are: the context crosses the relay and the
  broker unchanged. (A PRODUCER span per row was tried: at about 50 µs of CPU a span, three
  events an appeal cost a third of intake's rate; BENCHMARKS.md, the tracing phase);
- each consumer applies every new event under a CONSUMER span, child of the producer's
  context; a batch's events each keep their own trace, the span the handler runs under
  links the others (``applying``);
- an event a handler emits carries the span of the event that caused it (its
  ``causation_id``), else the current one; notify stores the context with each message it
  queues and sends under it, and the httpx instrumentation puts ``traceparent`` on the call.

Each service gets its own ``TracerProvider`` (not the global one), so services run in one
process (the tests, the development launcher) still report under their own names.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.metrics import ResponseStatus

if TYPE_CHECKING:
    from fastapi import FastAPI
    from httpx import AsyncClient
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from sqlalchemy.ext.asyncio import AsyncEngine

ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
# The CloudEvents distributed-tracing extension in the Kafka binding's binary mode.
CE_PREFIX = "ce_"
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

_W3C = TraceContextTextMapPropagator()
_active = False  # some service of this process traces: the helpers below do their work
_exporter: SpanExporter | None = None  # export_to(): tests and the bench, instead of OTLP


def active() -> bool:
    return _active


def wanted() -> bool:
    """Whether services set up now trace: the endpoint is set, or an exporter was given."""
    return _exporter is not None or bool(os.environ.get(ENDPOINT_ENV))


@contextlib.contextmanager
def export_to(exporter: SpanExporter) -> Iterator[None]:
    """Services set up inside the block export their spans to ``exporter`` (for instance the
    SDK's ``InMemorySpanExporter``) synchronously, whatever the environment says."""
    global _exporter
    previous, _exporter = _exporter, exporter
    try:
        yield
    finally:
        _exporter = previous


class Tracing:
    """A service's tracing: its provider and tracer, or nothing at all when switched off."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.provider: TracerProvider | None = None
        self.tracer: trace.Tracer | None = None
        if not wanted():
            return
        global _active
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        self.provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
        if _exporter is not None:
            self.provider.add_span_processor(SimpleSpanProcessor(_exporter))
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            # Batched off the request path; the exporter reads OTEL_EXPORTER_OTLP_* itself.
            self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self.tracer = self.provider.get_tracer(f"jiesu.{service}")
        _active = True

    @property
    def on(self) -> bool:
        return self.provider is not None

    def instrument_app(self, app: FastAPI) -> None:
        """A SERVER span per request (``ServerSpans``), continuing the caller's ``traceparent``."""
        if self.tracer is None:
            return
        app.add_middleware(ServerSpans, tracer=self.tracer)

    def instrument_engine(self, engine: AsyncEngine) -> None:
        if self.provider is None:
            return
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
        from opentelemetry.metrics import NoOpMeterProvider

        # Per engine, with this service's provider: the instrumentor's instrument() patches
        # create_engine process-wide, once, for one provider.
        usage = NoOpMeterProvider().get_meter(__name__).create_up_down_counter("db.client.connections.usage")
        EngineTracer(self.provider.get_tracer("opentelemetry.instrumentation.sqlalchemy"), engine.sync_engine, usage)

    def instrument_client(self, client: AsyncClient) -> None:
        if self.provider is None:
            return
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=self.provider)

    def flush(self, timeout_millis: int = 5000) -> None:
        """Export what the batch processor still holds (at a service's stop; the provider
        shuts down at exit, so an app started again in the same process still traces)."""
        if self.provider is not None:
            self.provider.force_flush(timeout_millis)


# Probes and scrapes are not appeals: no trace for them.
UNTRACED_PATHS = frozenset({"/health", "/ready", "/metrics"})


class ServerSpans:
    """ASGI middleware: a SERVER span per HTTP request, named by its route template.

    In place of opentelemetry-instrumentation-fastapi, whose middleware cost intake about
    170 µs of CPU per request (115 µs of it even for a request not sampled: it reads and
    sets a few dozen attributes and records metrics), a third of intake's CPU per appeal;
    this one costs the span itself (BENCHMARKS.md, the tracing phase). It keeps what a trace
    needs: the W3C context of the caller, method, route template, status, exceptions.
    """

    def __init__(self, app: Any, tracer: trace.Tracer) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in UNTRACED_PATHS:
            await self.app(scope, receive, send)
            return
        carrier = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
                   if name in (b"traceparent", b"tracestate")}  # fmt: skip
        method = scope["method"]
        span = self.tracer.start_span(
            method, context=_W3C.extract(carrier) if carrier else None, kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"]},
        )  # fmt: skip
        token = otel_context.attach(trace.set_span_in_context(span))
        noted = ResponseStatus(send)
        try:
            await self.app(scope, receive, noted)
        except BaseException as exc:
            span.record_exception(exc)
            raise
        finally:
            route = getattr(scope.get("route"), "path", None)
            if route:
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", noted.status)
            if noted.status >= 500:
                span.set_status(trace.Status(trace.StatusCode.ERROR))
            otel_context.detach(token)
            span.end()


# -- the context on events and rows ------------------------------------------------------


def headers_of(ctx: Context | None = None) -> list[tuple[str, str]]:
    """The ``ce_traceparent``/``ce_tracestate`` headers of ``ctx`` (default: the current
    context); none when tracing is off or no span is recording."""
    if not _active:
        return []
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context=ctx)
    return [(CE_PREFIX + name, value) for name, value in carrier.items()]


def context_of(attrs: Mapping[str, str]) -> Context | None:
    """The producer's context from a record's decoded headers (``ce_traceparent``…)."""
    if not _active:
        return None
    parent = attrs.get(CE_PREFIX + TRACEPARENT)
    if not parent:
        return None
    carrier = {TRACEPARENT: parent}
    if state := attrs.get(CE_PREFIX + TRACESTATE):
        carrier[TRACESTATE] = state
    return _W3C.extract(carrier)


def traceparent_of(ctx: Context | None) -> str | None:
    """The bare W3C ``traceparent`` of ``ctx`` (to store with a row sent later), or None."""
    if not _active or ctx is None:
        return None
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context=ctx)
    return carrier.get(TRACEPARENT)


def from_traceparent(value: str | None) -> Context | None:
    if not _active or not value:
        return None
    return _W3C.extract({TRACEPARENT: value})


# -- spans ---------------------------------------------------------------------------------


@contextlib.contextmanager
def sending(tracer: trace.Tracer | None, name: str, parent: Context | None, **attributes: Any) -> Iterator[Context | None]:
    """A span (current inside the block) for one piece of work done later on behalf of the
    trace ``parent`` (a notify delivery); yields its context. Without a tracer or a parent,
    nothing."""
    if tracer is None or parent is None:
        yield None
        return
    kind = attributes.pop("kind", trace.SpanKind.PRODUCER)
    with tracer.start_as_current_span(name, context=parent, kind=kind, attributes=attributes) as span:
        yield trace.set_span_in_context(span)


@contextlib.contextmanager
def applying(
    tracer: trace.Tracer | None, topic: str, events: list[Any], carried: Mapping[Any, Context], traces: dict[Any, Context]
) -> Iterator[None]:
    """A CONSUMER span per event applied, child of its producer's context (``carried``, by
    event id). The first is current while the handler runs (database spans go under it) and
    links the others; each other event's span, in its own trace, links back to it. Each
    event's span context goes into ``traces`` (the unit of work's), so what the handler emits
    in its name continues its trace."""
    if tracer is None or not events:
        yield
        return
    first, *others = events
    first_parent = carried.get(first.id)
    links = [trace.Link(trace.get_current_span(c).get_span_context()) for e in others if (c := carried.get(e.id))]
    span = tracer.start_span(f"process {first.type}", context=first_parent, kind=trace.SpanKind.CONSUMER,
                             links=links, attributes=_event_attributes(topic, first, len(events)))  # fmt: skip
    link_back = [trace.Link(span.get_span_context())]
    spans = [span]
    traces[first.id] = trace.set_span_in_context(span)
    for event in others:
        other = tracer.start_span(f"process {event.type}", context=carried.get(event.id), kind=trace.SpanKind.CONSUMER,
                                  links=link_back, attributes=_event_attributes(topic, event, len(events)))  # fmt: skip
        spans.append(other)
        traces[event.id] = trace.set_span_in_context(other)
    token = otel_context.attach(traces[first.id])
    try:
        yield
    except BaseException as exc:
        for s in spans:
            s.record_exception(exc)
            s.set_status(trace.Status(trace.StatusCode.ERROR, type(exc).__name__))
        raise
    finally:
        otel_context.detach(token)
        for s in spans:
            s.end()


def _event_attributes(topic: str, event: Any, batch: int) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        "messaging.operation.type": "process",
        "messaging.message.id": str(event.id),
        "cloudevents.event_type": event.type,
        "messaging.batch.message_count": batch,
    }
    if event.case_id:
        attributes["jiesu.case_id"] = event.case_id
    return attributes


def log_ids(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: ``trace_id`` and ``span_id`` on every line written under a span."""
    if not _active:
        return event_dict
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict.setdefault("trace_id", format(ctx.trace_id, "032x"))
        event_dict.setdefault("span_id", format(ctx.span_id, "016x"))
    return event_dict

