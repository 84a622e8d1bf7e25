"""Digest, PeerId and EndpointAddr behave exactly as the API contract says."""

from __future__ import annotations

import pytest

import mosaik

HEX = "ab" * 32


def test_hex_string_of_64_chars_is_taken_as_is() -> None:
    d = mosaik.Digest.from_str(HEX)
    assert bytes(d) == bytes.fromhex(HEX)
    assert d.hex() == HEX
    assert str(d) == HEX


def test_32_raw_bytes_are_taken_as_is() -> None:
    raw = bytes(range(32))
    assert bytes(mosaik.Digest.from_bytes(raw)) == raw


def test_anything_else_is_hashed_with_blake3() -> None:
    # blake3("abc") is a published test vector.
    expected = "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
    assert mosaik.Digest.from_str("abc").hex() == expected
    assert mosaik.Digest.from_bytes(b"abc").hex() == expected


def test_derive_is_blake3_of_self_then_info() -> None:
    base = mosaik.Digest.from_str("base")
    other = mosaik.Digest.from_str("other")
    cat_bytes = mosaik.Digest.from_bytes(bytes(base) + b"info")
    assert base.derive(b"info") == cat_bytes
    assert base.derive("info") == cat_bytes
    assert base.derive(other) == mosaik.Digest.from_bytes(bytes(base) + bytes(other))
    with pytest.raises(TypeError):
        base.derive(42)  # type: ignore[arg-type]


def test_hashed_is_blake3_of_the_32_bytes() -> None:
    base = mosaik.Digest.from_str("base")
    assert base.hashed() == base.derive(b"")
    assert base.hashed() != base


def test_digests_are_equal_hashable_and_unique_id_is_the_same_type() -> None:
    a, b = mosaik.Digest.from_str("x"), mosaik.Digest.from_str("x")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert mosaik.UniqueId is mosaik.Digest
    assert a != mosaik.Digest.from_str("y")
    assert a != "x"


def test_network_id_is_the_digest_of_the_name() -> None:
    assert mosaik.NetworkId.from_str("my-app") == mosaik.Digest.from_bytes(b"my-app")


def test_peer_id_round_trips_and_orders() -> None:
    p = mosaik.PeerId.from_hex(HEX)
    assert bytes(p) == bytes.fromhex(HEX) and str(p) == HEX
    q = mosaik.PeerId.from_bytes(b"\x00" * 32)
    assert q < p and sorted([p, q]) == [q, p]
    assert hash(p) == hash(mosaik.PeerId.from_hex(HEX.upper()))
    with pytest.raises(mosaik.ConfigError):
        mosaik.PeerId.from_hex("zz")


def test_endpoint_addr_parses_its_own_string() -> None:
    text = f"{HEX}@127.0.0.1:7000,[::1]:7001"
    addr = mosaik.EndpointAddr.parse(text)
    assert str(addr) == text
    assert addr.peer_id == mosaik.PeerId.from_hex(HEX)
    assert addr.addrs == ["127.0.0.1:7000", "[::1]:7001"]
    assert mosaik.EndpointAddr.parse(str(addr)) == addr


@pytest.mark.parametrize("bad", ["", "nope", f"{HEX}@", f"{HEX}@localhost", "12@127.0.0.1:1"])
def test_bad_endpoint_addresses_raise_config_error_naming_them(bad: str) -> None:
    with pytest.raises(mosaik.ConfigError) as info:
        mosaik.EndpointAddr.parse(bad)
    assert isinstance(info.value, ValueError)
    assert repr(bad) in str(info.value) or bad.split("@")[-1] in str(info.value)
