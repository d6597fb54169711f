"""Naive reference scheduler: scores every node for every task (pure; tests and benchmark only).

It defines the intended result of :func:`p2porch.scheduler.placement.schedule` in the most direct way
(for each task, run every filter on every node, take the lexicographically smallest score) and is used as
the oracle in property tests and as the baseline in ``bench/scheduler.py``. The daemon never calls it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .filters import Requirements, node_attribute
from .nodeinfo import NodeInfo
from .pipeline import Pipeline, Rejections
from .placement import SCORERS, ScheduleResult, TaskRequest, processing_order


def naive_schedule(tasks: Sequence[TaskRequest], nodes: Sequence[NodeInfo]) -> ScheduleResult:
    """Same contract as ``schedule``; O(tasks x nodes x filters)."""
    pipe = Pipeline()
    infos = sorted((n.copy() for n in nodes), key=lambda n: n.node_id)
    by_id = {n.node_id: n for n in infos}
    assignments: dict[str, str] = {}
    unschedulable: dict[str, str] = {}
    for task in processing_order(tasks):
        req = Requirements.from_spec(task.spec)
        if task.node_id is not None:
            pinned = by_id.get(task.node_id)
            if pinned is None:
                unschedulable[task.task_id] = f"pinned node {task.node_id} is not in the cluster"
                continue
            reason = pipe.rejection(pinned, req)
            if reason is not None:
                unschedulable[task.task_id] = f"pinned node {pinned.name}: {reason}"
                continue
            chosen = pinned
        else:
            static, dynamic = pipe.split(req)
            candidates, rejected = pipe.static_pass(infos, static, req)
            # tasks of the service per preference-value prefix, over statically feasible nodes
            prefix_counts: dict[tuple[str, ...], int] = {}
            paths: dict[str, tuple[str, ...]] = {}
            for node in candidates:
                path = tuple(node_attribute(node, a) or "" for a in req.preferences)
                paths[node.node_id] = path
                n = node.tasks_by_service.get(req.service, 0)
                for depth in range(1, len(path) + 1):
                    prefix_counts[path[:depth]] = prefix_counts.get(path[:depth], 0) + n
            best: tuple[Any, ...] | None = None
            chosen_or_none: NodeInfo | None = None
            dyn_rejected = Rejections()
            for node in candidates:
                reason = pipe.dynamic_rejection(node, dynamic, req)
                if reason is not None:
                    dyn_rejected.add(reason)
                    continue
                path = paths[node.node_id]
                key: list[Any] = []
                for depth in range(1, len(path) + 1):
                    key += [prefix_counts[path[:depth]], path[depth - 1]]
                key += [*SCORERS[req.strategy](node, req.service), node.node_id]
                if best is None or tuple(key) < best:
                    best, chosen_or_none = tuple(key), node
            if chosen_or_none is None:
                unschedulable[task.task_id] = rejected.merged(dyn_rejected).explain(len(infos))
                continue
            chosen = chosen_or_none
        chosen.add_task(req.service, req.cpu_nanos, req.memory_bytes, req.host_ports)
        assignments[task.task_id] = chosen.node_id
    return ScheduleResult(
        {t.task_id: assignments[t.task_id] for t in tasks if t.task_id in assignments},
        {t.task_id: unschedulable[t.task_id] for t in tasks if t.task_id in unschedulable},
    )
