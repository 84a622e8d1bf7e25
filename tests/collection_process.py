"""A member of every `mosaik.collections` type, in its own process, driven over stdin.

One network; one writer of each type (``Map``, ``Vec``, ``Set``, ``Cell``,
``Once``, ``PriorityQueue``, ``Counter``, ``Queue``, ``Lock``), each named
``test-<type>``, all admitted by the one ``--key`` and run with the test
timings (`timings.FAST`, ``min_quorum`` 2 by default). Every line in and out
is JSON. Prints ``{"ready": <endpoint-addr>}`` once the collections are
open, then reads one request per line, ``{"id": N, "op": ..., ...}``, and
answers each with a line carrying the same ``"id"``. Requests run
concurrently (a long lock request does not hold up a status), and every
one is bounded inside this process, so that a hang comes back as an
answer instead of a silent test timeout.

- ``status`` -> ``{"groups": {type: {"leader": hex|null, "is_leader",
  "committed", "version", "bonds", "voters"}}}``
- ``write`` ``type call args [kwargs]`` -> calls the write ``call`` of that
  type's handle with a fresh request id, retried with the same id after
  `mosaik.CommandUnknown`, `mosaik.CommandOffline` or a call that took over
  ``CALL_LIMIT`` (so a write that committed is never applied twice):
  ``{"ok": true, "result": ..., "attempts": n}`` | ``{"ok": false, "error": ...}``
- ``state`` ``[barrier]`` -> every collection's local state and version
  (after a barrier on each, if asked): ``{"state": {type: {"version", "value"}}}``
- ``read`` ``type`` ``[barrier]`` -> one collection's local value (after a
  barrier, if asked): ``{"value": ...}``
- ``reach`` ``versions`` -> once every ``{type: version}`` is applied here.

Lock requests (the lock ``test-lock``; every time is `lease_clock()`,
which is one clock for all processes of the machine):

- ``try`` ``name ttl`` -> `Lock.try_acquire` once: ``{"token": t|null, "sent",
  "deadline", "at"}`` (``sent``: when the granting acquire was sent, which
  is ``deadline - ttl``; ``at``: when the lease was in hand).
- ``acquire`` ``name ttl within`` -> `Lock.acquire` until held (asked again
  after a `mosaik.CommandUnknown`) or ``within`` seconds: as ``try``.
- ``release`` ``token`` -> ``{"released": token, "at", "ok"|"error"}``.
- ``cycle`` ``name ttl rounds hold seconds`` -> at most ``rounds`` times
  within ``seconds``: acquire, hold ``hold`` seconds (less if lost),
  release. ``{"rounds": n}`` at the end.

Every lease this process holds is watched: events (lines without ``"id"``)
``{"event": "acquired", "name", "token", "at", "deadline"}``, then ``{"event":
"renewed", "token", "sent", "deadline", "at"}`` whenever the background
renewal moved the deadline (``sent = deadline - ttl``: when the renewal
that succeeded was sent), ``{"event": "interval", "token", "acquired",
"released", "lost"}`` for each hold of a ``cycle`` (``released``: the
moment it stopped using the lease: the release, its loss, or its deadline,
whichever came first) and ``{"event": "lost", "token", "why", "at",
"deadline"}``.

``quit`` (or the end of stdin) closes the network and exits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from typing import Any

from process_io import member_arguments, network_builder, stdin_reader
from timings import FAST

import mosaik
from mosaik import collections as mc
from mosaik.collections import lease_clock

CALL_LIMIT = 8.0  # one attempt of a write
WRITE_LIMIT = 20.0  # every attempt of a write
REQUEST_LIMIT = 30.0  # any other request
WATCH_PERIOD = 0.005  # how often a lease's deadline is looked at
VOTERS = "mosaik.groups.raft.committee.voters"

TYPES: dict[str, type[mc.Collection]] = {
    "map": mc.Map,
    "vec": mc.Vec,
    "set": mc.Set,
    "cell": mc.Cell,
    "once": mc.Once,
    "pq": mc.PriorityQueue,
    "counter": mc.Counter,
    "queue": mc.Queue,
    "lock": mc.Lock,
}
WRITES: dict[str, set[str]] = {
    "map": {"insert", "remove", "extend", "clear", "compare_exchange"},
    "vec": {"push_back", "push_front", "pop_back", "pop_front", "insert", "remove"},
    "set": {"insert", "remove", "extend", "clear"},
    "cell": {"set", "clear", "compare_exchange"},
    "once": {"set"},
    "pq": {"insert", "pop_min", "pop_max", "remove", "update_priority"},
    "counter": {"add", "set"},
    "queue": {"put", "get"},
}


def say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def failure(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".replace("\n", " ")


def plain(value: Any) -> Any:
    """``value`` as JSON holds it (an `Entry` as ``[key, value, priority]``)."""
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    return value


async def contents(kind: str, handle: Any) -> Any:
    """The local state of one collection, in a form two members can compare
    (a queue, a priority queue and a lock have no local read of everything:
    their group's weak query answers it, from this node's state too)."""
    if kind == "map":
        return sorted([k, v] for k, v in handle.items())
    if kind == "vec":
        return list(handle)
    if kind == "set":
        return sorted(handle)
    if kind == "cell":
        return handle.get()
    if kind == "once":
        return [handle.is_set, handle.get()]
    if kind == "counter":
        return handle.value
    answer = (await handle.group.query(None)).result
    if kind == "pq":
        return sorted(answer)
    return answer  # queue: the items in order; lock: name -> token


class Member:
    def __init__(self, handles: dict[str, Any]) -> None:
        self.handles = handles
        self.lock: mc.Lock = handles["lock"]
        self.leases: dict[int, mc.Lease] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def handle(self, request: dict[str, Any]) -> None:
        rid = request.get("id")
        try:
            limit = REQUEST_LIMIT + request.get("seconds", 0) + request.get("within", 0)
            reply = await asyncio.wait_for(self.answer(request), limit)
        except Exception as exc:  # reported to the test, which fails on it
            reply = {"error": failure(exc)}
        say({"id": rid, **reply})

    async def answer(self, r: dict[str, Any]) -> dict[str, Any]:
        op = r["op"]
        if op == "status":
            return {"groups": {kind: self.status(h) for kind, h in self.handles.items()}}
        if op == "write":
            return await self.write(r["type"], r["call"], r.get("args", []), r.get("kwargs", {}))
        if op == "read":
            handle = self.handles[r["type"]]
            if r.get("barrier"):
                await asyncio.wait_for(handle.barrier(), CALL_LIMIT)
            return {"value": await contents(r["type"], handle)}
        if op == "state":
            if r.get("barrier"):
                for handle in self.handles.values():
                    await asyncio.wait_for(handle.barrier(), CALL_LIMIT)
            state = {}
            for kind, handle in self.handles.items():
                version = handle.version
                state[kind] = {"version": version, "value": await contents(kind, handle)}
            return {"state": state}
        if op == "reach":
            for kind, version in r["versions"].items():
                await self.handles[kind].when().reaches(version)
            return {"versions": {kind: h.version for kind, h in self.handles.items()}}
        if op == "try":
            sent = lease_clock()
            lease = await self.lock.try_acquire(r["name"], r["ttl"])
            return self.granted(lease, sent)
        if op == "acquire":
            sent = lease_clock()
            return self.granted(await self.acquire(r["name"], r["ttl"], r["within"]), sent)
        if op == "release":
            lease = self.leases[r["token"]]
            at = lease_clock()
            try:
                await asyncio.wait_for(lease.release(), CALL_LIMIT)
            except Exception as exc:
                return {"released": lease.token, "at": at, "error": failure(exc)}
            return {"released": lease.token, "at": at, "ok": True}
        if op == "cycle":
            return await self.cycle(r["name"], r["ttl"], r["rounds"], r["hold"], r["seconds"])
        return {"error": f"unknown op {op!r}"}

    def status(self, handle: Any) -> dict[str, Any]:
        group = handle.group
        leader = group.leader()
        return {
            "leader": None if leader is None else bytes(leader).hex(),
            "is_leader": group.is_leader(),
            "committed": group.committed(),
            "version": handle.version,
            "bonds": len(group.bonds()),
            "voters": int(group.metrics()[VOTERS]),
        }

    async def write(
        self, kind: str, call: str, args: list[Any], kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        if call not in WRITES[kind]:
            return {"ok": False, "error": f"{kind}.{call} is not a write"}
        method = getattr(self.handles[kind], call)
        request_id = os.urandom(16)
        deadline = lease_clock() + WRITE_LIMIT
        attempts, last = 0, "no attempt"
        while lease_clock() < deadline:
            attempts += 1
            try:
                result = await asyncio.wait_for(
                    method(*args, request_id=request_id, **kwargs), CALL_LIMIT
                )
            except mosaik.CommandUnknown as err:
                if err.request_id != request_id:
                    return {"ok": False, "error": f"CommandUnknown.request_id {err.request_id!r}"}
                last = "UNKNOWN"
            except mosaik.CommandOffline:
                last = "OFFLINE"
                await asyncio.sleep(0.05)  # pacing only: no leader yet
            except TimeoutError:
                last = "TIMEOUT"
            except Exception as exc:
                return {"ok": False, "error": failure(exc), "attempts": attempts}
            else:
                return {"ok": True, "result": plain(result), "attempts": attempts}
        return {"ok": False, "error": f"{attempts} attempts, last {last}", "attempts": attempts}

    # -- locks ----------------------------------------------------------------

    async def acquire(self, name: str, ttl: float, timeout: float) -> mc.Lease | None:
        """`Lock.acquire` until held or ``timeout``; a `CommandUnknown` (no
        answer within ``ttl`` on one attempt) is asked again."""
        deadline = lease_clock() + timeout
        while (left := deadline - lease_clock()) > 0:
            try:
                return await self.lock.acquire(name, ttl, timeout=left)
            except mosaik.CommandUnknown:
                continue
            except TimeoutError:
                return None
        return None

    def granted(self, lease: mc.Lease | None, sent: float) -> dict[str, Any]:
        at = lease_clock()
        if lease is None:
            return {"token": None, "sent": sent, "at": at}
        self.leases[lease.token] = lease
        say(
            {
                "event": "acquired",
                "name": lease.name,
                "token": lease.token,
                "at": at,
                "deadline": lease.deadline,
            }
        )
        self.spawn(self.watch(lease))
        return {
            "token": lease.token,
            "sent": lease.deadline - lease.ttl,
            "deadline": lease.deadline,
            "at": at,
        }

    async def watch(self, lease: mc.Lease) -> None:
        """Reports every move of the lease's deadline, and its loss."""
        lost = asyncio.ensure_future(lease.lost())
        deadline = lease.deadline
        try:
            while True:
                await asyncio.wait({lost}, timeout=WATCH_PERIOD)
                if lease.deadline != deadline:
                    deadline = lease.deadline
                    say(
                        {
                            "event": "renewed",
                            "token": lease.token,
                            "sent": deadline - lease.ttl,
                            "deadline": deadline,
                            "at": lease_clock(),
                        }
                    )
                if lost.done():
                    say(
                        {
                            "event": "lost",
                            "token": lease.token,
                            "why": lost.result(),
                            "at": lease_clock(),
                            "deadline": lease.deadline,
                        }
                    )
                    return
        finally:
            lost.cancel()

    async def cycle(
        self, name: str, ttl: float, rounds: int, hold: float, seconds: float
    ) -> dict[str, Any]:
        end = lease_clock() + seconds
        done = 0
        while done < rounds and (left := end - lease_clock()) > 0:
            lease = await self.acquire(name, ttl, left)
            if lease is None:
                break
            acquired = self.granted(lease, lease_clock())["at"]
            lost = asyncio.ensure_future(lease.lost())
            await asyncio.wait({lost}, timeout=hold)
            stopped = lease_clock()
            why = lost.result() if lost.done() else None
            lost.cancel()
            # It used the lease until now, unless the lease ran out first.
            released = min(stopped, lease.deadline)
            say(
                {
                    "event": "interval",
                    "token": lease.token,
                    "acquired": acquired,
                    "released": released,
                    "lost": why,
                }
            )
            try:
                await asyncio.wait_for(lease.release(), CALL_LIMIT)
            except Exception as exc:  # expires within ttl instead
                say({"event": "release-failed", "token": lease.token, "error": failure(exc)})
            done += 1
            await asyncio.sleep(0.01 * (done % 3))  # pacing only: let the others in
        return {"rounds": done}


async def main() -> None:
    parser = member_arguments()
    parser.add_argument("--min-quorum", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if "COLLECTION_NODE_LOG" in os.environ:  # more of mosaik's log, to look into a failure
        mosaik.set_log_level(logging.getLevelName(os.environ["COLLECTION_NODE_LOG"]))

    stdin = await stdin_reader()
    builder = network_builder("collections-test", args.secret, args.bootstrap)
    consensus = mosaik.ConsensusConfig(**FAST, min_quorum=args.min_quorum)
    key = mosaik.GroupKey.from_hex(args.key)
    async with await builder.build() as net:
        handles = {
            kind: cls.writer(net, f"test-{kind}", key=key, consensus=consensus)
            for kind, cls in TYPES.items()
        }
        member = Member(handles)
        say({"ready": str(net.local.addr)})
        try:
            while line := (await stdin.readline()).decode():
                if line.strip() == "quit":
                    break
                if line.strip():
                    member.spawn(member.handle(json.loads(line)))
        finally:
            for task in list(member.tasks):
                task.cancel()


if __name__ == "__main__":
    asyncio.run(main())
