"""A cut-off site (every node of a ``region`` down): its tasks are kept or replaced per ``on_site_loss``.

Two regions of three nodes; the orchestrator (pure) at given times. ``keep`` (the default) leaves a
lost region's tasks in the state (they still run behind the cut; replacing them would double them at
the heal), ``replace`` reschedules them. A lone dead node is rescheduled either way once its region
had ``site_grace_s`` to follow it; a region coming back one node at a time is still a site for that
long. Unlabelled nodes behave as before (no site).
"""

from __future__ import annotations

import dataclasses
import random

from p2porch.model import Node, Service, ServiceSpec, Task
from p2porch.scheduler import Orchestrator, Reconciliation
from p2porch.scheduler.sites import site_verdict

KEEP = ServiceSpec(name="web", image="busybox:1", replicas=6)
REPLACE = dataclasses.replace(KEEP, on_site_loss="replace")
GRACE = 10.0


def nodes(down: dict[str, float], back: dict[str, float] | None = None, labelled: bool = True) -> list[Node]:
    """n1-n3 in region s1, n4-n6 in s2; ``down``: node -> down since; ``back``: node -> ready since."""
    out = []
    for i in range(1, 7):
        name = f"n{i}"
        labels = {"region": "s1" if i <= 3 else "s2"} if labelled else {}
        if name in down:
            out.append(Node(name, name, labels=labels, status="down", status_at=down[name]))
        else:
            out.append(Node(name, name, labels=labels, status_at=(back or {}).get(name, 0.0)))
    return out


def tasks(spec: ServiceSpec) -> list[Task]:
    return [
        Task(
            task_id=f"t{i}",
            service_id="s1",
            slot=i,
            node_id=f"n{i}",
            state="running",
            state_at=0.0,
            started_at=0.0,
            template_hash=spec.template_hash(),
        )
        for i in range(1, 7)
    ]


def reconcile(spec: ServiceSpec, node_list: list[Node], now: float) -> Reconciliation:
    orch = Orchestrator(random.Random(1), down_grace_s=0.5, site_grace_s=GRACE)
    return orch.reconcile([Service("s1", spec)], tasks(spec), node_list, now=now)


def moved(r: Reconciliation) -> tuple[list[str], list[int]]:
    return sorted(a.task_id for a in r.shutdowns), sorted(c.slot for c in r.creates)


CUT = {"n4": 100.0, "n5": 101.0, "n6": 103.0}  # gossip declares a cut site's nodes one by one


def test_a_lost_site_keeps_its_tasks_by_default_and_replace_reschedules_them() -> None:
    kept = reconcile(KEEP, nodes(CUT), now=500.0)
    assert kept.actions == [] and kept.wake_at is None
    replaced = reconcile(REPLACE, nodes(CUT), now=500.0)
    assert moved(replaced) == (["t4", "t5", "t6"], [4, 5, 6])
    assert {c.reason for c in replaced.creates} == {"replace lost task"}


def test_while_a_site_goes_down_one_node_at_a_time_nothing_is_replaced_too_early() -> None:
    first_only = nodes({"n4": 100.0})
    waiting = reconcile(KEEP, first_only, now=102.0)
    assert waiting.actions == [] and waiting.wake_at == 100.0 + GRACE
    # the rest of the region followed within the grace: a site, kept
    assert reconcile(KEEP, nodes(CUT), now=103.5).actions == []
    # the region did not follow: a dead node, replaced even for keep
    lone = reconcile(KEEP, first_only, now=100.0 + GRACE)
    assert moved(lone) == (["t4"], [4])
    # replace does not wait for the region: the usual down grace only
    assert moved(reconcile(REPLACE, first_only, now=101.0)) == (["t4"], [4])


def test_a_site_coming_back_node_by_node_is_still_a_site_for_the_grace() -> None:
    healing = nodes({"n5": 101.0, "n6": 103.0}, back={"n4": 600.0})
    early = reconcile(KEEP, healing, now=605.0)
    assert early.actions == [] and early.wake_at == 600.0 + GRACE
    # n5 and n6 still down long after n4 came back: dead nodes of a live region now
    assert moved(reconcile(KEEP, healing, now=600.0 + GRACE)) == (["t5", "t6"], [5, 6])
    # a region node that was up all along does not count as coming back
    assert site_verdict(healing[4], healing, 605.0, GRACE).kind == "cut"
    still_up = nodes({"n5": 101.0, "n6": 103.0}, back={"n4": 50.0})
    assert site_verdict(still_up[4], still_up, 105.0, GRACE).kind == "wait"


def test_unlabelled_nodes_are_no_site() -> None:
    unlabelled = nodes(CUT, labelled=False)
    assert moved(reconcile(KEEP, unlabelled, now=500.0)) == (["t4", "t5", "t6"], [4, 5, 6])


def test_global_service_keeps_a_lost_sites_tasks() -> None:
    spec = ServiceSpec(name="agent", image="x", mode="global")
    node_list = nodes(CUT)
    orch = Orchestrator(random.Random(1), down_grace_s=0.5, site_grace_s=GRACE)
    r = orch.reconcile([Service("s1", spec)], tasks(spec), node_list, now=500.0)
    assert r.actions == []
    gone = orch.reconcile(
        [Service("s1", dataclasses.replace(spec, on_site_loss="replace"))], tasks(spec), node_list, now=500.0
    )
    assert sorted(a.task_id for a in gone.shutdowns) == ["t4", "t5", "t6"] and gone.creates == []
