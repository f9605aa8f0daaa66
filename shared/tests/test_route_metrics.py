"""RED metrics per route on /metrics: a real service (shared.service.build_app, real uvicorn,
real HTTP) answers a few requests, and its /metrics counts them by route template and
status class — never by the raw path, so unknown paths cannot grow the series."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, HTTPException
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from shared.service import ServiceSpec, build_app
from shared.settings import load_settings
from shared.testing import Infra, running, service_settings, unique
from shared.tests.probe import ProbeSettings
from shared.tests.test_ops import PROBE_MIGRATIONS

ORDER = "/api/v1/orders/{order_no}"
KNOWN_ORDERS = {7}


def red_app(settings: ProbeSettings, name: str):
    router = APIRouter(prefix="/api/v1")

    @router.get("/orders/{order_no}")
    async def order(order_no: int) -> dict[str, int]:
        if order_no == 500:
            raise RuntimeError("fails on purpose")  # an unexpected error: the 500 problem answer
        if order_no not in KNOWN_ORDERS:
            raise HTTPException(404, "no such order")
        return {"order_no": order_no}

    spec = ServiceSpec(
        name=name, title="red probe", description="test-only", settings_cls=ProbeSettings, router=router,
        handles=frozenset(), migrations=PROBE_MIGRATIONS,
    )
    return build_app(spec, settings)


async def http_samples(service, name: str) -> dict[tuple[str, frozenset], float]:
    """The jiesu_http_* samples of this service on its /metrics, {(sample, labels): value}."""
    text = (await service.client.get("/metrics")).text
    return {
        (sample.name, frozenset((k, v) for k, v in sample.labels.items() if k != "service")): sample.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("jiesu_http_")
        for sample in family.samples
        if sample.labels.get("service") == name
    }


def key(name: str, route: str, status_class: str, method: str = "GET", **extra: str) -> tuple[str, frozenset]:
    labels = {"method": method, "route": route, "status_class": status_class, **extra}
    return name, frozenset(labels.items())


async def test_requests_and_durations_are_counted_per_route_template_and_status_class(infra: Infra):
    name = unique("red")
    settings = service_settings(ProbeSettings, infra, topic=unique("red"), database=unique("red"))
    async with running(red_app(settings, name), settings) as service:
        client = service.client
        assert (await client.get("/api/v1/orders/7")).status_code == 200
        assert (await client.get("/api/v1/orders/8")).status_code == 404  # the route's own 404
        assert (await client.get("/api/v1/orders/9")).status_code == 404
        assert (await client.get("/api/v1/orders/seven")).status_code == 422
        assert (await client.get("/api/v1/orders/500")).status_code == 500
        assert (await client.get("/api/v1/no-such-thing/12345")).status_code == 404  # no route at all
        assert (await client.get("/wp-login.php")).status_code == 404
        assert (await client.get("/api/v1/orders/7/")).status_code == 307  # trailing-slash redirect
        assert (await client.patch("/api/v1/orders/7")).status_code == 405  # the path matched, the method not

        samples = await http_samples(service, name)
        requests = "jiesu_http_requests_total"
        assert samples[key(requests, ORDER, "2xx")] == 1
        assert samples[key(requests, ORDER, "4xx")] == 3  # two 404s and the 422, one series
        assert samples[key(requests, ORDER, "5xx")] == 1
        assert samples[key(requests, ORDER, "4xx", method="PATCH")] == 1
        # The unknown paths and the redirect share one series; no raw path is a label value.
        assert samples[key(requests, "unmatched", "4xx")] == 2
        assert samples[key(requests, "unmatched", "3xx")] == 1
        routes = {dict(labels)["route"] for _, labels in samples}
        assert routes == {ORDER, "unmatched"}, routes
        assert not any("12345" in v or "seven" in v or "wp-login" in v for _, labels in samples for _, v in labels)

        # The histogram has the same labels; every request is in it, with a plausible duration.
        seconds = "jiesu_http_request_duration_seconds"
        assert samples[key(f"{seconds}_count", ORDER, "4xx")] == 3
        assert samples[key(f"{seconds}_count", ORDER, "5xx")] == 1
        assert 0 < samples[key(f"{seconds}_sum", ORDER, "2xx")] < 5
        assert samples[key(f"{seconds}_bucket", ORDER, "2xx", le="+Inf")] == 1

        # The scrape itself is counted too (under its own template), after it was answered.
        again = await http_samples(service, name)
        assert again[key(requests, "/metrics", "2xx")] == 1


async def test_an_invented_method_is_counted_as_other_not_as_its_own_label():
    # uvicorn's httptools parser refuses unknown methods, its h11 one does not: the label stays bounded either way.
    name = unique("red")
    app = red_app(load_settings(ProbeSettings), name)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        assert (await client.request("BREW", "/api/v1/orders/7")).status_code == 405
    assert REGISTRY.get_sample_value(
        "jiesu_http_requests_total", {"service": name, "method": "other", "route": ORDER, "status_class": "4xx"}
    ) == 1
    assert REGISTRY.get_sample_value(
        "jiesu_http_requests_total", {"service": name, "method": "BREW", "route": ORDER, "status_class": "4xx"}
    ) is None
