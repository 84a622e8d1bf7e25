"""What the node scripts of the multi-process tests share: commands read
line by line from stdin, and a network with a fixed secret key (so that a
restarted process is the same peer) and fast gossip."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import mosaik


async def commands(stdin: asyncio.StreamReader) -> AsyncIterator[list[str]]:
    """The words of each non-empty line, until ``quit`` or the end of input
    (the test went away)."""
    while line := (await stdin.readline()).decode():
        words = line.split()
        if words == ["quit"]:
            return
        if words:
            yield words


async def stdin_reader() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def network_builder(name: str, secret: str, bootstrap: list[str]) -> mosaik.NetworkBuilder:
    return (
        mosaik.Network.builder(name)
        .with_gossip_interval(0.2)
        .with_secret_key(secret)
        .with_bootstrap(bootstrap)
    )


def member_arguments() -> argparse.ArgumentParser:
    """The arguments every group member script takes: the group key, the
    node secret (the same peer across restarts) and bootstrap addresses."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--key", required=True, help="group key, 64 hex chars")
    parser.add_argument("--secret", required=True, help="node secret, 64 hex chars")
    parser.add_argument("--bootstrap", action="append", default=[])
    return parser


async def spawn_member(
    args: list[str], stderr: Path, limit: int = 1 << 16
) -> asyncio.subprocess.Process:
    """A member process running ``args`` (after this Python), its stdin and
    stdout piped, its stderr in ``stderr``, unbuffered; ``limit`` bounds a
    line it prints."""
    with stderr.open("wb") as err:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
            limit=limit,
        )
