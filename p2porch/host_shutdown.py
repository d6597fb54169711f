"""Whether the host is shutting down, as its init system tells (a pure reading and a blocking shell).

A daemon stopping on SIGTERM announces a restart (``daemon.Daemon._announce_restart``), but a host reboot
or power-off through systemd sends the same SIGTERM: announced, its tasks would move only after
``[scheduler] restart_grace_s``. Asked while the daemon stops, the init system says which it is:

- systemd (booted with it: ``/run/systemd/system`` exists): ``systemctl is-system-running`` prints
  ``stopping`` once a shutdown, reboot, halt or power-off has begun (its manager's ``SystemState``;
  ``systemctl restart p2porch`` leaves it ``running`` or ``degraded``). A shutdown merely scheduled
  (``shutdown +5``, ``/run/systemd/shutdown/scheduled``) has not begun: the daemon is not stopping yet.
- SysV init (no systemd): ``runlevel`` names the runlevel init is switching to, 0 (halt) or 6 (reboot)
  once the shutdown scripts run.
- Neither answers (another init, a container without one, a timeout): unknown, and the daemon announces
  its restart as before (docs/failure-model.md).

It never decides what the daemon announces and never raises: every failure reads as unknown.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable

__all__ = ["ASK_TIMEOUT_S", "SYSTEMD_MARKER", "host_shutting_down", "shutdown_begun"]

SYSTEMD_MARKER = "/run/systemd/system"  # sd_booted(3): present when systemd is the init system
ASK_TIMEOUT_S = 2.0
SHUTDOWN_RUNLEVELS = frozenset({"0", "6"})


def shutdown_begun(system_state: str | None, runlevel: str | None) -> bool:
    """Whether a host shutdown has begun: systemd's manager state (``is-system-running``'s output) is
    ``stopping``, or, without a systemd answer, SysV's ``runlevel`` output ("N 6": previous, current)
    names runlevel 0 or 6. None: that source did not answer."""
    if system_state is not None:
        return system_state.strip() == "stopping"
    words = (runlevel or "").split()
    return len(words) == 2 and words[1] in SHUTDOWN_RUNLEVELS


def host_shutting_down(
    *,
    marker: str = SYSTEMD_MARKER,
    path: str | None = None,
    run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
) -> bool:
    """Ask the init system (blocking, ``ASK_TIMEOUT_S`` per program) whether the host is going down;
    ``path``: where to look for ``systemctl`` and ``runlevel`` (default ``$PATH`` and the sbin dirs)."""
    search = path or f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin:/usr/bin:/bin"
    system_state = runlevel = None
    if os.path.isdir(marker) and (systemctl := shutil.which("systemctl", path=search)):
        system_state = _output(run, [systemctl, "is-system-running"])  # exits non-zero unless running
    if system_state is None and (program := shutil.which("runlevel", path=search)):
        runlevel = _output(run, [program])
    return shutdown_begun(system_state, runlevel)


def _output(run: Callable[..., subprocess.CompletedProcess[str]], argv: list[str]) -> str | None:
    try:
        proc = run(argv, capture_output=True, text=True, timeout=ASK_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None
