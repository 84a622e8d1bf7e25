"""Group identity, keys and consensus settings, and the bonded full mesh."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from machines import Counter
from timings import FAST

import mosaik
from conftest import bounded, eventually, networks
from mosaik import _native


def fast() -> mosaik.ConsensusConfig:
    return mosaik.ConsensusConfig(**FAST)


# -- keys, configs and ids -------------------------------------------------


def test_group_key_round_trips_and_hides_its_secret() -> None:
    key = mosaik.GroupKey.generate()
    assert key.to_hex() not in repr(key)
    assert mosaik.GroupKey.from_hex(key.to_hex()) == key
    assert mosaik.GroupKey.generate() != key
    with pytest.raises(mosaik.ConfigError):
        mosaik.GroupKey.from_hex("abc")


PASSPHRASE = "correct horse battery staple"
# Argon2id(PASSPHRASE, blake3(b"mosaik/group-key/passphrase/1"), 64 MiB, 3 passes,
# 1 lane, 32 bytes), as the reference C implementation computes it.
PASSPHRASE_KEY = "9674f5c28ae465463e78b04fe92abc0aa58bf00e6f5e8854caffb464b433f4dd"


def test_passphrase_is_stretched_with_argon2id_not_hashed_once() -> None:
    key = mosaik.GroupKey.from_secret(PASSPHRASE)
    assert key.secret != mosaik.Digest.from_str(PASSPHRASE)
    assert key.to_hex() == PASSPHRASE_KEY
    assert mosaik.GroupKey.from_secret(PASSPHRASE.encode()) == key


def test_network_name_salts_the_passphrase() -> None:
    plain = mosaik.GroupKey.from_secret(PASSPHRASE)
    mine = mosaik.GroupKey.from_secret(PASSPHRASE, network="my-app")
    theirs = mosaik.GroupKey.from_secret(PASSPHRASE, network="their-app")
    assert len({plain, mine, theirs}) == 3
    assert mosaik.GroupKey.from_secret(PASSPHRASE, network="my-app") == mine


def test_high_entropy_secrets_are_taken_as_they_are() -> None:
    raw = bytes(range(32))
    digest = mosaik.Digest.from_bytes(raw)
    forms: list[str | bytes | mosaik.Digest] = [raw, raw.hex(), raw.hex().upper(), digest]
    for form in forms:
        assert mosaik.GroupKey.from_secret(form).secret == digest
        assert mosaik.GroupKey.from_secret(form, network="my-app").secret == digest
    assert mosaik.GroupKey.from_secret(bytearray(raw)).secret == digest
    assert mosaik.GroupKey.from_secret(memoryview(raw)).secret == digest


@pytest.mark.parametrize("empty", ["", b""], ids=["str", "bytes"])
def test_empty_passphrase_is_a_config_error(empty: str | bytes) -> None:
    with pytest.raises(mosaik.ConfigError, match="empty"):
        mosaik.GroupKey.from_secret(empty)


def test_group_secret_of_another_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="int"):
        mosaik.GroupKey.from_secret(42)  # type: ignore[arg-type]


def test_consensus_config_defaults_builder_and_keywords() -> None:
    c = mosaik.ConsensusConfig()
    assert c.heartbeat_interval == timedelta(milliseconds=500)
    assert c.heartbeat_jitter == timedelta(milliseconds=150)
    assert c.max_missed_heartbeats == 10
    assert c.election_timeout == timedelta(seconds=2)
    assert c.election_timeout_jitter == timedelta(milliseconds=500)
    assert c.bootstrap_delay == timedelta(seconds=3)
    assert c.forward_timeout == timedelta(seconds=2)
    assert c.query_timeout == timedelta(seconds=2)
    assert c.min_quorum == 1
    built = mosaik.ConsensusConfig.builder().with_heartbeat_interval(0.2).with_min_quorum(2).build()
    assert built == mosaik.ConsensusConfig(heartbeat_interval=timedelta(seconds=0.2), min_quorum=2)


@pytest.mark.parametrize(
    "bad",
    [
        {"heartbeat_interval": 0},
        {"election_timeout": -1.0},
        {"heartbeat_jitter": 0.5},
        {"election_timeout_jitter": 2.0},
        {"max_missed_heartbeats": 0},
        {"min_quorum": 0},
        {"bootstrap_delay": "soon"},
        {"no_such_parameter": 1},
    ],
)
def test_invalid_consensus_values_raise_config_error_naming_them(bad: dict[str, Any]) -> None:
    with pytest.raises(mosaik.ConfigError) as info:
        mosaik.ConsensusConfig(**bad)
    assert next(iter(bad)) in str(info.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("heartbeat_interval", 0.4),
        ("heartbeat_jitter", 0.1),
        ("max_missed_heartbeats", 9),
        ("election_timeout", 3.0),
        ("election_timeout_jitter", 0.4),
        ("bootstrap_delay", 4.0),
        ("forward_timeout", 1.0),
        ("query_timeout", 1.0),
        ("min_quorum", 2),
    ],
)
def test_every_consensus_parameter_changes_the_digest(name: str, value: Any) -> None:
    assert mosaik.ConsensusConfig(**{name: value}).digest() != mosaik.ConsensusConfig().digest()


def test_deprioritizing_leadership_keeps_the_digest() -> None:
    c = mosaik.ConsensusConfig()
    assert c.deprioritize_leadership().digest() == c.digest()
    assert c.deprioritize_leadership().leadership_factor == 3
    assert c.deprioritize_leadership_by(5).leadership_factor == 5
    with pytest.raises(mosaik.ConfigError):
        c.deprioritize_leadership_by(0)


def test_log_replay_sync_signature_covers_its_settings() -> None:
    base = mosaik.LogReplaySync()
    assert base.batch_size == 2000 and base.fetch_timeout == timedelta(seconds=25)
    assert base.signature() == mosaik.LogReplaySync(2000, 25.0).signature()
    assert base.signature() != mosaik.LogReplaySync(batch_size=7).signature()
    assert base.signature() != mosaik.LogReplaySync(fetch_timeout=1.0).signature()


def test_groups_constants() -> None:
    assert mosaik.groups.ALPN == b"/mosaik/groups/1"
    reasons = {r.name: int(r) for r in mosaik.groups.CloseReason}
    assert reasons == {
        "INVALID_HANDSHAKE": 30400,
        "GROUP_NOT_FOUND": 30404,
        "INVALID_PROOF": 30405,
        "TIMEOUT": 30408,
        "ALREADY_BONDED": 30429,
    }
    assert mosaik.NoOp().signature() == "mosaik_noop_state_machine"


async def test_group_id_is_derived_bit_for_bit() -> None:
    key = mosaik.GroupKey.from_secret("k")
    consensus = fast()
    async with networks(1) as (net,):
        group = net.groups().with_key(key).with_consensus_config(consensus).join()
        expected = (
            key.secret.hashed()
            .derive(consensus.digest())
            .derive(mosaik.Digest.from_str("mosaik_noop_state_machine"))
            .derive(mosaik.LogReplaySync().signature())
        )
        assert group.id == expected
        assert group.config().group_id == expected
        assert group.config().consensus == consensus
        assert group.config().handshake_timeout == timedelta(seconds=2)


class Reluctant(Counter):
    def leadership_preference(self) -> mosaik.LeadershipPreference:
        return mosaik.LeadershipPreference.reluctant(3)


class CounterV2(Counter):
    def signature(self) -> str:
        return "counter_v2"


class BigBatches(Counter):
    def state_sync(self) -> mosaik.LogReplaySync:
        return mosaik.LogReplaySync(batch_size=7)


async def test_storage_and_leadership_preference_do_not_change_the_group_id() -> None:
    key = mosaik.GroupKey.generate()
    async with networks(1) as (net,):
        base = net.groups().with_key(key).with_state_machine(Counter())
        assert base.with_log_storage(mosaik.InMemoryLogStore()).group_id() == base.group_id()
        assert base.with_state_machine(Reluctant()).group_id() == base.group_id()
        other_factor = base.with_consensus_config(
            mosaik.ConsensusConfig().deprioritize_leadership()
        )
        assert other_factor.group_id() == base.group_id()


async def test_key_machine_sync_and_consensus_each_change_the_group_id() -> None:
    key = mosaik.GroupKey.generate()
    async with networks(1) as (net,):
        base = net.groups().with_key(key).with_state_machine(Counter())
        variants = [
            base.with_key(mosaik.GroupKey.generate()),
            base.with_state_machine(CounterV2()),
            base.with_state_machine(BigBatches()),
            base.with_consensus_config(mosaik.ConsensusConfig(min_quorum=2)),
        ]
        ids = {v.group_id() for v in variants} | {base.group_id()}
        assert len(ids) == 5


class NoQuery:
    def signature(self) -> str:
        return "x"

    def apply(self, command: Any, ctx: Any) -> None:
        return None


class IntSignature(Counter):
    def signature(self) -> Any:
        return 42


async def test_bad_state_machines_raise_type_error_at_with_state_machine() -> None:
    async with networks(1) as (net,):
        builder = net.groups().with_key(mosaik.GroupKey.generate())
        with pytest.raises(TypeError, match="query"):
            builder.with_state_machine(NoQuery())
        with pytest.raises(TypeError, match="str or bytes"):
            builder.with_state_machine(IntSignature())
        with pytest.raises(TypeError, match="signature"):
            builder.with_state_machine(mosaik.StateMachine())


# -- joining and bonding ---------------------------------------------------


def bonded_exactly(pairs: list[tuple[mosaik.Network, mosaik.Group[Any]]]) -> bool:
    """Every handle is bonded to exactly the other members of its group."""
    by_group: dict[mosaik.Digest, set[mosaik.PeerId]] = {}
    for net, group in pairs:
        by_group.setdefault(group.id, set()).add(net.local.id)
    return all(
        set(group.bonds().peer_ids()) == by_group[group.id] - {net.local.id} for net, group in pairs
    )


async def test_join_returns_at_once_and_is_idempotent() -> None:
    key = mosaik.GroupKey.generate()
    async with networks(1) as (net,):
        first = net.groups().with_key(key).with_consensus_config(fast()).join()
        again = net.groups().with_key(key).with_consensus_config(fast()).join()
        assert first is again
        assert len(first.bonds()) == 0
        assert net.metrics()["mosaik.groups.active"] == 1


async def test_groups_is_one_per_network_and_a_left_group_is_joined_anew() -> None:
    key = mosaik.GroupKey.generate()
    async with networks(2) as (net, other):
        assert net.groups() is net.groups()
        assert net.groups() is not other.groups()

        def join() -> mosaik.Group[Counter]:
            builder = net.groups().with_key(key).with_state_machine(Counter())
            return builder.with_consensus_config(fast()).join()

        first = join()
        await bounded(first.leave())
        again = join()
        assert again is not first and again.active
        assert not first.active
        await bounded(first.leave())
        assert again.active, "leaving a group left before leaves nothing joined since"
        assert join() is again
        await bounded(again.execute({"add": 2}))
        assert again.machine.value == 2


async def test_four_nodes_in_three_overlapping_groups_bond_exactly_their_members() -> None:
    keys = [mosaik.GroupKey.generate() for _ in range(3)]
    membership = {0: [0, 1], 1: [0, 1, 2], 2: [1, 2], 3: [0, 2]}
    async with networks(4, chain=True) as nets:
        pairs = [
            (nets[n], nets[n].groups().with_key(keys[g]).with_consensus_config(fast()).join())
            for n, groups in membership.items()
            for g in groups
        ]
        took = await eventually(lambda: bonded_exactly(pairs), 5.0, "exact bonds")
        assert took < 5.0


async def test_seven_nodes_form_a_full_mesh_within_5s() -> None:
    key = mosaik.GroupKey.generate()
    async with networks(7, chain=True) as nets:
        pairs = [(n, n.groups().with_key(key).with_consensus_config(fast()).join()) for n in nets]
        await eventually(lambda: bonded_exactly(pairs), 5.0, "7-node mesh")
        for net, group in pairs:
            metrics = group.metrics()
            assert metrics["mosaik.groups.bonds.active"] == 6
            assert metrics["mosaik.groups.bonds.messages.sent"] > 0
            assert net.local.id not in group.bonds()


async def test_nodes_with_different_group_ids_never_bond() -> None:
    key = mosaik.GroupKey.generate()
    async with networks(3, chain=True) as (a, b, c):
        ga = a.groups().with_key(key).with_consensus_config(fast()).join()
        gb = b.groups().with_key(key).with_consensus_config(fast()).join()
        other = mosaik.ConsensusConfig(**{**FAST, "min_quorum": 2})
        gc = c.groups().with_key(key).with_consensus_config(other).join()
        await eventually(lambda: len(ga.bonds()) == 1 and len(gb.bonds()) == 1, 5.0, "a-b bond")
        await asyncio.sleep(0.5)
        assert len(gc.bonds()) == 0
        assert c.local.id not in ga.bonds() and c.local.id not in gb.bonds()


async def test_leave_removes_the_node_from_its_peers_bonds_within_1s() -> None:
    key = mosaik.GroupKey.generate()
    async with networks(3, chain=True) as nets:
        groups = [n.groups().with_key(key).with_consensus_config(fast()).join() for n in nets]
        await eventually(lambda: all(len(g.bonds()) == 2 for g in groups), 5.0, "mesh")
        async with groups[2]:
            pass
        took = await eventually(
            lambda: all(nets[2].local.id not in g.bonds() for g in groups[:2]), 1.0, "departure"
        )
        assert took < 1.0
        assert not groups[2].active
        await asyncio.sleep(0.3)
        assert all(len(g.bonds()) == 1 for g in groups[:2]), "a departed node is not redialled"


async def test_closing_the_network_departs_from_every_group() -> None:
    key = mosaik.GroupKey.generate()
    async with networks(2, chain=True) as (a, b):
        ga = a.groups().with_key(key).with_consensus_config(fast()).join()
        gb = b.groups().with_key(key).with_consensus_config(fast()).join()
        await eventually(lambda: len(ga.bonds()) == 1, 5.0, "bond")
        await bounded(b.close())
        await eventually(lambda: len(ga.bonds()) == 0, 1.0, "departure on close")
        assert not gb.active
        assert _native.live_tasks() > 0  # a is still running


GROUP_NODE = Path(__file__).with_name("group_process.py")


async def spawn_member(
    key: mosaik.GroupKey, secret: str, bootstrap: str
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(GROUP_NODE),
        "--key",
        key.to_hex(),
        "--secret",
        secret,
        "--bootstrap",
        bootstrap,
        stdout=asyncio.subprocess.PIPE,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )


async def expect_line(proc: asyncio.subprocess.Process, prefix: str) -> str:
    assert proc.stdout is not None
    while True:
        line = (await bounded(proc.stdout.readline(), 15.0)).decode().strip()
        assert line, f"process ended before printing {prefix!r}"
        if line.startswith(prefix):
            return line


async def test_killed_member_is_dropped_after_missed_heartbeats_and_bonds_again_on_restart() -> (
    None
):
    key = mosaik.GroupKey.generate()
    secret = os.urandom(32).hex()
    async with networks(1, "groups-test") as (net,):
        group = net.groups().with_key(key).with_consensus_config(fast()).join()
        procs: list[asyncio.subprocess.Process] = []
        try:
            child = await spawn_member(key, secret, str(net.local.addr))
            procs.append(child)
            child_id = mosaik.PeerId.from_hex(
                (await expect_line(child, "ADDR ")).split()[1].split("@")[0]
            )
            await eventually(lambda: child_id in group.bonds(), 10.0, "bond with child")
            child.send_signal(signal.SIGKILL)
            await bounded(child.wait())
            bound = FAST["max_missed_heartbeats"] * FAST["heartbeat_interval"] + 1.0
            took = await eventually(
                lambda: child_id not in group.bonds(), bound, "dead bond dropped"
            )
            assert took <= bound
            again = await spawn_member(key, secret, str(net.local.addr))
            procs.append(again)
            await expect_line(again, "ADDR ")
            await eventually(lambda: child_id in group.bonds(), 10.0, "restarted child bonds again")
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.kill()
                    await bounded(proc.wait())
