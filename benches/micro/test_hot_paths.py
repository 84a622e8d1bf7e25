"""Micro-benchmarks of the hot paths Python reaches (pytest-benchmark).

Run with ``make bench`` or ``.venv/bin/python -m pytest benches/micro
--benchmark-only``; ``make test`` never collects them (it runs ``tests/``).
Every benchmark also checks that what it measured is right. Frame
encode/decode is Rust only and measured by ``rust/net/benches/transport.rs``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import mosaik
from mosaik import _bridge
from mosaik._proposals import MAX_BATCH, Proposals
from mosaik._replica import Replica
from mosaik.codec import MSGPACK
from mosaik.group import derive_group_id
from mosaik.state_machine import machine_signature

# The counters that tests use too (tests/machines.py).
sys.path.append(str(Path(__file__).resolve().parents[2] / "tests"))
from machines import BatchCounter, Counter

# --- codec -----------------------------------------------------------------

PAYLOADS = {
    "small_int": 42,
    "small_dict": {"op": "set", "key": "k", "value": 1},
    "bytes_1KiB": bytes(range(256)) * 4,
    "nested_tuple": (1, ("a", (2.5, None, b"x")), [3, (4, -5)], {"k": ("v", True)}),
}


@pytest.mark.benchmark(group="codec encode")
@pytest.mark.parametrize("name", PAYLOADS)
def test_msgpack_encode(benchmark: Any, name: str) -> None:
    value = PAYLOADS[name]
    data = benchmark(MSGPACK.encode, value)
    assert isinstance(data, bytes)
    # A tuple only equals a tuple, so == also checks tuples came back as tuples.
    assert MSGPACK.decode(data) == value


@pytest.mark.benchmark(group="codec decode")
@pytest.mark.parametrize("name", PAYLOADS)
def test_msgpack_decode(benchmark: Any, name: str) -> None:
    value = PAYLOADS[name]
    data = MSGPACK.encode(value)
    assert benchmark(MSGPACK.decode, data) == value


# --- digests ---------------------------------------------------------------

# A high-entropy key in hex, as `mosaik keygen --group` writes it: GroupKey
# takes it as it is (a passphrase would be stretched with Argon2id, ~0.15 s).
SECRET = "3b9f0c6e5a1d4e8b7c2f9a0d6e3b1c4f8a7d2e5b0c9f6a3d1e4b7c8f2a5d0e9b"
# A text that is hashed, as machine signatures and other names are.
TEXT = "bench group secret"
CONSENSUS = mosaik.ConsensusConfig()
CONSENSUS_DIGEST = CONSENSUS.digest()
MACHINE_SIG = machine_signature(Counter())
SYNC_SIG = mosaik.LogReplaySync().signature()


def group_id_chain() -> mosaik.Digest:
    """`derive_group_id` starting from the hex key, as `GroupKey` reads it."""
    return (
        mosaik.Digest.from_str(SECRET)
        .hashed()
        .derive(CONSENSUS_DIGEST)
        .derive(MACHINE_SIG)
        .derive(SYNC_SIG)
    )


@pytest.mark.benchmark(group="digest")
@pytest.mark.parametrize("text", [SECRET, TEXT], ids=["key_hex", "text"])
def test_digest_from_str(benchmark: Any, text: str) -> None:
    digest = benchmark(mosaik.Digest.from_str, text)
    if text == SECRET:
        assert digest == mosaik.GroupKey.from_secret(SECRET).secret
        assert bytes(digest) == bytes.fromhex(SECRET)
    else:
        assert digest == mosaik.Digest.from_bytes(text.encode())
    assert digest != mosaik.Digest.from_str(text + "!")


@pytest.mark.benchmark(group="digest")
def test_digest_derive(benchmark: Any) -> None:
    base = mosaik.Digest.from_str(SECRET)
    derived = benchmark(base.derive, MACHINE_SIG)
    assert derived == base.derive(MACHINE_SIG)
    assert derived not in (base, MACHINE_SIG, base.derive(SYNC_SIG))


@pytest.mark.benchmark(group="digest")
def test_digest_group_id_chain(benchmark: Any) -> None:
    group_id = benchmark(group_id_chain)
    key = mosaik.GroupKey.from_secret(SECRET)
    assert group_id == derive_group_id(key, CONSENSUS, MACHINE_SIG, SYNC_SIG)
    other = mosaik.ConsensusConfig(min_quorum=2)
    assert group_id != derive_group_id(key, other, MACHINE_SIG, SYNC_SIG)


# --- apply batch dispatch --------------------------------------------------

BATCH = 1_000
TERM = 3


def committed_batch() -> tuple[list[tuple[mosaik.ApplyContext, bytes]], int]:
    """What the native apply thread hands over: 1,000 entries and the last index."""
    entries = []
    for i in range(1, BATCH + 1):
        at = mosaik.Cursor(TERM, i)
        entries.append((mosaik.ApplyContext(at, at, TERM), MSGPACK.encode({"add": i}), None))
    return entries, BATCH


# What one application of `committed_batch()` adds to a counter.
BATCH_TOTAL = sum(range(1, BATCH + 1))


def bench_apply(benchmark: Any, machine: Counter, recorded: list[int]) -> None:
    """Applies one committed batch of 1,000 under ``benchmark`` and checks
    that every entry was applied in full each time; then once more, untimed,
    on a machine of the same class that records the indices it was given
    (``recorded``: each entry's own, or a batch's last)."""
    replica = Replica(machine, "bench", 100_000)
    entries, last = committed_batch()
    assert benchmark(replica.apply, False, None, entries, last, False) is None
    assert replica.applied == last
    assert machine.value > 0 and machine.value % BATCH_TOTAL == 0
    checked = type(machine)(record=True)
    Replica(checked, "check", 100_000).apply(False, None, entries, last, False)
    assert checked.value == BATCH_TOTAL
    assert checked.applied == recorded


@pytest.mark.benchmark(group="replica apply 1,000 entries")
def test_replica_apply_1000_entries_per_command(benchmark: Any) -> None:
    bench_apply(benchmark, Counter(), list(range(1, BATCH + 1)))


@pytest.mark.benchmark(group="replica apply 1,000 entries")
def test_replica_apply_1000_entries_apply_batch(benchmark: Any) -> None:
    machine = BatchCounter()
    bench_apply(benchmark, machine, [BATCH])
    assert machine.batch_sizes == {BATCH}


# --- coalescing concurrent execute calls -------------------------------------


class FakeOutcome(NamedTuple):
    """What a proposal resolves to: the first index, how many commands
    committed, and whether the rest have an unknown outcome."""

    first: int
    done: int
    unknown: bool


class FakePropose:
    """Stands in for ``NativeGroup.propose``: commits every command at
    consecutive indices and returns the outcome as the "pending" (answered
    by `FakeBridge` below)."""

    def __init__(self) -> None:
        self.next_index = 1
        self.sizes: list[int] = []

    def __call__(
        self, data: list[bytes], on_assign: bool, requests: list[Any] | None
    ) -> FakeOutcome:
        assert not on_assign and requests is None and all(type(d) is bytes for d in data)
        first = self.next_index
        self.next_index += len(data)
        self.sizes.append(len(data))
        return FakeOutcome(first, len(data), False)


class FakeBridge:
    """A loop's bridge (`_bridge.of`) for operations that have already
    finished: a callback runs on the loop's next turn, as a drained
    outcome's would."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def then(self, pending: FakeOutcome, callback: Any) -> None:
        self.loop.call_soon(callback, True, pending)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def proposals(monkeypatch: pytest.MonkeyPatch) -> tuple[Proposals, FakePropose]:
    # Proposals looks up `_bridge.of` at each flush, so this replaces the
    # native Bridge; everything else is the real coalescing code.
    monkeypatch.setattr(_bridge, "of", FakeBridge)
    propose = FakePropose()
    return Proposals(propose, False, mosaik.ConsensusConfig().max_batch_bytes, None), propose


COMMANDS = [{"op": "set", "key": f"k{i}", "value": i} for i in range(BATCH)]
assert BATCH <= MAX_BATCH  # one proposal per loop iteration


def check_one_proposal_each(indices: list[int], propose: FakePropose) -> None:
    assert indices == list(range(indices[0], indices[0] + BATCH))
    assert propose.sizes and set(propose.sizes) == {BATCH}
    assert propose.next_index == 1 + BATCH * len(propose.sizes)


@pytest.mark.benchmark(group="coalesce 1,000 commands")
def test_proposals_coalesce_1000_submits(
    benchmark: Any, loop: asyncio.AbstractEventLoop, proposals: tuple[Proposals, FakePropose]
) -> None:
    """1,000 `submit`s in one loop iteration, then their futures resolve."""
    batcher, propose = proposals
    encoded = [MSGPACK.encode(c) for c in COMMANDS]

    async def submit_all() -> list[int]:
        futures = [batcher.submit(c, d, None) for c, d in zip(COMMANDS, encoded, strict=True)]
        return await asyncio.gather(*futures)

    indices = benchmark(lambda: loop.run_until_complete(submit_all()))
    check_one_proposal_each(indices, propose)


@pytest.mark.benchmark(group="coalesce 1,000 commands")
def test_proposals_coalesce_1000_concurrent_executes(
    benchmark: Any, loop: asyncio.AbstractEventLoop, proposals: tuple[Proposals, FakePropose]
) -> None:
    """1,000 concurrent tasks each doing what `Group.execute` does (encode,
    submit, await): task overhead + codec + coalescing."""
    batcher, propose = proposals

    async def execute(command: Any) -> int:
        return await batcher.submit(command, MSGPACK.encode(command), None)

    async def execute_all() -> list[int]:
        return await asyncio.gather(*(execute(c) for c in COMMANDS))

    indices = benchmark(lambda: loop.run_until_complete(execute_all()))
    check_one_proposal_each(indices, propose)
