"""`mosaik node` as on several hosts: three nodes inside a network namespace
this test creates, each listening on the wildcard address and advertising
its own address of the namespace's loopback (127.0.0.2-4), with every new
flow to 127.0.0.1 dropped there, so a node that advertised the loopback
address its wildcard stands for could not be reached. They must form one group.

Needs root (``ip netns``, ``nft``); skips with the reason otherwise."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cli_node import Node
from nemesis.netns import Namespace, Unavailable, member_address, missing_tools

import mosaik

TIMEOUT = 20.0
PORTS = (7771, 7772, 7773)
# A status line of a node bonded to both others, with the leader it knows.
MESHED = r" status: role=\w+ leader=(?!none)(\w+) .* bonds=2 version=\d+$"


@contextmanager
def namespace() -> Iterator[Namespace]:
    reason = missing_tools()
    if reason is not None:
        pytest.skip(reason)
    try:
        with Namespace() as ns:
            yield ns
    except Unavailable as why:
        pytest.skip(str(why))


def test_three_nodes_on_wildcard_listeners_advertise_their_own_addresses(
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "group.key"
    key_file.write_text(mosaik.GroupKey.generate().to_hex())
    with namespace() as ns:
        # No node can start talking to 127.0.0.1 in the namespace (replies to
        # it still pass: a wildcard socket sends from it), so a node that
        # advertised the loopback address could not be reached.
        rule = ["nft", "add", "rule", "inet", "nemesis", "output", "ip", "daddr", "127.0.0.1"]
        subprocess.run(ns.exec_args([*rule, "ct", "state", "new", "drop"]), check=True, timeout=10)
        common = ["--key-file", str(key_file), "--timings", "fast", "--status-interval", "0.1"]
        common += ["--min-quorum", "2"]
        nodes: list[Node] = []
        try:
            first_address = ""
            for i, port in enumerate(PORTS):
                args = [*common, "--listen", f"0.0.0.0:{port}"]
                args += ["--advertise", f"{member_address(i)}:{port}"]
                if first_address:
                    args += ["--bootstrap", first_address]
                node = Node(args, prefix=ns.exec_args([]))
                nodes.append(node)
                address = node.address()
                # Exactly the advertised address: never the wildcard, never loopback.
                assert address.split("@")[1] == f"{member_address(i)}:{port}", address
                first_address = first_address or address
            leaders = set()
            for node in nodes:
                line = node.expect(lambda s: bool(re.search(MESHED, s)), TIMEOUT, "a full mesh")
                leaders.add(re.findall(MESHED, line)[0])
            assert len(leaders) == 1, leaders
        finally:
            stopped = [node.stop() for node in nodes]
        assert [code for code, _ in stopped] == [0, 0, 0], stopped
