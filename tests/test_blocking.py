"""`mosaik.blocking`: the asyncio API without ``await``, for threads. Many
threads share one in-process cluster; a ``timeout`` raises the builtin
`TimeoutError` and cancels the wait; mosaik's own exceptions come through
unchanged; a call from the facade's own loop thread is refused. Every wait
here is bounded."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from machines import Counter
from replication_helpers import fast

import mosaik
from conftest import FAST_GOSSIP
from mosaik import blocking

#: The bound on every wait that is expected to finish.
WAIT = 10.0

T = TypeVar("T")


def on_loop(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """What ``make()`` gives, awaited on the facade's own loop (where the
    groups' asyncio waits live); ``make`` bounds its own waits by `WAIT`."""
    future = asyncio.run_coroutine_threadsafe(make(), blocking._runner.loop())
    return future.result(WAIT + 5)


@contextmanager
def networks(count: int) -> Iterator[list[blocking.Network]]:
    """``count`` blocking networks on 127.0.0.1, bootstrapped as a chain and
    closed at the end."""
    with ExitStack() as stack:
        nets: list[blocking.Network] = []
        for _ in range(count):
            builder = blocking.Network.builder("blocking").with_gossip_interval(FAST_GOSSIP)
            if nets:
                builder = builder.with_bootstrap([nets[-1].local.addr])
            net = builder.build(timeout=WAIT)
            stack.callback(net.close, timeout=WAIT)
            nets.append(net)
        yield nets


def join(net: blocking.Network, key: mosaik.GroupKey, **consensus: Any) -> blocking.Group[Counter]:
    """A member of the counter group of ``key``; its machine records the
    indices it applied."""
    return (
        net.groups()
        .with_key(key)
        .with_state_machine(Counter(record=True))
        .with_consensus_config(fast(**consensus))
        .join()
    )


@contextmanager
def cluster(count: int) -> Iterator[list[blocking.Group[Counter]]]:
    """``count`` bonded members of one counter group with a leader elected."""
    key = mosaik.GroupKey.generate()
    with networks(count) as nets:
        groups = [join(n, key) for n in nets]
        on_loop(lambda: one_leader(groups))
        yield groups


async def one_leader(groups: list[blocking.Group[Counter]]) -> None:
    """Returns once every member names one leader, within `WAIT`. Each round
    arms a wait for every member's next leader change before it looks at
    the members, so no change between the look and the wait goes unseen."""
    async with asyncio.timeout(WAIT):
        while True:
            changes = [asyncio.ensure_future(g._aio.when().leader_changed()) for g in groups]
            try:
                leaders = {g.leader() for g in groups}
                if len(leaders) == 1 and None not in leaders:
                    return
                await asyncio.wait(changes, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for change in changes:
                    change.cancel()


async def tasks_left() -> int:
    """How many of the other tasks on the facade's loop are still running
    once they all ended, or `WAIT` passed."""
    others = asyncio.all_tasks() - {asyncio.current_task()}
    if not others:
        return 0
    _, pending = await asyncio.wait(others, timeout=WAIT)
    return len(pending)


def test_threads_executing_at_once_get_distinct_indices_and_every_command_counts() -> None:
    threads, per_thread = 6, 20
    with cluster(3) as groups:
        start = threading.Barrier(threads)
        indices: list[list[int]] = [[] for _ in range(threads)]
        errors: list[BaseException] = []

        def work(n: int) -> None:
            group = groups[n % len(groups)]
            try:
                start.wait(WAIT)
                for _ in range(per_thread):
                    indices[n].append(group.execute({"add": 1}, timeout=WAIT))
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(WAIT * 2)
        assert not any(w.is_alive() for w in workers)
        assert errors == []

        every = [i for mine in indices for i in mine]
        assert len(set(every)) == len(every) == threads * per_thread
        # One thread's calls are ordered in the log as it made them.
        assert all(mine == sorted(mine) for mine in indices)
        for group in groups:
            assert group.when().committed().reaches(max(every), timeout=WAIT) >= max(every)
            assert group.query("value", timeout=WAIT).result == threads * per_thread
            assert set(every) <= set(group.machine.applied)
            assert len(set(group.machine.applied)) == len(group.machine.applied)
        follower = next(g for g in groups if not g.is_leader())
        strong = follower.query("value", mosaik.Consistency.STRONG, timeout=WAIT)
        assert strong.result == threads * per_thread
        assert [t.name for t in threading.enumerate()].count("mosaik-blocking") == 1


def test_feeds_batches_and_every_wait_of_when_on_a_lone_leader() -> None:
    with networks(1) as (net,):
        group = join(net, mosaik.GroupKey.generate())
        assert group.when().leader_elected(timeout=WAIT) == net.local.id
        assert group.when().leader_is(net.local.id, timeout=WAIT) == net.local.id
        group.when().is_leader(timeout=WAIT)
        group.when().online(timeout=WAIT)

        fed = group.feed({"add": 1}, timeout=WAIT)
        batch = group.feed_many([{"add": 2}, {"add": 3}], timeout=WAIT)
        assert len(batch) == 2
        assert batch[0] > fed
        assert group.when().committed().reaches(batch, timeout=WAIT) >= batch[-1]
        position = group.when().log().reaches(batch, timeout=WAIT)
        assert isinstance(position, mosaik.Cursor)
        assert position.index >= batch[-1]
        executed = group.execute_many(iter([{"add": 4}, {"add": 5}]), timeout=WAIT)
        assert len(executed) == 2
        assert group.committed() >= executed[-1]
        assert group.query("value", timeout=WAIT).result == 15

        with ThreadPoolExecutor(2) as pool:
            advanced = pool.submit(group.when().committed().advanced, timeout=WAIT)
            changed = pool.submit(group.when().log().changed, timeout=WAIT)
            # Commit until both waits (which start when they reach the loop) saw one.
            deadline = time.monotonic() + WAIT
            while not (advanced.done() and changed.done()) and time.monotonic() < deadline:
                group.execute({"add": 0}, timeout=WAIT)
                futures.wait([advanced, changed], timeout=0.02)
            assert advanced.result(0) > executed[-1]
            assert changed.result(0).index > executed[-1]


def test_a_timeout_raises_the_builtin_timeout_error_and_cancels_the_wait() -> None:
    with networks(1) as (net,):
        # Alone, with min_quorum 2, it can never elect a leader.
        alone = join(net, mosaik.GroupKey.generate(), min_quorum=2)
        alone.when().offline(timeout=WAIT)
        alone.when().is_follower(timeout=WAIT)

        started = time.monotonic()
        with pytest.raises(TimeoutError, match="cancelled"):
            alone.when().leader_elected(timeout=0.3)
        assert 0.3 <= time.monotonic() - started < WAIT
        with pytest.raises(TimeoutError):
            alone.when().online(timeout=timedelta(milliseconds=200))
        with pytest.raises(TimeoutError):
            # Below the query_timeout (1 s) after which it would be QueryOffline.
            alone.query("value", mosaik.Consistency.STRONG, timeout=0.2)
        assert on_loop(tasks_left) == 0, "the timed-out waits were not cancelled"
        assert alone.leader() is None


def test_timeouts_that_are_not_durations_are_refused_before_anything_starts() -> None:
    with pytest.raises(TypeError, match="str"):
        blocking.Network.new("blocking", timeout="5")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bool"):
        blocking.Network.new("blocking", timeout=True)
    with pytest.raises(ValueError, match="negative"):
        blocking.Network.new("blocking", timeout=-1)


def test_mosaik_exceptions_come_through_unchanged() -> None:
    with networks(1) as (net,):
        group = join(net, mosaik.GroupKey.generate())
        group.when().leader_elected(timeout=WAIT)
        with pytest.raises(mosaik.NoCommands) as empty:
            group.execute_many([], timeout=WAIT)
        assert type(empty.value) is mosaik.NoCommands
        with pytest.raises(TypeError, match=r"mosaik\.Consistency"):
            group.query("value", "strong", timeout=WAIT)  # type: ignore[arg-type]

        alone = join(net, mosaik.GroupKey.generate(), min_quorum=2)
        with pytest.raises(mosaik.QueryOffline) as offline:
            alone.query("value", mosaik.Consistency.STRONG, timeout=WAIT)
        assert offline.value.query == "value"
        with pytest.raises(mosaik.CommandOffline) as unsent:
            alone.execute({"add": 1}, timeout=WAIT)
        assert unsent.value.commands == [{"add": 1}]

        group.leave(timeout=WAIT)
        with pytest.raises(mosaik.GroupTerminated):
            group.execute({"add": 1}, timeout=WAIT)


def test_a_waiting_call_from_the_facade_loop_thread_raises_runtime_error() -> None:
    with networks(1) as (net,):
        group = join(net, mosaik.GroupKey.generate())

        async def on_the_loop() -> int:
            with pytest.raises(RuntimeError, match="own event loop thread"):
                group.when().leader_elected(timeout=WAIT)
            with pytest.raises(RuntimeError, match="own event loop thread"):
                group.execute({"add": 1}, timeout=WAIT)
            # What does not wait passes straight through, there too.
            return group.committed()

        loop = blocking._runner.loop()
        assert asyncio.run_coroutine_threadsafe(on_the_loop(), loop).result(WAIT) >= 0
        # The loop is unharmed.
        group.when().leader_elected(timeout=WAIT)


def test_close_leave_and_with_blocks() -> None:
    key = mosaik.GroupKey.generate()
    with blocking.Network.new("blocking", timeout=WAIT) as net:
        assert net.groups() is net.groups()
        assert net.network_id == mosaik.Digest.from_str("blocking")
        with join(net, key) as group:
            assert join(net, key) is group
            assert group.active
            group.when().leader_elected(timeout=WAIT)
            assert group.config().group_id == group.id
        assert not group.active
        again = join(net, key)
        assert again is not group
        assert again.active
    assert net.closed
    assert not again.active
    net.close(timeout=WAIT)
    with pytest.raises(mosaik.GroupTerminated):
        again.execute({"add": 1}, timeout=WAIT)


#: A process that leaves a network open and a thread waiting on it.
LEFT_OPEN = """
import atexit, threading
import mosaik
from mosaik import blocking

nets = []
# Registered before the facade starts, so it runs after the facade's exit hook.
atexit.register(lambda: print("closed", all(n.closed for n in nets), flush=True))
nets.append(blocking.Network.new("blocking-exit", timeout=10))
group = nets[0].groups().with_key(mosaik.GroupKey.generate()).join()

waiting = threading.Event()

def wait():
    waiting.set()
    try:
        group.when().leader_changed()
    except mosaik.GroupTerminated:
        pass

threading.Thread(target=wait, daemon=True).start()
waiting.wait(10)
"""


def test_at_exit_open_networks_are_closed_and_pending_waits_do_not_hold_the_process() -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", LEFT_OPEN],
        capture_output=True,
        text=True,
        timeout=WAIT * 2,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["closed", "True"]
    assert "Traceback" not in done.stderr
    assert "Task was destroyed" not in done.stderr
    assert time.monotonic() - started < WAIT


class Totals:
    """Adds up its commands; ``apply`` returns the total after each."""

    def __init__(self) -> None:
        self.value = 0

    def signature(self) -> str:
        return "blocking_totals_v1"

    def apply(self, command: Any, ctx: mosaik.ApplyContext) -> int:
        self.value += command["add"]
        return self.value

    def query(self, query: Any) -> int:
        return self.value


def test_call_and_call_many_return_what_apply_returned() -> None:
    with networks(1) as (net,):
        builder = net.groups().with_key(mosaik.GroupKey.generate()).with_state_machine(Totals())
        group = builder.with_consensus_config(fast()).join()
        group.when().leader_elected(timeout=WAIT)
        assert group.call({"add": 2}, timeout=WAIT) == 2
        assert group.call_many([{"add": 3}, {"add": 4}], timeout=WAIT) == [5, 9]


def test_a_request_id_makes_a_retry_apply_once() -> None:
    with networks(1) as (net,):
        group = join(net, mosaik.GroupKey.generate())
        group.when().leader_elected(timeout=WAIT)
        first = group.execute({"add": 1}, request_id=b"retry-1", timeout=WAIT)
        assert group.execute({"add": 1}, request_id=b"retry-1", timeout=WAIT) == first
        assert group.query("value", timeout=WAIT).result == 1
