"""`mosaik.collections` on three Networks in one process: every type's
writes from any member and local reads everywhere, versions and barriers,
readers, identity, snapshot catch-up, exactly-once takes, and the lock."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from replication_helpers import fast

import mosaik
from conftest import bounded, eventually, networks
from mosaik import collections as mc

C = TypeVar("C", bound=mc.Collection)


async def formed(handles: Sequence[mc.Collection]) -> None:
    """All bonded to each other and agreeing on a leader."""
    count = len(handles)
    await eventually(lambda: all(len(h.group.bonds()) == count - 1 for h in handles), 5.0, "bonds")
    await eventually(
        lambda: (
            len({h.group.leader() for h in handles}) == 1 and handles[0].group.leader() is not None
        ),
        5.0,
        "one leader",
    )


def on_all(nets: list[mosaik.Network], open_one: Callable[[mosaik.Network], C]) -> list[C]:
    return [open_one(n) for n in nets]


def leader_first(handles: list[C]) -> list[C]:
    """The handles with the leader's first."""
    return sorted(handles, key=lambda h: not h.group.is_leader())


@asynccontextmanager
async def three() -> AsyncIterator[list[mosaik.Network]]:
    async with networks(3, chain=True) as nets:
        yield nets


async def settled(handles: Sequence[mc.Collection], version: int) -> None:
    for h in handles:
        await bounded(h.when().reaches(version), 5.0)


async def test_every_type_writes_from_any_member_and_reads_locally_everywhere() -> None:
    async with three() as nets:
        cfg = fast()
        maps = on_all(nets, lambda n: mc.Map[str, Any].writer(n, "m", consensus=cfg))
        vecs = on_all(nets, lambda n: mc.Vec[int].writer(n, "v", consensus=cfg))
        sets = on_all(nets, lambda n: mc.Set[str].writer(n, "s", consensus=cfg))
        cells = on_all(nets, lambda n: mc.Cell[str].writer(n, "c", consensus=cfg))
        onces = on_all(nets, lambda n: mc.Once[str].writer(n, "o", consensus=cfg))
        pqs = on_all(nets, lambda n: mc.PriorityQueue[str, int].writer(n, "p", consensus=cfg))
        counters = on_all(nets, lambda n: mc.Counter.writer(n, "n", consensus=cfg))
        queues = on_all(nets, lambda n: mc.Queue[str].writer(n, "q", consensus=cfg))
        for handles in (maps, vecs, sets, cells, onces, pqs, counters, queues):
            await formed(handles)

        lead, follow, other = leader_first(maps)
        v1 = await bounded(lead.insert("a", {"qty": 1}))
        v2 = await bounded(follow.insert("b", [1, 2]))
        assert v2 > v1
        assert follow.get("b") == [1, 2]  # read your writes: applied here on return
        await bounded(follow.extend({"c": 3, "d": 4}))
        await bounded(lead.extend([("e", 5)]))
        assert await bounded(other.compare_exchange("c", 3, 30)) is True
        assert await bounded(other.compare_exchange("c", 3, 31)) is False
        assert await bounded(other.compare_exchange("z", None, 1)) is True
        v = await bounded(follow.remove("d"))
        await settled(maps, v)
        for m in maps:
            assert dict(m.items()) == {"a": {"qty": 1}, "b": [1, 2], "c": 30, "e": 5, "z": 1}
            assert "a" in m and "d" not in m and len(m) == 5 and m["c"] == 30
            assert m.get("d") is None and m.get("d", 0) == 0
            assert sorted(m) == sorted(m.keys()) == ["a", "b", "c", "e", "z"]
        copy = other.get("a")
        assert copy is not None
        copy["qty"] = 99  # a copy: the replica does not change
        assert other.get("a") == {"qty": 1}
        await settled(maps, await bounded(lead.clear()))
        assert all(len(m) == 0 for m in maps)

        lead, follow, other = leader_first(vecs)
        await bounded(follow.push_back(2))
        await bounded(lead.push_front(1))
        await bounded(other.extend([3, 4, 5]))
        await bounded(follow.insert(0, 0))
        await bounded(lead.remove(-1))
        assert await bounded(other.pop_back()) == 4
        assert await bounded(follow.pop_front()) == 0
        v = await bounded(lead.push_back(9))
        await settled(vecs, v)
        for vec in vecs:
            assert list(vec) == [1, 2, 3, 9] and vec[0] == 1 and vec[-1] == 9
            assert vec[1:3] == [2, 3] and vec.index(3) == 2 and 9 in vec and len(vec) == 4
        await settled(vecs, await bounded(follow.truncate(1)))
        assert all(list(vec) == [1] for vec in vecs)

        lead, follow, other = leader_first(sets)
        await bounded(follow.extend(["x", "y", "z"]))
        await bounded(lead.remove("y"))
        v = await bounded(other.insert("w"))
        await settled(sets, v)
        assert all(set(s) == {"w", "x", "z"} and len(s) == 3 and "x" in s for s in sets)

        lead, follow, other = leader_first(cells)
        assert await bounded(follow.compare_exchange(None, "first")) is True
        assert await bounded(lead.compare_exchange(None, "second")) is False
        v = await bounded(other.set("third"))
        await settled(cells, v)
        assert all(c.get() == "third" for c in cells)

        lead, follow, other = leader_first(onces)
        waiting = asyncio.ensure_future(other.wait())
        await bounded(follow.set("winner"))
        v = await bounded(lead.set("late"))
        assert await bounded(waiting) == "winner"
        await settled(onces, v)
        assert all(o.get() == "winner" and o.is_set for o in onces)

        lead, follow, other = leader_first(pqs)
        await bounded(follow.insert("low", 1, 1.0))
        await bounded(lead.insert("high", 2, 9))
        await bounded(other.insert("mid", 3, 5))
        await bounded(follow.update_priority("low", 7))
        popped = await bounded(other.pop_min())
        assert popped == mc.Entry("mid", 3, 5)
        v = await bounded(lead.remove("zz"))
        await settled(pqs, v)
        for pq in pqs:
            assert pq.peek_min() == mc.Entry("low", 1, 7)
            assert pq.peek_max() == mc.Entry("high", 2, 9)
            assert len(pq) == 2 and "low" in pq and pq.get("mid") is None
        assert await bounded(lead.pop_max()) == mc.Entry("high", 2, 9)

        lead, follow, other = leader_first(counters)
        await asyncio.gather(*(bounded(c.add(2)) for c in counters))
        v = await bounded(follow.add(-1))
        await settled(counters, v)
        assert all(c.value == 5 for c in counters)
        await settled(counters, await bounded(other.set(-7)))
        assert all(c.value == -7 for c in counters)

        lead, follow, other = leader_first(queues)
        assert await bounded(follow.put("a")) is True
        assert await bounded(lead.put("b", maxsize=2)) is True
        assert await bounded(other.put("c", maxsize=2)) is False
        assert await bounded(lead.put("d")) is True
        for q in queues:
            await bounded(q.barrier())
        assert all(len(q) == 3 and q.peek() == "a" for q in queues)
        taken = await asyncio.gather(*(bounded(q.get()) for q in queues))
        assert sorted(taken) == ["a", "b", "d"]  # each item to exactly one caller
        assert await bounded(follow.get()) is None

        for handles in (maps, vecs, sets, cells, onces, pqs, counters, queues):
            for h in handles:
                await h.leave()


async def test_bad_arguments_raise_at_the_call_and_send_nothing() -> None:
    async with networks(1) as nets:
        m = mc.Map[Any, Any].writer(nets[0], "m", consensus=fast())
        await bounded(m.group.when().leader_elected())
        before = m.group.committed()
        with pytest.raises(TypeError, match="hashable"):
            await m.insert([1, 2], 1)
        with pytest.raises(mosaik.CodecError):
            await m.insert("k", object())
        with pytest.raises(TypeError):
            await mc.Counter.writer(nets[0], "n", consensus=fast()).add(1.5)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="ttl"):
            await mc.Lock.writer(nets[0], "l", consensus=fast()).try_acquire("x", ttl=0)
        with pytest.raises(mosaik.ConfigError):
            mc.Map.writer(nets[0], "")
        assert m.group.committed() == before


async def test_barrier_lets_local_reads_see_every_write_committed_before_it() -> None:
    async with three() as nets:
        maps = on_all(nets, lambda n: mc.Map[str, int].writer(n, "m", consensus=fast()))
        await formed(maps)
        lead, *followers = leader_first(maps)
        for i in range(50):
            v = await bounded(lead.insert(f"k{i}", i))
            for f in followers:
                at = await bounded(f.barrier())
                assert at >= v and f.version >= v and f.get(f"k{i}") == i


async def test_a_reader_never_leads_and_refuses_writes() -> None:
    async with three() as nets:
        cfg = fast()
        writers = [mc.Map[str, int].writer(n, "m", consensus=cfg) for n in nets[:2]]
        reader = mc.Map[str, int].reader(nets[2], "m", consensus=cfg)
        assert reader.group.id == writers[0].group.id and not reader.writable
        await formed([*writers, reader])
        v = await bounded(writers[0].insert("a", 1))
        await bounded(reader.when().reaches(v))
        assert reader.get("a") == 1
        with pytest.raises(mc.ReadOnlyError, match="reader"):
            await reader.insert("b", 2)
        lead = next(w for w in writers if w.group.is_leader())
        await bounded(lead.leave())
        writers.remove(lead)
        survivor = writers[0]
        await eventually(lambda: survivor.group.is_leader(), 5.0, "the writer leads")
        v = await bounded(survivor.insert("c", 3))
        await bounded(reader.when().reaches(v))
        assert reader.get("c") == 3 and not reader.group.is_leader()
        assert reader.group.leader() == survivor.group.leader()


async def test_collections_of_one_name_but_different_types_never_bond() -> None:
    async with networks(2, chain=True) as nets:
        key = mosaik.GroupKey.generate()
        a = mc.Map.writer(nets[0], "shared", key=key, consensus=fast())
        b = mc.Set.writer(nets[1], "shared", key=key, consensus=fast())
        c = mc.Map.writer(nets[1], "shared", key=key, consensus=fast())
        other = mc.Map.writer(nets[1], "other", key=key, consensus=fast())
        assert len({a.group.id, b.group.id, other.group.id}) == 3 and a.group.id == c.group.id
        await eventually(lambda: len(a.group.bonds()) == 1, 5.0, "the two maps bond")
        await asyncio.sleep(0.5)
        assert len(b.group.bonds()) == 0 and len(other.group.bonds()) == 0
        # Without a key, the key is derived from the network id and the name.
        d = mc.Map.writer(nets[0], "derived", consensus=fast())
        e = mc.Map.writer(nets[1], "derived", consensus=fast())
        assert d.group.id == e.group.id != a.group.id
        # Joining twice on one network shares one group and one replica.
        again = mc.Map.writer(nets[0], "shared", key=key, consensus=fast())
        assert again.group is a.group


async def test_a_late_joiner_catches_up_from_a_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    from mosaik.collections._map import MapMachine

    monkeypatch.setattr(MapMachine, "snapshot_every", 20)
    restores: list[int] = []
    real_restore = MapMachine.restore

    def counting_restore(self: MapMachine, data: bytes) -> None:
        restores.append(len(data))
        real_restore(self, data)

    monkeypatch.setattr(MapMachine, "restore", counting_restore)
    key = mosaik.GroupKey.generate()
    async with three() as nets:
        early = [mc.Map[str, int].writer(n, "m", key=key, consensus=fast()) for n in nets[:2]]
        await formed(early)
        # Snapshots every 20 entries; the log is compacted behind the one
        # before the last, so 100 entries leave only the last 40 or so.
        for i in range(0, 300, 3):
            await bounded(early[i % 2].extend({f"k{j}": j for j in range(i, i + 3)}))
        v = await bounded(early[0].remove("k0"))
        late = mc.Map[str, int].writer(nets[2], "m", key=key, consensus=fast())
        await bounded(late.when().reaches(v), 10.0)
        assert restores, "the late joiner restored no snapshot"
        assert dict(late.items()) == dict(early[0].items()) and len(late) == 299


async def test_a_take_retried_with_its_request_id_returns_the_same_item_once() -> None:
    async with three() as nets:
        queues = on_all(nets, lambda n: mc.Queue[str].writer(n, "q", consensus=fast()))
        await formed(queues)
        lead, follow, other = leader_first(queues)
        for item in ("a", "b", "c"):
            await bounded(lead.put(item))
        first = await bounded(follow.get(request_id=b"take-1"))
        again = await bounded(other.get(request_id=b"take-1"))  # as after CommandUnknown
        assert first == again == "a"
        assert await bounded(follow.get()) == "b"
        assert len(follow) == 1
        vecs = on_all(nets, lambda n: mc.Vec[int].writer(n, "v", consensus=fast()))
        await formed(vecs)
        await bounded(vecs[0].extend([1, 2, 3]))
        assert await bounded(vecs[1].pop_back(request_id=b"p")) == 3
        assert await bounded(vecs[2].pop_back(request_id=b"p")) == 3
        assert await bounded(vecs[0].pop_back()) == 2


# -- the lock -------------------------------------------------------------------


async def locks_on(nets: list[mosaik.Network]) -> list[mc.Lock]:
    """A lock on every network, with a majority quorum (2 of 3): a lock's
    guarantees need one, or a cut-off minority goes on granting alone."""
    locks = [mc.Lock.writer(n, "locks", consensus=fast(min_quorum=2)) for n in nets]
    await formed(locks)
    return locks


async def test_concurrent_acquirers_never_hold_one_lock_at_once_and_tokens_grow() -> None:
    async with three() as nets:
        locks = await locks_on(nets)
        held: list[tuple[int, float, float]] = []
        inside = 0

        async def worker(lock: mc.Lock) -> None:
            nonlocal inside
            for _ in range(4):
                async with lock.acquire("job", ttl=2.0, timeout=20) as lease:
                    inside += 1
                    assert inside == 1, "two holders at once"
                    start = time.monotonic()
                    await asyncio.sleep(0.02)
                    inside -= 1
                    held.append((lease.token, start, time.monotonic()))

        await bounded(asyncio.gather(*(worker(lock) for lock in locks)), 60.0)
        held.sort(key=lambda h: h[1])
        tokens = [h[0] for h in held]
        assert len(held) == 12 and tokens == sorted(tokens) and len(set(tokens)) == 12
        assert all(a[2] <= b[1] for a, b in itertools.pairwise(held))


async def test_a_holder_that_stops_renewing_loses_the_lock_after_its_ttl() -> None:
    async with three() as nets:
        locks = await locks_on(nets)
        ttl = 1.0
        lease = await bounded(locks[1].try_acquire("job", ttl=ttl))
        # The grant is applied on the caller's node when it returns; the
        # barrier makes member 0's local read see it too.
        await bounded(locks[0].barrier())
        assert lease is not None and "job" in locks[0]
        assert await bounded(locks[2].try_acquire("job", ttl=ttl)) is None
        await asyncio.sleep(0.5)  # it renews in the background meanwhile
        last = lease.deadline - ttl  # when it sent its last successful renewal
        lease._keeping.keeper.cancel()  # type: ignore[union-attr]  # the holder stops renewing
        taken = await bounded(locks[2].acquire("job", ttl=ttl, timeout=10))
        lost_after = time.monotonic() - last
        election = fast().election_timeout.total_seconds()
        print(f"lock lost {lost_after:.3f} s after the last renewal (ttl {ttl} s)")
        assert ttl <= lost_after <= ttl + election + 1.0
        assert taken.token > lease.token
        await taken.release()


async def test_a_holder_cut_off_from_its_group_learns_it_lost_the_lock() -> None:
    async with three() as nets:
        locks = await locks_on(nets)
        lease = await bounded(locks[0].try_acquire("job", ttl=1.0))
        assert lease is not None and lease.held
        for n in nets[1:]:
            await n.close()
        why = await bounded(lease.lost(), 5.0)
        assert not lease.held and "renewed" in why
        assert time.monotonic() >= lease.deadline


async def test_a_lease_outlives_a_leader_change_with_its_token() -> None:
    async with three() as nets:
        locks = await locks_on(nets)
        lead = next(lock for lock in locks if lock.group.is_leader())
        holder = next(lock for lock in locks if lock is not lead)
        lease = await bounded(holder.try_acquire("job", ttl=1.5))
        assert lease is not None
        await bounded(lead.group.leave())
        rest = [lock for lock in locks if lock is not lead]
        await eventually(lambda: any(lock.group.is_leader() for lock in rest), 5.0, "new leader")
        await asyncio.sleep(2.5)  # well past the ttl: renewals went to the new leader
        assert lease.held and await bounded(lease.renew())
        assert all(lock.token("job") == lease.token for lock in rest)
        await bounded(lease.release())
        assert await bounded(lease.lost()) == "released"
        await eventually(lambda: all("job" not in lock for lock in rest), 5.0, "released")


async def test_the_typed_user_program_runs() -> None:
    from typed_collections import use_every_collection

    async with networks(2, chain=True) as nets:
        await bounded(use_every_collection(nets[0], nets[1], fast()), 30.0)


async def test_the_jobs_example_does_every_job_exactly_once_across_a_leader_leaving() -> None:
    from mosaik.examples import jobs

    lines: list[str] = []
    assert await bounded(jobs.run(9, lines.append), 90.0), "\n".join(lines)
    assert any("leaves" in line for line in lines)


def snapshot_files(path: Path) -> list[Path]:
    return sorted(path.glob("snapshot-*.snap"))


async def test_a_collection_on_disk_comes_back_after_a_restart_with_its_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mosaik.collections._priority_queue import PriorityQueueMachine

    monkeypatch.setattr(PriorityQueueMachine, "snapshot_every", 25)
    secret = os.urandom(32)
    key = mosaik.GroupKey.generate()
    want: list[mc.Entry[str, int]] = []
    for run in range(2):
        builder = mosaik.Network.builder("durable-collections").with_secret_key(secret)
        async with await bounded(builder.build()) as net:
            pq = mc.PriorityQueue[str, int].writer(
                net, "pq", key=key, consensus=fast(), storage=mosaik.DiskLogStore(tmp_path)
            )
            await bounded(pq.group.when().online())
            if run == 0:
                for i in range(60):
                    await bounded(pq.insert(f"k{i}", i, priority=i % 7))
                await bounded(pq.pop_min())
                want = sorted(
                    (e for e in map(pq.get, [f"k{i}" for i in range(60)]) if e),
                    key=lambda e: (e.priority, int(e.key[1:])),
                )
            else:
                await bounded(pq.barrier())
                assert len(pq) == 59
                assert [await bounded(pq.pop_min()) for _ in range(59)] == want
    assert snapshot_files(tmp_path), "no snapshot was written"


async def test_acquire_adopts_a_grant_whose_answer_was_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with three() as nets:
        locks = await locks_on(nets)
        real_call = mc.Lock._call
        lost: list[float] = []

        async def lose_the_first_answer(self: mc.Lock, command: list[Any], rid: Any) -> Any:
            result = await real_call(self, command, rid)
            if not lost:
                lost.append(time.monotonic())
                raise mosaik.CommandUnknown("the answer was lost", [command], rid)
            return result

        monkeypatch.setattr(mc.Lock, "_call", lose_the_first_answer)
        lease = await bounded(locks[1].acquire("job", ttl=2.0, timeout=5))
        assert lost, "the first answer was not lost"
        # The first attempt granted; the second got that grant's token back,
        # and the lease counts from the first attempt.
        assert lease.token == 1 and locks[1].token("job") == 1
        assert lease.deadline <= lost[0] + 2.0
        monkeypatch.undo()
        await bounded(lease.release())
        assert await bounded(locks[0].try_acquire("job", ttl=1.0)) is not None


async def test_a_node_is_a_reader_or_a_writer_of_a_collection_not_both() -> None:
    async with networks(1) as nets:
        mc.Map.writer(nets[0], "m", consensus=fast())
        with pytest.raises(mosaik.ConfigError, match="writer already"):
            mc.Map.reader(nets[0], "m", consensus=fast())
        mc.Set.reader(nets[0], "s", consensus=fast())
        with pytest.raises(mosaik.ConfigError, match="reader already"):
            mc.Set.writer(nets[0], "s", consensus=fast())


async def test_values_compare_by_type_and_maps_extend_from_maps() -> None:
    async with three() as nets:
        maps = on_all(nets, lambda n: mc.Map[str, Any].writer(n, "m", consensus=fast()))
        await formed(maps)
        await bounded(maps[0].insert("flag", 1))
        assert await bounded(maps[1].compare_exchange("flag", True, 2)) is False
        assert await bounded(maps[1].compare_exchange("flag", 1.0, 2)) is False
        assert await bounded(maps[1].compare_exchange("flag", 1, 2)) is True
        other = mc.Map[str, Any].writer(nets[0], "other", consensus=fast())
        await bounded(other.group.when().leader_elected())
        await bounded(other.extend({"xy": 1, "zw": 2}))
        await bounded(maps[2].extend(other))
        assert maps[2].get("xy") == 1 and maps[2].get("zw") == 2 and "x" not in maps[2]
        queue = mc.Queue[Any].writer(nets[0], "q", consensus=fast())
        with pytest.raises(ValueError, match="None"):
            await queue.put(None)


async def test_a_dropped_lease_is_released_and_a_failing_keeper_loses_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gc

    async with three() as nets:
        locks = await locks_on(nets)
        with pytest.warns(ResourceWarning, match="dropped"):
            assert await bounded(locks[0].try_acquire("dropped", ttl=5.0)) is not None
            gc.collect()
        # Released long before its ttl of 5 s would have run out.
        assert await bounded(locks[1].acquire("dropped", ttl=1.0, timeout=2.0)) is not None

        lease = await bounded(locks[2].try_acquire("kept", ttl=1.0))
        assert lease is not None

        async def refuse(*_: Any) -> Any:
            raise mosaik.CommandError("a renewal that fails in an unexpected way")

        monkeypatch.setattr(mc.Lock, "_call", refuse)
        why = await bounded(lease.lost(), 5.0)
        assert "renewed" in why and not lease.held
