"""`mosaik.Limits`: the caps on what peers can make a node do are values a
user can read and override, refused when nonsensical, and enforced."""

from __future__ import annotations

from datetime import timedelta

import pytest

import mosaik
from conftest import bounded


def test_defaults_are_the_documented_caps() -> None:
    limits = mosaik.Limits()
    assert limits.max_peers == 4096
    assert limits.max_new_peers_per_exchange == 256
    assert limits.max_pending_connections == 256
    assert limits.max_pending_connections_per_ip == 32
    assert limits.refusals_per_ip_per_minute == 30
    assert limits.max_concurrent_dials == 16
    assert limits.new_address_dials_per_second == 4
    assert limits.max_dial_backoff == timedelta(seconds=30)
    assert limits == mosaik.Limits() and hash(limits) == hash(mosaik.Limits())


def test_overrides_change_only_what_they_name() -> None:
    limits = mosaik.Limits(max_peers=10_000, max_dial_backoff=timedelta(seconds=5))
    assert limits.max_peers == 10_000
    assert limits.max_dial_backoff == timedelta(seconds=5)
    assert limits.max_concurrent_dials == mosaik.Limits().max_concurrent_dials
    assert "max_peers: 10000" in repr(limits)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"max_peers": 0}, "max_peers 0"),
        ({"max_peers": -1}, "max_peers"),
        ({"max_peers": True}, "max_peers"),
        ({"max_peers": "many"}, "max_peers"),
        ({"max_dial_backoff": 0.5}, "max_dial_backoff"),
        ({"max_peer": 3}, 'unknown limit "max_peer"'),
    ],
)
def test_nonsensical_limits_raise_config_error_naming_them(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(mosaik.ConfigError, match=message):
        mosaik.Limits(**overrides)  # type: ignore[arg-type]


def test_with_limits_takes_a_limits_value_only() -> None:
    with pytest.raises(TypeError, match=r"mosaik\.Limits"):
        mosaik.Network.builder("app").with_limits({"max_peers": 3})  # type: ignore[arg-type]


async def test_an_address_that_keeps_probing_is_refused_unanswered() -> None:
    """Two refusals for another network spend a budget of two per minute;
    the third attempt from the same address gets no answer at all (the
    dial times out)."""
    strict = mosaik.Limits(refusals_per_ip_per_minute=2)
    node = await mosaik.Network.builder("one").with_limits(strict).build()
    prober = await mosaik.Network.new("two")
    try:
        for _ in range(2):
            with pytest.raises(mosaik.NetworkError) as info:
                await bounded(prober.sync_with(node.local.addr))
            assert info.value.code == 101
        with pytest.raises(mosaik.NetworkError) as info:
            await bounded(prober.sync_with(node.local.addr))
        assert info.value.code != 101
        assert node.metrics()["mosaik.net.probes.silenced"] >= 1
    finally:
        await prober.close()
        await node.close()
