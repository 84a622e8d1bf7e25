"""Codecs: how commands, queries and their results become bytes and back.

`MSGPACK`, the default, handles `None`, `bool`, 64-bit `int`, `float`,
`str`, `bytes`, `list`, `tuple` and `dict`, and decodes each value to the
type it started as (a tuple is encoded as a msgpack extension type). Any
other value makes the call that was handed it raise `CodecError` before
that call sends anything (the single exception: ``bytearray`` and
``memoryview`` are accepted, encoded as bytes and decoded as ``bytes``).

Values nest at most `MAX_DEPTH` (32) containers deep, counting lists,
tuples and dicts (keys included): ``encode`` raises `CodecError` for anything
deeper, and ``decode`` refuses such bytes with `CodecError` too, found in one
pass over them before anything is decoded, so that no input can exhaust the
stack of the thread decoding it (bytes no longer than `MAX_DEPTH` skip that
pass: n bytes cannot nest deeper than n containers).

To use a codec of your own, give a state machine a ``codec`` class
attribute holding any object that provides ``encode(obj) -> bytes`` and
``decode(data) -> obj``. Nothing here ever unpickles.

Example:
    ```python
    from mosaik.codec import MSGPACK

    data = MSGPACK.encode({"add": 1, "tags": ("a", "b")})
    assert MSGPACK.decode(data) == {"add": 1, "tags": ("a", "b")}
    MSGPACK.encode({1, 2})      # CodecError: sets are not carried
    ```

A JSON codec, for a machine whose commands are JSON documents:

```python
class JsonCodec:
    def encode(self, obj):
        return json.dumps(obj, sort_keys=True).encode()

    def decode(self, data):
        return json.loads(data)

class Inventory(mosaik.StateMachine):
    codec = JsonCodec()
    ...
```
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable
from typing import Any, Protocol

import msgpack

from ._native import MSGPACK_MAX_DEPTH, check_msgpack_depth
from .exceptions import CodecError

MAX_DEPTH: int = MSGPACK_MAX_DEPTH
"""How many containers deep a value may nest (32; defined in the native
module, which checks it). Decoding a tuple takes up to some 45 KiB of C
stack per level (one ``msgpack.unpackb`` each), so a value at the bound
needs under 1.5 MiB of stack."""

_TUPLE = 1
# The first buffer of a tuple's packer (it grows as needed): allocating
# msgpack's default of 256 KiB while the enclosing packer holds its own
# costs more than packing a small tuple.
_TUPLE_BUFFER = 256


class Codec(Protocol):
    """What a state machine's ``codec`` attribute must be: any object with
    these two methods (no base class needed).

    ``encode`` runs on the calling node before anything is sent, so its
    errors reach the caller; raise `CodecError` for a value you do not
    carry. ``decode`` runs on every node, on bytes from the log: it must
    give the same value everywhere and must never execute what it reads
    (no pickle).
    """

    def encode(self, obj: Any) -> bytes:
        """The bytes of ``obj`` (a command, a query or a query's answer)."""
        ...

    def decode(self, data: bytes) -> Any:
        """The value ``encode`` made ``data`` from."""
        ...


def _hook(tuples: int) -> Callable[[Any], Any]:
    """The ``default`` hook of a packer packing inside ``tuples`` tuples."""

    def default(obj: Any) -> Any:
        if type(obj) is tuple:
            # A fresh packer: this runs inside the one packing obj. Tuples
            # are counted here, before recursing.
            if tuples == MAX_DEPTH:
                raise ValueError(f"nested deeper than {MAX_DEPTH} containers")
            inner = msgpack.packb(
                list(obj),
                default=_HOOKS[tuples + 1],
                strict_types=True,
                use_bin_type=True,
                buf_size=_TUPLE_BUFFER,
            )
            return msgpack.ExtType(_TUPLE, inner)
        raise TypeError(f"cannot encode a value of type {type(obj).__name__}")

    return default


_HOOKS = [_hook(tuples) for tuples in range(MAX_DEPTH + 1)]
# The values whose nesting encode checks: the others cannot contain any.
_CONTAINERS = frozenset((list, tuple, dict))


def _new_pack() -> Callable[[Any], bytes]:
    pack: Callable[[Any], bytes] = msgpack.Packer(
        default=_HOOKS[0], strict_types=True, use_bin_type=True
    ).pack
    return pack


# The ``pack`` of idle packers, reused: a packer is not thread-safe, making
# one per call costs more than the packing, and taking one from this list
# and giving it back (atomic operations) costs less than a thread-local.
_idle_packs = [_new_pack()]
_unpackb = msgpack.unpackb


# The first bytes of a msgpack array: fixarray, array 16, array 32.
_ARRAY_STARTS = frozenset((*range(0x90, 0xA0), 0xDC, 0xDD))


def _ext(code: int, data: bytes) -> Any:
    if code == _TUPLE:
        # The whole value, this payload included, nests at most MAX_DEPTH
        # deep: it was checked before decoding started, or it is too short
        # to nest deeper. A tuple's payload must be one array.
        if not data or data[0] not in _ARRAY_STARTS:
            raise CodecError("a tuple's msgpack extension does not hold an array")
        return tuple(_unpackb(data, ext_hook=_ext, raw=False, strict_map_key=False))
    raise CodecError(f"unknown msgpack extension {code}")


def _decode(data: bytes) -> Any:
    # n bytes cannot nest deeper than n containers: short ones need no check.
    if len(data) > MAX_DEPTH:
        check_msgpack_depth(data)
    return _unpackb(data, ext_hook=_ext, raw=False, strict_map_key=False)


def msgpack_decoder() -> Callable[[bytes], Any]:
    """The bare decoder of `MSGPACK`: bytes nested too deep or malformed
    raise `CodecError`, other errors are msgpack's own."""
    return _decode


class MsgpackCodec:
    """The default codec (msgpack, type-preserving, no pickle)."""

    def encode(self, obj: Any) -> bytes:
        """``obj`` as msgpack; `CodecError` for a value of a type it does
        not carry, an int outside 64 bits, or nesting deeper than
        `MAX_DEPTH`."""
        try:
            pack = _idle_packs.pop()
        except IndexError:
            pack = _new_pack()
        try:
            data = pack(obj)
            # n bytes cannot nest deeper than n containers.
            if type(obj) in _CONTAINERS and len(data) > MAX_DEPTH:
                check_msgpack_depth(data)
        except (TypeError, OverflowError, ValueError) as e:
            raise CodecError(f"cannot encode {reprlib.repr(obj)}: {e}") from None
        finally:
            _idle_packs.append(pack)
        return data

    def decode(self, data: bytes) -> Any:
        """The value of msgpack ``data``, tuples as tuples; `CodecError` for
        bytes that are malformed, use an unknown extension or nest deeper
        than `MAX_DEPTH`."""
        # The body of `_decode`, inlined: this is the hot path of queries.
        try:
            if len(data) > MAX_DEPTH:
                check_msgpack_depth(data)
            return _unpackb(data, ext_hook=_ext, raw=False, strict_map_key=False)
        except CodecError:
            raise
        except Exception as e:
            raise CodecError(f"cannot decode {len(data)} bytes: {e}") from None

    def __repr__(self) -> str:
        return "mosaik.codec.MSGPACK"


MSGPACK = MsgpackCodec()
"""The default codec of every state machine (a `MsgpackCodec`)."""


def encode_all(codec: Codec, objs: list[Any]) -> list[bytes]:
    """``codec.encode`` of each of ``objs``, in order. For msgpack, one
    packer packs the whole batch and only values long enough to nest deep
    are checked: about a third of the time of one call per value."""
    if type(codec) is not MsgpackCodec:
        return [codec.encode(obj) for obj in objs]
    try:
        pack = _idle_packs.pop()
    except IndexError:
        pack = _new_pack()
    try:
        data = list(map(pack, objs))
    except (TypeError, OverflowError, ValueError):
        # One at a time, for the error that names the value.
        data = [codec.encode(obj) for obj in objs]
    finally:
        _idle_packs.append(pack)
    if data and max(map(len, data)) > MAX_DEPTH:
        for obj, encoded in zip(objs, data, strict=True):
            if type(obj) in _CONTAINERS and len(encoded) > MAX_DEPTH:
                try:
                    check_msgpack_depth(encoded)
                except (TypeError, ValueError) as e:
                    raise CodecError(f"cannot encode {reprlib.repr(obj)}: {e}") from None
    return data


__all__ = ["MAX_DEPTH", "MSGPACK", "Codec", "MsgpackCodec"]
