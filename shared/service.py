"""One way to build and run every service, so that a reader who knows one knows all.

A service declares a ``ServiceSpec`` (its name, settings class, routes, the event types it
handles and its one batch handler, migrations) and gets: a FastAPI app whose lifespan creates the database if missing,
migrates it, makes sure the topics exist, starts the outbox relay, the consumer and its inbox pruning, and on
shutdown finishes in-flight handlers and flushes the relay; ``/health``, ``/ready`` and
``/metrics`` (with requests, errors and durations per route template); problem+json errors, documented per operation in the OpenAPI; no NUL in a
path, query or form value; JSON logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.asyncapi import DOCUMENT as ASYNCAPI_DOCUMENT
from shared.auth import TokenVerifier, headers_mode_problem, load_auth_settings
from shared.bus import TopicSpec, dlq_topic, ensure_epoch
from shared.consumer import BatchHandler, EventConsumer
from shared.db import UnitOfWork, create_engine, session_factory
from shared.edge import refuse_nul
from shared.events import EventBase
from shared.inbox import InboxPruner
from shared.http import BodyReadTimeout, BodySizeLimit, SecurityHeaders
from shared.logs import configure_logging
from shared.tracing import Tracing
from shared.openapi import install_error_docs
from shared.migrate import ensure_database, migrate
from shared import dumps, metrics
from shared.orgdata import OrgDirectory, load_org
from shared.holidays import HolidayFollower
from shared.orgfollow import OrgFollower
from shared.ops import lag_reasons, load_readiness, measure_group_lag, plumbing_state
from shared.ports import exit_unless_port_free
from shared.outage import DatabaseOutage
from shared.problems import install_problem_handlers
from shared.relay import OutboxRelay
from shared.server import server_config
from shared.settings import ServiceSettings, exit_on_bad_settings

log = logging.getLogger(__name__)


OwnEventsApplier = Callable[[UnitOfWork, list[EventBase]], Awaitable[None]]


@dataclass
class Runtime:
    """What a running service holds; ``app.state.runtime``."""

    settings: ServiceSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    relay: OutboxRelay
    consumer: EventConsumer | None
    # The service's own context (ServiceSpec.context): what its routes, handler and hooks share.
    context: Any = None
    # Set when the service applies its own events inline (ServiceSpec.apply_own_events).
    apply_inline: OwnEventsApplier | None = None
    # Set when the service follows the org directory (ServiceSpec.follow_org).
    org_follower: OrgFollower | None = None
    # Set when the service counts working days (ServiceSpec.follow_holidays).
    holidays: HolidayFollower | None = None
    # Set when the service consumes (it has an inbox to keep bounded; shared.inbox).
    inbox_pruner: InboxPruner | None = None
    # The event types the service may emit (ServiceSpec.publishes); None: unchecked.
    publishes: frozenset[str] | None = None
    # The service's tracing (shared.tracing): off unless OTEL_EXPORTER_OTLP_ENDPOINT is set.
    tracing: Tracing | None = None

    @property
    def org(self) -> OrgDirectory:
        """The newest org directory seen on the topic (the seed file until one arrives)."""
        if self.org_follower is None:
            raise RuntimeError(f"{self.settings.service_name} does not follow the org directory (ServiceSpec.follow_org)")
        return self.org_follower.current

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.sessions, on_commit=self.relay.nudge, on_flush=self.apply_inline, publishes=self.publishes)


Hook = Callable[[Runtime], Awaitable[None]]
# The service's handler, made from its context (so rules read the context's settings and clients).
HandlerFactory = Callable[[Any], BatchHandler]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    title: str
    description: str
    settings_cls: type[ServiceSettings]
    router: APIRouter
    # The event types the consumer applies; the others it skips unread. Empty: no consumer.
    handles: frozenset[str]
    migrations: Path
    on_startup: Hook | None = None
    on_shutdown: Hook | None = None
    extra_routers: tuple[APIRouter, ...] = ()
    # Apply the service's own events in the transaction that writes them — one call per
    # flush with every event written — and skip them (by the ce_source header, unread) when
    # they come back from the topic: read-your-writes for the service's own projection, and
    # one transaction fewer per event. It must give the same result as its handler would.
    apply_own_events: OwnEventsApplier | None = None
    # Paths allowed a larger request body than max_body_bytes (uploads), from the settings.
    body_limits: Callable[[Any], Mapping[str, int]] | None = None
    # Keep a copy of the org directory current from its topic (``Runtime.org``): for the
    # org-scope rules (shared.scope) and whatever else the service derives from it.
    follow_org: bool = False
    # Whether the service counts working days: it then follows the holiday tables the
    # directory publishes (shared.holidays), started before the consumer so the first events
    # already count on them; a context with a ``holidays`` attribute is given the follower.
    follow_holidays: bool = False
    # The service's context: made once from the settings when the app is built, before
    # anything runs (cheap: no I/O; what needs the event loop is opened in on_startup).
    # Routes get it as ``Annotated[TheContext, Depends(service_context)]``, the hooks as
    # ``runtime.context``, the handler from its factory — one way for every service.
    context: Callable[[Any], Any] | None = None
    # Makes the service's one event handler from the context, ``(uow, events)``: applies a
    # batch of events (of the types in ``handles``) to a working set it reads once and
    # writes once; one event is a batch of one (how a failed batch is applied again to find
    # the bad event). Required when ``handles`` is not empty. See shared.consumer.
    batch_handler: HandlerFactory | None = None
    # Per event type, the types of the same case the consumer must have applied first; an
    # event that comes before them (another producer's relay was faster) is held until they
    # are (shared.holding).
    requires: Mapping[str, frozenset[str]] | None = None
    # More for ``/ready``'s checks (shown, never failing readiness): e.g. notify's gateway breakers.
    ready_checks: Callable[[Runtime], Mapping[str, Any]] | None = None
    # The lifecycle event types the service writes to its outbox: the AsyncAPI document's
    # publishers (shared/asyncapi.py); emitting another type is refused (shared.db.UnitOfWork.emit).
    # None (test probes only): unchecked.
    publishes: frozenset[str] | None = None


# Dependencies are ``async def`` on purpose: FastAPI runs plain ``def`` dependencies in a
# thread pool, a thread hop per dependency per request.
async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


async def service_context(request: Request) -> Any:
    """The service's context (ServiceSpec.context); each service's ``ContextDep`` types it."""
    return request.app.state.context


async def new_uow(request: Request) -> UnitOfWork:
    return request.app.state.runtime.uow()


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
# use_cache=False: a route and its dependencies each get their own unit of work.
UowDep = Annotated[UnitOfWork, Depends(new_uow, use_cache=False)]


def topic_specs(settings: ServiceSettings) -> list[TopicSpec]:
    return [
        TopicSpec(settings.kafka_topic, settings.kafka_partitions, settings.kafka_replication_factor),
        TopicSpec(dlq_topic(settings.kafka_topic, settings.service_name), 1, settings.kafka_replication_factor),
    ]


async def _wait_for_broker(settings: ServiceSettings, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            await ensure_epoch(settings.kafka_bootstrap_servers, topic_specs(settings))
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"no Kafka broker at {settings.kafka_bootstrap_servers} after {timeout:.0f}s "
                    f"(set KAFKA_BOOTSTRAP_SERVERS): {exc!r}"
                ) from exc
            log.warning("waiting for the broker at %s: %r", settings.kafka_bootstrap_servers, exc)
            await asyncio.sleep(1)


def context_of(spec: ServiceSpec, settings: ServiceSettings) -> Any:
    """The service's context made from its settings (``ServiceSpec.context``), or None."""
    return spec.context(settings) if spec.context is not None else None


def handler_of(spec: ServiceSpec, context: Any) -> BatchHandler | None:
    """The service's one handler, made from its context (``ServiceSpec.batch_handler``)."""
    return spec.batch_handler(context) if spec.batch_handler is not None else None


def build_app(spec: ServiceSpec, settings: ServiceSettings) -> FastAPI:
    if spec.handles and spec.batch_handler is None:
        raise ValueError(f"{spec.name} handles {len(spec.handles)} event types but has no batch_handler")
    context = context_of(spec, settings)
    handler = handler_of(spec, context)
    tracing = Tracing(spec.name)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(spec.name, settings.log_level, json=settings.log_json)
        url = settings.async_database_url
        await ensure_database(url)
        engine = create_engine(url, pool_size=settings.database_pool_size)
        tracing.instrument_engine(engine)
        # Any new connection (the relay polls the outbox, /ready probes) ends an outage.
        event.listen(engine.sync_engine, "connect", lambda *_: app.state.db_outage.reachable())
        try:
            await migrate(engine, spec.migrations)
            await _wait_for_broker(settings)
            relay = OutboxRelay(
                engine,
                service=spec.name,
                bootstrap_servers=settings.kafka_bootstrap_servers,
                topic=settings.kafka_topic,
                topics=topic_specs(settings),
                batch_size=settings.outbox_batch_size,
                poll_seconds=settings.outbox_poll_seconds,
                retention=timedelta(days=settings.outbox_retention_days),
                epoch_check_seconds=settings.broker_epoch_check_seconds,
            )
            runtime = Runtime(settings, engine, session_factory(engine), relay, None, context, tracing=tracing)
            runtime.apply_inline = spec.apply_own_events
            runtime.publishes = spec.publishes
            if spec.follow_org:
                runtime.org_follower = OrgFollower(
                    settings.kafka_bootstrap_servers, settings.org_topic, initial=load_org(settings.org_file)
                )
                await runtime.org_follower.start()
            if spec.follow_holidays:
                runtime.holidays = HolidayFollower(settings.kafka_bootstrap_servers, settings.holiday_topic)
                if context is not None and hasattr(context, "holidays"):
                    context.holidays = runtime.holidays
                await runtime.holidays.start()
            app.state.runtime = runtime
            relay.start()
            if spec.handles and handler is not None:
                runtime.consumer = EventConsumer(
                    service=spec.name,
                    bootstrap_servers=settings.kafka_bootstrap_servers,
                    topic=settings.kafka_topic,
                    group_id=settings.group_id,
                    handles=frozenset(spec.handles),
                    batch_handler=handler,
                    new_uow=runtime.uow,
                    max_attempts=settings.consumer_max_attempts,
                    backoff_seconds=settings.consumer_backoff_seconds,
                    max_backoff_seconds=settings.consumer_max_backoff_seconds,
                    batch_size=settings.consumer_batch_size,
                    session_timeout_ms=settings.consumer_session_timeout_ms,
                    fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
                    epoch_check_seconds=settings.broker_epoch_check_seconds,
                    skip_producers=frozenset({spec.name}) if spec.apply_own_events is not None else frozenset(),
                    requires=spec.requires,
                    tracer=tracing.tracer,
                )
                await runtime.consumer.start()
                runtime.inbox_pruner = InboxPruner(
                    engine,
                    service=spec.name,
                    retention=settings.inbox_retention,
                    interval_seconds=settings.inbox_prune_seconds,
                    batch=settings.inbox_prune_batch,
                )
                runtime.inbox_pruner.start()
            if spec.on_startup:
                await spec.on_startup(runtime)
            log.info("%s ready on %s:%s", spec.name, settings.host, settings.port)
            yield
            # Shutdown: stop taking new work, finish what is in hand, publish what is committed.
            if spec.on_shutdown:
                await spec.on_shutdown(runtime)
            if runtime.inbox_pruner is not None:
                await runtime.inbox_pruner.stop()
            if runtime.consumer is not None:
                await runtime.consumer.stop(settings.shutdown_grace_seconds)
            await relay.stop(settings.shutdown_grace_seconds)
            if runtime.org_follower is not None:
                await runtime.org_follower.stop()
            if runtime.holidays is not None:
                await runtime.holidays.stop()
        finally:
            await engine.dispose()
            tracing.flush()

    app = FastAPI(
        title=spec.title,
        description=spec.description,
        version="1.0",
        lifespan=lifespan,
        # Before any route's own code: no NUL in a path, query or form value (shared.edge).
        dependencies=[Depends(refuse_nul)],
    )
    tracing.instrument_app(app)
    app.state.spec = spec
    app.state.settings = settings
    app.state.context = context
    # Whether the database is down: one log line per outage, not per request (shared.outage).
    app.state.db_outage = DatabaseOutage(spec.name)
    # /ready thresholds (<SERVICE>_READY_MAX_LAG_SECONDS, …): read now, so a bad value stops the start.
    app.state.readiness = load_readiness(settings)
    # Sign-in settings are read now, so a bad AUTH_* value stops the start instead of
    # failing the first request; None in development (AUTH_MODE=headers).
    auth = load_auth_settings()
    refusal = headers_mode_problem(auth, settings.host)
    if refusal:
        raise SystemExit(f"{spec.name}: {refusal}")
    app.state.token_verifier = TokenVerifier.from_settings(auth) if auth.mode == "jwt" else None
    install_problem_handlers(app)
    install_error_docs(app)
    if settings.cors_origins:
        # Only the configured origins (the console, the mini-program's web view); none by default.
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "If-Match"], max_age=600,
        )
    app.add_middleware(
        BodySizeLimit, max_bytes=settings.max_body_bytes, per_path=spec.body_limits(settings) if spec.body_limits else None
    )
    app.add_middleware(
        BodyReadTimeout, timeout=settings.body_read_timeout_seconds, min_rate=settings.body_min_bytes_per_second
    )
    app.add_middleware(SecurityHeaders)  # added after the guards, so outside them: on their own answers too
    # Outermost: every answer counted and timed per route template, the guards' refusals too.
    app.add_middleware(metrics.RouteMetrics, service=spec.name)
    app.include_router(_ops_router())
    app.include_router(spec.router)
    for router in spec.extra_routers:
        app.include_router(router)
    return app


READY_CHECK_SECONDS = 2.0


async def _bounded(check: Awaitable[Any]) -> Any:
    """``check``'s result, or the exception it raised (a TimeoutError past READY_CHECK_SECONDS)."""
    try:
        return await asyncio.wait_for(check, READY_CHECK_SECONDS)
    except Exception as exc:  # noqa: BLE001 - reported in the probe's answer
        return exc


async def _select_one(engine: Any) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def _nothing() -> None:
    return None


def _ops_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/health", summary="Liveness: the process answers")
    async def health(request: Request) -> dict[str, str]:
        return {"status": "ok", "service": request.app.state.spec.name}

    @router.get("/ready", summary="Readiness: database and broker reachable, lag and backlog under the thresholds")
    async def ready(request: Request) -> JSONResponse:
        runtime: Runtime | None = getattr(request.app.state, "runtime", None)
        limits = request.app.state.readiness
        checks: dict[str, Any] = {}
        reasons: list[str] = []
        ok = runtime is not None
        if runtime is not None:
            # The three round trips at once, each within READY_CHECK_SECONDS: a probe answers
            # within about that, whichever part is slow (a probe that times out says nothing).
            consumer = runtime.consumer
            database, state, broker = await asyncio.gather(
                _bounded(_select_one(runtime.engine)),
                _bounded(plumbing_state(runtime.engine)),
                _bounded(consumer._consumer.topics()) if consumer is not None and consumer._consumer is not None else _nothing(),
            )
            if isinstance(database, BaseException):
                ok = False
                checks["database"] = f"down: {type(database).__name__}"
                reasons.append(f"database down ({type(database).__name__})")
            else:
                checks["database"] = "ok"
            if isinstance(state, BaseException):
                checks["outbox_backlog"] = None
            else:
                checks["outbox_backlog"] = state.outbox_backlog
                checks["outbox_oldest_age_seconds"] = round(state.outbox_oldest_age_seconds, 3)
                checks["dead_letters_parked"] = state.dead_letters_parked
                if state.outbox_oldest_age_seconds > limits.ready_max_outbox_age_seconds:
                    ok = False
                    reasons.append(
                        f"outbox oldest unsent row is {state.outbox_oldest_age_seconds:.0f}s old "
                        f"(more than {limits.ready_max_outbox_age_seconds:g}s)"
                    )
            checks["relay_leader"] = runtime.relay.is_leader
            if consumer is not None:
                checks["consumer"] = "running" if consumer.running else "stopped"
                if consumer.commits_failing_since is not None:
                    # Not a reason to drain the replica: the events are handled; a new owner
                    # of these partitions would fetch them again and its inbox drop them.
                    checks["offset_commits"] = f"failing for {time.time() - consumer.commits_failing_since:.0f}s"
                lag = consumer.lag()
                checks["consumer_lag"] = lag
                # None (null) until every assigned partition's lag is known: a replica just
                # (re)started has not read its committed offsets or high-water marks yet.
                checks["consumer_lag_total"] = consumer.lag_total(lag)
                unknown = sorted(partition for partition, behind in lag.items() if behind is None)
                if not consumer.joined:
                    checks["consumer_lag_unknown"] = "lag unknown yet: waiting for the group to assign partitions"
                elif unknown:
                    checks["consumer_lag_unknown"] = f"lag unknown yet on partitions {unknown}: committed offsets or high-water marks not read yet"
                seconds_behind = max(consumer.lag_seconds(lag).values(), default=0.0)
                checks["consumer_lag_seconds_max"] = round(seconds_behind, 3)
                if not consumer.running:
                    ok = False
                    reasons.append("consumer stopped")
                known = sum(behind for behind in lag.values() if behind is not None)
                behind_reasons = lag_reasons(limits, messages_known=known, seconds_behind=seconds_behind)
                if behind_reasons:
                    ok = False
                    reasons += behind_reasons
                if isinstance(broker, BaseException):
                    ok = False
                    checks["broker"] = f"down: {type(broker).__name__}"
                    reasons.append(f"broker unreachable ({type(broker).__name__})")
                else:
                    checks["broker"] = "ok"
            extra = request.app.state.spec.ready_checks
            if extra is not None:
                checks.update(extra(runtime))
            checks["thresholds"] = {
                "ready_max_lag_seconds": limits.ready_max_lag_seconds,
                "ready_max_lag": limits.ready_max_lag,
                "ready_max_outbox_age_seconds": limits.ready_max_outbox_age_seconds,
            }
        else:
            reasons.append("starting")
        body = {
            "status": "ready" if ok else "not ready",
            "service": request.app.state.spec.name,
            "reasons": reasons,
            "checks": checks,
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    @router.get("/asyncapi.json", summary="The platform's event API (AsyncAPI 3.0): every topic, message, publisher and subscriber")
    async def asyncapi() -> Response:
        # The committed, generated document (shared/asyncapi.py); the same on every service.
        return Response(ASYNCAPI_DOCUMENT.read_bytes(), media_type="application/json")

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics_endpoint(request: Request) -> Response:
        runtime: Runtime | None = getattr(request.app.state, "runtime", None)
        if runtime is not None:
            await refresh_gauges(request.app.state.spec.name, runtime)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


async def refresh_gauges(service: str, runtime: Runtime) -> None:
    """Bring the state gauges up to date for a scrape (each part bounded, none fatal)."""
    with contextlib.suppress(Exception):
        state = await asyncio.wait_for(plumbing_state(runtime.engine), 2)
        metrics.OUTBOX_BACKLOG.labels(service).set(state.outbox_backlog)
        metrics.OUTBOX_OLDEST_UNSENT.labels(service).set(state.outbox_oldest_age_seconds)
        metrics.DEAD_LETTERS_PARKED.labels(service).set(state.dead_letters_parked)
    pool = runtime.engine.pool
    with contextlib.suppress(Exception):
        metrics.DB_POOL_CHECKED_OUT.labels(service).set(pool.checkedout())  # type: ignore[attr-defined]
        metrics.DB_POOL_SIZE.labels(service).set(pool.size() + max(0, getattr(pool, "_max_overflow", 0)))  # type: ignore[attr-defined]
    consumer = runtime.consumer
    if consumer is None:
        return
    if consumer.running:
        consumer._export_lag()
        return
    # A stopped consumer reports nothing itself: measure its group's lag from the broker,
    # which is when the number matters most.
    settings = runtime.settings
    with contextlib.suppress(Exception):
        for part in await asyncio.wait_for(
            measure_group_lag(settings.kafka_bootstrap_servers, settings.kafka_topic, settings.group_id, timeout=3), 5
        ):
            metrics.CONSUMER_LAG.labels(service, settings.kafka_topic, str(part.partition)).set(part.lag)
            metrics.CONSUMER_LAG_SECONDS.labels(service, settings.kafka_topic, str(part.partition)).set(part.lag_seconds)


def serve(spec: ServiceSpec, create_app: Callable[[ServiceSettings], FastAPI]) -> None:
    """``python -m <service>``: settings (fail fast), a clear word on a busy port, uvicorn."""
    from shared.server import Server

    settings = exit_on_bad_settings(spec.settings_cls)
    prefix = spec.settings_cls.model_config.get("env_prefix", "")
    exit_unless_port_free(spec.name, settings.host, settings.port, f"{prefix}PORT")
    configure_logging(spec.name, settings.log_level, json=settings.log_json)
    dumps.install_thread_dump()
    # The slow-client limits live in the protocol and middleware (shared/server.py).
    server = Server(server_config(create_app(settings), settings), on_loop=dumps.install_task_dump)
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it handled
        server.run()
    if not server.started:
        raise SystemExit(3)  # what uvicorn.run does when start-up fails
