"""The sealed Raft frames (frames.py): round trips, and every kind of bad frame refused with its reason."""

from __future__ import annotations

import os
import struct
import zlib

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st

from p2porch.raft import frames as F

KEY = F.cluster_key("the cluster password")
MAX = 1 << 20


def handshake(key_a: bytes = KEY, key_b: bytes = KEY) -> tuple[F.FrameChannel, F.FrameChannel]:
    """Two ends of one connection after the hellos (a draws ka, b draws kb), as the transport does."""
    a, b = F.FrameChannel(key_a), F.FrameChannel(key_b)
    ka, kb = os.urandom(32), os.urandom(32)
    assert b.open(a.seal(ka), MAX) == ka
    assert a.open(b.seal(kb), MAX) == kb
    a.start_session(own_key=ka, peer_key=kb)
    b.start_session(own_key=kb, peer_key=ka)
    return a, b


def refused(channel: F.FrameChannel, frame: bytes) -> str:
    with pytest.raises(F.FrameError) as info:
        channel.open(frame, MAX)
    return info.value.reason


def test_hello_then_session_frames_round_trip_both_ways() -> None:
    a, b = handshake()
    for i in range(5):
        assert b.open(a.seal(b"to b %d" % i), MAX) == b"to b %d" % i
        assert a.open(b.seal(b"to a %d" % i), MAX) == b"to a %d" % i


def test_small_payloads_travel_uncompressed_and_large_ones_compressed() -> None:
    a, b = handshake()
    small = a.seal(b"x" * 100)
    assert small[3] == F.FLAG_SESSION
    assert b.open(small, MAX) == b"x" * 100
    big = a.seal(b"y" * 100_000)
    assert big[3] == F.FLAG_SESSION | F.FLAG_COMPRESSED
    assert len(big) < 2_000
    assert b.open(big, MAX) == b"y" * 100_000


def test_a_session_frame_carries_its_counter_in_the_clear_and_no_plaintext() -> None:
    a, _ = handshake()
    first, second = a.seal(b"secret heartbeat"), a.seal(b"secret heartbeat")
    assert first[:2] == F.MAGIC and first[2] == F.FRAME_VERSION
    assert struct.unpack(">Q", first[4:12])[0] == 0 and struct.unpack(">Q", second[4:12])[0] == 1
    assert b"secret" not in first and first[12:] != second[12:]


def test_a_replayed_session_frame_is_refused() -> None:
    a, b = handshake()
    frame = a.seal(b"append")
    assert b.open(frame, MAX) == b"append"
    assert refused(b, frame) == F.REASON_REPLAY


def test_reordered_or_dropped_frames_are_refused() -> None:
    a, b = handshake()
    first, second = a.seal(b"1"), a.seal(b"2")
    assert refused(b, second) == F.REASON_REPLAY
    assert b.open(first, MAX) == b"1"
    a.seal(b"3 (lost)")
    assert refused(b, a.seal(b"4")) == F.REASON_REPLAY


def test_a_forged_counter_does_not_authenticate() -> None:
    a, b = handshake()
    a.seal(b"0")  # b never sees frame 0: the attacker relabels frame 1 as 0
    frame = bytearray(a.seal(b"1"))
    frame[4:12] = struct.pack(">Q", 0)
    assert refused(b, bytes(frame)) == F.REASON_AUTH


def test_a_frame_of_another_connection_or_sent_back_to_its_sender_is_refused() -> None:
    a, b = handshake()
    c, _ = handshake()
    assert refused(b, c.seal(b"spliced")) == F.REASON_AUTH  # same password, other handshake keys
    assert refused(a, a.seal(b"reflected")) == F.REASON_AUTH  # a's own frame: the other direction's key


@pytest.mark.parametrize("position", [0, 1, 2, 3, 4, 11, 12, 20, -1])
def test_a_flipped_bit_anywhere_is_refused(position: int) -> None:
    a, b = handshake()
    frame = bytearray(a.seal(b"commit index 1234"))
    frame[position] ^= 0x01
    assert refused(b, bytes(frame)) in (
        F.REASON_AUTH,
        F.REASON_UNKNOWN_FORMAT,
        F.REASON_REPLAY,
        F.REASON_OUT_OF_ORDER,
    )


def test_a_tampered_hello_and_a_hello_of_another_password_are_refused() -> None:
    hello = bytearray(F.FrameChannel(KEY).seal(os.urandom(32)))
    hello[-1] ^= 0x80
    assert refused(F.FrameChannel(KEY), bytes(hello)) == F.REASON_AUTH
    stranger = F.FrameChannel(F.cluster_key("another password")).seal(os.urandom(32))
    assert refused(F.FrameChannel(KEY), stranger) == F.REASON_AUTH


def test_a_session_frame_with_a_wrong_password_is_refused() -> None:
    a, _ = handshake(key_a=F.cluster_key("old generation"), key_b=F.cluster_key("old generation"))
    _, b = handshake()
    assert refused(b, a.seal(b"x")) == F.REASON_AUTH


def test_frames_out_of_the_handshake_order_are_refused() -> None:
    a, b = handshake()
    assert refused(b, F.FrameChannel(KEY).seal(b"a second hello")) == F.REASON_OUT_OF_ORDER
    fresh = F.FrameChannel(KEY)
    assert refused(fresh, a.seal(b"session before hello")) == F.REASON_OUT_OF_ORDER
    half = F.FrameChannel(KEY)
    half.seal(b"hello")
    with pytest.raises(F.FrameError) as info:  # the keys are not known yet: nothing to seal with
        half.seal(b"a vote")
    assert info.value.reason == F.REASON_OUT_OF_ORDER


def test_truncated_frames_are_refused() -> None:
    hello = F.FrameChannel(KEY).seal(os.urandom(32))
    for cut in (0, 1, 3, 4, 10, F.HELLO_MIN_BYTES - 1):
        assert refused(F.FrameChannel(KEY), hello[:cut]) in (F.REASON_TRUNCATED, F.REASON_UNKNOWN_FORMAT)
    assert refused(F.FrameChannel(KEY), hello[:-1]) == F.REASON_AUTH
    a, b = handshake()
    assert refused(b, a.seal(b"")[: F.SESSION_MIN_BYTES - 1]) == F.REASON_TRUNCATED


def test_an_older_p2porchs_fernet_frame_is_refused_by_name() -> None:
    token = Fernet(Fernet.generate_key()).encrypt(zlib.compress(b"pickle", 3))
    error = pytest.raises(F.FrameError, F.FrameChannel(KEY).open, token, MAX).value
    assert error.reason == F.REASON_OLD_FRAMING
    assert "same p2porch version" in str(error)


def test_another_frame_version_or_unknown_flags_are_refused_by_name() -> None:
    hello = F.FrameChannel(KEY).seal(b"k")
    newer = hello[:2] + bytes((F.FRAME_VERSION + 1,)) + hello[3:]
    error = pytest.raises(F.FrameError, F.FrameChannel(KEY).open, newer, MAX).value
    assert error.reason == F.REASON_UNKNOWN_FORMAT and "version 3" in str(error)
    flagged = hello[:3] + bytes((0x80,)) + hello[4:]
    assert refused(F.FrameChannel(KEY), flagged) == F.REASON_UNKNOWN_FORMAT


def test_a_compressed_payload_inflating_past_the_limit_is_refused() -> None:
    a, b = handshake()
    bomb = a.seal(b"\x00" * (4 * MAX))
    assert len(bomb) < MAX // 20
    with pytest.raises(F.FrameError) as info:
        b.open(bomb, MAX)
    assert info.value.reason == F.REASON_INFLATE


def test_bounded_inflate_returns_the_payload_and_refuses_bombs_and_garbage() -> None:
    payload = os.urandom(64) * 100
    assert F.inflate_bounded(zlib.compress(payload), len(payload)) == payload
    for data in (zlib.compress(payload), zlib.compress(b"\x00" * (4 * MAX)), b"not zlib at all"):
        limit = len(payload) - 1 if data == zlib.compress(payload) else MAX
        with pytest.raises(F.FrameError) as info:
            F.inflate_bounded(data, limit)
        assert info.value.reason == F.REASON_INFLATE


def test_the_cluster_key_depends_on_the_password_and_is_not_pysyncobjs() -> None:
    assert F.cluster_key("a") != F.cluster_key("b")
    assert F.cluster_key("a") == F.cluster_key("a") and len(KEY) == 32
    with pytest.raises(ValueError):
        F.cluster_key("")


@given(st.binary(max_size=200))
def test_garbage_is_always_a_frame_error(data: bytes) -> None:
    channel = F.FrameChannel(KEY)
    with pytest.raises(F.FrameError):
        channel.open(data, MAX)
    assert channel.received == 0


@given(st.binary(min_size=4, max_size=200))
def test_garbage_behind_a_valid_header_is_always_a_frame_error(tail: bytes) -> None:
    a, b = handshake()
    for header in (F.MAGIC + bytes((F.FRAME_VERSION, 0)), F.MAGIC + bytes((F.FRAME_VERSION, F.FLAG_SESSION))):
        with pytest.raises(F.FrameError):
            b.open(header + tail, MAX)
    assert b.open(a.seal(b"still fine"), MAX) == b"still fine"


def test_a_remembered_cluster_key_is_used_without_deriving_until_forgotten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A joiner takes the frames' key from the member's reply (remember_cluster_key): no PBKDF2 for it;
    once forgotten (the join failed), the key is derived from the password again."""
    password = "a joiner's raft password"
    derived = F.cluster_key(password)
    calls: list[str] = []
    monkeypatch.setattr(F, "_derive_cluster_key", lambda p: calls.append(p) or derived)
    handed = os.urandom(F.CLUSTER_KEY_BYTES)
    F.remember_cluster_key(password, handed)
    try:
        assert F.cluster_key(password) == handed and calls == []
    finally:
        F.forget_cluster_key(password)
    assert F.cluster_key(password) == derived and calls == [password]
    with pytest.raises(ValueError):
        F.remember_cluster_key(password, b"short")
    with pytest.raises(ValueError):
        F.remember_cluster_key("", handed)
