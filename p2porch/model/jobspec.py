"""The job part of a service spec: job modes, ``max_concurrent`` and the cron schedule (pure).

A job (``replicated-job``, ``global-job``) runs tasks to completion instead of keeping them running; a
cron job is a job with a :class:`CronSchedule` that starts one execution per tick. This module owns
validating those fields (cron expressions through ``croniter``, time zones through ``zoneinfo``) and
computing ticks; it never reads a clock (``now``/``after`` are arguments) and never looks at tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .units import duration_field, parse_choice, parse_int, take_fields

JOB_MODES = ("replicated-job", "global-job")
CONCURRENCY_POLICIES = ("forbid", "allow", "replace")
MAX_HISTORY_LIMIT = 100
#: ticks looked at when catching up after a long gap (bounded time whatever the gap)
MAX_TICKS_SCANNED = 1000
_REFERENCE = datetime(2026, 1, 1, tzinfo=UTC)

if TYPE_CHECKING:
    from croniter import croniter as Croniter


def _croniter() -> type[Croniter]:
    """croniter (with dateutil, ~0.9 MB) is imported on the first cron expression, not with the model."""
    from croniter import croniter

    return croniter


def _err(fieldname: str, message: str) -> ConfigError:
    return ConfigError(f"{fieldname}: {message}", field=fieldname)


def is_job_mode(mode: str) -> bool:
    return mode in JOB_MODES


def parse_cron(expr: Any, fieldname: str = "schedule.cron") -> str:
    """A standard 5-field cron expression (or @hourly, @daily, ...), normalised to single spaces."""
    if not isinstance(expr, str) or not expr.strip():
        raise _err(fieldname, "expected a cron expression such as '*/5 * * * *'")
    text = " ".join(expr.split())
    problem = _cron_problem(text)
    if problem:
        raise _err(fieldname, f"{expr!r}{problem}")
    return text


@lru_cache(maxsize=1024)
def _cron_problem(text: str) -> str:
    """What is wrong with a normalised cron expression ("" = nothing); memoised, as every scheduling
    round validates the stored specs again."""
    if not text.startswith("@") and len(text.split(" ")) != 5:
        return ": a cron expression has 5 fields (minute hour day month weekday)"
    from croniter import CroniterError

    if text in ("@reboot",) or not _croniter().is_valid(text):
        return " is not a valid cron expression"
    try:  # a valid expression may still never fire (0 0 31 2 *)
        _croniter()(text, _REFERENCE).get_next(float)
    except CroniterError:
        return " never fires"
    return ""


def parse_timezone(name: Any, fieldname: str = "schedule.timezone") -> str:
    if not isinstance(name, str) or not name:
        raise _err(fieldname, "expected an IANA time zone name such as Europe/Paris or UTC")
    from zoneinfo import ZoneInfoNotFoundError

    try:
        _zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _err(fieldname, f"unknown time zone {name!r}") from None
    return name


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """When a cron job starts an execution, and what happens around it.

    ``concurrency``: forbid (skip a tick while the previous execution runs), allow (start anyway; the
    previous one's running tasks finish but are no longer retried), replace (stop the previous one).
    ``history_limit``: finished executions whose tasks stay visible in ``service ps``.
    ``starting_deadline_s``: a tick found due later than this is skipped as missed (0 = no deadline).
    """

    cron: str
    timezone: str = "UTC"
    concurrency: str = "forbid"
    history_limit: int = 3
    starting_deadline_s: float = 0.0

    def __post_init__(self) -> None:
        parse_cron(self.cron)
        parse_timezone(self.timezone)
        if self.concurrency not in CONCURRENCY_POLICIES:
            raise _err(
                "schedule.concurrency",
                f"must be one of {', '.join(CONCURRENCY_POLICIES)} (got {self.concurrency!r})",
            )
        if (
            isinstance(self.history_limit, bool)
            or not isinstance(self.history_limit, int)
            or not 0 <= self.history_limit <= MAX_HISTORY_LIMIT
        ):
            raise _err("schedule.history_limit", f"must be an integer from 0 to {MAX_HISTORY_LIMIT}")
        if not 0.0 <= self.starting_deadline_s < float("inf"):
            raise _err("schedule.starting_deadline", "must be a finite, non-negative duration")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    # -- ticks -----------------------------------------------------------------------------------

    def next_tick(self, after: float) -> float:
        """The first tick strictly after ``after`` (epoch seconds), in the schedule's time zone.

        Memoised: the leader asks for the tick after the same ``cron_last_tick`` every round."""
        return next_tick(self.cron, self.timezone, after)

    def prev_tick(self, at: float) -> float:
        """The last tick at or before ``at``."""
        start = datetime.fromtimestamp(at, tz=UTC).astimezone(_zone(self.timezone))
        tick = float(_croniter()(self.cron, start).get_prev(float))
        following = self.next_tick(tick)
        return following if following <= at else tick

    def due_ticks(self, after: float, now: float) -> tuple[float | None, int]:
        """(the latest tick in ``(after, now]`` or None, how many earlier ticks in that range it hides).

        Scans at most MAX_TICKS_SCANNED ticks; beyond that the count is a lower bound."""
        latest: float | None = None
        hidden = 0
        tick = self.next_tick(after)
        scanned = 0
        while tick <= now and scanned < MAX_TICKS_SCANNED:
            if latest is not None:
                hidden += 1
            latest = tick
            scanned += 1
            tick = self.next_tick(tick)
        if tick <= now:  # gave up scanning: the latest tick is the last one at or before now
            hidden += 1
            latest = self.prev_tick(now)
        return latest, hidden


def _zone(name: str) -> tzinfo:
    """The IANA zone ``name``; ``zoneinfo`` is imported here, on the first cron job (~0.4 MB)."""
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


@lru_cache(maxsize=4096)
def next_tick(cron: str, tz: str, after: float) -> float:
    """The first tick of ``cron`` in time zone ``tz`` strictly after ``after`` (pure, memoised)."""
    return uncached_next_tick(cron, tz, after)


def uncached_next_tick(cron: str, tz: str, after: float) -> float:
    start = datetime.fromtimestamp(after, tz=UTC).astimezone(_zone(tz))
    return float(_croniter()(cron, start).get_next(float))


def parse_schedule(data: Any, prefix: str = "schedule") -> CronSchedule | None:
    """A cron job's schedule: a bare cron string or {cron, timezone, concurrency, history_limit,
    starting_deadline}; None = no schedule."""
    if data is None:
        return None
    if isinstance(data, str):
        data = {"cron": data}
    keys = {
        "cron": "cron",
        "timezone": "timezone",
        "concurrency": "concurrency",
        "history_limit": "history_limit",
        "starting_deadline": "starting_deadline_s",
        "starting_deadline_s": "starting_deadline_s",
    }
    d = take_fields(data, prefix, keys)
    if "cron" not in d:
        raise _err(f"{prefix}.cron", "is required")
    kw: dict[str, Any] = {"cron": parse_cron(d["cron"][1], f"{prefix}.cron")}
    if "timezone" in d:
        kw["timezone"] = parse_timezone(d["timezone"][1], f"{prefix}.timezone")
    if "concurrency" in d:
        kw["concurrency"] = parse_choice(d["concurrency"][1], CONCURRENCY_POLICIES, f"{prefix}.concurrency")
    if "history_limit" in d:
        kw["history_limit"] = parse_int(
            d["history_limit"][1], f"{prefix}.history_limit", maximum=MAX_HISTORY_LIMIT
        )
    kw["starting_deadline_s"] = duration_field(d.get("starting_deadline_s"), prefix, 0.0)
    return CronSchedule(**kw)


def check_job_fields(
    mode: str, max_concurrent: int, schedule: CronSchedule | None, *, rebalance: bool = False
) -> None:
    """Cross-field rules of a spec's job part (raises ConfigError naming the field)."""
    if rebalance and is_job_mode(mode):
        raise _err("rebalance", "a job's tasks run to completion: there is nothing to rebalance")
    if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or max_concurrent < 0:
        raise _err("max_concurrent", "must be a non-negative integer")
    if max_concurrent and mode != "replicated-job":
        raise _err("max_concurrent", f"only a replicated-job has it (this service's mode is {mode})")
    if schedule is not None and not is_job_mode(mode):
        raise _err(
            "schedule",
            f"only a job runs on a schedule (mode {mode}: use --mode replicated-job or global-job)",
        )


def global_scale_refusal(name: str, mode: str) -> str:
    """Docker's words for ``service scale`` of a global service (exit 1: a refused operation); not
    starting with the name: the CLI puts the SERVICE as given before it, as docker/cli's (an id prefix
    given said ``3f2a: web: scale ...``)."""
    return (
        f"scale can only be used with replicated or replicated-job mode (service {name} is "
        f"{mode}: it runs one task per eligible node)"
    )
