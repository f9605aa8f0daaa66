import base64

import pytest

from shared.crypto import DecryptionError, KeyRing, LookupHasher, normalise_phone

PHONE = "intake.appeals.phone"
ID_NUMBER = "intake.appeals.id_number"


def ring(*ids: str) -> KeyRing:
    return KeyRing.from_spec(",".join(KeyRing.generate_spec(key_id) for key_id in ids))


def with_raw(token: str, change) -> str:
    """The token with its nonce|ciphertext|tag bytes changed by ``change``."""
    version, key_id, blob = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(blob))
    change(raw)
    return f"{version}.{key_id}.{base64.urlsafe_b64encode(bytes(raw)).decode()}"


# -- encryption ---------------------------------------------------------------------


@pytest.mark.parametrize("text", ["13812348000", "韦先生 忻城县城关镇城中社区西宁街12号3栋", "45132219800101123X", ""])
def test_round_trip(text):
    keys = ring("k1")
    token = keys.encrypt(text, context=PHONE)
    assert token.startswith("v1.k1.")
    assert not text or text not in token
    assert keys.decrypt(token, context=PHONE) == text


def test_each_encryption_uses_a_fresh_nonce():
    keys = ring("k1")
    a, b = keys.encrypt("13812348000", context=PHONE), keys.encrypt("13812348000", context=PHONE)
    assert a != b
    assert keys.decrypt(a, context=PHONE) == keys.decrypt(b, context=PHONE) == "13812348000"


def test_changing_any_one_byte_is_detected():
    keys = ring("k1")
    token = keys.encrypt("13812348000", context=PHONE)
    length = len(base64.urlsafe_b64decode(token.split(".")[2]))
    for index in range(length):  # nonce, ciphertext and tag alike

        def flip(raw, index=index):
            raw[index] ^= 0x01

        with pytest.raises(DecryptionError):
            keys.decrypt(with_raw(token, flip), context=PHONE)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-8],  # truncated
        lambda t: t.rsplit(".", 1)[0] + ".AAAA",  # too short to hold nonce and tag
        lambda t: t[:-4] + "!!!!",  # not base64url
        lambda t: "13812348000",  # plaintext where a token belongs
        lambda t: "v2" + t[2:],  # unknown format version
    ],
)
def test_malformed_tokens_raise_decryption_error(mangle):
    keys = ring("k1")
    with pytest.raises(DecryptionError):
        keys.decrypt(mangle(keys.encrypt("13812348000", context=PHONE)), context=PHONE)


def test_a_token_moved_to_another_column_does_not_decrypt():
    keys = ring("k1")
    token = keys.encrypt("13812348000", context=PHONE)
    with pytest.raises(DecryptionError):
        keys.decrypt(token, context=ID_NUMBER)


def test_a_token_relabelled_with_another_key_id_does_not_decrypt():
    keys = ring("k1", "k2")
    token = keys.encrypt("13812348000", context=PHONE)
    with pytest.raises(DecryptionError):
        keys.decrypt(token.replace("v1.k2.", "v1.k1.", 1), context=PHONE)


def test_unknown_key_id():
    token = ring("k1").encrypt("13812348000", context=PHONE)
    with pytest.raises(DecryptionError, match="unknown key id 'k1'"):
        ring("k9").decrypt(token, context=PHONE)


def test_decryption_error_is_a_value_error():
    assert issubclass(DecryptionError, ValueError)


def test_encrypting_needs_a_context():
    with pytest.raises(ValueError, match="context"):
        ring("k1").encrypt("13812348000", context="")


# -- rotation -----------------------------------------------------------------------


def test_key_rotation():
    k1, k2 = KeyRing.generate_spec("k1"), KeyRing.generate_spec("k2")
    old = KeyRing.from_spec(k1).encrypt("13812348000", context=PHONE)

    both = KeyRing.from_spec(f"{k1},{k2}")
    assert both.current == "k2" and both.key_ids == ("k1", "k2")
    assert both.decrypt(old, context=PHONE) == "13812348000"
    assert both.needs_rotation(old)
    rotated = both.rotate(old, context=PHONE)
    assert rotated.startswith("v1.k2.") and not both.needs_rotation(rotated)
    assert both.rotate(rotated, context=PHONE) == rotated  # re-running a rotation job is a no-op

    only_new = KeyRing.from_spec(k2)
    assert only_new.decrypt(rotated, context=PHONE) == "13812348000"
    with pytest.raises(DecryptionError, match="unknown key id"):
        only_new.decrypt(old, context=PHONE)


def test_rotation_keeps_the_column_binding():
    old = KeyRing({"k1": b"\x01" * 32}, "k1").encrypt("13812348000", context=PHONE)
    keys = KeyRing({"k1": b"\x01" * 32, "k2": b"\x02" * 32}, "k2")
    with pytest.raises(DecryptionError):
        keys.rotate(old, context=ID_NUMBER)
    assert keys.decrypt(keys.rotate(old, context=PHONE), context=PHONE) == "13812348000"


def test_current_can_be_chosen_explicitly():
    k1, k2 = KeyRing.generate_spec("k1"), KeyRing.generate_spec("k2")
    keys = KeyRing.from_spec(f"{k1},{k2}", current="k1")
    assert keys.current == "k1" and keys.encrypt("x", context=PHONE).startswith("v1.k1.")


def test_a_token_in_an_older_format_needs_rotation():
    keys = ring("k1")
    current = keys.encrypt("13812348000", context=PHONE)
    assert keys.needs_rotation("v0" + current[2:])


def test_needs_rotation_refuses_what_is_not_a_token():
    with pytest.raises(DecryptionError):
        ring("k1").needs_rotation("13812348000")


# -- key specs ----------------------------------------------------------------------

MATERIAL = base64.b64encode(b"\x07" * 32).decode()
SHORT = base64.b64encode(b"short").decode()


@pytest.mark.parametrize(
    ("spec", "current", "message", "secret"),
    [
        (f"k1:{SHORT}", None, "key 'k1' must be 32 bytes", SHORT),
        (MATERIAL, None, "key entry 1 is not 'id:base64'", MATERIAL),
        (f"k1:{MATERIAL},{MATERIAL}", None, "key entry 2 is not 'id:base64'", MATERIAL),
        (f"{MATERIAL}:k1", None, "key entry 1: the id must be", MATERIAL),  # id and key swapped
        (f"k1:{MATERIAL[:-3]}@@@", None, "key 'k1' is not valid base64", MATERIAL[:-3]),
        (f"k1:{MATERIAL},k1:{MATERIAL}", None, "'k1' is listed twice", MATERIAL),
        (f"k1:{MATERIAL}", "k2", "current key 'k2' is not in the ring", MATERIAL),
        (f"k1:{MATERIAL}", MATERIAL, r"current key \(not a key id\)", MATERIAL),
        ("", None, "no keys given", None),
        (" , ", None, "no keys given", None),
    ],
)
def test_bad_key_specs_say_what_is_wrong_without_echoing_keys(spec, current, message, secret):
    with pytest.raises(ValueError, match=message) as error:
        KeyRing.from_spec(spec, current)
    if secret:
        assert secret not in str(error.value) and secret[:12] not in str(error.value)


def test_specs_tolerate_spaces_and_either_base64_alphabet():
    urlsafe = base64.urlsafe_b64encode(b"\xfb" * 32).decode()
    assert "-" in urlsafe or "_" in urlsafe
    keys = KeyRing.from_spec(f" k1 : {MATERIAL} ,\n k2:{urlsafe} ")
    assert keys.key_ids == ("k1", "k2") and keys.current == "k2"


def test_key_ring_checks_its_keys():
    with pytest.raises(ValueError, match="at least one key"):
        KeyRing({}, "k1")
    with pytest.raises(ValueError, match="32 bytes"):
        KeyRing({"k1": b"\x00" * 16}, "k1")
    with pytest.raises(ValueError, match="must be bytes"):
        KeyRing({"k1": "x" * 32}, "k1")  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="the id must be"):
        KeyRing({"k.1": b"\x00" * 32}, "k.1")


def test_generated_specs_are_fresh_32_byte_keys():
    a, b = KeyRing.generate_spec("k1"), KeyRing.generate_spec("k1")
    assert a != b and a.startswith("k1:")
    assert len(base64.b64decode(a.partition(":")[2])) == 32


def test_key_material_is_not_in_repr():
    keys = KeyRing({"k1": b"\x41" * 32}, "k1")
    assert "AAAA" not in repr(keys) and "AAAA" not in repr(vars(keys))
    assert "secret" not in repr(LookupHasher(b"secret-lookup-key-0123"))


# -- look-up hashes -----------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    ["13812348000", "+86 138-1234-8000", "8613812348000", "0086 138 1234 8000", "(+86) 138 1234 8000", "１３８１２３４８０００"],
)
def test_normalise_phone(written):
    assert normalise_phone(written) == "13812348000"


def test_normalise_phone_leaves_other_numbers_alone():
    assert normalise_phone("010-6512 3456") == "01065123456"
    assert normalise_phone("86-10-6512-3456") == "861065123456"  # 12 digits: not a +86 mobile


def test_lookup_hash_finds_the_same_phone_however_written():
    hasher = LookupHasher(b"0123456789abcdef-secret")
    digest = hasher.digest("13812348000", normalise=normalise_phone)
    assert hasher.digest("+86 138-1234-8000", normalise=normalise_phone) == digest
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert "13812348000" not in digest


def test_lookup_hash_depends_on_the_key_and_on_normalising():
    hasher = LookupHasher(b"0123456789abcdef-secret")
    assert LookupHasher(b"another-key-0123456789").digest("13812348000") != hasher.digest("13812348000")
    assert hasher.digest("+86 138-1234-8000") != hasher.digest("13812348000")  # no normaliser given


def test_lookup_key_must_be_long_enough():
    with pytest.raises(ValueError, match="16 bytes"):
        LookupHasher(b"short")
