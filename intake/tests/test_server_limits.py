"""The server's limits, over real sockets against a running intake (the service citizens'
apps and the 12345 hotline post to): a body over the limit is 413 however it is sent, and
a slow client — headers or body dripped a byte at a time — is cut off, never held for ever.

Every service is served the same way (shared/server.py, shared/http.py); intake stands for
them here because it is the one facing the public, with a per-path limit for uploads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import pytest

from intake.app import create_app
from intake.settings import IntakeSettings
from shared.testing import Infra, running, service_settings, unique

LIMIT = 200_000
HEAD_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
MIN_RATE = 1_000  # bytes per second

APPEAL = {
    "title": "村口路灯不亮",
    "description": "忻城县城关镇城中社区村口的路灯坏了，晚上很黑。",
    "channel": "app",
    "contact": {"name": "韦先生", "phone": "13812348800"},
    "location": {"address": "忻城县城关镇城中社区西宁街"},
}


@pytest.fixture(scope="module")
async def intake(infra: Infra, tmp_path_factory):
    settings = service_settings(
        IntakeSettings, infra, topic=unique("lifecycle"), database=unique("intake"),
        max_body_bytes=LIMIT,
        attachment_dir=tmp_path_factory.mktemp("attachments"),
        attachment_max_bytes=300_000,
        org_topic=unique("org"),
        header_read_timeout_seconds=HEAD_TIMEOUT,
        body_read_timeout_seconds=BODY_TIMEOUT,
        body_min_bytes_per_second=MIN_RATE,
    )
    async with running(create_app(settings), settings) as service:
        yield service


async def _chunks(total: int, size: int = 16_384):
    yield b'{"title": "' + b"x" * 10
    sent = 0
    while sent < total:
        yield b"x" * size
        sent += size
    yield b'"}'


async def _photo_upload(total: int, size: int = 16_384):
    yield b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
    yield b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
    sent = 0
    while sent < total:
        yield bytes(size)
        sent += size
    yield b"\r\n--xyz--\r\n"


async def _read_response(reader: asyncio.StreamReader, within: float) -> bytes:
    """One HTTP response (head and Content-Length body), or fail after ``within`` s."""

    async def read() -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        )
        return head + await reader.readexactly(length)

    try:
        return await asyncio.wait_for(read(), within)
    except TimeoutError:
        raise AssertionError(f"no answer after {within} s: the server still waits for the client") from None


async def _read_answer(reader: asyncio.StreamReader, within: float) -> bytes:
    """Everything the server sends until it closes the connection, or fail after ``within`` s."""
    try:
        return await asyncio.wait_for(reader.read(), within)
    except TimeoutError:
        raise AssertionError(f"the server still held the connection after {within} s") from None


def _status_and_body(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


async def test_an_oversized_chunked_body_is_413_like_a_declared_one(intake):
    # No Content-Length: the body streams (Transfer-Encoding: chunked) and is counted as it comes.
    streamed = await intake.client.post(
        "/api/v1/appeals", content=_chunks(LIMIT + 50_000), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413, streamed.text
    assert streamed.headers["content-type"] == "application/problem+json"
    assert streamed.headers["x-content-type-options"] == "nosniff" and streamed.headers["cache-control"] == "no-store"
    assert streamed.json()["detail"] == f"request body over {LIMIT} bytes"

    declared = await intake.client.post(
        "/api/v1/appeals", content=b"{" + b" " * (LIMIT + 50_000) + b"}", headers={"content-type": "application/json"}
    )
    assert declared.status_code == 413 and declared.json()["detail"] == streamed.json()["detail"]

    # The upload path has its own, larger limit, streamed or not (multipart parsing reads the body too).
    upload_limit = intake.settings.attachment_max_bytes + 64 * 1024
    multipart = await intake.client.post(
        "/api/v1/attachments", content=_photo_upload(upload_limit + 10_000),
        headers={"content-type": "multipart/form-data; boundary=xyz"},
    )
    assert multipart.status_code == 413, multipart.text
    assert multipart.json()["detail"] == f"request body over {upload_limit} bytes"

    # Under the limit, a chunked body is read as any other.
    filed = await intake.client.post(
        "/api/v1/appeals", content=_one_chunk(json.dumps(APPEAL).encode()), headers={"content-type": "application/json"}
    )
    assert filed.status_code == 201, filed.text


async def _one_chunk(data: bytes):
    yield data


async def test_headers_sent_a_byte_at_a_time_are_cut_off(intake):
    reader, writer = await asyncio.open_connection("127.0.0.1", intake.settings.port)
    started = time.monotonic()
    try:
        writer.write(b"POST /api/v1/appeals HTTP/1.1\r\nHost: x\r\n")
        await writer.drain()

        async def drip() -> None:  # a header that never ends, one byte each 0.1 s
            with contextlib.suppress(ConnectionError):  # until the server hangs up
                for byte in b"X-Slow: " + b"a" * 1_000:
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(0.1)

        dripping = asyncio.create_task(drip())
        answer = await _read_answer(reader, HEAD_TIMEOUT + 4)
        dripping.cancel()
        waited = time.monotonic() - started
    finally:
        writer.close()
    status, headers, body = _status_and_body(answer)
    assert status == 408
    assert headers["connection"] == "close"
    assert json.loads(body)["type"].endswith("/request-timeout")
    assert waited >= HEAD_TIMEOUT * 0.9, "cut off by the timeout, not at once"


async def test_a_connection_that_never_speaks_is_closed(intake):
    reader, writer = await asyncio.open_connection("127.0.0.1", intake.settings.port)
    try:
        answer = await _read_answer(reader, HEAD_TIMEOUT + 4)
    finally:
        writer.close()
    assert answer == b"", "nothing was asked, so nothing is answered: the connection is just closed"


async def test_a_body_sent_too_slowly_gets_408(intake):
    reader, writer = await asyncio.open_connection("127.0.0.1", intake.settings.port)
    started = time.monotonic()
    try:
        writer.write(
            b"POST /api/v1/appeals HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 5000\r\n\r\n{"
        )
        await writer.drain()

        async def drip() -> None:  # far under the minimum rate
            with contextlib.suppress(ConnectionError):  # until the server hangs up
                for _ in range(100):
                    writer.write(b" ")
                    await writer.drain()
                    await asyncio.sleep(0.2)

        dripping = asyncio.create_task(drip())
        answer = await _read_response(reader, BODY_TIMEOUT + 4)
        waited = time.monotonic() - started
        status, headers, body = _status_and_body(answer)
        assert status == 408
        assert headers["content-type"] == "application/problem+json"
        assert "did not arrive in time" in json.loads(body)["detail"]
        assert waited >= BODY_TIMEOUT * 0.9, "cut off by the timeout, not at once"
        # What else it drips is read and thrown away, for a bounded time: then the connection closes.
        try:
            rest = await _read_answer(reader, BODY_TIMEOUT + 4)
        except ConnectionResetError:
            rest = b""
        assert rest == b"", "nothing more is answered on it"
        dripping.cancel()
    finally:
        writer.close()


async def test_a_body_over_a_slow_but_steady_link_is_waited_for(intake):
    """Longer than the body timeout, faster than the minimum rate: read to the end."""
    appeal = json.dumps({**APPEAL, "contact": {"name": "蓝女士", "phone": "13812348801"}}).encode()
    payload = appeal[:-1] + b" " * 4_000 + b"}"  # JSON whitespace: the same appeal, longer on the wire
    reader, writer = await asyncio.open_connection("127.0.0.1", intake.settings.port)
    started = time.monotonic()
    try:
        writer.write(
            b"POST /api/v1/appeals HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: " + str(len(payload)).encode() + b"\r\n\r\n"
        )
        for offset in range(0, len(payload), 500):  # 500 bytes each 0.25 s: 2 000 B/s
            writer.write(payload[offset : offset + 500])
            await writer.drain()
            await asyncio.sleep(0.25)
        answer = await _read_answer(reader, 10)
    finally:
        writer.close()
    assert time.monotonic() - started > BODY_TIMEOUT * 1.5, "the upload outlasted the plain timeout"
    status, _, body = _status_and_body(answer)
    assert status == 201, body
