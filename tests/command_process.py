"""A group member for the command-path tests, in its own process, driven over stdin.

The replicated machine is a `Book`: for every string command (an id) it
records the log indices it was applied at, and for every bytes command (a
blob) its index, length, first byte and sha256, so that a test can compare
what each member applied, command by command.

Prints ``ADDR <endpoint-addr>`` once the group is joined, then answers one
line per command read on stdin:

- ``status`` -> ``STATUS <leader-hex|none> <is_leader 0|1> <committed> <last index>
  <bonds> <voters>`` (voters: itself and the bonded peers that count toward a quorum)
- ``blob SIZE BYTE`` -> executes SIZE bytes of BYTE: ``BLOB OK <index> <seconds>``
  | ``BLOB TOOLARGE <size> <limit> <committed before> <committed after>``
  | ``BLOB OFFLINE`` | ``BLOB UNKNOWN`` | ``BLOB TIMEOUT`` | ``BLOB ERROR <what>``
- ``exec ID`` -> executes ID with request id ID, retrying with the error's
  request id after ``CommandUnknown`` / ``CommandOffline`` (at most
  ``EXEC_ATTEMPTS`` times): ``EXEC OK <index> <attempts>`` | ``EXEC FAILED <what>``
- ``load NAME COUNT INFLIGHT PACE MODE SECONDS`` -> ``LOADING``; a loader then
  runs INFLIGHT clients that execute commands ``NAME.<n>`` (at most COUNT in
  all, for at most SECONDS, PACE seconds apart per client) and prints one
  ``R <id> ...`` line per outcome, then ``LOADED <ok> <unknown> <offline>``:
  - MODE ``once``: every command is executed once, without a request id:
    ``R <id> OK <index>`` | ``R <id> OFFLINE`` | ``R <id> UNKNOWN``
    | ``R <id> TIMEOUT`` | ``R <id> ERROR <what>``.
  - MODE ``keyed``: with request id ``<id>``, retried with ``err.request_id``
    until OK (at most ``KEYED_ATTEMPTS`` attempts): ``R <id> UNKNOWN`` and
    ``R <id> OFFLINE`` per failed attempt, then ``R <id> OK <index> <attempts>
    <seen>`` | ``R <id> GAVEUP`` | ``TIMEOUT`` | ``ERROR``. After an UNKNOWN,
    a strong query (read index confirmed by a leader, applied here) asks
    whether the id is applied already; ``<seen>`` is the index it was seen
    applied at before a retry (the earlier attempt had committed, so the
    retry must apply nothing and answer that index), ``-`` if never.
- ``stop`` -> ``STOPPED`` once the loader stopped and nothing it sent is in flight.
- ``reach INDEX`` -> ``REACHED <committed>`` once INDEX is committed and applied
  here | ``REACH TIMEOUT``.
- ``state`` -> ``STATE <position> <json of {"ids": {id: [indices]}, "blobs": [...]}>``
- ``quit`` -> closes the network and exits.

With ``--dir`` the log is on disk, so that a restarted process (same
``--secret`` and ``--dir``) rejoins as the same peer with its term, vote and log.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import sys
import time
from typing import Any

from process_io import commands, member_arguments, network_builder, stdin_reader
from timings import FAST

import mosaik

# Every call is bounded, so that a hang shows up as an answer instead of a
# silent test timeout.
CALL_LIMIT = 8.0
BLOB_LIMIT = 60.0
REACH_LIMIT = 15.0
KEYED_ATTEMPTS = 40
EXEC_ATTEMPTS = 5
STRONG_ATTEMPTS = 3
VOTERS = "mosaik.groups.raft.committee.voters"


class Book(mosaik.StateMachine):
    """Where every command was applied; what every blob was."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.ids: dict[str, list[int]] = {}
        self.blobs: list[list[Any]] = []

    def signature(self) -> str:
        return "command_book_v1"

    def apply(self, command: Any, ctx: mosaik.ApplyContext) -> int:
        index = ctx.log_position.index
        if isinstance(command, bytes):
            digest = hashlib.sha256(command).hexdigest()
            self.blobs.append([index, len(command), command[0], digest])
        else:
            self.ids.setdefault(command, []).append(index)
        return index

    def query(self, query: Any) -> Any:
        if isinstance(query, list) and query[0] == "has":
            return self.ids.get(query[1])
        return {"ids": self.ids, "blobs": self.blobs}


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def failure(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".replace("\n", " ")


class Loader:
    def __init__(self, group: mosaik.Group[Book]) -> None:
        self.group = group
        self.task: asyncio.Task[None] | None = None
        self.stopping = False

    def start(
        self, name: str, count: int, inflight: int, pace: float, keyed: bool, seconds: float
    ) -> None:
        self.stopping = False
        self.task = asyncio.create_task(self._run(name, count, inflight, pace, keyed, seconds))

    async def stop(self) -> None:
        self.stopping = True
        if self.task is not None:
            await self.task
            self.task = None

    async def _run(
        self, name: str, count: int, inflight: int, pace: float, keyed: bool, seconds: float
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        issued = 0
        tally = {"OK": 0, "UNKNOWN": 0, "OFFLINE": 0}

        async def client() -> None:
            nonlocal issued
            while not self.stopping and issued < count and loop.time() < deadline:
                command_id = f"{name}.{issued}"
                issued += 1
                if keyed:
                    await self._keyed(command_id, pace, tally)
                else:
                    await self._once(command_id, tally)
                await asyncio.sleep(pace)  # pacing only: the next command's rate

        await asyncio.gather(*(client() for _ in range(inflight)))
        say(f"LOADED {tally['OK']} {tally['UNKNOWN']} {tally['OFFLINE']}")

    async def _once(self, command_id: str, tally: dict[str, int]) -> None:
        try:
            index = await asyncio.wait_for(self.group.execute(command_id), CALL_LIMIT)
        except mosaik.CommandOffline:
            tally["OFFLINE"] += 1
            say(f"R {command_id} OFFLINE")
        except mosaik.CommandUnknown:
            tally["UNKNOWN"] += 1
            say(f"R {command_id} UNKNOWN")
        except TimeoutError:
            say(f"R {command_id} TIMEOUT")
        except Exception as exc:  # reported to the test, which fails on it
            say(f"R {command_id} ERROR {failure(exc)}")
        else:
            tally["OK"] += 1
            say(f"R {command_id} OK {index}")

    async def _keyed(self, command_id: str, pace: float, tally: dict[str, int]) -> None:
        request_id = command_id.encode()
        seen = "-"
        for attempt in range(1, KEYED_ATTEMPTS + 1):
            try:
                index = await asyncio.wait_for(
                    self.group.execute(command_id, request_id=request_id), CALL_LIMIT
                )
            except mosaik.CommandUnknown as err:
                tally["UNKNOWN"] += 1
                if err.request_id != command_id.encode():
                    say(f"R {command_id} ERROR CommandUnknown.request_id {err.request_id!r}")
                    return
                say(f"R {command_id} UNKNOWN")
                request_id = err.request_id
                if seen == "-":
                    seen = await self._applied_at(command_id)
                continue
            except mosaik.CommandOffline:
                tally["OFFLINE"] += 1
                say(f"R {command_id} OFFLINE")
                await asyncio.sleep(pace)  # pacing only
                continue
            except TimeoutError:
                say(f"R {command_id} TIMEOUT")
                return
            except Exception as exc:
                say(f"R {command_id} ERROR {failure(exc)}")
                return
            tally["OK"] += 1
            say(f"R {command_id} OK {index} {attempt} {seen}")
            return
        say(f"R {command_id} GAVEUP")

    async def _applied_at(self, command_id: str) -> str:
        """The index ``command_id`` is applied at as a strong read sees it
        (``-``: not applied, or no leader confirmed a read in a few tries)."""
        for _ in range(STRONG_ATTEMPTS):
            try:
                res = await asyncio.wait_for(
                    self.group.query(["has", command_id], mosaik.Consistency.STRONG), CALL_LIMIT
                )
            except (mosaik.QueryOffline, TimeoutError):
                continue
            return "-" if res.result is None else str(res.result[0])
        return "-"


async def blob(group: mosaik.Group[Book], size: int, byte: int) -> str:
    data = bytes([byte]) * size
    before = group.committed()
    start = time.perf_counter()
    try:
        index = await asyncio.wait_for(group.execute(data), BLOB_LIMIT)
    except mosaik.CommandTooLarge as exc:
        return f"BLOB TOOLARGE {exc.size} {exc.limit} {before} {group.committed()}"
    except mosaik.CommandOffline:
        return "BLOB OFFLINE"
    except mosaik.CommandUnknown:
        return "BLOB UNKNOWN"
    except TimeoutError:
        return "BLOB TIMEOUT"
    except Exception as exc:
        return f"BLOB ERROR {failure(exc)}"
    return f"BLOB OK {index} {time.perf_counter() - start:.4f}"


async def execute_keyed(group: mosaik.Group[Book], command_id: str) -> str:
    request_id = command_id.encode()
    what = "no attempt"
    for attempt in range(1, EXEC_ATTEMPTS + 1):
        try:
            index = await asyncio.wait_for(
                group.execute(command_id, request_id=request_id), CALL_LIMIT
            )
        except mosaik.CommandUnknown as err:
            assert err.request_id is not None
            request_id, what = err.request_id, "UNKNOWN"
            continue
        except mosaik.CommandOffline:
            what = "OFFLINE"
            continue
        except Exception as exc:
            return f"EXEC FAILED {failure(exc)}"
        return f"EXEC OK {index} {attempt}"
    return f"EXEC FAILED {EXEC_ATTEMPTS} attempts, last {what}"


async def answer(group: mosaik.Group[Book], loader: Loader, words: list[str]) -> str:
    verb = words[0]
    if verb == "status":
        leader = group.leader()
        leader_hex = bytes(leader).hex() if leader is not None else "none"
        return (
            f"STATUS {leader_hex} {int(group.is_leader())} {group.committed()} "
            f"{group.log_position().index} {len(group.bonds())} {int(group.metrics()[VOTERS])}"
        )
    if verb == "blob":
        return await blob(group, int(words[1]), int(words[2]))
    if verb == "exec":
        return await execute_keyed(group, words[1])
    if verb == "load":
        name, count, inflight, pace, mode, seconds = words[1:7]
        loader.start(name, int(count), int(inflight), float(pace), mode == "keyed", float(seconds))
        return "LOADING"
    if verb == "stop":
        await asyncio.wait_for(loader.stop(), CALL_LIMIT * KEYED_ATTEMPTS)
        return "STOPPED"
    if verb == "reach":
        try:
            await asyncio.wait_for(group.when().committed().reaches(int(words[1])), REACH_LIMIT)
        except TimeoutError:
            return "REACH TIMEOUT"
        return f"REACHED {group.committed()}"
    if verb == "state":
        res = await group.query("state")
        return f"STATE {res.at_position} {json.dumps(res.result, separators=(',', ':'))}"
    return f"ERROR unknown command {' '.join(words)!r}"


async def main() -> None:
    parser = member_arguments()
    parser.add_argument("--min-quorum", type=int, default=2)
    parser.add_argument("--forward-timeout", type=float, default=FAST["forward_timeout"])
    parser.add_argument("--election-timeout", type=float, default=FAST["election_timeout"])
    parser.add_argument("--dir", default=None, help="keep the log on disk here")
    args = parser.parse_args()
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if "COMMAND_NODE_LOG" in os.environ:  # more of mosaik's log, to look into a failure
        mosaik.set_log_level(logging.getLevelName(os.environ["COMMAND_NODE_LOG"]))

    stdin = await stdin_reader()
    builder = network_builder("command-test", args.secret, args.bootstrap)
    config = mosaik.ConsensusConfig(
        **{
            **FAST,
            "forward_timeout": args.forward_timeout,
            "election_timeout": args.election_timeout,
        },
        min_quorum=args.min_quorum,
    )
    async with await builder.build() as net:
        group = (
            net.groups()
            .with_key(mosaik.GroupKey.from_hex(args.key))
            .with_state_machine(Book())
            .with_consensus_config(config)
        )
        if args.dir is not None:
            group = group.with_log_storage(mosaik.DiskLogStore(args.dir))
        joined = group.join()
        loader = Loader(joined)
        say(f"ADDR {net.local.addr}")
        try:
            async for words in commands(stdin):
                say(await answer(joined, loader, words))
        finally:
            loader.stopping = True
            if loader.task is not None:
                loader.task.cancel()


if __name__ == "__main__":
    asyncio.run(main())
