"""A user program of every collection type, checked by ``mypy --strict``
(``make lint``) with `typing.assert_type`, and run by tests/test_collections.py
on two networks."""

from __future__ import annotations

from typing import assert_type

import mosaik
from mosaik import collections as mc


async def use_every_collection(
    net: mosaik.Network, other: mosaik.Network, consensus: mosaik.ConsensusConfig
) -> None:
    """Every type on ``net``, and a reader of the map on ``other``."""
    m = mc.Map[str, int].writer(net, "typed-map", consensus=consensus)
    assert_type(m, mc.Map[str, int])
    await m.group.when().leader_elected()
    assert_type(await m.insert("a", 1), int)
    assert_type(m.get("a"), int | None)
    assert_type(m.get("a", 0), int)
    assert_type(m["a"], int)
    assert_type(m.items(), list[tuple[str, int]])
    assert_type(await m.compare_exchange("a", 1, 2), bool)
    assert m.get("a") == 2 and list(m) == ["a"]

    v = mc.Vec[float].writer(net, "typed-vec", consensus=consensus)
    await v.extend([1.0, 2.0])
    assert_type(v[0], float)
    assert_type(v[0:1], list[float])
    assert_type(await v.pop_front(), float | None)
    assert list(v) == [2.0]

    s = mc.Set[bytes].writer(net, "typed-set", consensus=consensus)
    await s.insert(b"x")
    assert b"x" in s and len(s) == 1

    c = mc.Cell[str].writer(net, "typed-cell", consensus=consensus)
    assert_type(await c.compare_exchange(None, "x"), bool)
    assert_type(c.get(), str | None)

    o = mc.Once[int].writer(net, "typed-once", consensus=consensus)
    await o.set(7)
    assert_type(await o.wait(), int)

    p = mc.PriorityQueue[str, list[int]].writer(net, "typed-pq", consensus=consensus)
    await p.insert("k", [1], 0.5)
    entry = await p.pop_min()
    assert_type(entry, mc.Entry[str, list[int]] | None)
    assert entry is not None and entry.value == [1] and entry.priority == 0.5

    n = mc.Counter.writer(net, "typed-counter", consensus=consensus)
    assert_type(await n.add(3), int)
    assert_type(n.value, int)

    q = mc.Queue[dict[str, int]].writer(net, "typed-queue", consensus=consensus)
    assert_type(await q.put({"job": 1}), bool)
    assert_type(await q.get(), dict[str, int] | None)

    lock = mc.Lock.writer(net, "typed-lock", consensus=consensus)
    async with lock.acquire("job", ttl=5.0) as lease:
        assert_type(lease, mc.Lease)
        assert_type(lease.token, int)
        assert lock.token("job") == lease.token
    maybe = await lock.try_acquire("job", ttl=5.0)
    assert_type(maybe, mc.Lease | None)
    assert maybe is not None
    await maybe.release()
    assert_type(await maybe.lost(), str)

    reader = mc.Map[str, int].reader(other, "typed-map", consensus=consensus)
    assert_type(reader, mc.Map[str, int])
    assert_type(await reader.barrier(), int)
