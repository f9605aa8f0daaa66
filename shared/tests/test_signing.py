import dataclasses
import hmac

import pytest

from shared import signing
from shared.signing import (
    MemoryReplayGuard,
    SignatureError,
    SignedRequest,
    parse_client_secrets,
    sign,
    signature_headers,
    verify,
)

SECRET = b"s3cret-hotline"
SECRETS = {"hotline12345": SECRET, "appbackend": b"s3cret-app-backend"}
PATH = "/api/v1/hotline/tickets?batch=7"
BODY = '{"tickets":[{"ref":"12345-0900","title":"路灯不亮"}]}'.encode()
NOW = 1_700_000_000


def received(headers: dict[str, str], *, method="POST", path=PATH, body=BODY) -> SignedRequest:
    """What a server builds from the headers it got ('' for a missing one)."""
    return SignedRequest(
        client_id=headers.get("X-Client-Id", ""),
        timestamp=headers.get("X-Timestamp", ""),
        nonce=headers.get("X-Nonce", ""),
        signature=headers.get("X-Signature", ""),
        method=method,
        path=path,
        body=body,
    )


def headers(client_id="hotline12345", secret=SECRET, *, now=NOW, nonce="n-1", method="POST", path=PATH, body=BODY):
    return signature_headers(client_id, secret, method=method, path=path, body=body, now=now, nonce=nonce)


def refused(request: SignedRequest, **kwargs) -> str:
    with pytest.raises(SignatureError) as error:
        verify(request, SECRETS, **{"now": NOW, **kwargs})
    assert str(error.value) == error.value.reason
    return error.value.reason


# -- the scheme ---------------------------------------------------------------------


def test_a_good_request_passes():
    assert verify(received(headers()), SECRETS, now=NOW) == "hotline12345"
    assert verify(received(headers("appbackend", b"s3cret-app-backend")), SECRETS, now=NOW) == "appbackend"


def test_the_documented_test_vector():
    expected = "62c667aca046b230cc441b44cd0a1fd321aad2224eb8ed30077918de72fe1afb"
    assert expected in signing.__doc__
    got = sign(b"test-secret", timestamp=1700000000, nonce="n-1", method="POST", path="/api/v1/hotline/tickets", body=b'{"tickets":[]}')
    assert got == expected


def test_headers_carry_the_time_and_a_fresh_nonce():
    a = signature_headers("hotline12345", SECRET, method="POST", path=PATH, body=BODY, now=NOW + 0.9)
    b = signature_headers("hotline12345", SECRET, method="POST", path=PATH, body=BODY, now=NOW + 0.9)
    assert a["X-Timestamp"] == str(NOW) and a["X-Nonce"] != b["X-Nonce"]
    assert set(a) == {"X-Client-Id", "X-Timestamp", "X-Nonce", "X-Signature"}
    assert verify(received(a), SECRETS, now=NOW) == "hotline12345"


def test_method_case_does_not_matter_and_hex_case_does_not_matter():
    good = headers(method="post")
    assert verify(received(good, method="POST"), SECRETS, now=NOW) == "hotline12345"
    upper = {**good, "X-Signature": good["X-Signature"].upper()}
    assert verify(received(upper), SECRETS, now=NOW) == "hotline12345"


# -- refusals -----------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["X-Client-Id", "X-Timestamp", "X-Signature"])
def test_each_missing_header_is_named(missing):
    sent = {k: v for k, v in headers().items() if k != missing}
    assert refused(received(sent)) == f"missing header {missing}"


def test_the_nonce_is_optional():
    sent = headers(nonce="")
    assert "X-Nonce" in sent  # signature_headers always sends one …
    del sent["X-Nonce"]  # … but a client may not
    sent["X-Signature"] = sign(SECRET, timestamp=NOW, nonce="", method="POST", path=PATH, body=BODY)
    assert verify(received(sent), SECRETS, now=NOW) == "hotline12345"


def test_a_body_changed_by_one_byte_is_refused():
    request = received(headers())
    for index in (0, len(BODY) // 2, len(BODY) - 1):
        body = bytearray(BODY)
        body[index] ^= 0x01
        assert refused(dataclasses.replace(request, body=bytes(body))) == "bad signature"
    assert refused(dataclasses.replace(request, body=BODY + b" ")) == "bad signature"


@pytest.mark.parametrize(
    "change",
    [
        {"method": "PUT"},
        {"path": "/api/v1/hotline/tickets?batch=8"},
        {"nonce": "n-2"},
        {"timestamp": str(NOW + 1)},
        {"client_id": "appbackend"},  # another client's id on this client's signature
        {"signature": "0" * 64},
        {"signature": "not hex at all"},
        {"signature": "签名"},  # non-ASCII must be refused, not crash compare_digest
    ],
)
def test_any_signed_part_changed_is_a_bad_signature(change):
    assert refused(dataclasses.replace(received(headers()), **change)) == "bad signature"


def test_the_wrong_secret_is_a_bad_signature():
    assert refused(received(headers(secret=b"guessed-secret"))) == "bad signature"


@pytest.mark.parametrize("skew", [-301, 301])
def test_timestamps_outside_the_window_are_refused(skew):
    # 301 s old (skew -301: signed before now) or 301 s in the future.
    assert refused(received(headers(now=NOW + skew))) == "timestamp outside the 300 s window"


@pytest.mark.parametrize("skew", [-300, 0, 300])
def test_timestamps_inside_the_window_pass(skew):
    assert verify(received(headers(now=NOW + skew)), SECRETS, now=NOW) == "hotline12345"


def test_the_window_can_be_narrowed():
    assert refused(received(headers(now=NOW - 61)), window_s=60) == "timestamp outside the 60 s window"


@pytest.mark.parametrize("timestamp", ["1.7e9", " 1700000000", "1_700_000_000", "١٧٠٠٠٠٠٠٠٠", "-5"])
def test_timestamps_must_be_plain_unix_seconds(timestamp):
    request = dataclasses.replace(received(headers()), timestamp=timestamp)
    assert refused(request) == "X-Timestamp is not unix seconds"


@pytest.mark.parametrize("nonce", ["has space", "x" * 129, "随机"])
def test_nonces_must_be_visible_ascii(nonce):
    signed = received(headers(nonce=nonce))
    assert refused(signed).startswith("X-Nonce must be")


def test_unknown_client():
    assert refused(received(headers("stranger", b"stranger-secret"))) == "unknown client"


def test_the_same_nonce_twice_is_a_replay():
    guard = MemoryReplayGuard(clock=lambda: NOW)
    assert verify(received(headers()), SECRETS, now=NOW, seen=guard) == "hotline12345"
    assert refused(received(headers()), seen=guard) == "replayed request"
    # A new nonce, or the same nonce from another client, is a new request.
    assert verify(received(headers(nonce="n-2")), SECRETS, now=NOW, seen=guard)
    assert verify(received(headers("appbackend", b"s3cret-app-backend")), SECRETS, now=NOW, seen=guard)


def test_without_a_nonce_the_signature_stands_in_for_it():
    guard = MemoryReplayGuard(clock=lambda: NOW)
    sent = {**headers(nonce=""), "X-Nonce": ""}
    sent["X-Signature"] = sign(SECRET, timestamp=NOW, nonce="", method="POST", path=PATH, body=BODY)
    verify(received(sent), SECRETS, now=NOW, seen=guard)
    assert refused(received(sent), seen=guard) == "replayed request"
    other = {**sent, "X-Signature": sign(SECRET, timestamp=NOW, nonce="", method="POST", path=PATH, body=b"{}")}
    assert verify(received(other, body=b"{}"), SECRETS, now=NOW, seen=guard) == "hotline12345"


def test_a_forged_request_does_not_use_up_the_nonce():
    guard = MemoryReplayGuard(clock=lambda: NOW)
    forged = dataclasses.replace(received(headers()), signature="0" * 64)
    assert refused(forged, seen=guard) == "bad signature"
    assert verify(received(headers()), SECRETS, now=NOW, seen=guard) == "hotline12345"


def test_the_guard_remembers_until_the_window_closes():
    remembered = []

    class Recording:
        def check_and_remember(self, client_id, nonce, expires_at):
            remembered.append((client_id, nonce, expires_at))
            return True

    verify(received(headers(now=NOW - 10)), SECRETS, now=NOW, seen=Recording())
    assert remembered == [("hotline12345", "n-1", NOW - 10 + 300)]


# -- constant-time comparison --------------------------------------------------------


def test_signatures_are_compared_in_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def recording(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(signing.hmac, "compare_digest", recording)
    good = received(headers())
    verify(good, SECRETS, now=NOW)
    refused(dataclasses.replace(good, signature="0" * 64))
    assert len(calls) == 2
    assert calls[0] == (good.signature.encode(), good.signature.encode())


# -- the in-memory replay guard -------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_memory_guard_forgets_expired_nonces():
    clock = Clock(100)
    guard = MemoryReplayGuard(clock=clock)
    assert guard.check_and_remember("c", "n", expires_at=200)
    clock.now = 200  # still live at the instant it expires (the window is inclusive)
    assert not guard.check_and_remember("c", "n", expires_at=500)
    clock.now = 200.5
    assert guard.check_and_remember("c", "n", expires_at=500) and len(guard) == 1


def test_memory_guard_is_bounded():
    guard = MemoryReplayGuard(max_entries=3, clock=lambda: 0)
    for i in range(10):
        assert guard.check_and_remember("c", f"n{i}", expires_at=1000 + i)
    assert len(guard) == 3
    # The soonest-expiring went first; the newest are still refused.
    assert not guard.check_and_remember("c", "n9", expires_at=2000)
    assert guard.check_and_remember("c", "n0", expires_at=2000)


def test_memory_guard_needs_room():
    with pytest.raises(ValueError, match="at least 1"):
        MemoryReplayGuard(max_entries=0)


# -- client secrets -----------------------------------------------------------------


def test_client_secrets_are_parsed():
    parsed = parse_client_secrets(" hotline12345:abcdefgh , appbackend:with:colons-1\n")
    assert parsed == {"hotline12345": b"abcdefgh", "appbackend": b"with:colons-1"}
    assert parse_client_secrets("") == {}


@pytest.mark.parametrize(
    ("spec", "message", "secret"),
    [
        ("hotline12345:short", r"'hotline12345' needs a secret of 8\+ characters", "short"),
        ("justasecretvalue", "client entry 1 is not 'id:secret'", "justasecretvalue"),
        ("a:abcdefgh,b:abcdefgh,c d:abcdefgh", "client entry 3: the id must be", "abcdefgh"),
        (":abcdefgh", "client entry 1: the id must be", "abcdefgh"),
        ("a:abcdefgh,a:ijklmnop", "'a' is listed twice", "ijklmnop"),
    ],
)
def test_bad_client_secrets_say_what_is_wrong_without_echoing_secrets(spec, message, secret):
    with pytest.raises(ValueError, match=message) as error:
        parse_client_secrets(spec)
    assert secret not in str(error.value)
