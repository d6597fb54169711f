import pytest

from p2porch.errors import WireError
from p2porch.gossip import envelope as env_module
from p2porch.gossip.envelope import (
    REPLAY_WINDOW,
    Envelope,
    ReplayGuard,
    SequenceClock,
    decode_envelope,
    encode_envelope,
    envelope_bytes,
)


def test_envelope_round_trip_and_size():
    env = Envelope("n1", "10.0.0.1:7946", 1_700_000_000_000_000)
    data = encode_envelope(env, b"payload")
    assert len(data) == envelope_bytes("n1", "10.0.0.1:7946") + len(b"payload")
    assert decode_envelope(data) == (env, b"payload")


@pytest.mark.parametrize(
    "bad", [b"", b"\x00" * 7, b"\x00" * 8, b"\x00" * 8 + b"\x05ab", b"\x00" * 8 + b"\x00\x00"]
)
def test_malformed_envelopes_raise_wire_error(bad):
    with pytest.raises(WireError):
        decode_envelope(bad)


def test_sequence_clock_strictly_increases_even_when_the_clock_stalls_or_steps_back():
    clock = SequenceClock()
    assert [clock.next(t) for t in (100, 100, 100, 50, 200)] == [100, 101, 102, 103, 200]


def test_replay_guard_drops_repeats_and_old_numbers_but_accepts_reordering():
    guard = ReplayGuard()
    base = 10**15
    assert guard.accept("a", base)
    assert not guard.accept("a", base)  # the same packet again
    assert guard.accept("a", base + 5)
    assert guard.accept("a", base + 3)  # late but never seen: accepted once
    assert not guard.accept("a", base + 3)
    assert guard.accept("b", base)  # per sender
    assert guard.accept("a", base + 3 * REPLAY_WINDOW)
    assert not guard.accept("a", base + 4)  # older than the window behind the newest
    assert not guard.accept("a", base + 3 * REPLAY_WINDOW)


def test_replay_guard_memory_is_bounded(monkeypatch):
    monkeypatch.setattr(env_module, "MAX_RECENT_PER_SENDER", 16)
    monkeypatch.setattr(env_module, "MAX_TRACKED_SENDERS", 4)
    guard = ReplayGuard()
    for seq in range(1000):
        assert guard.accept("a", seq * 2)
    window = guard._senders["a"]
    assert len(window.recent) <= 16
    assert not guard.accept("a", 0)  # forgotten numbers are refused, not accepted again
    assert not guard.accept("a", 1998)
    for i in range(10):
        guard.accept(f"s{i}", 1)
    assert guard.tracked_senders() == 4
