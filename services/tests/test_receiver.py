"""The development receiver: stores what it gets, shows it, fails on request."""

import os
import subprocess
import sys

import httpx
import pytest

from services.dev.receiver.app import create_app
from shared.ports import free_port
from shared.testing import ROOT, ServiceProcess


@pytest.fixture
async def client():
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as c:
        yield c


async def test_stores_posts_on_any_path_and_filters_them(client: httpx.AsyncClient) -> None:
    sms = await client.post("/sms", json={"to": "13800001111", "text": "您的诉求已受理"})
    assert sms.status_code == 200 and sms.json()["ok"] is True
    await client.post("/hotline?v=1", content=b'{"status":"accepted"}',
                      headers={"Idempotency-Key": "ev-1", "Content-Type": "application/json", "X-Other": "dropped"})  # fmt: skip
    everything = (await client.get("/messages")).json()
    assert everything["count"] == 2
    [hook] = (await client.get("/messages", params={"path": "/hotline"})).json()["items"]
    assert hook["target"] == "/hotline?v=1" and hook["json"] == {"status": "accepted"}
    assert hook["headers"]["idempotency-key"] == "ev-1" and "x-other" not in hook["headers"]
    assert (await client.get("/messages", params={"header": "idempotency-key=ev-1"})).json()["count"] == 1
    assert (await client.get("/messages", params={"contains": "受理"})).json()["items"][0]["path"] == "/sms"
    assert (await client.delete("/messages")).json() == {"cleared": 2}
    assert (await client.get("/messages")).json()["count"] == 0


async def test_fails_the_next_n_requests_on_a_path(client: httpx.AsyncClient) -> None:
    assert (await client.post("/fail", params={"count": 2, "path": "/hotline"})).status_code == 200
    assert (await client.post("/sms", json={})).status_code == 200  # another path is not affected
    codes = [(await client.post("/hotline", json={"n": n})).status_code for n in range(3)]
    assert codes == [503, 503, 200]
    assert (await client.get("/messages", params={"path": "/hotline"})).json()["count"] == 1
    assert (await client.get("/messages", params={"path": "/hotline", "include_failed": True})).json()["count"] == 3
    await client.post("/fail", params={"count": 1, "status": 500})
    assert (await client.post("/wechat", json={})).status_code == 500


@pytest.mark.slow
async def test_runs_as_its_own_process_on_receiver_port(tmp_path) -> None:
    port = free_port()
    env = {**os.environ, "RECEIVER_PORT": str(port)}
    process = ServiceProcess("services.dev.receiver", env, port, tmp_path / "receiver.log")
    process.start()
    try:
        await process.wait_ready(30)
        async with httpx.AsyncClient(base_url=process.url, timeout=5) as c:
            assert (await c.post("/sms", json={"text": "hi"})).status_code == 200
            assert (await c.get("/messages")).json()["items"][0]["json"] == {"text": "hi"}
    finally:
        process.stop()
    assert process.proc is not None and process.proc.returncode is not None


def test_in_headers_mode_it_refuses_to_listen_beyond_loopback() -> None:
    """It shows what notify sent citizens to anyone who asks: in headers mode (development)
    it listens on loopback only, as the services do (issue #20)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_")}
    env.update(RECEIVER_HOST="0.0.0.0", RECEIVER_PORT=str(free_port()))
    done = subprocess.run([sys.executable, "-m", "services.dev.receiver"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "AUTH_MODE=headers" in done.stderr and "0.0.0.0" in done.stderr
