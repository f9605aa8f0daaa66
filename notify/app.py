"""Notify service: FastAPI app factory."""

from pathlib import Path

import httpx
from fastapi import FastAPI

from notify.api import router
from notify.batch import make_batch_handler
from notify.citizen_api import router as citizen_router
from notify.breakers import GatewayBreakers
from notify.channels import build_adapters
from notify.handlers import HANDLES, requirements
from notify.sender import Sender
from notify.service import NotifyContext
from notify.settings import NotifySettings
from shared.case_status import router as case_status_router
from shared.service import Runtime, ServiceSpec, build_app
from shared.settings import ServiceSettings, load_settings


async def _start(runtime: Runtime) -> None:
    ctx: NotifyContext = runtime.context
    ctx.org = lambda: runtime.org  # the newest directory at each message (督办 finds its centre there)
    settings = ctx.settings
    ctx.http = httpx.AsyncClient(timeout=httpx.Timeout(settings.http_timeout_seconds, connect=min(5.0, settings.http_timeout_seconds)))
    if runtime.tracing is not None:
        runtime.tracing.instrument_client(ctx.http)  # traceparent on every outbound call (shared.tracing)
    adapters = build_adapters(ctx.http, settings)
    breakers = GatewayBreakers(
        settings.service_name, [name for name in adapters if name != "inbox"],
        failures=settings.breaker_failures, open_seconds=settings.breaker_open_seconds,
    )  # fmt: skip
    ctx.sender = Sender(runtime, ctx, adapters, breakers)
    ctx.sender.start()


def _ready_checks(runtime: Runtime) -> dict[str, object]:
    """Each gateway's breaker in ``/ready``'s checks. An open one does not make notify unready:
    its messages wait in the database, and restarting notify would not bring the gateway back."""
    sender: Sender | None = runtime.context.sender
    return {"gateway_breakers": sender.breakers.snapshot() if sender is not None else {}}


async def _stop(runtime: Runtime) -> None:
    ctx: NotifyContext = runtime.context
    if ctx.sender is not None:
        await ctx.sender.stop()
    if ctx.http is not None:
        await ctx.http.aclose()


SPEC = ServiceSpec(
    name="notify",
    title="接诉即办 · Notify",
    description=(
        "Callbacks (回访) the working day after closure, one-time rating links, questionnaires, messages to "
        "citizens (SMS, WeChat, in-app inbox) and units (new orders, calls, yellow/red cards, urging, 督办), "
        "and status updates back to the 12345 hotline (signed webhook, retried, dead-lettered, re-sendable)."
    ),
    settings_cls=NotifySettings,
    router=router,
    handles=HANDLES,
    publishes=frozenset({"case.callback_completed", "case.rated"}),
    context=NotifyContext.from_settings,
    batch_handler=make_batch_handler,
    requires=requirements(HANDLES),
    migrations=Path(__file__).parent / "migrations" / "versions",
    on_startup=_start,
    on_shutdown=_stop,
    extra_routers=(case_status_router, citizen_router),
    follow_org=True,
    follow_holidays=True,  # counts working days on the tables the directory publishes (shared.holidays)
    ready_checks=_ready_checks,
)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    return build_app(SPEC, settings or load_settings(NotifySettings))
