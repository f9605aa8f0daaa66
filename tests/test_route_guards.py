"""Every route of every service says who may call it (issue #9).

A route is guarded when its dependencies include one of the identity checks — a signed-in
actor (``shared.actors.current_actor``) or a signed machine client — and the route then
applies its role and org-scope rules. The few routes that are open on purpose are listed
here with the reason; a new route that is neither fails this test.
"""

from __future__ import annotations

import importlib

import pytest
from fastapi.routing import APIRoute

from services.ops.registry import SERVICES as REGISTRY

GUARDS = {"current_actor", "signed_client", "appeal_reader", "signed_gateway"}

# (service, method, path) → why it is open.
OPEN_ON_PURPOSE = {
    ("*", "GET", "/health"): "liveness probe",
    ("*", "GET", "/ready"): "readiness probe",
    ("*", "GET", "/metrics"): "Prometheus scrape (no personal data; network policy limits who reaches it)",
    ("*", "GET", "/asyncapi.json"): "the event API's contract (AsyncAPI), the same committed file on every service",
    ("intake", "POST", "/api/v1/appeals"): "citizens file appeals (rate-limited per phone and per client)",
    ("intake", "POST", "/api/v1/attachments"): "citizens upload photos before filing (type sniffed, size-limited)",
    ("intake", "GET", "/open311/v2/services.{fmt}"): "Open311 is a public API",
    ("intake", "GET", "/open311/v2/services/{code}.{fmt}"): "Open311 is a public API",
    ("intake", "POST", "/open311/v2/requests.{fmt}"): "Open311 is a public API (same limits as appeals)",
    ("intake", "GET", "/open311/v2/requests.{fmt}"): "Open311 is a public API (personal data masked)",
    ("intake", "GET", "/open311/v2/requests/{request_id}.{fmt}"): "Open311 is a public API (personal data masked)",
    ("intake", "GET", "/open311/v2/tokens/{token}.{fmt}"): "Open311 is a public API",
    ("dispatch", "GET", "/api/v1/public/closed"): "公示: the public list, personal data masked",
    ("notify", "POST", "/api/v1/cases/{case_id}/rating"): "the one-time rating token is the credential",
    ("notify", "GET", "/api/v1/cases/{case_id}/questionnaire"): "the one-time token is the credential",
    ("notify", "POST", "/api/v1/cases/{case_id}/questionnaire"): "the one-time token is the credential",
    # The citizen's page (notify/citizen_api.py): its files are public; the rating link's token and
    # the look-up code sent to the appeal's phone are the credentials (rate-limited per appeal).
    ("notify", "GET", "/citizen/rate"): "the citizen's page (static; no data without the token)",
    ("notify", "GET", "/citizen/lookup"): "the citizen's page (static; no data without a code)",
    ("notify", "GET", "/citizen/static/citizen.js"): "the citizen's page's script",
    ("notify", "GET", "/citizen/static/citizen.css"): "the citizen's page's style",
    ("notify", "GET", "/api/v1/citizen/rating"): "the one-time rating token is the credential",
    ("notify", "POST", "/api/v1/citizen/lookup/code"): "sends a code to the appeal's own phone, nothing shown (rate-limited per appeal)",
    ("notify", "POST", "/api/v1/citizen/lookup"): "the one-time code sent to the appeal's phone is the credential",
    ("directory", "GET", "/api/v1/units"): "the org chart is published",
    ("directory", "GET", "/api/v1/units/{code}"): "the org chart is published",
    ("directory", "GET", "/api/v1/units/{code}/children"): "the org chart is published",
    ("directory", "GET", "/api/v1/catalogue"): "派单目录 is published so citizens know who handles what",
    ("directory", "GET", "/api/v1/resolve"): "派单目录 is published so citizens know who handles what",
}

# Every service that builds its app with shared.service (the ops registry names them).
SERVICES = {name: entry.app for name, entry in REGISTRY.items()}


def api_routes(routes):
    """Every APIRoute, also inside routers FastAPI includes lazily."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from api_routes(route.original_router.routes)


def dependency_names(dependant) -> set[str]:
    names = set()
    for sub in dependant.dependencies:
        names.add(getattr(sub.call, "__name__", repr(sub.call)))
        names |= dependency_names(sub)
    return names


def routes_of(service: str) -> list[tuple[str, str, set[str]]]:
    app = importlib.import_module(SERVICES[service]).create_app()
    return [(method, route.path, dependency_names(route.dependant)) for route in api_routes(app.routes) for method in route.methods]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_route_is_guarded_or_open_on_purpose(service):
    unguarded = [
        f"{method} {path}"
        for method, path, deps in routes_of(service)
        if not deps & GUARDS
        and (service, method, path) not in OPEN_ON_PURPOSE
        and ("*", method, path) not in OPEN_ON_PURPOSE
    ]
    assert unguarded == [], f"{service}: routes nobody guards — add an actor or list them as open on purpose"


def test_the_open_list_names_only_routes_that_exist():
    existing = {(service, method, path) for service in SERVICES for method, path, _ in routes_of(service)}
    stale = [key for key in OPEN_ON_PURPOSE if key[0] != "*" and key not in existing]
    assert stale == []
