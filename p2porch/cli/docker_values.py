"""The values docker/cli's list contexts give a ``--format`` field where p2porch's own column differs
(pure): states as ``command.PrettyPrint`` writes them (``Running``, ``Ready``, ``Active``), times as
go-units' ``HumanDuration`` (``8 seconds ago``, ``About a minute ago``), a task's ``{{.Error}}`` (quoted,
cut to 30), ``service ls``'s ``{{.Ports}}`` (ingress ports only, ranges merged: ``*:8080->80/tcp,
*:30000-30002->30000-30002/tcp``).

The tables keep p2porch's own columns (``running``, ``8s ago``, a host-mode port ``8081->80/tcp
(host)``); only the fields a template names take these. Never asks the daemon.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any


def pretty(value: Any) -> str:
    """docker/cli's ``PrettyPrint``: the text with its first letter upper case, the rest lower case."""
    text = "None" if value is None else str(value)
    return text[:1].upper() + text[1:].lower() if len(text) > 1 else text.lower()


def human_duration(seconds: float) -> str:
    """go-units' ``HumanDuration``: ``Less than a second``, ``1 second``, ``8 seconds``, ``About a
    minute``, ``5 minutes``, ``About an hour``, ``3 hours``, ``4 days``, ``3 weeks``, ``2 months``,
    ``2 years``."""
    whole = int(seconds)
    if whole < 1:
        return "Less than a second"
    if whole == 1:
        return "1 second"
    if whole < 60:
        return f"{whole} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)  # Go's math.Round of a positive number
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def human_ago(at: float, now: float | None = None) -> str:
    """``HumanDuration(now - at) + " ago"`` (a secret's or config's ``{{.CreatedAt}}``)."""
    return human_duration((time.time() if now is None else now) - at) + " ago"


def current_state(state: str, since: float, now: float | None = None) -> str:
    """A task's ``{{.CurrentState}}``: ``Running 8 seconds ago``, ``Shutdown less than a second ago``
    (``since`` 0, unknown: as now, as the table's ``0s ago``)."""
    elapsed = (time.time() if now is None else now) - since if since else 0.0
    return f"{pretty(state)} {human_duration(elapsed).lower()} ago"


#: docker/cli's ``maxErrLength``: a task's error is cut to it (``…`` last) unless ``--no-trunc``
MAX_ERROR_LENGTH = 30


def task_error(error: str, no_trunc: bool = False) -> str:
    """A task's ``{{.Error}}`` as docker/cli's: quoted, cut to 30 characters (``…`` the last) unless
    ``no_trunc``; "" for none."""
    if not error:
        return ""
    if not no_trunc and len(error) > MAX_ERROR_LENGTH:
        error = error[: MAX_ERROR_LENGTH - 1] + "…"
    return f'"{error}"'


def ingress_ports(ports: Sequence[Mapping[str, Any]]) -> str:
    """``service ls``'s ``{{.Ports}}``: the ingress ports by protocol and published port, consecutive
    ones merged into a range, as docker/cli's ``serviceContext.Ports``; a host-mode port is no service's
    (``service ps`` shows it per task)."""
    chosen = sorted(
        (
            (str(p.get("protocol") or "tcp"), int(p["published"]), int(p["target"]))
            for p in ports
            if p.get("published")
            and (p.get("mode") or ("host" if p.get("host_ip") else "ingress")) == "ingress"
        ),
    )
    out: list[str] = []
    run: list[Any] = []  # protocol, published start, end, target start, end
    for protocol, published, target in chosen:
        consecutive = bool(run) and protocol == run[0] and published - run[2] <= 1 and target - run[4] <= 1
        overlaps = bool(run) and run[4] != run[3] and target <= run[4]  # a range's targets: a new one
        if consecutive and not overlaps:
            run[2], run[4] = published, target
            continue
        if run:
            out.append(_port_range(*run))
        run = [protocol, published, published, target, target]
    if run:
        out.append(_port_range(*run))
    return ", ".join(out)


def _port_range(protocol: str, p_start: int, p_end: int, t_start: int, t_end: int) -> str:
    published = f"{p_start}-{p_end}" if p_end > p_start else str(p_start)
    target = f"{t_start}-{t_end}" if t_end > t_start else str(t_start)
    return f"*:{published}->{target}/{protocol}"
