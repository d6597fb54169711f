"""Followers answer idle heartbeats less (raft/heartbeat_answers.py) and an idle leader heartbeats at the
idle period (raft/heartbeat_rounds.py), yet the leader neither steps down nor sends a write late: three
in-process voters and a replica on loopback with real pysyncobj.

No timing assertions: the followers' answer clock is injected (a clock that moves on a fixed step per
answer judged, or stands still), so which heartbeats are answered is a count; the leader's rounds are
recorded as it scheduled them (the period its pacer chose, applied to pysyncobj's next-round time) and
with what started them (a proposal's own send, or the timer). Waits are bounded polls on the behaviour
(``trio.fail_after``), never a measured duration.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from p2porch.raft import commands as C
from p2porch.raft.store import RaftStore, StoreConfig, open_raft_store
from p2porch.testing.raftprocs import free_ports

pytestmark = pytest.mark.integration

PERIOD_S = 0.5  # heartbeat_answer_period_s
STEPS_PER_PERIOD = 4  # the follower's clock moves PERIOD_S / 4 per answer it judges: 1 in 4 goes


def cfg(data_dir: Path, self_addr: str | None, voters: list[str], **kw: object) -> StoreConfig:
    kw.setdefault("idle_heartbeat_period_s", 0.1)  # answers to every idle heartbeat are what is counted
    return StoreConfig(self_addr=self_addr, voters=tuple(voters), data_dir=data_dir, password="pw", **kw)  # type: ignore[arg-type]


class StepClock:
    """A follower's answer clock (``QuietHeartbeatAnswers.answer_clock``, read once per success answer on
    the Raft thread): each read moves it on by ``step`` (0: it stands still), from a whole number of
    seconds past the real clock so that the steps add up exactly."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.now = float(math.ceil(time.monotonic()) + 1)
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        self.now += self.step
        return self.now


async def _until(what: str, check: Any, limit_s: float = 20.0) -> None:
    """Poll ``check()`` until true; fail naming ``what`` after ``limit_s`` (a bound, not a measurement)."""
    with trio.fail_after(limit_s):
        while not check():
            await trio.sleep(0.02)


async def _writes(store: RaftStore, count: int, first_tag: int) -> None:
    for i in range(count):
        await store.write(
            C.Noop(at=time.time(), tag=first_tag + i).encode(), timeout_s=10
        )  # raises if refused


async def test_idle_followers_answer_one_heartbeat_in_a_period_and_the_leader_keeps_leading(
    tmp_path: Path,
) -> None:
    addrs = [f"127.0.0.1:{p}" for p in free_ports(3)]
    async with contextlib.AsyncExitStack() as stack:
        stores = {
            a: await stack.enter_async_context(
                open_raft_store(cfg(tmp_path / a[-5:], a, addrs, heartbeat_answer_period_s=PERIOD_S))
            )
            for a in addrs
        }
        replica = await stack.enter_async_context(
            open_raft_store(cfg(tmp_path / "r", None, addrs, heartbeat_answer_period_s=PERIOD_S))
        )
        leader = await stores[addrs[0]].wait_leader(timeout_s=20)
        lead = stores[leader]
        await lead.write(C.InitCluster(at=time.time(), cluster_id="c1").encode(), timeout_s=10)
        term = lead.status().term
        followers = [stores[a] for a in addrs if a != leader]
        clocks = [StepClock(PERIOD_S / STEPS_PER_PERIOD) for _ in followers]
        for follower, clock in zip(followers, clocks, strict=True):
            follower._so.answer_clock = clock
        await trio.sleep(0.3)  # the clocks' first answers (one each) and the init's last acknowledgements
        # idle: every heartbeat is judged and 1 in STEPS_PER_PERIOD answered, for more heartbeats than the
        # leader's fallback timeout (3 s) spans at 100 ms: the answers that go are what keep it leading
        reads0 = [c.reads for c in clocks]
        skipped0 = [f._so.answers_skipped for f in followers]
        judged_all = lambda: all(c.reads - r >= 40 for c, r in zip(clocks, reads0, strict=True))  # noqa: E731
        await _until("40 heartbeats judged by each follower", judged_all)
        for follower, clock, r0, s0 in zip(followers, clocks, reads0, skipped0, strict=True):
            judged, skipped = clock.reads - r0, follower._so.answers_skipped - s0  # read apart: +-1
            answered = judged - skipped
            assert abs(answered - judged / STEPS_PER_PERIOD) <= 2, (answered, judged, skipped)
            assert follower.status().leader == leader and follower.status().term == term
        status = lead.status()
        assert status.is_leader and status.term == term and status.has_quorum

        # the clocks stand still: no repeated answer can ever be due, so writes commit only because an
        # answer that says something new (next index, commit index) goes at once
        for clock in clocks:
            clock.step = 0.0
        skipped0 = [f._so.answers_skipped for f in followers]
        await _writes(lead, 8, first_tag=0)
        await _writes(replica, 4, first_tag=100)  # forwarded to the leader
        for clock in clocks:
            clock.step = PERIOD_S / STEPS_PER_PERIOD
        status = lead.status()
        assert status.is_leader and status.term == term
        commit = lead.leader_commit_now()  # read live: status() may be 50 ms old, from before the last writes
        assert commit is not None

        def caught_up() -> bool:  # peers: the Raft thread's view, refreshed at least once a second
            peers = lead.status().peers
            return len(peers) == 3 and all(p["match_index"] >= commit for p in peers.values())

        await _until("both voters and the replica acknowledged every write", caught_up, 5)
        assert lead.leader_changes.count == 0


@dataclass
class Round:
    """One append round of the leader as it was scheduled."""

    started: float  # pysyncobj's clock when the round began
    started_by: str  # pysyncobj's caller: _onTick (the timed round) or _checkCommandsToApply (a proposal
    # just added to the log, sent at once: the store's appends are unbatched)
    last_index: int  # the leader's last log index when the round began
    added_s: float | None  # what the round added to pysyncobj's next-round time (idle period - heartbeat)


def record_rounds(so: Any) -> list[Round]:
    """Wrap the leader's append round and its pacer's choice (instance attributes, Raft thread)."""
    rounds: list[Round] = []
    send, pacer = so._SyncObj__sendAppendEntries, so.round_pacer
    choose = pacer.round_period
    decided: list[float] = []

    def round_period(now: float, busy_s: float, idle_s: float, lagging: bool = False) -> float:
        decided.append(so._SyncObj__newAppendEntriesTime)  # pysyncobj's own schedule, before the change
        return float(choose(now, busy_s, idle_s, lagging))

    def recorded_round() -> None:
        started, by, last = time.monotonic(), sys._getframe(1).f_code.co_name, so._SyncObj__raftLog[-1][1]
        decided.clear()
        send()
        added = so._SyncObj__newAppendEntriesTime - decided[0] if decided else None
        rounds.append(Round(started, by, last, added))

    pacer.round_period = round_period
    so._SyncObj__sendAppendEntries = recorded_round
    return rounds


async def test_an_idle_leader_heartbeats_at_the_idle_period_and_sends_a_write_at_once(tmp_path: Path) -> None:
    """raft/heartbeat_rounds.py: idle, the leader schedules its rounds 200 ms apart (not 100 ms) with the
    same election timeouts; no follower starts an election; a write's entry goes out in a round of its
    own as it is added (not in the next timed round), and that round is back at the heartbeat."""
    addrs = [f"127.0.0.1:{p}" for p in free_ports(3)]
    async with contextlib.AsyncExitStack() as stack:
        stores = {
            a: await stack.enter_async_context(
                open_raft_store(cfg(tmp_path / a[-5:], a, addrs, idle_heartbeat_period_s=0.2))
            )
            for a in addrs
        }
        leader = await stores[addrs[0]].wait_leader(timeout_s=20)
        lead = stores[leader]
        await lead.write(C.InitCluster(at=time.time(), cluster_id="c1").encode(), timeout_s=10)
        term = lead.status().term
        rounds = record_rounds(lead._so)
        pacer = lead._so.round_pacer
        assert pacer is not None
        for tag in range(3):
            await _until("the leader's pacer idle", lambda: pacer.idle(time.monotonic()))
            idle_at, idle_from = time.monotonic(), len(rounds)  # a round may still end that began busy
            await _until("6 idle rounds", lambda: sum(r.started >= idle_at for r in rounds) >= 6)  # noqa: B023
            for beat in (r for r in rounds[idle_from:] if r.started >= idle_at):
                assert beat.added_s == pytest.approx(0.1, abs=1e-6), beat  # next round at 200 ms, not 100
            last_index = lead._so._SyncObj__raftLog[-1][1]
            await _writes(lead, 1, first_tag=tag)
            carrying = next(r for r in rounds[idle_from:] if r.last_index > last_index)
            assert carrying.started_by == "_checkCommandsToApply", carrying  # at once, not the timed round
            assert carrying.added_s == pytest.approx(0.0, abs=1e-6), carrying  # busy again: 100 ms
        for store in stores.values():
            assert store.status().term == term and store.status().leader == leader
        assert lead.leader_changes.count == 0
