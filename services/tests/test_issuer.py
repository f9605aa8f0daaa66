"""The development token issuer: tokens for the demo users, its keys, loopback only."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt
import pytest

from services.dev.issuer.app import create_app
from services.dev.issuer.settings import IssuerSettings, bind_problem
from services.dev.launcher import DEMO_APPEALS
from shared.auth import TokenVerifier
from shared.events import Role
from shared.orgdata import load_org
from shared.ports import free_port
from shared.testing import ROOT, ServiceProcess, running

ORG = load_org()


def client_for(settings: IssuerSettings, **kwargs: object) -> httpx.AsyncClient:
    app = create_app(settings, **kwargs)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=settings.issuer_url)


def decode(token: str, jwks: dict, *, audience: str = "jiesu", issuer: str) -> dict:
    [key] = [jwt.PyJWK(k) for k in jwks["keys"] if k["kid"] == jwt.get_unverified_header(token)["kid"]]
    return jwt.decode(token, key.key, algorithms=["ES256", "RS256"], audience=audience, issuer=issuer)


async def test_lists_the_demo_users_by_role() -> None:
    async with client_for(IssuerSettings()) as client:
        body = (await client.get("/users")).json()
    people_roles = {role.value for role in Role if role is not Role.system}
    assert set(body["roles"]) == people_roles  # one demo user (at least) for every role
    assert body["count"] == len(ORG.users)
    clerks = {u["id"]: u for u in body["roles"]["dept_clerk"]}
    assert clerks["demo-dept-clerk"] == {"id": "demo-dept-clerk", "name": "住建局办事员李某", "unit": "LB-XC-ZJJ"}


@pytest.mark.parametrize("user_id", [u.id for u in ORG.users])
async def test_signs_a_token_for_every_demo_user(user_id: str) -> None:
    settings = IssuerSettings(port=8007)
    frozen = int(time.time())
    async with client_for(settings, clock=lambda: frozen) as client:
        answer = await client.post("/token", json={"user": user_id})
        jwks = (await client.get("/.well-known/jwks.json")).json()
    assert answer.status_code == 200, answer.text
    body = answer.json()
    user = ORG.user(user_id)
    assert body["token_type"] == "Bearer" and body["expires_in"] == 8 * 3600
    assert body["user"] == {"id": user.id, "name": user.name, "role": user.role.value, "unit": user.unit}
    claims = decode(body["access_token"], jwks, issuer="http://127.0.0.1:8007")  # signature checked
    assert claims["exp"] == frozen + 8 * 3600  # the default lifetime: a working day
    assert (claims["sub"], claims["role"], claims.get("unit")) == (user.id, user.role.value, user.unit)
    assert (claims["iss"], claims["aud"], claims["iat"], claims["nbf"]) == ("http://127.0.0.1:8007", "jiesu", frozen, frozen)


async def test_a_token_lifetime_can_be_chosen_per_request_and_by_settings() -> None:
    settings = IssuerSettings(token_lifetime_seconds=600, audience="jiesu-test", issuer="https://dev-idp.example/")
    async with client_for(settings) as client:
        default = (await client.post("/token", json={"user": "demo-ops"})).json()
        short = (await client.post("/token", json={"user": "demo-ops", "lifetime_seconds": 5})).json()
        jwks = (await client.get("/.well-known/jwks.json")).json()
        too_long = await client.post("/token", json={"user": "demo-ops", "lifetime_seconds": 8 * 86400})
    claims = decode(default["access_token"], jwks, audience="jiesu-test", issuer="https://dev-idp.example")
    assert default["expires_in"] == 600 and claims["exp"] - claims["iat"] == 600
    assert short["expires_in"] == 5
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["field"] == "lifetime_seconds"


async def test_unknown_users_get_404_problem() -> None:
    async with client_for(IssuerSettings()) as client:
        answer = await client.post("/token", json={"user": "mallory"})
        empty = await client.post("/token", json={"user": ""})
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"].endswith("/unknown-user") and "mallory" in answer.json()["detail"]
    assert empty.status_code == 422


async def test_discovery_points_at_the_keys_and_the_services_verify_its_tokens() -> None:
    """Real HTTP: discovery → jwks_uri → a token verified by shared.auth as a service would."""
    settings = IssuerSettings(port=free_port(), algorithm="RS256")
    app = create_app(settings)
    async with running(app, settings) as issuer, httpx.AsyncClient(base_url=issuer.url) as client:  # type: ignore[arg-type]
        config = (await client.get("/.well-known/openid-configuration")).json()
        assert config["issuer"] == issuer.url and config["id_token_signing_alg_values_supported"] == ["RS256"]
        jwks = (await client.get(config["jwks_uri"])).json()
        assert [k["kty"] for k in jwks["keys"]] == ["RSA"] and jwks["keys"][0]["use"] == "sig"
        assert "d" not in jwks["keys"][0] and "p" not in jwks["keys"][0]  # public halves only
        token = (await client.post(config["token_endpoint"].removeprefix(issuer.url), json={"user": "demo-village-staff"})).json()
        verifier = TokenVerifier(config["jwks_uri"], issuer=config["issuer"], audience="jiesu")
        actor = await verifier.verify(token["access_token"])
    assert (actor.id, actor.role, actor.org_unit) == ("demo-village-staff", Role.village_staff, "LB-WX-TW-JL")


async def test_the_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "issuer.pem"
    first = create_app(IssuerSettings(key_file=key_file, algorithm="RS256")).state.keys.current
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    again = create_app(IssuerSettings(key_file=key_file)).state.keys.current  # the file decides the algorithm
    assert (again.kid, again.algorithm) == (first.kid, "RS256")
    async with client_for(IssuerSettings(key_file=key_file)) as client:
        rotated = (await client.post("/keys/rotate")).json()
        published = [k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]]
    assert published == [rotated["kid"], first.kid]
    assert create_app(IssuerSettings(key_file=key_file)).state.keys.current.kid == rotated["kid"]


def test_only_loopback_unless_explicitly_allowed() -> None:
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert bind_problem(host, allow_remote=False) is None
    for host in ("0.0.0.0", "::", "192.168.1.10", "issuer.example.cn"):
        assert "ISSUER_ALLOW_REMOTE=true" in (bind_problem(host, allow_remote=False) or "")
        assert bind_problem(host, allow_remote=True) is None
    with pytest.raises(ValueError, match="loopback only"):
        IssuerSettings(host="0.0.0.0")
    assert IssuerSettings(host="0.0.0.0", allow_remote=True).host == "0.0.0.0"


@pytest.mark.slow
def test_refuses_to_start_on_all_interfaces_without_the_override() -> None:
    env = {**os.environ, "ISSUER_HOST": "0.0.0.0", "ISSUER_PORT": str(free_port())}
    env.pop("ISSUER_ALLOW_REMOTE", None)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "services.dev.issuer"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "refusing ISSUER_HOST=0.0.0.0" in done.stderr and "ISSUER_ALLOW_REMOTE=true" in done.stderr
    assert "Uvicorn running" not in done.stdout + done.stderr
    assert time.monotonic() - started < 60


@pytest.mark.slow
async def test_runs_as_its_own_process_on_issuer_port(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "ISSUER_PORT": str(port), "ISSUER_KEY_FILE": str(tmp_path / "issuer.pem")}
    process = ServiceProcess("services.dev.issuer", env, port, tmp_path / "issuer.log")
    process.start()
    try:
        await process.wait_ready(30)
        verifier = TokenVerifier(f"{process.url}/.well-known/jwks.json", issuer=process.url, audience="jiesu")
        async with httpx.AsyncClient(base_url=process.url, timeout=5) as client:
            token = (await client.post("/token", json={"user": "demo-centre-dispatcher"})).json()["access_token"]
        actor = await verifier.verify(token)
        assert (actor.id, actor.role, actor.org_unit) == ("demo-centre-dispatcher", Role.centre_dispatcher, "LB-XC-ZZZX")
    finally:
        process.stop()
    assert process.proc is not None and process.proc.returncode is not None
    assert (tmp_path / "issuer.pem").exists()


async def test_every_township_of_a_demo_appeal_has_a_user_who_signs_in_to_verify_it() -> None:
    """核验 is the township's (the streetlamp in 城关镇 is verified by 城关镇): with
    AUTH_MODE=jwt the demo can only close a case if its township has a demo user."""
    townships = {u.code for u in ORG.of_kind("township") for _, appeal in DEMO_APPEALS if u.name in appeal["location"]["address"]}
    assert "LB-XC-CG" in townships  # the streetlamp
    settings = IssuerSettings(port=8007)
    async with client_for(settings) as client:
        jwks = (await client.get("/.well-known/jwks.json")).json()
        for township in sorted(townships):
            staff = [u for u in ORG.users if u.unit == township and u.role in (Role.township_staff, Role.township_head)]
            assert staff, f"no demo user of {ORG.unit(township).name} ({township}) to verify its cases"
            answer = await client.post("/token", json={"user": staff[0].id})
            assert answer.status_code == 200, answer.text
            claims = decode(answer.json()["access_token"], jwks, issuer="http://127.0.0.1:8007")
            assert (claims["role"], claims["unit"]) == (staff[0].role.value, township)
