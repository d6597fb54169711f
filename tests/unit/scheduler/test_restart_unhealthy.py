"""The restart policy for tasks that fail their health check: Swarm's restart supervisor counts such a
task as failed (``any``/``on-failure``), stops it and starts its replacement only after ``--restart-delay``,
counting the attempts within ``--restart-window``. Before, the orchestrator replaced an unhealthy task in
the same round, whatever the delay and the window. The pure decision (``restart_due``) and the rounds."""

from __future__ import annotations

import dataclasses
import random

import pytest

from p2porch.model import Node, RestartPolicy, Service, ServiceSpec, Task
from p2porch.scheduler import Orchestrator, Reconciliation, ShutdownTask
from p2porch.scheduler.restart import restart_due

NODES = [Node("n1", "n1"), Node("n2", "n2")]
#: --restart-delay 5s --restart-max-attempts 2 --restart-window 60s
POLICY = RestartPolicy(delay_s=5.0, max_attempts=2, window_s=60.0)


def spec_of(
    policy: RestartPolicy = POLICY, mode: str = "replicated", image: str = "busybox:1"
) -> ServiceSpec:
    return ServiceSpec(name="web", image=image, replicas=1, mode=mode, restart=policy)


def sick(spec: ServiceSpec, at: float, history: tuple[float, ...] = (), **kw: object) -> Task:
    """Slot 1's task on n1, running, reported unhealthy at ``at``."""
    fields: dict[str, object] = {
        "task_id": "t1",
        "service_id": "s1",
        "slot": 1,
        "node_id": "n1",
        "state": "running",
        "state_at": at,
        "started_at": 1.0,
        "health": "unhealthy",
        "template_hash": spec.template_hash(),
        "restart_history": history,
        **kw,
    }
    return Task(**fields)  # type: ignore[arg-type]


def stopped(task: Task, at: float | None = None) -> Task:
    """``task`` after the orchestrator's shutdown was committed; ``at``: the agent reported it stopped."""
    out = dataclasses.replace(task, desired_state="shutdown", message="unhealthy")
    if at is not None:
        out = dataclasses.replace(out, state="shutdown", state_at=at, health="")
    return out


def reconcile(spec: ServiceSpec, tasks: list[Task], now: float) -> Reconciliation:
    nodes = NODES[:1] if spec.mode == "global" else NODES
    return Orchestrator(random.Random(1)).reconcile([Service("s1", spec)], tasks, nodes, now=now)


# ------------------------------------------------------------------------------------- the pure decision
def test_restart_due_is_the_back_off_after_the_end() -> None:
    policy = RestartPolicy(delay_s=5.0, max_delay_s=30.0)
    task = sick(spec_of(policy), at=100.0)
    assert restart_due(policy, task, now=100.0) == 105.0
    # n = restarts in the 10 minutes before the end: 5 * 2**2
    assert restart_due(policy, dataclasses.replace(task, restart_history=(60.0, 80.0)), 100.0) == 120.0
    long_after = dataclasses.replace(task, state_at=700.0, restart_history=(1.0, 2.0))
    assert restart_due(policy, long_after, 700.0) == 705.0  # restarts 10 minutes before do not count
    capped = dataclasses.replace(task, restart_history=(91.0, 92.0, 93.0, 94.0))
    assert restart_due(policy, capped, 100.0) == 130.0  # max_delay
    assert restart_due(RestartPolicy(delay_s=0.0), task, 100.0) == 100.0


def test_restart_due_waits_until_the_window_holds_fewer_than_max_attempts() -> None:
    task = sick(spec_of(), at=130.0, history=(110.0, 125.0))
    # both restarts within 60 s: not before the older one leaves the window (110 + 60), later than the
    # back-off (130 + 5 * 2**2)
    assert restart_due(POLICY, task, now=131.0) == 170.0
    assert restart_due(POLICY, task, now=170.0) == 150.0  # 110 no longer counts: the back-off, past
    # only one restart within the window: the back-off alone
    assert restart_due(POLICY, dataclasses.replace(task, restart_history=(20.0, 125.0)), 131.0) == 150.0
    three = dataclasses.replace(task, restart_history=(100.0, 110.0, 125.0))
    assert restart_due(POLICY, three, 131.0) == 170.0  # the 2nd newest leaves it at 110 + 60
    no_window = RestartPolicy(delay_s=5.0, max_attempts=2)
    assert restart_due(no_window, task, 131.0) == 150.0  # never ends by the window (final_reason does)


# ------------------------------------------------------------------------------------------ the rounds
@pytest.mark.parametrize("mode", ["replicated", "global"])
def test_an_unhealthy_task_is_stopped_at_once_and_replaced_after_the_delay(mode: str) -> None:
    spec = spec_of(mode=mode)
    task = sick(spec, at=100.0)
    first = reconcile(spec, [task], now=100.0)
    assert first.actions == [ShutdownTask("t1", "unhealthy")]  # and no replacement yet
    stopping = stopped(task)
    waiting = reconcile(spec, [stopping], now=103.0)
    assert waiting.actions == [] and waiting.wake_at == 105.0  # not created as a missing slot
    # the agent's stop report moves the end: the delay counts from it
    assert reconcile(spec, [stopped(task, at=101.0)], now=105.0).wake_at == 106.0
    (new,) = reconcile(spec, [stopped(task, at=101.0)], now=106.0).creates
    assert (new.slot, new.restart_history, new.reason) == (1, (106.0,), "replace unhealthy task")
    assert new.node_id == ("n1" if mode == "global" else None)


@pytest.mark.parametrize("mode", ["replicated", "global"])
def test_unhealthy_restarts_count_against_max_attempts_within_the_window(mode: str) -> None:
    """Two restarts at 110 and 125 within a 60 s window: the third unhealthy task waits until the first
    leaves the window (170), stopped, the slot desired ``shutdown`` and not created again meanwhile."""
    spec = spec_of(mode=mode)
    third = sick(spec, at=130.0, history=(110.0, 125.0))
    first = reconcile(spec, [third], now=130.0)
    assert first.actions == [ShutdownTask("t1", "unhealthy")]
    gone = stopped(third, at=131.0)
    later = reconcile(spec, [gone], now=150.0)
    assert later.actions == [] and later.wake_at == 170.0
    (new,) = reconcile(spec, [gone], now=170.0).creates
    assert new.restart_history == (110.0, 125.0, 170.0)


def test_on_failure_counts_an_unhealthy_task_as_failed_and_none_never_restarts_it() -> None:
    spec = spec_of(RestartPolicy(condition="on-failure", delay_s=5.0))
    assert reconcile(spec, [sick(spec, at=100.0)], now=100.0).creates == []
    assert reconcile(spec, [stopped(sick(spec, at=100.0), at=100.5)], now=105.0).wake_at == 105.5
    assert len(reconcile(spec, [stopped(sick(spec, at=100.0), at=100.5)], now=105.5).creates) == 1
    never = spec_of(RestartPolicy(condition="none", delay_s=5.0))
    (stop,) = reconcile(never, [sick(never, at=100.0)], now=100.0).actions
    assert stop == ShutdownTask("t1", "not restarted: unhealthy; restart condition none")


def test_without_a_delay_the_replacement_comes_once_the_task_stopped() -> None:
    """As Swarm's restart (``DelayStart`` with ``waitStop``): never two containers of a slot at once."""
    spec = spec_of(RestartPolicy(delay_s=0.0))
    task = sick(spec, at=100.0, history=(50.0,))
    r = reconcile(spec, [task], now=100.0)
    assert r.actions == [ShutdownTask("t1", "unhealthy")]
    assert reconcile(spec, [stopped(task)], now=100.5).actions == []  # still stopping
    (new,) = reconcile(spec, [stopped(task, at=101.0)], now=101.0).creates
    assert new.restart_history == (50.0, 101.0)


def test_a_slot_with_another_live_task_is_not_held() -> None:
    """Only a slot with nothing live waits: an unhealthy task beside a healthy one (a start-first
    replacement) is simply superseded."""
    spec = spec_of()
    healthy = dataclasses.replace(sick(spec, at=100.0), task_id="t2", health="healthy", created_at=50.0)
    r = reconcile(spec, [sick(spec, at=100.0), healthy], now=100.0)
    assert r.creates == [] and [a.task_id for a in r.shutdowns] == ["t1"]


def test_a_failed_task_waiting_for_its_window_asks_to_wake_when_it_moves_on() -> None:
    """The same decision for a task that exited: it waits, desired ``running``, and now asks for a
    wake-up at the time the window frees an attempt (before: none, the next sweep found it)."""
    spec = spec_of()
    crashed = dataclasses.replace(sick(spec, at=130.0, history=(110.0, 125.0)), state="failed", health="")
    r = reconcile(spec, [crashed], now=140.0)
    assert r.actions == [] and r.wake_at == 170.0
    assert len(reconcile(spec, [crashed], now=170.0).creates) == 1


@pytest.mark.parametrize("state", ["failed", "unhealthy"])
def test_no_restart_delay_for_a_task_on_a_drained_node(state: str) -> None:
    """swarmkit's restart supervisor applies no restart delay on a drained node: the replacement goes
    elsewhere at once (once the old task stopped), the window's attempts still counted. Before: the
    drain waited the delay (and its back-off) for a task that failed or turned unhealthy there."""
    spec = spec_of()
    task = sick(spec, at=100.0, history=(50.0,))
    if state == "failed":
        task = dataclasses.replace(task, state="failed", health="")
    else:
        task = stopped(task, at=100.5)
    drained = [Node("n1", "n1", availability="drain"), NODES[1]]
    r = Orchestrator(random.Random(1)).reconcile([Service("s1", spec)], [task], drained, now=101.0)
    assert len(r.creates) == 1 and r.creates[0].node_id is None
    full = sick(spec, at=130.0, history=(110.0, 125.0), state="failed", health="")  # 2 restarts in 60 s
    held = Orchestrator(random.Random(1)).reconcile([Service("s1", spec)], [full], drained, now=131.0)
    assert held.creates == [] and held.wake_at == 170.0
    assert reconcile(spec, [task], now=101.0).creates == []  # on an active node: the delay
