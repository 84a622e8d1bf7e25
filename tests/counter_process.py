"""A node running a replicated counter in its own process, driven over stdin.

Prints ``ADDR <endpoint-addr>``, then answers one line per command read on
stdin:

- ``execute N``  -> ``OK <index>`` | ``OFFLINE`` | ``TIMEOUT`` | ``ERROR <what>``
- ``status``     -> ``STATUS <leader-hex|none> <is_leader 0|1> <committed> <value>``
- ``strong``     -> ``STRONG <value> <position>`` | ``QUERYOFFLINE`` | ``TIMEOUT``
                    | ``ERROR <what>``
- ``bonds``      -> ``BONDS <number of bonds>``
- ``quit``       -> closes the network and exits.

Commands are handled one after another; the node keeps running meanwhile
because stdin is read through asyncio.
"""

from __future__ import annotations

import asyncio
import sys

from machines import Counter
from process_io import commands, member_arguments, network_builder, stdin_reader
from timings import FAST

import mosaik

# A command that takes longer than this is reported as TIMEOUT, so that a
# hang in the node shows up as an answer instead of a silent test timeout.
CALL_LIMIT = 8.0


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def answer(group: mosaik.Group[Counter], words: list[str]) -> str:
    verb = words[0]
    if verb == "execute":
        try:
            index = await asyncio.wait_for(group.execute({"add": int(words[1])}), CALL_LIMIT)
        except mosaik.CommandOffline:
            return "OFFLINE"
        except mosaik.CommandUnknown:
            return "UNKNOWN"
        except TimeoutError:
            return "TIMEOUT"
        except Exception as exc:  # reported to the test, which fails on it
            return f"ERROR {type(exc).__name__}: {exc}"
        return f"OK {index}"
    if verb == "strong":
        try:
            res = await asyncio.wait_for(group.query(None, mosaik.Consistency.STRONG), CALL_LIMIT)
        except mosaik.QueryOffline:
            return "QUERYOFFLINE"
        except TimeoutError:
            return "TIMEOUT"
        except Exception as exc:
            return f"ERROR {type(exc).__name__}: {exc}"
        return f"STRONG {res.result} {res.at_position}"
    if verb == "status":
        leader = group.leader()
        leader_hex = bytes(leader).hex() if leader is not None else "none"
        return (
            f"STATUS {leader_hex} {int(group.is_leader())} "
            f"{group.committed()} {group.machine.value}"
        )
    if verb == "bonds":
        return f"BONDS {len(group.bonds())}"
    return f"ERROR unknown command {' '.join(words)!r}"


async def main() -> None:
    parser = member_arguments()
    parser.add_argument("--min-quorum", type=int, default=1)
    args = parser.parse_args()

    stdin = await stdin_reader()
    builder = network_builder("failover-test", args.secret, args.bootstrap)
    config = mosaik.ConsensusConfig(**FAST, min_quorum=args.min_quorum)
    async with await builder.build() as net:
        group = (
            net.groups()
            .with_key(mosaik.GroupKey.from_hex(args.key))
            .with_state_machine(Counter())
            .with_consensus_config(config)
            .join()
        )
        say(f"ADDR {net.local.addr}")
        async for words in commands(stdin):
            say(await answer(group, words))


if __name__ == "__main__":
    asyncio.run(main())
