"""The msgpack wire codec: round trips, and garbage only ever raises WireError."""

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2porch.errors import WireError
from p2porch.wire import WIRE_VERSION, decode_frame, encode_frame, pack, unpack

json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=20,
)


@given(json_like)
def test_round_trip(value):
    assert unpack(pack(value)) == value


@given(st.text(min_size=1, max_size=20), json_like)
def test_frame_round_trip(msg_type, body):
    assert decode_frame(encode_frame(msg_type, body)) == (msg_type, body)


@given(st.binary(max_size=512))
def test_garbage_raises_only_wire_error(data):
    try:
        decode_frame(data)
    except WireError:
        pass


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",  # never-used msgpack byte
        b"\x93\x01",  # truncated array
        msgpack.packb([1, 2, 3]),  # not a map
        msgpack.packb({"v": WIRE_VERSION + 1, "t": "x", "b": 1}),
        msgpack.packb({"v": WIRE_VERSION, "b": 1}),
        msgpack.packb({"v": WIRE_VERSION, "t": "x"}),
        msgpack.packb({"v": WIRE_VERSION, "t": "x", "b": 1}) + b"\x00",  # trailing bytes
    ],
)
def test_known_bad_frames(data):
    with pytest.raises(WireError):
        decode_frame(data)


def test_oversized_and_non_bytes_inputs():
    with pytest.raises(WireError, match="exceeds"):
        unpack(b"\x00" * 100, max_bytes=10)
    with pytest.raises(WireError):
        unpack("not bytes")  # type: ignore[arg-type]
    with pytest.raises(WireError):
        pack(object())


def _peak_bytes(work) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        work()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_a_small_message_is_packed_without_msgpacks_256_kib_buffer():
    message = {"v": WIRE_VERSION, "t": "ping", "b": {"seq": 7, "from": "10.0.0.1:7946"}}
    assert _peak_bytes(lambda: msgpack.packb(message, use_bin_type=True)) > 256 * 1024  # the check can fail
    assert _peak_bytes(lambda: pack(message)) < 4096
    assert pack(message) == msgpack.packb(message, use_bin_type=True)


def test_a_large_message_grows_the_buffer():
    body = {"blob": b"x" * 300_000, "items": list(range(10_000))}
    assert decode_frame(encode_frame("big", body)) == ("big", body)
