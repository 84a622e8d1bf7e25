"""Networks find each other over authenticated QUIC, reject bad input with a
clear error, and release everything on close."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from datetime import timedelta
from pathlib import Path

import pytest

import mosaik
from conftest import FAST_GOSSIP, bounded, eventually, networks
from mosaik import _native


def knows_all(nets: list[mosaik.Network]) -> bool:
    ids = {n.local.id for n in nets}
    return all({p.peer_id for p in n.known_peers()} == ids - {n.local.id} for n in nets)


async def test_five_networks_bootstrapped_as_a_chain_all_learn_each_other_within_2s() -> None:
    async with networks(5, chain=True) as nets:
        took = await eventually(lambda: knows_all(nets), 2.0, "full catalogs")
        assert took < 2.0
        for net in nets:
            assert net.metrics()["mosaik.discovery.catalog.size"] == 4


async def test_sync_with_exchanges_catalogs_both_ways() -> None:
    async with networks(3) as (a, b, c):
        await bounded(b.sync_with(a.local.addr))
        await bounded(c.sync_with(str(b.local.addr)))
        await eventually(lambda: knows_all([a, b, c]), 5.0, "full catalogs")
        assert a.metrics()["mosaik.discovery.peers.discovered"] == 2
        assert a.metrics()["mosaik.discovery.catalog.syncs"] >= 1


async def test_network_identity_and_address() -> None:
    secret = bytes(range(32))
    async with await mosaik.Network.builder("my-app").with_secret_key(secret).build() as net:
        assert net.network_id == mosaik.Digest.from_str("my-app")
        assert str(net.local.addr).startswith(f"{net.local.id}@127.0.0.1:")
        assert mosaik.EndpointAddr.parse(str(net.local.addr)) == net.local.addr
        same_key = await mosaik.Network.builder("my-app").with_secret_key(secret.hex()).build()
        assert same_key.local.id == net.local.id
        await same_key.close()


async def test_peer_of_another_network_is_refused_with_101() -> None:
    async with networks(1, "one") as (a,), networks(1, "two") as (b,):
        with pytest.raises(mosaik.NetworkError) as info:
            await bounded(a.sync_with(b.local.addr))
        assert info.value.code == 101
        assert a.known_peers() == [] and b.known_peers() == []
        assert b.metrics()["mosaik.discovery.entries.rejected"] == 1


async def test_peer_with_another_key_than_dialled_is_refused_and_nothing_learned() -> None:
    async with networks(2) as (a, b):
        impostor = f"{'11' * 32}@{b.local.addr.addrs[0]}"
        with pytest.raises(mosaik.NetworkError):
            await bounded(a.sync_with(impostor))
        assert a.known_peers() == [] and b.known_peers() == []


async def test_stale_entries_are_purged() -> None:
    a = await mosaik.Network.builder("t").with_gossip_interval(0.1).with_entry_ttl(0.5).build()
    b = await mosaik.Network.builder("t").with_gossip_interval(0.1).with_entry_ttl(0.5).build()
    try:
        await bounded(b.sync_with(a.local.addr))
        await eventually(lambda: len(a.known_peers()) == 1, 2.0, "a learns b")
        await b.close()
        await eventually(lambda: a.known_peers() == [], 5.0, "b purged")
        assert a.metrics()["mosaik.discovery.peers.departed"] == 1
    finally:
        await a.close()
        await b.close()


@pytest.mark.parametrize(
    ("builder_call", "needle"),
    [
        (lambda b: b.with_secret_key(b"short"), "secret key"),
        (lambda b: b.with_secret_key("zz" * 32), "secret key"),
        (lambda b: b.with_addresses(["not-an-address"]), "not-an-address"),
        (lambda b: b.with_addresses(["127.0.0.1:99999"]), "127.0.0.1:99999"),
        (lambda b: b.with_bootstrap(["garbage"]), "garbage"),
    ],
)
async def test_invalid_settings_raise_config_error_naming_the_value(
    builder_call: object, needle: str
) -> None:
    builder = mosaik.Network.builder("t")
    with pytest.raises(mosaik.ConfigError) as info:
        await bounded(builder_call(builder).build())  # type: ignore[operator]
    assert needle in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("name", ["", None, 42])
async def test_network_name_must_be_a_non_empty_string(name: object) -> None:
    with pytest.raises(mosaik.ConfigError, match="network name"):
        await bounded(mosaik.Network.new(name))  # type: ignore[arg-type]


async def test_invalid_durations_raise_config_error() -> None:
    with pytest.raises(mosaik.ConfigError, match="gossip_interval"):
        mosaik.Network.builder("t").with_gossip_interval(-1)
    with pytest.raises(mosaik.ConfigError, match="handshake_timeout"):
        mosaik.groups.Config.builder().with_handshake_timeout(timedelta(0))
    cfg = mosaik.groups.Config.builder().with_handshake_timeout(0.5).build()
    assert cfg.handshake_timeout == timedelta(seconds=0.5)
    assert mosaik.groups.Config().handshake_timeout == timedelta(seconds=2)


async def test_closing_releases_the_port_and_leaves_no_task_running() -> None:
    net = await mosaik.Network.new("t")
    port = int(net.local.addr.addrs[0].rsplit(":", 1)[1])
    await bounded(net.close())
    await bounded(net.close())
    assert net.closed
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", port))
    assert _native.live_tasks() == 0
    with pytest.raises(mosaik.NetworkClosed):
        await bounded(net.sync_with(f"{'11' * 32}@127.0.0.1:{port}"))


async def test_async_with_closes_the_network() -> None:
    async with await mosaik.Network.new("t") as net:
        assert not net.closed
    assert net.closed


NODE_SCRIPT = Path(__file__).with_name("node_process.py")


async def spawn_node(*args: str) -> asyncio.subprocess.Process:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(NODE_SCRIPT),
        *args,
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )


async def read_line(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    line = await bounded(proc.stdout.readline(), 15.0)
    return line.decode().strip()


async def test_two_processes_find_each_other() -> None:
    first = await spawn_node("--gossip", str(FAST_GOSSIP))
    second: asyncio.subprocess.Process | None = None
    try:
        first_addr = (await read_line(first)).removeprefix("ADDR ")
        second = await spawn_node("--gossip", str(FAST_GOSSIP), "--bootstrap", first_addr)
        second_addr = (await read_line(second)).removeprefix("ADDR ")
        first_id, second_id = first_addr.split("@")[0], second_addr.split("@")[0]
        assert await read_line(second) == f"KNOWS {first_id}"
        assert await read_line(first) == f"KNOWS {second_id}"
        assert await bounded(first.wait()) == 0
        assert await bounded(second.wait()) == 0
    finally:
        for proc in (first, second):
            if proc is not None and proc.returncode is None:
                proc.kill()
                await bounded(proc.wait())


async def test_cancelling_an_await_drops_the_native_operation() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        async with networks(1) as (net,):
            assert _native.in_flight() == 0
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(net.sync_with(f"{'22' * 32}@127.0.0.1:{port}"), 0.1)
            # The dial would take 3 s; aborting drops it at once.
            await eventually(lambda: _native.in_flight() == 0, 1.0, "operation dropped")
            other = await mosaik.Network.new("test")
            await bounded(other.sync_with(net.local.addr))
            await other.close()


async def test_advertised_addresses_replace_the_bound_ones() -> None:
    builder = (
        mosaik.Network.builder("advertise")
        .with_addresses(["0.0.0.0:0"])
        .with_advertised_addresses(["127.0.0.1:7999", "127.0.0.2:7999"])
    )
    async with await asyncio.wait_for(builder.build(), 10) as net:
        assert net.local.addr.addrs == ["127.0.0.1:7999", "127.0.0.2:7999"]
    for bad in (["127.0.0.1:0"], ["0.0.0.0:7000"]):
        with pytest.raises(mosaik.ConfigError, match="cannot advertise"):
            mosaik.Network.builder("advertise").with_advertised_addresses(bad)
