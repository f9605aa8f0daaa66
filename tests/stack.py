"""The platform in this process for cross-service tests: the services a test asks for on one
fresh topic, each with its own database, notify talking to the development receiver.

``tests/e2e/harness.py`` runs the services as their own processes; this runs them in-process
(``shared.testing.running``), which is what the tests over HTTP and the topic need.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any

from dispatch.app import create_app as create_dispatch
from dispatch.settings import DispatchSettings
from intake.app import create_app as create_intake
from intake.settings import IntakeSettings
from notify.app import create_app as create_notify
from notify.settings import NotifySettings
from notify.tests.conftest import Receiver, serving_receiver
from scoring.app import create_app as create_scoring
from scoring.settings import ScoringSettings
from services.insight.app import create_app as create_insight
from services.insight.settings import InsightSettings
from shared.testing import Infra, RunningService, TopicReader, running, service_settings, unique
from sla.app import create_app as create_sla
from sla.tests.conftest import sla_settings

#: Every service this helper can start, in the order it starts them.
SERVICES = ("intake", "dispatch", "sla", "notify", "scoring", "insight")
#: The lifecycle's services without insight: the default platform.
LIFECYCLE = ("intake", "dispatch", "sla", "notify", "scoring")


def _settings(infra: Infra, topic: str, org_topic: str, receiver: Receiver) -> dict[str, Callable[..., Any]]:
    """Each service's settings on the test's topic and its own database, given its overrides."""
    return {
        "intake": lambda **o: service_settings(IntakeSettings, infra, topic=topic, database=unique("intake"), org_topic=org_topic, **o),
        "dispatch": lambda **o: service_settings(DispatchSettings, infra, topic=topic, database=unique("dispatch"), **o),
        "sla": lambda **o: sla_settings(infra, topic=topic, database=unique("sla"), **o),
        "notify": lambda **o: service_settings(NotifySettings, infra, topic=topic, database=unique("notify"), **{
            "sms_url": f"{receiver.url}/sms", "wechat_url": f"{receiver.url}/wechat",
            "hotline_webhook_url": f"{receiver.url}/hotline", "hotline_client_id": "jiesu-notify",
            "hotline_webhook_secret": "test-webhook-secret", "sender_max_sleep_seconds": 0.05, "test_clock": True, **o,
        }),
        "scoring": lambda **o: service_settings(ScoringSettings, infra, topic=topic, database=unique("scoring"), **o),
        "insight": lambda **o: service_settings(InsightSettings, infra, topic=topic, database=unique("insight"), org_topic=org_topic, **o),
    }  # fmt: skip


_CREATE = {"intake": create_intake, "dispatch": create_dispatch, "sla": create_sla, "notify": create_notify,
           "scoring": create_scoring, "insight": create_insight}  # fmt: skip


@contextlib.asynccontextmanager
async def platform(
    infra: Infra,
    services: tuple[str, ...] = LIFECYCLE,
    *,
    settings: dict[str, dict[str, Any]] | None = None,
    read_topic: bool = False,
) -> AsyncIterator[SimpleNamespace]:
    """Start ``services`` on one fresh topic; stop them all at the end, even on failure.

    ``p.intake`` is intake's HTTP client, ``p.services["intake"]`` the running service, ``p.topic``
    the topic's name, ``p.receiver`` the gateways' and 12345's stand-in.

    ``settings`` overrides a service's settings: ``{"intake": {"hotline_clients": "…"}}``.
    notify's clock can be moved (``test_clock``) unless a test says otherwise. Intake and insight
    follow one organisation topic of their own. ``read_topic`` opens ``p.reader`` on the topic.
    """
    unknown = set(services) - set(SERVICES) | set(settings or {}) - set(services)
    assert not unknown, f"not started here: {sorted(unknown)}"
    topic = unique("lifecycle")
    async with serving_receiver() as receiver, contextlib.AsyncExitStack() as stack:
        make = _settings(infra, topic, unique("org"), receiver)
        started: dict[str, RunningService] = {}
        for name in SERVICES:
            if name in services:
                service_s = make[name](**(settings or {}).get(name, {}))
                started[name] = await stack.enter_async_context(running(_CREATE[name](service_s), service_s))
        reader = await stack.enter_async_context(TopicReader(infra.bootstrap_servers, topic)) if read_topic else None
        clients = {name: service.client for name, service in started.items()}
        yield SimpleNamespace(**clients, services=started, topic=topic, receiver=receiver, reader=reader)
