"""Msgpack bytes made by hand, the way the default codec's encoder would
never make them (nested deeper than `mosaik.codec.MAX_DEPTH`): what a peer
running other code or a damaged log could hold."""

from __future__ import annotations

FIXEXT = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}


def ext_tuple(payload: bytes) -> bytes:
    """Extension 1 (a tuple) holding ``payload``, with the smallest header."""
    n = len(payload)
    if n in FIXEXT:
        return bytes([FIXEXT[n], 1]) + payload
    if n < 1 << 8:
        return bytes([0xC7, n, 1]) + payload
    if n < 1 << 16:
        return b"\xc8" + n.to_bytes(2, "big") + b"\x01" + payload
    return b"\xc9" + n.to_bytes(4, "big") + b"\x01" + payload


def tuples_bytes(depth: int) -> bytes:
    """``depth`` tuples, each the only item of the one around it."""
    data = ext_tuple(b"\x90")
    for _ in range(depth - 1):
        data = ext_tuple(b"\x91" + data)
    return data
