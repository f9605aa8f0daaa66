import hmac

import pytest

from shared import signing
from shared.crypto import DecryptionError, KeyRing, LookupHasher, normalise_phone
from shared.signing import MemoryReplayGuard, SignatureError, SignedRequest, parse_client_secrets, sign, verify

PHONE = "intake.appeals.phone"


def test_round_trip_with_a_fresh_nonce_each_time():
    ring = KeyRing.from_spec(KeyRing.generate_spec("k1"))
    a, b = ring.encrypt("韦先生 13812348000", context=PHONE), ring.encrypt("韦先生 13812348000", context=PHONE)
    assert a != b and a.startswith("v1.k1.")
    assert ring.decrypt(a, context=PHONE) == "韦先生 13812348000"


def test_tampered_moved_or_foreign_tokens_do_not_decrypt():
    ring = KeyRing.from_spec(KeyRing.generate_spec("k1"))
    token = ring.encrypt("13812348000", context=PHONE)
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(DecryptionError):
        ring.decrypt(flipped, context=PHONE)
    with pytest.raises(DecryptionError):
        ring.decrypt(token, context="intake.appeals.id_number")
    with pytest.raises(DecryptionError, match="unknown key id"):
        KeyRing.from_spec(KeyRing.generate_spec("k9")).decrypt(token, context=PHONE)


def test_key_rotation():
    k1, k2 = KeyRing.generate_spec("k1"), KeyRing.generate_spec("k2")
    old = KeyRing.from_spec(k1).encrypt("13812348000", context=PHONE)
    both = KeyRing.from_spec(f"{k1},{k2}")
    assert both.current == "k2" and both.needs_rotation(old)
    assert both.decrypt(old, context=PHONE) == "13812348000"
    rotated = both.rotate(old, context=PHONE)
    assert rotated.startswith("v1.k2.") and not both.needs_rotation(rotated)
    only_new = KeyRing.from_spec(k2)
    assert only_new.decrypt(rotated, context=PHONE) == "13812348000"
    with pytest.raises(DecryptionError):
        only_new.decrypt(old, context=PHONE)


def test_bad_key_specs_say_what_is_wrong_without_echoing_keys():
    with pytest.raises(ValueError, match="32 bytes") as short:
        KeyRing.from_spec("k1:c2hvcnQ=")
    assert "c2hvcnQ" not in str(short.value)
    with pytest.raises(ValueError, match="no ':'"):
        KeyRing.from_spec("justakey")
    with pytest.raises(ValueError, match="base64"):
        KeyRing.from_spec("k1:@@@")


def test_lookup_hash_finds_the_same_phone_however_written():
    hasher = LookupHasher(b"0123456789abcdef-secret")
    assert hasher.digest("+86 138-1234-8000", normalise=normalise_phone) == hasher.digest("13812348000", normalise=normalise_phone)
    assert LookupHasher(b"another-key-0123456789").digest("13812348000") != hasher.digest("13812348000")
    assert "13812348000" not in hasher.digest("13812348000")


def _request(secret=b"s3cret-hotline", **changes):
    base = dict(client_id="hotline12345", timestamp="1000", nonce="n1", method="POST", path="/api/v1/hotline/tickets", body=b'{"tickets":[]}')
    base.update(changes)
    signature = sign(secret, timestamp=base["timestamp"], nonce=base["nonce"], method=base["method"], path=base["path"], body=base["body"])
    return SignedRequest(signature=signature, **base)


SECRETS = {"hotline12345": b"s3cret-hotline"}


def test_a_good_signature_passes_and_a_changed_body_fails():
    assert verify(_request(), SECRETS, now=1000) == "hotline12345"
    tampered = _request()
    tampered = SignedRequest(**{**tampered.__dict__, "body": b'{"tickets":[1]}'})
    with pytest.raises(SignatureError, match="bad signature"):
        verify(tampered, SECRETS, now=1000)


@pytest.mark.parametrize("now", [1000 - 301, 1000 + 301])
def test_timestamps_outside_the_window_are_refused(now):
    with pytest.raises(SignatureError, match="window"):
        verify(_request(), SECRETS, now=now)


def test_missing_headers_unknown_clients_and_replays():
    with pytest.raises(SignatureError, match="missing header X-Timestamp"):
        verify(SignedRequest("hotline12345", "", "n", "sig", "POST", "/", b""), SECRETS, now=0)
    with pytest.raises(SignatureError, match="unknown client"):
        verify(_request(client_id="stranger"), SECRETS, now=1000)
    guard = MemoryReplayGuard()
    verify(_request(), SECRETS, now=1000, seen=guard)
    with pytest.raises(SignatureError, match="replayed"):
        verify(_request(), SECRETS, now=1000, seen=guard)


def test_comparison_is_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(signing.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    verify(_request(), SECRETS, now=1000)
    assert calls


def test_client_secrets_are_parsed_and_checked():
    assert parse_client_secrets("hotline12345:abcdefgh, app:12345678") == {"hotline12345": b"abcdefgh", "app": b"12345678"}
    with pytest.raises(ValueError, match="8\\+ characters"):
        parse_client_secrets("hotline12345:short")
