"""Codecs turn commands, queries and results into bytes.

The default, `MSGPACK`, carries `None`, `bool`, 64-bit `int`, `float`, `str`,
`bytes`, `list`, `tuple` and `dict` and gives each back with its type
(tuples travel as a msgpack extension). Anything else raises `CodecError`
at the call that passed it, before anything is sent (``bytearray`` and
``memoryview`` are the one leniency: they travel as, and come back as,
``bytes``). A custom codec is any
object with ``encode(obj) -> bytes`` and ``decode(data) -> obj``; set it as
the ``codec`` class attribute of a state machine. Nothing here ever unpickles.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, Protocol

import msgpack

from .exceptions import CodecError

_TUPLE = 1


class Codec(Protocol):
    def encode(self, obj: Any) -> bytes: ...

    def decode(self, data: bytes) -> Any: ...


def _default(obj: Any) -> Any:
    if type(obj) is tuple:
        # A fresh packer: this runs inside the thread's packer.
        inner = msgpack.packb(list(obj), default=_default, strict_types=True, use_bin_type=True)
        return msgpack.ExtType(_TUPLE, inner)
    raise TypeError(f"cannot encode a value of type {type(obj).__name__}")


class _Packers(threading.local):
    """One reusable packer per thread (a packer is not thread-safe, and
    making one per call costs more than the packing)."""

    def __init__(self) -> None:
        self.packer = msgpack.Packer(default=_default, strict_types=True, use_bin_type=True)


_packers = _Packers()


def _pack(obj: Any) -> bytes:
    packed: bytes = _packers.packer.pack(obj)
    return packed


def _ext(code: int, data: bytes) -> Any:
    if code == _TUPLE:
        return tuple(_unpack(data))
    raise CodecError(f"unknown msgpack extension {code}")


_unpack = functools.partial(msgpack.unpackb, ext_hook=_ext, raw=False, strict_map_key=False)


def msgpack_decoder() -> Callable[[bytes], Any]:
    """The bare decoder of `MSGPACK`: its errors are msgpack's own."""
    return _unpack


class MsgpackCodec:
    """The default codec (msgpack, type-preserving, no pickle)."""

    def encode(self, obj: Any) -> bytes:
        try:
            return _pack(obj)
        except (TypeError, OverflowError, ValueError) as e:
            raise CodecError(f"cannot encode {obj!r:.80}: {e}") from None

    def decode(self, data: bytes) -> Any:
        try:
            return _unpack(data)
        except CodecError:
            raise
        except Exception as e:
            raise CodecError(f"cannot decode {len(data)} bytes: {e}") from None

    def __repr__(self) -> str:
        return "mosaik.codec.MSGPACK"


MSGPACK = MsgpackCodec()

__all__ = ["MSGPACK", "Codec", "MsgpackCodec"]
