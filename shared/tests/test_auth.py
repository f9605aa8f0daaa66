"""Sign-in: the verifier against the development issuer over real HTTP, and every bad token
a client (or an attacker) can send answered 401 with the right reason."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi import Depends, FastAPI, Request

from services.dev.issuer.app import create_app as create_issuer
from services.dev.issuer.keys import SigningKey, generate
from services.dev.issuer.settings import IssuerSettings
from services.dev.issuer.tokens import claims_for
from shared.actors import ActorDep, actor_headers
from shared.auth import AuthSettings, TokenVerifier, bearer_actor, parse_jwks, reset_auth_cache
from shared.auth import verifier_for as auth_verifier_for
from shared.events import Actor
from shared.orgdata import load_org
from shared.ports import free_port
from shared.problems import install_problem_handlers
from shared.testing import running

ORG = load_org()


class FakeClock:
    """Monotonic seconds for the key cache and the refresh limit, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Issuer:
    def __init__(self, url: str, app: FastAPI, settings: IssuerSettings) -> None:
        self.url = url
        self.app = app
        self.settings = settings

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/.well-known/jwks.json"

    @property
    def key(self) -> SigningKey:
        return self.app.state.keys.current

    async def token(self, user: str) -> str:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as client:
            answer = await client.post("/token", json={"user": user})
        assert answer.status_code == 200, answer.text
        return answer.json()["access_token"]

    def claims(self, user: str = "demo-dept-clerk", **changes: Any) -> dict[str, Any]:
        base = claims_for(ORG.user(user), issuer=self.settings.issuer_url, audience="jiesu", now=int(time.time()), lifetime_seconds=3600)
        base.update(changes)
        return {k: v for k, v in base.items() if v is not None}

    def forge(self, claims: dict[str, Any], *, key: SigningKey | None = None, kid: str | None = "same") -> str:
        """A token signed by ``key`` (default: the issuer's own) with a chosen kid header."""
        key = key or self.key
        headers = {} if kid is None else {"kid": self.key.kid if kid == "same" else kid}
        return jwt.encode(claims, key.private_key, algorithm=key.algorithm, headers=headers)


@contextlib.asynccontextmanager
async def start_issuer(algorithm: str = "ES256") -> AsyncIterator[Issuer]:
    settings = IssuerSettings(port=free_port(), algorithm=algorithm)
    app = create_issuer(settings)
    async with running(app, settings) as service:  # type: ignore[arg-type]  # duck-typed: port + name
        yield Issuer(service.url, app, settings)


@pytest.fixture(scope="module")
async def issuer() -> AsyncIterator[Issuer]:
    async with start_issuer("ES256") as it:
        yield it


def protected_app(verifier: TokenVerifier) -> FastAPI:
    """A tiny service whose one route needs a signed-in actor."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/whoami")
    async def whoami(actor: Actor = Depends(bearer_actor(verifier))) -> dict[str, Any]:
        return actor.model_dump(mode="json")

    return app


def client_for(verifier: TokenVerifier) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=protected_app(verifier)), base_url="http://svc")


def verifier_for(issuer: Issuer, **options: Any) -> TokenVerifier:
    return TokenVerifier(issuer.jwks_url, issuer=issuer.settings.issuer_url, audience="jiesu", **options)


async def whoami(verifier: TokenVerifier, token: str | None, *, scheme: str = "Bearer") -> httpx.Response:
    headers = {"Authorization": f"{scheme} {token}"} if token is not None else {}
    async with client_for(verifier) as client:
        return await client.get("/whoami", headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}.{b64(signature)}"


def hs256_with_public_key(issuer: Issuer, claims: dict[str, Any]) -> str:
    """The RS/HS confusion attack: HMAC with the public key (PEM) as the shared secret."""
    public_pem = issuer.key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": issuer.key.kid}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(public_pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


def assert_refused(response: httpx.Response, token: str | None, reason: str, status: int = 401) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["reason"] == reason, body
    if status == 401:
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith('Bearer realm="jiesu"')
        assert f'error_description="{body["detail"]}"' in challenge
        if reason != "missing_token":
            assert 'error="invalid_token"' in challenge
    if token:
        # Never echo the token (nor its signature part) back.
        assert token not in response.text
        assert all(part not in response.text for part in token.split(".") if len(part) >= 16)
        assert all(token not in value for value in response.headers.values())


# --------------------------------------------------------------------------- good tokens


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
async def test_a_token_from_the_issuer_signs_in_as_its_demo_user(algorithm: str) -> None:
    async with start_issuer(algorithm) as issuer:
        verifier = verifier_for(issuer)
        for user_id in ("demo-dept-clerk", "demo-township-head", "demo-citizen"):
            answer = await whoami(verifier, await issuer.token(user_id))
            user = ORG.user(user_id)
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"id": user.id, "role": user.role.value, "org_unit": user.unit}
        assert verifier.fetches == 1  # the key set was fetched once and then cached


async def test_clock_skew_within_the_leeway_is_accepted(issuer: Issuer) -> None:
    now = int(time.time())
    verifier = verifier_for(issuer, leeway_seconds=30)
    just_expired = issuer.forge(issuer.claims(exp=now - 10))
    from_the_near_future = issuer.forge(issuer.claims(iat=now + 10, nbf=now + 10))
    assert (await whoami(verifier, just_expired)).status_code == 200
    assert (await whoami(verifier, from_the_near_future)).status_code == 200
    too_late = issuer.forge(issuer.claims(exp=now - 60))
    assert_refused(await whoami(verifier, too_late), too_late, "token_expired")


# --------------------------------------------------------------------------- bad tokens


def _other_key() -> SigningKey:
    return generate("ES256")


BAD_TOKENS: dict[str, tuple[Callable[[Issuer], str], str]] = {
    "expired": (lambda i: i.forge(i.claims(iat=int(time.time()) - 7200, nbf=int(time.time()) - 7200, exp=int(time.time()) - 3600)), "token_expired"),
    "not yet valid (nbf)": (lambda i: i.forge(i.claims(nbf=int(time.time()) + 3600)), "token_not_yet_valid"),
    "issued in the future (iat)": (lambda i: i.forge(i.claims(iat=int(time.time()) + 3600, nbf=None)), "token_not_yet_valid"),
    "wrong audience": (lambda i: i.forge(i.claims(aud="another-platform")), "wrong_audience"),
    "wrong issuer": (lambda i: i.forge(i.claims(iss="https://evil.example")), "wrong_issuer"),
    "another key, unknown kid": (lambda i: i.forge(i.claims(), key=_other_key(), kid="not-a-key-of-ours"), "unknown_key"),
    "another key, same kid": (lambda i: i.forge(i.claims(), key=_other_key()), "bad_signature"),
    "payload changed after signing": (
        lambda i: ".".join([(t := i.forge(i.claims())).split(".")[0], b64(json.dumps(i.claims(role="centre_supervisor")).encode()), t.split(".")[2]]),
        "bad_signature",
    ),
    "alg none": (lambda i: unsigned({"alg": "none", "typ": "JWT", "kid": i.key.kid}, i.claims()), "algorithm_not_accepted"),
    "alg None with a signature": (lambda i: unsigned({"alg": "None", "kid": i.key.kid}, i.claims(), b"x"), "algorithm_not_accepted"),
    "HS256 with the public key as secret": (lambda i: hs256_with_public_key(i, i.claims()), "algorithm_not_accepted"),
    "RS256 token naming the ES256 key": (lambda i: i.forge(i.claims(), key=generate("RS256"), kid="same"), "bad_signature"),
    "no exp": (lambda i: i.forge(i.claims(exp=None)), "missing_claim"),
    "no sub": (lambda i: i.forge(i.claims(sub=None)), "missing_claim"),
    "unknown role": (lambda i: i.forge(i.claims(role="superuser")), "unknown_role"),
    "no role": (lambda i: i.forge(i.claims(role=None)), "unknown_role"),
    "three dots of garbage": (lambda i: "abc.def.ghi", "malformed_token"),
    "not a JWT at all": (lambda i: "hello", "malformed_token"),
    "huge": (lambda i: "a" * 9000 + ".b.c", "malformed_token"),
    "non-numeric exp": (lambda i: i.forge(i.claims(exp="tomorrow")), "malformed_token"),
}


@pytest.mark.parametrize("case", list(BAD_TOKENS), ids=list(BAD_TOKENS))
async def test_bad_tokens_are_refused_with_401_and_the_reason(issuer: Issuer, case: str) -> None:
    build, reason = BAD_TOKENS[case]
    token = build(issuer)
    verifier = verifier_for(issuer)
    assert_refused(await whoami(verifier, token), token, reason)


async def test_no_token_or_another_scheme_asks_to_sign_in(issuer: Issuer) -> None:
    verifier = verifier_for(issuer)
    missing = await whoami(verifier, None)
    assert_refused(missing, None, "missing_token")
    assert "Authorization: Bearer" in missing.json()["detail"]
    basic = await whoami(verifier, base64.b64encode(b"demo:secret").decode(), scheme="Basic")
    assert_refused(basic, None, "missing_token")
    # A client that really holds a good token is not bothered by the refusals before.
    assert (await whoami(verifier, await issuer.token("demo-auditor"))).json()["role"] == "auditor"


async def test_role_system_cannot_sign_in(issuer: Issuer) -> None:
    token = issuer.forge(issuer.claims(role="system"))
    answer = await whoami(verifier_for(issuer), token)
    assert_refused(answer, token, "system_role", status=403)


# --------------------------------------------------------------------------- the key set


async def test_a_rotated_key_is_picked_up_after_a_refresh_and_old_tokens_still_work() -> None:
    clock = FakeClock()
    async with start_issuer() as issuer:
        verifier = verifier_for(issuer, min_refresh_seconds=30, clock=clock)
        old_token = await issuer.token("demo-dept-head")
        old_kid = issuer.key.kid
        assert (await whoami(verifier, old_token)).status_code == 200
        no_kid_before = issuer.forge(issuer.claims(), kid=None)
        assert (await whoami(verifier, no_kid_before)).status_code == 200  # one key: kid not needed

        async with httpx.AsyncClient(base_url=issuer.url) as admin:
            rotated = (await admin.post("/keys/rotate")).json()
        assert rotated["kid"] != old_kid and rotated["published"] == [rotated["kid"], old_kid]
        new_token = await issuer.token("demo-dept-head")
        assert jwt.get_unverified_header(new_token)["kid"] == rotated["kid"]

        # Right after the first fetch the refresh limit holds: the new kid is not known yet.
        assert_refused(await whoami(verifier, new_token), new_token, "unknown_key")
        clock.now += 31
        answer = await whoami(verifier, new_token)
        assert answer.status_code == 200 and answer.json()["id"] == "demo-dept-head"
        assert (await whoami(verifier, old_token)).status_code == 200  # still published
        assert verifier.fetches == 2

        # Two keys now: a token must say which one signed it.
        no_kid = issuer.forge(issuer.claims(), kid=None)
        assert_refused(await whoami(verifier, no_kid), no_kid, "no_key_id")


async def test_a_flood_of_unknown_kids_fetches_the_key_set_at_most_once_per_interval(issuer: Issuer) -> None:
    clock = FakeClock()
    verifier = verifier_for(issuer, min_refresh_seconds=30, clock=clock)
    stranger = _other_key()
    tokens = [issuer.forge(issuer.claims(), key=stranger, kid=f"made-up-{n}") for n in range(40)]
    async with client_for(verifier) as client:
        answers = await asyncio.gather(*(client.get("/whoami", headers={"Authorization": f"Bearer {t}"}) for t in tokens))
        assert {a.json()["reason"] for a in answers} == {"unknown_key"}
        assert verifier.fetches == 1
        clock.now += 10
        more = await asyncio.gather(*(client.get("/whoami", headers={"Authorization": f"Bearer {t}"}) for t in tokens[:10]))
        assert {a.status_code for a in more} == {401} and verifier.fetches == 1
        clock.now += 25  # past the interval: one more fetch for the next unknown kid
        await client.get("/whoami", headers={"Authorization": f"Bearer {tokens[0]}"})
        assert verifier.fetches == 2
        good = await client.get("/whoami", headers={"Authorization": f"Bearer {await issuer.token('demo-ops')}"})
        assert good.status_code == 200 and verifier.fetches == 2


async def test_an_unreachable_identity_provider_answers_503_not_401() -> None:
    dead = f"http://127.0.0.1:{free_port()}/.well-known/jwks.json"
    verifier = TokenVerifier(dead, issuer="http://127.0.0.1", audience="jiesu", timeout_seconds=2)
    answer = await whoami(verifier, "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsifQ.eyJzdWIiOiJ4In0.c2ln")
    assert answer.status_code == 503
    assert answer.json()["type"].endswith("/idp-unavailable") and "Retry-After" in answer.headers


async def test_a_fixed_key_set_document_works_without_fetching(issuer: Issuer) -> None:
    async with httpx.AsyncClient() as client:
        document = (await client.get(issuer.jwks_url)).json()
    verifier = TokenVerifier(document, issuer=issuer.settings.issuer_url, audience="jiesu")
    answer = await whoami(verifier, await issuer.token("demo-grid-worker-cz"))
    assert answer.json() == {"id": "demo-grid-worker-cz", "role": "grid_worker", "org_unit": "LB-XC-CG-CZ-G01"}
    assert verifier.fetches == 0


async def test_symmetric_keys_in_a_key_set_are_never_trusted(issuer: Issuer) -> None:
    secret = b"shared-secret-0123456789abcdef!!"
    document = {"keys": [{"kty": "oct", "kid": "hmac", "k": b64(secret)}, issuer.key.public_jwk()]}
    assert [k.kid for k in parse_jwks(document)] == [issuer.key.kid]
    verifier = TokenVerifier(document, issuer=issuer.settings.issuer_url, audience="jiesu")
    forged = jwt.encode(issuer.claims(), secret, algorithm="HS256", headers={"kid": "hmac"})
    assert_refused(await whoami(verifier, forged), forged, "algorithm_not_accepted")
    with pytest.raises(ValueError, match="no usable signature key"):
        TokenVerifier({"keys": [{"kty": "oct", "k": b64(secret)}]}, issuer="x", audience="jiesu")


# --------------------------------------------------------------------------- settings


def test_the_accepted_algorithms_can_never_include_none_or_hmac() -> None:
    for bad in (("none",), ("HS256",), ("RS256", "HS512")):
        with pytest.raises(ValueError, match="not accepted"):
            TokenVerifier({"keys": []}, issuer="x", audience="y", algorithms=bad)
        with pytest.raises(ValueError, match="not accepted"):
            AuthSettings(algorithms=bad)


def test_auth_settings_default_to_headers_and_jwt_mode_needs_an_idp(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AUTH_MODE", "AUTH_JWKS_URL", "AUTH_ISSUER"):
        monkeypatch.delenv(name, raising=False)
    assert AuthSettings().mode == "headers"
    monkeypatch.setenv("AUTH_MODE", "jwt")
    with pytest.raises(ValueError, match="AUTH_JWKS_URL and AUTH_ISSUER"):
        AuthSettings()
    monkeypatch.setenv("AUTH_JWKS_URL", "http://idp.example/jwks.json")
    monkeypatch.setenv("AUTH_ISSUER", "http://idp.example")
    with pytest.raises(ValueError, match="must be https"):
        AuthSettings()
    monkeypatch.setenv("AUTH_JWKS_URL", "https://idp.example/jwks.json")
    monkeypatch.setenv("AUTH_LEEWAY_SECONDS", "45")
    settings = AuthSettings()
    verifier = TokenVerifier.from_settings(settings)
    assert (verifier.jwks_url, verifier.issuer, verifier.audience, verifier.leeway) == (
        "https://idp.example/jwks.json", "http://idp.example", "jiesu", 45,
    )


async def test_the_verifier_for_a_request_is_the_apps_own_else_the_auth_mode(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What shared.actors relies on: app.state.token_verifier wins; else AUTH_MODE decides."""
    own = verifier_for(issuer)

    def app_with(verifier: TokenVerifier | None) -> FastAPI:
        app = FastAPI()
        if verifier is not None:
            app.state.token_verifier = verifier

        @app.get("/which")
        async def which(request: Request) -> dict[str, Any]:
            found = auth_verifier_for(request)
            return {"verifier": None if found is None else ("own" if found is own else found.jwks_url)}

        return app

    async def which(app: FastAPI) -> Any:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
            return (await client.get("/which")).json()["verifier"]

    monkeypatch.setenv("AUTH_MODE", "headers")
    reset_auth_cache()
    try:
        assert await which(app_with(None)) is None
        assert await which(app_with(own)) == "own"
        monkeypatch.setenv("AUTH_MODE", "jwt")
        monkeypatch.setenv("AUTH_JWKS_URL", issuer.jwks_url)
        monkeypatch.setenv("AUTH_ISSUER", issuer.settings.issuer_url)
        reset_auth_cache()
        assert await which(app_with(None)) == issuer.jwks_url
        assert await which(app_with(own)) == "own"
    finally:
        monkeypatch.undo()
        reset_auth_cache()


async def test_the_acting_person_of_every_route_comes_from_the_token_once_sign_in_is_on(issuer: Issuer) -> None:
    """shared.actors.ActorDep (what every service's routes use) with a verifier on the app:
    the token decides, and X-Actor-* headers claiming someone else are ignored."""
    app = FastAPI()
    install_problem_handlers(app)
    app.state.token_verifier = verifier_for(issuer)

    @app.get("/who")
    async def who(actor: ActorDep) -> dict[str, Any]:
        return actor.model_dump(mode="json")

    token = await issuer.token("demo-dept-clerk")
    pretend = actor_headers("boss", "centre_supervisor", "LB-XC-ZZZX")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        signed_in = await client.get("/who", headers={**pretend, "Authorization": f"Bearer {token}"})
        headers_only = await client.get("/who", headers=pretend)
    assert signed_in.status_code == 200
    assert signed_in.json()["id"] == "demo-dept-clerk" and signed_in.json()["role"] == "dept_clerk"
    assert headers_only.status_code == 401, "headers alone are not a sign-in"


def test_headers_mode_serves_loopback_only_unless_a_trial_allows_it() -> None:
    from shared.auth import headers_mode_problem

    headers = AuthSettings(mode="headers")
    assert headers_mode_problem(headers, "127.0.0.1") is None
    assert headers_mode_problem(headers, "::1") is None
    refusal = headers_mode_problem(headers, "0.0.0.0")
    assert refusal and "AUTH_MODE=jwt" in refusal
    assert headers_mode_problem(AuthSettings(mode="headers", allow_headers_remote=True), "0.0.0.0") is None
    jwt = AuthSettings(mode="jwt", jwks_url="https://idp.example/jwks.json", issuer="https://idp.example")
    assert headers_mode_problem(jwt, "0.0.0.0") is None


def test_a_service_bound_beyond_loopback_in_headers_mode_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from intake.app import create_app
    from intake.settings import IntakeSettings
    from shared.settings import load_settings

    monkeypatch.delenv("AUTH_MODE", raising=False)
    with pytest.raises(SystemExit) as stopped:
        create_app(load_settings(IntakeSettings, host="0.0.0.0"))
    assert "AUTH_MODE=headers" in str(stopped.value)
