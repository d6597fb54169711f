import random

import pytest
import trio
from trio.testing import MockClock

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


def test_replay_guard_keeps_about_one_window_of_numbers_over_hours_of_simulated_traffic():
    """Three senders at ~2 messages/s each (the probe and ack rate of a 3-node fast-lan cluster), each
    sequence number its sender's microsecond clock under trio's MockClock, for 6 simulated hours (every
    10 s the messages of those 10 s arrive, slightly reordered): the remembered numbers stay near one
    REPLAY_WINDOW's worth per sender, never creeping up to MAX_RECENT_PER_SENDER, and a number already
    seen is refused throughout."""
    rng = random.Random(19)
    rate, hours = 2.0, 6
    guard = ReplayGuard()
    clocks = {f"n{i}": SequenceClock() for i in range(3)}
    per_hour: list[int] = []
    most = 0

    async def main() -> None:
        nonlocal most
        while trio.current_time() < hours * 3600:
            start = trio.current_time()
            await trio.sleep(10)
            for name, clock in clocks.items():
                sent = sorted(start + rng.uniform(0, 10) for _ in range(rng.randint(15, 25)))
                seqs = [clock.next(int(t * 1e6)) for t in sent]
                rng.shuffle(seqs[: len(seqs) // 4])  # a few arrive out of order
                for seq in seqs:
                    assert guard.accept(name, seq)
                    assert not guard.accept(name, seq)  # the same packet again
                most = max(most, len(guard._senders[name].recent))
            if int(trio.current_time()) % 3600 == 0:
                per_hour.append(guard.recent_numbers())

    trio.run(main, clock=MockClock(autojump_threshold=0))
    window_s = REPLAY_WINDOW / 1e6
    bound = 2 * max(env_module.MIN_RECENT_PER_SENDER, int(rate * window_s) + 25)
    assert most <= bound  # per sender; before the prune: MAX_RECENT_PER_SENDER (2,048) after ~17 minutes
    assert len(per_hour) == hours and max(per_hour) <= 3 * bound
    assert max(per_hour[1:]) <= 2 * per_hour[0]  # flat after the first hour, not growing


def test_replay_guard_prune_forgets_only_numbers_the_floor_refuses():
    guard = ReplayGuard()
    base = 10**15
    step = REPLAY_WINDOW // 50  # 50 numbers per window: prunes happen
    for i in range(1000):
        assert guard.accept("a", base + i * step)
    window = guard._senders["a"]
    assert len(window.recent) <= 2 * max(env_module.MIN_RECENT_PER_SENDER, 50)
    newest = base + 999 * step
    assert not guard.accept("a", newest - step)  # seen, inside the window: still a replay
    assert guard.accept("a", newest - step + 1)  # late but never seen, inside the window: accepted
    assert not guard.accept("a", newest - REPLAY_WINDOW)  # at the floor: refused
