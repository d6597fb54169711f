"""A daemon stopping as part of a host shutdown announces no restart but leaves gossip (daemon.py,
host_shutdown.py, member/held.py): the real init-system programs replaced by scripts on PATH, and the
daemon's own stop path."""

from __future__ import annotations

import threading

import trio
import trio.testing

from p2porch.config import load_config
from p2porch.daemon import Daemon
from p2porch.host_shutdown import host_shutting_down


def fake_programs(tmp_path, state: str) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, out in (("systemctl", state), ("runlevel", "N 5")):
        exe = bin_dir / name
        exe.write_text(f"#!/bin/sh\necho {out}\nexit 1\n")  # is-system-running exits non-zero unless running
        exe.chmod(0o755)
    return str(bin_dir)


def test_real_programs_are_asked(tmp_path):
    marker = tmp_path / "systemd"
    marker.mkdir()
    assert host_shutting_down(marker=str(marker), path=fake_programs(tmp_path, "stopping"))
    (tmp_path / "bin" / "systemctl").write_text("#!/bin/sh\necho running\n")
    assert not host_shutting_down(marker=str(marker), path=str(tmp_path / "bin"))


class Gossip:
    def __init__(self, leave_s: float = 0.0) -> None:
        self.said: list[tuple[str, object]] = []
        self.leave_s = leave_s

    async def announce(self, key: str, value: object) -> None:
        self.said.append((key, value))

    async def leave(self) -> None:
        await trio.sleep(self.leave_s)  # the leave message spreading
        self.said.append(("leave", None))


def stop_announces(
    tmp_path, shutting_down, clock=None, *, grace_s=None, leave_s=0.0
) -> list[tuple[str, object]]:
    """What ``_announce_restart`` (a graceful stop's last word) tells gossip."""
    overrides = {"node.data_dir": str(tmp_path / "data"), "api.socket": str(tmp_path / "s.sock")}
    if grace_s is not None:
        overrides["scheduler.restart_grace_s"] = grace_s
    config = load_config(overrides=overrides)
    daemon = Daemon(config, host_shutting_down=shutting_down)
    gossip = Gossip(leave_s)
    daemon.cluster.local = object()  # type: ignore[assignment]  # a member of a cluster
    daemon.cluster.board.gossip = gossip  # type: ignore[assignment]
    trio.run(daemon._announce_restart, clock=clock)
    return gossip.said


def test_a_stop_during_a_host_shutdown_announces_no_restart_and_leaves_gossip(tmp_path):
    """A restart asks to be held ("r"); a host shutdown leaves gossip instead: every member sees it
    ``left`` at once, takes its tasks out of DNS and the backends, and the leader marks it down (before:
    nothing said, its tasks served until gossip declared it dead, ~3 s, while its containers stopped)."""
    assert [key for key, _ in stop_announces(tmp_path / "a", lambda: False)] == ["r"]
    assert stop_announces(tmp_path / "b", lambda: True) == [("leave", None)]


def test_an_init_system_that_hangs_does_not_hold_up_the_stop(tmp_path):
    """The question is abandoned after ``2 * ASK_TIMEOUT_S`` (trio time): unknown, announced as before."""
    release = threading.Event()

    def hangs() -> bool:
        release.wait(60)
        return True

    try:
        clock = trio.testing.MockClock(autojump_threshold=0)  # the wait is skipped, not slept
        assert [key for key, _ in stop_announces(tmp_path, hangs, clock)] == ["r"]
    finally:
        release.set()


def test_the_stop_reaches_stop_all_even_when_the_announcement_fails(tmp_path, monkeypatch):
    """A real daemon (no cluster) stopped with a failing restart announcement still stops its subsystems
    and ends cleanly. Before: the failure skipped ``stop_all`` and ended the daemon with it."""
    from p2porch.daemon import Subsystems

    config = load_config(
        overrides={"node.data_dir": str(tmp_path / "data"), "api.socket": str(tmp_path / "s.sock")}
    )
    stopped: list[bool] = []
    real_stop_all = Subsystems.stop_all

    async def recorded_stop_all(self: Subsystems) -> None:
        stopped.append(True)
        await real_stop_all(self)

    async def fails() -> None:
        raise RuntimeError("announcement failed")

    async def on_ready(daemon: Daemon) -> None:
        daemon.request_stop()

    monkeypatch.setattr(Subsystems, "stop_all", recorded_stop_all)
    daemon = Daemon(config, on_ready=on_ready, host_shutting_down=lambda: False)
    monkeypatch.setattr(daemon, "_announce_restart", fails)
    trio.run(daemon.run)  # the failure logged, the stop completed
    assert stopped == [True]


def test_a_host_shutdown_leaves_gossip_with_no_restart_grace_too(tmp_path):
    """``restart_grace_s = 0`` turns off the restart announcement only: a host shutdown still leaves
    gossip (before: the stop returned before asking, and a host reboot left its backends dead for the
    3-4 s gossip took to declare it dead)."""
    assert stop_announces(tmp_path / "a", lambda: True, grace_s=0) == [("leave", None)]
    assert stop_announces(tmp_path / "b", lambda: False, grace_s=0) == []


def test_a_slow_answer_does_not_cut_the_leave_short(tmp_path):
    """The init system answers "shutting down" after 3.5 s (of the 4 s it is given), and the leave then
    takes 1 s to spread: it runs under its own timeout. Before, both shared the 4 s: the leave was
    cancelled half-way and the stop fell through to announcing a restart."""

    def slow_yes() -> bool:
        trio.from_thread.run(trio.sleep, 3.5)  # 3.5 s of the run's (mock) clock
        return True

    clock = trio.testing.MockClock(autojump_threshold=0.5)  # idle that long (real): the thread has asked
    assert stop_announces(tmp_path, slow_yes, clock, leave_s=1.0) == [("leave", None)]
