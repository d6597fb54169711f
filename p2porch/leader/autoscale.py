"""The autoscaler's recommender: target tracking on usage relative to limits, HPA-style (pure).

``recommend`` takes one service's policy, its current replica count, the usage the members report
(averaged over a window, as percent of the tasks' CPU/memory limits or reservations), the recent raw
recommendations and ``now``, and returns a :class:`Decision`: the replica count to write (or the
current one) with its inputs and a human explanation. The rules, in order:

1. Paused while a rolling update is in progress (the update owns the task set).
2. Never on missing data: every running task must have reported for the window, else hold.
3. Per metric ``raw = ceil(current x usage / target)``, unless ``|usage / target - 1| <= tolerance``
   (then ``current``); the largest metric wins; clamped to ``[min, max]``.
4. Stabilisation as the Kubernetes HPA: a scale-up takes the *smallest* raw recommendation of the
   last ``scale_up_delay_s``, a scale-down the *largest* of the last ``scale_down_delay_s``, and
   neither happens sooner than that delay after the last committed scale (``last_scale_at``).
5. Bounded steps: up by at most ``max(current, 4)`` (at most double, or +4), down by at most half.

The recommendation history lives in the leader's memory; what a new leader needs comes from committed
state: ``last_scale_at`` (written with the replicas) and ``observing_since`` (when this leader
started watching). A leader that has not observed for a full window holds instead of acting on a
partial history, so a leader change never makes a jump. A replica count outside ``[min, max]`` (the
user changed the policy) is corrected at once. Nothing here performs I/O or reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

__all__ = [
    "AutoscalePolicy",
    "Decision",
    "ServiceUsage",
    "prune_history",
    "recommend",
]

DEFAULT_SCALE_UP_DELAY_S = 0.0
DEFAULT_SCALE_DOWN_DELAY_S = 300.0
TOLERANCE = 0.10
UP_STEP_MIN = 4


@dataclass(frozen=True, slots=True)
class AutoscalePolicy:
    """One service's autoscale settings (validated by the spec layer; the recommender trusts them)."""

    min_replicas: int
    max_replicas: int
    cpu_percent: float | None = None
    memory_percent: float | None = None
    scale_up_delay_s: float = DEFAULT_SCALE_UP_DELAY_S
    scale_down_delay_s: float = DEFAULT_SCALE_DOWN_DELAY_S
    tolerance: float = TOLERANCE

    def targets(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.cpu_percent is not None:
            out["cpu"] = self.cpu_percent
        if self.memory_percent is not None:
            out["memory"] = self.memory_percent
        return out


@dataclass(frozen=True, slots=True)
class ServiceUsage:
    """A service's usage as the members reported it: percent of the tasks' limits, averaged.

    ``cpu_percent``/``memory_percent`` are the mean over the reporting tasks and ``window_s``;
    ``tasks_reporting`` counts tasks with a full window of samples, ``tasks_running`` the running ones;
    ``cpu_base``/``memory_base`` say what each percent is of (``limit`` or ``reservation``)."""

    tasks_running: int
    tasks_reporting: int
    window_s: float
    cpu_percent: float | None = None
    memory_percent: float | None = None
    cpu_base: str = "limit"
    memory_base: str = "limit"

    def value(self, metric: str) -> float | None:
        return self.cpu_percent if metric == "cpu" else self.memory_percent

    def base(self, metric: str) -> str:
        return self.cpu_base if metric == "cpu" else self.memory_base


@dataclass(frozen=True, slots=True)
class Decision:
    """What the recommender says for one service at ``at``: ``desired`` replicas and why.

    ``history`` is the pruned raw recommendations to pass to the next call (the leader keeps it)."""

    at: float
    current: int
    desired: int
    raw: int | None
    reason: str
    inputs: dict[str, float | int | str | None] = field(default_factory=dict)
    history: tuple[tuple[float, int], ...] = ()

    @property
    def changes(self) -> bool:
        return self.desired != self.current


def prune_history(
    history: Iterable[tuple[float, int]], now: float, policy: AutoscalePolicy
) -> tuple[tuple[float, int], ...]:
    """Keep the raw recommendations still inside the longer stabilisation window."""
    keep = max(policy.scale_up_delay_s, policy.scale_down_delay_s)
    return tuple((t, r) for t, r in history if now - t <= keep)


def _fmt(x: float) -> str:
    return f"{x:.0f}" if abs(x - round(x)) < 0.05 else f"{x:.1f}"


def recommend(
    policy: AutoscalePolicy,
    current: int,
    usage: ServiceUsage | None,
    history: Iterable[tuple[float, int]],
    now: float,
    *,
    last_scale_at: float,
    observing_since: float,
    rolling: bool = False,
) -> Decision:
    """One recommendation for one service (see the module docstring for the rules)."""
    past = prune_history(history, now, policy)
    inputs: dict[str, float | int | str | None] = {
        "min": policy.min_replicas,
        "max": policy.max_replicas,
        "current": current,
    }

    def hold(reason: str, raw: int | None = None, hist: tuple[tuple[float, int], ...] = past) -> Decision:
        return Decision(now, current, current, raw, reason, inputs, hist)

    bounded = min(max(current, policy.min_replicas), policy.max_replicas)
    if bounded != current:
        return Decision(
            now,
            current,
            bounded,
            bounded,
            f"{current} is outside min {policy.min_replicas} / max {policy.max_replicas}",
            inputs,
            past,
        )
    if rolling:
        return hold("paused: a rolling update is in progress")
    if usage is None or usage.tasks_running == 0:
        return hold("no usage data yet: not scaling on missing data")
    inputs.update(
        window_s=usage.window_s,
        tasks_running=usage.tasks_running,
        tasks_reporting=usage.tasks_reporting,
    )
    if usage.tasks_reporting < usage.tasks_running:
        return hold(
            f"only {usage.tasks_reporting} of {usage.tasks_running} tasks reported a full window: "
            "not scaling on missing data"
        )
    raw = 0
    lead_text = ""
    within: list[str] = []
    for metric, target in policy.targets().items():
        value = usage.value(metric)
        inputs[f"{metric}_percent"] = value
        inputs[f"{metric}_target"] = target
        if value is None:
            return hold(f"no {metric} data: not scaling on missing data")
        text = (
            f"{metric} {_fmt(value)} % of {usage.base(metric)} over {_fmt(usage.window_s)} s, "
            f"target {_fmt(target)} %"
        )
        ratio = value / target
        want = current if abs(ratio - 1.0) <= policy.tolerance else math.ceil(current * ratio - 1e-9)
        if want == current:
            within.append(text)
        if want > raw or not lead_text:
            raw, lead_text = max(raw, want), text
    raw = min(max(raw, policy.min_replicas), policy.max_replicas)
    inputs["raw"] = raw
    hist = (*past, (now, raw))
    if raw == current:
        why = "; ".join(within) or lead_text
        return hold(f"steady: {why} (within {policy.tolerance:.0%} tolerance or at a bound)", raw, hist)
    up = raw > current
    delay = policy.scale_up_delay_s if up else policy.scale_down_delay_s
    word = "up" if up else "down"
    if now - observing_since < delay:
        return hold(
            f"wants {raw} ({lead_text}) but has observed for {_fmt(now - observing_since)} s of the "
            f"{_fmt(delay)} s scale-{word} window (leader change or start)",
            raw,
            hist,
        )
    if now - last_scale_at < delay:
        return hold(
            f"wants {raw} ({lead_text}) but the last scale was {_fmt(now - last_scale_at)} s ago, "
            f"scale-{word} delay {_fmt(delay)} s",
            raw,
            hist,
        )
    window = [r for t, r in hist if now - t <= delay]
    stable = min(window) if up else max(window)
    if (up and stable <= current) or (not up and stable >= current):
        return hold(
            f"wants {raw} ({lead_text}) but not for the whole {_fmt(delay)} s scale-{word} window", raw, hist
        )
    if up:
        desired = min(stable, current + max(current, UP_STEP_MIN))
    else:
        desired = max(stable, current - current // 2, policy.min_replicas)
    bound = "" if desired == stable else f" (step bounded from {stable})"
    decision = Decision(now, current, desired, raw, f"{lead_text}{bound}", inputs, hist)
    return replace(decision, inputs={**inputs, "desired": desired})
