"""The nesting bound of the default codec (`mosaik.codec.MAX_DEPTH`), and
what the apply path does with a committed entry that does not decode.

Bytes beyond the bound are made by hand (``msgpack_bytes``): the encoder
refuses to make them.
"""

from __future__ import annotations

import ast
import logging
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgpack_bytes import ext_tuple, tuples_bytes

import mosaik
from mosaik._replica import Replica
from mosaik.codec import MAX_DEPTH, MSGPACK, encode_all, msgpack_decoder

DECODERS = {"MSGPACK.decode": MSGPACK.decode, "bare decoder": msgpack_decoder()}


# Hand-made bytes nested ``depth`` containers deep, one shape each.
CRAFTED: dict[str, Callable[[int], bytes]] = {
    "lists": lambda depth: b"\x91" * depth + b"\xc0",
    "lists_array32": lambda depth: b"\xdd\x00\x00\x00\x01" * depth + b"\x2a",
    "dicts": lambda depth: b"\x81\xa1k" * depth + b"\xc0",
    "tuples": tuples_bytes,
    "tuple_as_dict_key": lambda depth: b"\x81" + tuples_bytes(depth - 1) + b"\xc0",
    "lists_in_a_tuple": lambda depth: ext_tuple(b"\x91" * depth + b"\xc0"),
}


def nest(depth: int, wrap: Callable[[Any], Any], inner: Any = 0) -> Any:
    for _ in range(depth):
        inner = wrap(inner)
    return inner


# Values nested ``depth`` containers deep (the innermost a scalar).
SHAPES: dict[str, Callable[[int], Any]] = {
    "lists": lambda depth: nest(depth, lambda v: [v]),
    "tuples": lambda depth: nest(depth, lambda v: (v,)),
    "dicts": lambda depth: nest(depth, lambda v: {"k": v}),
    "tuple_as_dict_key": lambda depth: {nest(depth - 1, lambda v: (v,)): 1},
    "alternating": lambda depth: nest(depth, lambda v: [v] if isinstance(v, tuple) else (v,)),
    "empty_innermost": lambda depth: nest(depth - 1, lambda v: [v], []),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_values_nested_exactly_max_depth_round_trip_with_their_types(shape: str) -> None:
    value = SHAPES[shape](MAX_DEPTH)
    for decode in DECODERS.values():
        decoded = decode(MSGPACK.encode(value))
        # == on tuples and lists also compares their types.
        assert decoded == value


@pytest.mark.parametrize("shape", SHAPES)
def test_encode_refuses_values_one_container_deeper_than_max_depth(shape: str) -> None:
    with pytest.raises(mosaik.CodecError, match=f"nested deeper than {MAX_DEPTH}"):
        MSGPACK.encode(SHAPES[shape](MAX_DEPTH + 1))


@pytest.mark.parametrize("wrap", [lambda v: [v], lambda v: (v,), lambda v: {"k": v}])
def test_encode_refuses_values_far_deeper_with_codec_error(wrap: Callable[[Any], Any]) -> None:
    # Not a RecursionError: the encoder counts tuples before recursing and
    # msgpack stops lists and dicts itself.
    with pytest.raises(mosaik.CodecError):
        MSGPACK.encode(nest(100_000, wrap))


def depth_of(value: Any) -> int:
    """How many containers deep ``value`` nests (dict keys included)."""
    if isinstance(value, (list, tuple)):
        return 1 + max(map(depth_of, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth_of, [*value, *value.values()]), default=0)
    return 0


@pytest.mark.parametrize("shape", CRAFTED)
def test_hand_crafted_bytes_nested_exactly_max_depth_decode(shape: str) -> None:
    data = CRAFTED[shape](MAX_DEPTH)
    for decode in DECODERS.values():
        assert depth_of(decode(data)) == MAX_DEPTH


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("shape", CRAFTED)
def test_decode_refuses_hand_crafted_bytes_one_container_deeper(shape: str, decoder: str) -> None:
    with pytest.raises(mosaik.CodecError, match=f"nested deeper than {MAX_DEPTH}"):
        DECODERS[decoder](CRAFTED[shape](MAX_DEPTH + 1))


def test_decoding_deep_tuples_in_a_2_mib_thread_raises_instead_of_overflowing_its_stack() -> None:
    """The crash this bound prevents: 50 nested tuples (about 200 bytes)
    took the C stack of a 2 MiB thread down. Run in a child process, so
    that a crash fails this test rather than the test run."""
    script = f"""
import threading
from mosaik import CodecError
from mosaik.codec import msgpack_decoder
from msgpack_bytes import tuples_bytes

threading.stack_size(2 << 20)
decode = msgpack_decoder()
results = []

def run():
    results.append(len(str(decode(tuples_bytes({MAX_DEPTH})))))
    for depth in (50, 200, 10_000):
        try:
            decode(tuples_bytes(depth))
        except CodecError:
            results.append(depth)

thread = threading.Thread(target=run)
thread.start()
thread.join()
print(results)
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=__file__.rpartition("/")[0],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # The repr of MAX_DEPTH nested tuples, then the depths refused.
    assert ast.literal_eval(done.stdout) == [3 * MAX_DEPTH - 1, 50, 200, 10_000]


def test_the_wire_format_of_tuples_is_unchanged() -> None:
    # What the codec wrote before the bound existed: logs on disk hold it.
    value = (1, [2.5], {"a": (None, b"x")}, ())
    old = (
        b"\xc7\x1a\x01\x94\x01\x91\xcb@\x04\x00\x00\x00\x00\x00\x00"
        b"\x81\xa1a\xc7\x05\x01\x92\xc0\xc4\x01x\xd4\x01\x90"
    )
    assert MSGPACK.encode(value) == old
    for decode in DECODERS.values():
        assert decode(old) == value


MALFORMED = {
    "truncated": b"\x92" + b"\x00" * 40,
    "extra_data": b"\x91" * 20 + b"\x00" + b"\x00" * 20,
    "reserved_byte": b"\x91" * 40 + b"\xc1",
    "huge_array_header": b"\xdd\xff\xff\xff\xff" + b"\x00" * 40,
    "tuple_holding_a_string": b"\x92" + ext_tuple(b"\xa1a") + b"\xc0" * 40,
    "tuple_longer_than_its_extension": ext_tuple(b"\x92\x00") + b"\x00" * 40,
    "tuple_shorter_than_its_extension": ext_tuple(b"\x91\x00\x00") + b"\x00" * 40,
    "short_tuple_holding_a_string": ext_tuple(b"\xa1a"),
    "short_tuple_longer_than_its_extension": ext_tuple(b"\x92\x00"),
    "short_tuple_shorter_than_its_extension": ext_tuple(b"\x91\x00\x00"),
    "short_empty_tuple_extension": ext_tuple(b""),
    "unknown_extension": b"\x92" + bytes([0xC7, 40, 9]) + b"\x00" * 40 + b"\xc0",
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_bytes_raise_codec_error(case: str) -> None:
    with pytest.raises(mosaik.CodecError):
        MSGPACK.decode(MALFORMED[case])


def test_decode_still_takes_bytearray_and_memoryview() -> None:
    value = [list(range(40)), ("x", 2)]
    data = MSGPACK.encode(value)
    assert len(data) > MAX_DEPTH  # the nesting check sees them too
    assert MSGPACK.decode(bytearray(data)) == value
    assert MSGPACK.decode(memoryview(data)) == value


# -- a poison entry on the apply path ------------------------------------------


class Recorder(mosaik.StateMachine):
    """Records what it applies, one command at a time."""

    def __init__(self) -> None:
        self.applied: list[Any] = []

    def signature(self) -> str:
        return "recorder_v1"

    def apply(self, command: Any, ctx: Any) -> None:
        self.applied.append(command)

    def query(self, query: Any) -> Any:
        return self.applied


class BatchRecorder(Recorder):
    def apply_batch(self, commands: list[Any], ctx: Any) -> None:
        self.applied.extend(commands)


class Exiting(Recorder):
    def apply(self, command: Any, ctx: Any) -> None:
        if command == "exit":
            sys.exit(3)
        super().apply(command, ctx)


def committed(*commands: bytes) -> list[tuple[mosaik.ApplyContext, bytes, None]]:
    """Entries at indices 1, 2, ... as the apply thread hands them over."""
    return [
        (mosaik.ApplyContext(mosaik.Cursor(1, i), mosaik.Cursor(1, i), 1), data, None)
        for i, data in enumerate(commands, start=1)
    ]


@pytest.mark.parametrize("machine", [Recorder, BatchRecorder])
def test_an_entry_that_does_not_decode_is_logged_with_its_index_and_the_rest_apply(
    machine: type[Recorder], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="mosaik")
    replica = Replica(machine(), "g1", 100)
    entries = committed(MSGPACK.encode("a"), tuples_bytes(200), MSGPACK.encode("b"))
    assert replica.apply(False, None, entries, 3, False) is None
    assert replica.machine.applied == ["a", "b"]
    assert replica.applied == 3
    failures = [r for r in caplog.records if "index 2" in r.getMessage()]
    assert len(failures) == 1 and "group g1" in failures[0].getMessage()
    assert failures[0].exc_info is not None
    assert isinstance(failures[0].exc_info[1], mosaik.CodecError)


def test_a_command_raising_system_exit_is_logged_and_the_rest_of_the_batch_applies(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="mosaik")
    replica = Replica(Exiting(), "g1", 100)
    entries = committed(*(MSGPACK.encode(c) for c in ("a", "exit", "b")))
    replica.apply(False, None, entries, 3, False)
    assert replica.machine.applied == ["a", "b"]
    assert any("apply failed at index 2" in r.getMessage() for r in caplog.records)


# Values msgpack carries, nested a little: what a batch of commands holds.
CARRIED = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.binary(max_size=80),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(CARRIED, max_size=30))
def test_a_batch_encodes_to_exactly_what_one_value_at_a_time_does(values: list[Any]) -> None:
    assert encode_all(MSGPACK, values) == [MSGPACK.encode(v) for v in values]


@pytest.mark.parametrize(
    "bad",
    [SHAPES["lists"](MAX_DEPTH + 1), SHAPES["tuple_as_dict_key"](MAX_DEPTH + 1), {1, 2}, 2**70],
    ids=["too_deep", "too_deep_key", "set", "int_above_64_bits"],
)
def test_a_batch_refuses_a_bad_value_as_one_call_would(bad: Any) -> None:
    with pytest.raises(mosaik.CodecError) as single:
        MSGPACK.encode(bad)
    with pytest.raises(mosaik.CodecError) as batch:
        encode_all(MSGPACK, [1, "fine", bad, 2])
    assert str(batch.value) == str(single.value)


def test_a_batch_of_another_codec_goes_through_its_encode() -> None:
    class Upper:
        def encode(self, obj: Any) -> bytes:
            return str(obj).upper().encode()

        def decode(self, data: bytes) -> Any:
            return data.decode()

    assert encode_all(Upper(), ["a", 1]) == [b"A", b"1"]
