"""Waiting for services to converge, with per-task progress, as ``docker service create`` does (shell).

After ``service create|update|scale|rollback`` and ``stack deploy`` the CLI polls the service and its
tasks until every task that should run is running (healthy when it has a check) on the current spec,
as many as desired, with nothing pending or moving, and the leader has judged an update or rollback
(completed once its tasks ran past the policy's monitor; jobs are not waited for: :func:`waits_for`); once
a task of the change has failed or exited, that must hold for ``STABLE_S``, as Docker verifies. It
stops early and fails (exit 1, the reason printed) when the update is paused, the service is changed by
someone else, it is removed, or tasks of the current spec failed ``MAX_FAILURES`` times; after
``timeout_s``; and when it was rolled back, once the rollback's tasks converged (as Docker's CLI).
:func:`assess` is the decision (pure, unit-tested); :class:`ProgressPrinter` shows it on stderr:
lines redrawn on a terminal, one line per change otherwise; nothing with ``-q``/``--json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from ..errors import NotFoundError, P2POrchError, StaleReadRefused
from ..model import NOT_RESTARTED, TaskHealth
from .util import positive_seconds

POLL_S = 0.5
MAX_FAILURES = 3
DEFAULT_TIMEOUT_S = 300.0
GLOBAL_GRACE_S = 3.0  # a global service with no task yet: the scheduler may not have run
# after a task of ours failed or exited, convergence must hold this long (Docker's CLI: "Waiting 5 seconds
# to verify that tasks are stable"): a replacement caught running between two exits is not converged
STABLE_S = 5.0


@dataclass
class Watch:
    """One service being waited for: its name and the service version our write produced."""

    name: str
    version: int
    started: float = 0.0
    failed_ids: set[str] = field(default_factory=set)
    baseline: set[str] | None = None  # tasks already failed at the first poll (not ours)
    created: bool = False  # our write created the service: every task is ours, the first poll's too
    steady_since: float | None = None  # elapsed s since convergence has held, once a task of ours failed
    spec: dict[str, Any] | None = None  # the spec at the first poll, without leader bookkeeping
    extra_s: float = 0.0  # added to the timeout while the leader judges its rollout (monitor_allowance_s)


BOOKKEEPING = ("rebalance_requested", "previous_spec", "update_paused")
# a rollout the leader has not judged yet: it marks it completed once every slot ran the new spec past
# the policy's monitor (docs/scheduler.md, "The rollout record")
JUDGING = ("updating", "rollback_started")


def monitor_allowance_s(view: dict[str, Any]) -> float:
    """While the leader judges an update or rollback, the time that adds to ``--converge-timeout``: each
    batch stays in flight for the policy's monitor after it starts and the next waits its delay after that
    (scheduler/orchestrator.py), so at least ``batches x (monitor + delay)``; 0 otherwise.
    ``--update-monitor 10m`` must not fail a healthy update at the default 300 s."""
    status = view.get("update_status") or {}
    if status.get("state") not in JUDGING:
        return 0.0
    spec = view.get("spec") or {}
    policy = spec.get("rollback" if str(status.get("state")).startswith("rollback") else "update") or {}
    parallelism = int(policy.get("parallelism", 1) or 0)
    desired = max(int(view.get("desired") or 0), 1)
    batches = 1 if parallelism <= 0 else -(-desired // parallelism)
    monitor = float(policy.get("monitor_s", 5.0) or 0.0)
    return (monitor + float(policy.get("delay_s", 0.0) or 0.0)) * batches


def _user_spec(view: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in (view.get("spec") or {}).items() if k not in BOOKKEEPING}


@dataclass(frozen=True)
class Assessment:
    """Where one service stands: ``done`` (converged) or ``failure`` (why it will not), and task lines."""

    done: bool
    failure: str | None
    lines: tuple[str, ...]
    summary: str
    keys: tuple[str, ...] = ()  # the task id of each line: two tasks of one slot are two lines


def _task_line(t: dict[str, Any], total: int) -> str:
    state = t.get("state", "?")
    if state == "running" and t.get("health") in ("starting", "unhealthy"):
        state = f"running ({t['health']})"
    if state == "running" and t.get("up_to_date") is False:
        state = "running (old spec)"
    where = f"[{t['node']}]" if t.get("node") else ""
    why = t.get("error") or (t.get("message") if state != "running" else "") or ""
    return f"{t.get('slot', '?')}/{total}: {state:<20} {where} {why}".rstrip()


def _leaving_line(t: dict[str, Any], desired: int) -> str:
    """A task of a slot above the new target of a scale-down: it stops (not counted in ``slot/total``)."""
    where = f"[{t['node']}]" if t.get("node") else ""
    return f"{t.get('slot', '?')}: {'removing':<20} {where} scaled down to {desired}"


EXITED_AT_ONCE = (
    "task exited with code 0, and the service restarts its tasks (restart condition any): "
    "does the command run in the foreground? (an image with no default command needs one)"
)


def _failure_of(task: dict[str, Any], restarts_done: bool) -> str:
    """Why ``task`` counts as a failure of the change ("" when it does not): failed or rejected, stopped
    for failing its health check (as Swarm's "unhealthy container" failure), or, for a service whose
    tasks should keep running, completed (it will only be restarted, in a loop)."""
    if task.get("state") in ("failed", "rejected"):
        return str(task.get("error") or "") or f"task {task.get('state')}"
    message = str(task.get("message") or "")
    if message == TaskHealth.UNHEALTHY or message.startswith(f"{NOT_RESTARTED}{TaskHealth.UNHEALTHY}"):
        # the leader stopped it (state shutdown): uncounted, an update whose tasks all turned unhealthy
        # after its monitor waited for the whole --converge-timeout
        return "task unhealthy (its health check failed)"
    if restarts_done and task.get("state") == "complete":
        return str(task.get("error") or "") or EXITED_AT_ONCE
    return ""


def _kept_slot(view: dict[str, Any], task: dict[str, Any]) -> bool:
    """Whether ``task``'s slot stays after this change (a scale-down stops the highest slots)."""
    return view.get("mode") != "replicated" or int(task.get("slot") or 0) <= int(view.get("desired") or 0)


def assess(
    watch: Watch, view: dict[str, Any], tasks: Sequence[dict[str, Any]], elapsed_s: float
) -> Assessment:
    """Decide from one poll whether ``watch`` converged, failed, or is still on its way (pure)."""
    active = [t for t in tasks if t.get("desired_state") == "running"]
    desired = int(view.get("desired") or 0)
    restart = (view.get("spec") or {}).get("restart") or {}
    restarts_done = restart.get("condition", "any") == "any" and not str(view.get("mode", "")).endswith("job")
    failed = {str(t.get("id")) for t in tasks if _failure_of(t, restarts_done and _kept_slot(view, t))}
    if watch.baseline is None:  # failures from before this change are not its failures; a service
        # this write created has none (a task that exited before the first poll is ours)
        watch.baseline = set() if watch.created else failed
        watch.spec = _user_spec(view)
    watch.failed_ids |= {
        i
        for i in failed - watch.baseline
        if any(t.get("id") == i and t.get("up_to_date") is not False for t in tasks)
    }
    # "slot/replicas" as Docker shows it: a start-first update's second task of a slot adds no slot; a
    # scale-down counts against the new target, and the slots above it show as leaving
    kept = [t for t in active if _kept_slot(view, t)]
    slots = [v for v in (t.get("slot") for t in kept) if isinstance(v, int)]
    total = max([desired, *slots]) if len(slots) == len(kept) else max(desired, len(kept))
    shown = sorted(active, key=lambda t: (t.get("slot") or 0, t.get("up_to_date") is not False))
    lines = tuple(_task_line(t, total) if _kept_slot(view, t) else _leaving_line(t, desired) for t in shown)
    keys = tuple(str(t.get("id")) for t in shown)
    ready = [  # a leaving slot's task is not counted: "3/2 tasks running" during a scale-down read wrong
        t
        for t in kept
        if t.get("state") == "running"
        and not t.get("last_report")  # on a node that does not report it: service ls counts it out too
        and t.get("up_to_date") is not False
        and t.get("health") in ("", None, "healthy")
    ]
    summary = f"{view.get('name')}: {len(ready)}/{desired} tasks running"
    if view.get("mode") == "global" and not active:  # no task yet: "0/0" would read as nothing to run
        summary = f"{view.get('name')}: " + (
            "placing one task on each eligible node"
            if elapsed_s < GLOBAL_GRACE_S
            else "0 tasks running: no node is eligible (constraints, availability)"
        )
    status = view.get("update_status") or {}
    if view.get("update_paused"):
        reason = (
            status.get("reason")
            or next((t.get("error") for t in tasks if t.get("error")), "")
            or "a task of the new spec failed"
        )
        return Assessment(False, f"update paused: {reason}", lines, summary, keys)
    if int(view.get("version") or 0) != watch.version and _user_spec(view) == watch.spec:
        watch.version = int(view.get("version") or 0)  # leader bookkeeping (e.g. a rebalance finished)
    rolled_back = ""
    if int(view.get("version") or 0) != watch.version and str(status.get("state", "")).startswith("rollback"):
        # update_config.failure_action rollback (or a `service rollback` meanwhile): as Docker's CLI, follow
        # the rollback until its tasks converged, then fail saying why (it had returned at its start,
        # the service at 1/2 while the rollback had just begun)
        why = status.get("reason") or "service rollback"
        if status.get("state") == "rollback_paused":
            return Assessment(False, f"rollback paused: {why}", lines, summary, keys)
        if status.get("state") != "rollback_completed":
            return Assessment(False, None, lines, f"{summary} (rolling back: {why})", keys)
        rolled_back, watch.failed_ids = f"rolled back: {why}", set()  # its tasks are the rollback's
    elif int(view.get("version") or 0) != watch.version:
        return Assessment(
            False,
            f"the service changed while waiting (version {view.get('version')}, ours {watch.version}): "
            "rolled back after a failure, or updated by someone else",
            lines,
            summary,
            keys,
        )
    ours = [t for t in tasks if str(t.get("id")) in watch.failed_ids]
    over = [t for t in ours if str(t.get("message") or "").startswith(NOT_RESTARTED) and _kept_slot(view, t)]
    if len(watch.failed_ids) >= MAX_FAILURES or over:  # over: a slot its restart policy gave up on
        reason = _failure_of(max(ours, key=lambda t: t.get("state_at") or 0), True) if ours else ""
        reason = (reason or "no reason given") + (f"; {over[0]['message']}" if over else "")
        return Assessment(False, f"{len(watch.failed_ids)} tasks failed: {reason}", lines, summary, keys)
    if view.get("mode") == "global" and not active and elapsed_s < GLOBAL_GRACE_S:
        return Assessment(False, None, lines, summary, keys)
    finished = (
        {t.get("slot") for t in tasks if t.get("state") == "complete" and t.get("up_to_date") is not False}
        if restart.get("condition", "any") != "any"
        else set()
    )  # a task that ran to completion and is not restarted is done (one-shot services)
    unfinished = [t for t in active if t.get("slot") not in finished]
    converged = (
        all(t in ready for t in unfinished)
        and len({t.get("slot") for t in ready} | finished) >= desired
        and (len(ready) == len(unfinished) or not finished)
        and not view.get("pending")
        and not view.get("moving")
        and (int(view.get("running") or 0) == desired or bool(finished))
    )
    if not converged or not watch.failed_ids:
        watch.steady_since = None
    elif watch.steady_since is None:
        watch.steady_since = elapsed_s
    if watch.steady_since is not None:  # tasks of ours failed: converged once it has held STABLE_S
        converged = elapsed_s - watch.steady_since >= STABLE_S
        summary += f" (verifying they are stable for {STABLE_S:.0f} s)" if not converged else ""
    if rolled_back:
        return Assessment(False, rolled_back if converged else None, lines, summary, keys)
    if converged and status.get("state") in JUDGING:  # the leader still monitors the new tasks: a failure
        # in that window rolls back or pauses, which an exit 0 would hide (Docker's CLI waits it too)
        summary += " (verifying that the new tasks are stable: the update's monitor)"
        return Assessment(False, None, lines, summary, keys)
    return Assessment(converged, None, lines, summary, keys)


class ProgressPrinter:
    """Shows assessments: redrawn on a terminal (one block per service watched, all of them), changed
    lines only otherwise (after their service's summary line whenever another service's lines came
    between, so a stack's task lines never read as another service's), nothing when quiet."""

    def __init__(self, out: TextIO | None = None, *, quiet: bool = False) -> None:
        self.out = out or sys.stderr
        self.quiet = quiet
        self.tty = bool(getattr(self.out, "isatty", lambda: False)())
        self._drawn = 0
        self._blocks: dict[str, list[str]] = {}  # on a terminal: each unfinished service's lines
        self._seen: dict[str, str] = {}
        self._last = ""  # otherwise: the service whose lines were printed last

    def show(self, name: str, assessment: Assessment) -> None:
        if self.quiet:
            return
        if self.tty:
            self._blocks[name] = [assessment.summary, *assessment.lines]
            self._redraw()
        else:
            keys = assessment.keys or tuple(line.split(":", 1)[0] for line in assessment.lines)
            pairs = ((":summary", assessment.summary), *zip(keys, assessment.lines, strict=True))
            changed = [(key, line) for key, line in pairs if self._seen.get(f"{name}:{key}") != line]
            if changed and changed[0][0] != ":summary" and self._last != name:
                changed.insert(0, (":summary", assessment.summary))  # whose lines these are
            for key, line in changed:
                self._seen[f"{name}:{key}"] = line
                self.out.write(f"{line}\n" if key == ":summary" else f"  {line}\n")
            if changed:
                self._last = name
        self.out.flush()

    def _redraw(self, above: Sequence[str] = ()) -> None:
        """The unfinished blocks drawn again over the ones drawn before; ``above`` stays printed."""
        if self._drawn:
            self.out.write(f"\x1b[{self._drawn}F\x1b[J")
        text = [line for block in self._blocks.values() for line in block]
        self.out.write("".join(f"{line}\n" for line in (*above, *text)))
        self._drawn = len(text)

    def finish(self, text: str, name: str = "") -> None:
        """``text`` (``web: converged``) printed for good, under ``name``'s last lines on a terminal."""
        if self.quiet:
            return
        if self.tty:
            self._redraw((*self._blocks.pop(name, ()), text))
        else:
            self.out.write(text + "\n")
            self._last = ""
        self.out.flush()


def wait_for_services(
    client: Any,
    watches: Sequence[Watch],
    *,
    printer: ProgressPrinter,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Poll until every watched service converged; P2POrchError (exit 1) naming why otherwise."""
    start = clock()
    pending = list(watches)
    for w in pending:
        w.started = start
    while pending:
        for watch in list(pending):
            try:
                # this node's copy: the change was applied here before it was acknowledged (no barrier)
                view = client.get(f"/services/{watch.name}", stale="true")
                tasks = client.get(f"/services/{watch.name}/tasks", all="true", stale="true")
            except NotFoundError as exc:
                raise P2POrchError(f"{watch.name}: the service was removed while waiting") from exc
            except StaleReadRefused:
                continue  # a daemon that refuses even its own copy: poll again
            result = assess(watch, view, tasks, clock() - watch.started)
            # the largest seen: once the leader judged the rollout, convergence may take a poll or two more
            watch.extra_s = max(watch.extra_s, monitor_allowance_s(view))
            printer.show(watch.name, result)
            if result.failure:
                raise P2POrchError(f"{watch.name}: {result.failure} (see p2porch service ps {watch.name})")
            if result.done:
                pending.remove(watch)
                printer.finish(f"{watch.name}: converged", watch.name)
        late = [w for w in pending if clock() - start > timeout_s + w.extra_s]
        if late:
            names = ", ".join(w.name for w in late)
            judging = "; its rollout's monitor was still running" if any(w.extra_s for w in late) else ""
            waited = max(timeout_s + w.extra_s for w in late)
            raise P2POrchError(
                f"{names}: not converged after {waited:.0f}s{judging}; the change is made and keeps going "
                "(see p2porch service ps)"
            )
        if pending:
            sleep(POLL_S)


def waits_for(view: dict[str, Any]) -> bool:
    """Whether a write answered with this service view is waited for: services yes; jobs no (they run to
    completion or on a schedule: follow them with ``service ps``); a service already removed no."""
    return view.get("version") is not None and not str(view.get("mode") or "").endswith("-job")


def add_wait_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--detach",
        "-d",
        action="store_true",
        help="return at once instead of waiting for the tasks to converge",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="wait without showing progress")
    p.add_argument(
        "--converge-timeout",
        type=positive_seconds,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help=f"give up waiting after S seconds (default {DEFAULT_TIMEOUT_S:.0f}; the change stays), plus "
        "the update's monitor and delays while the leader judges it",
    )


def wait_after(args: argparse.Namespace, client: Any, watches: Sequence[Watch]) -> None:
    """Wait for ``watches`` unless ``--detach``; progress on stderr unless ``-q`` or ``--json``."""
    if getattr(args, "detach", False) or not watches:
        return
    quiet = bool(getattr(args, "quiet", False) or getattr(args, "json", False))
    wait_for_services(
        client,
        watches,
        printer=ProgressPrinter(quiet=quiet),
        timeout_s=float(getattr(args, "converge_timeout", DEFAULT_TIMEOUT_S)),
    )
