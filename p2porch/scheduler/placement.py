"""Choosing nodes for pending tasks: filter, then score (pure, deterministic).

``schedule`` groups the tasks of one service (they share requirements), runs the static filters once
per constraint set, and keeps the feasible nodes in heaps keyed by score so every placement costs
O(log N) instead of a rescan. Placement preferences form a tree (one level per preference) whose
branches are chosen by fewest tasks of the service, so tasks spread over label values first.
Ties are broken by label value and node id; no set or hash order is ever observed.
The caller's NodeInfos are copied, never changed, unless ``in_place=True``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..model import ServiceSpec
from .filters import Filter, Requirements, node_attribute
from .nodeinfo import NodeInfo, fullness_ppm
from .pipeline import Pipeline, Rejections


@dataclass(frozen=True, slots=True)
class TaskRequest:
    """A task waiting for a node; ``node_id`` pins it (global mode) to that node only."""

    task_id: str
    spec: ServiceSpec
    node_id: str | None = None


class ScheduleResult(NamedTuple):
    """``assignments`` task id -> node id (input order); ``unschedulable`` task id -> explanation."""

    assignments: dict[str, str]
    unschedulable: dict[str, str]


ScoreKey = Callable[[NodeInfo, str], tuple[int, int]]


def spread_key(node: NodeInfo, service: str) -> tuple[int, int]:
    """Spread: fewest tasks of this service first, then fewest tasks overall."""
    return node.tasks_by_service.get(service, 0), node.total_tasks


def binpack_key(node: NodeInfo, service: str) -> tuple[int, int]:
    """Binpack: fullest node (reserved/capacity) first, then the one with most tasks."""
    return -fullness_ppm(node), -node.total_tasks


SCORERS: dict[str, ScoreKey] = {"spread": spread_key, "binpack": binpack_key}


class _Leaf:
    """Feasible nodes of one preference branch in a heap of (score, node id, node)."""

    __slots__ = ("heap",)

    def __init__(self) -> None:
        self.heap: list[tuple[int, int, str, NodeInfo]] = []


class _Branch:
    """One preference level: children by attribute value, picked by fewest tasks of the service."""

    __slots__ = ("children", "counts", "heap")

    def __init__(self) -> None:
        self.children: dict[str, _Branch | _Leaf] = {}
        self.counts: dict[str, int] = {}
        self.heap: list[tuple[int, str]] = []  # lazy: entries whose count is stale are skipped


class _Tree:
    """Feasible nodes of one group, organised for O(log N) best-node picks."""

    def __init__(
        self,
        nodes: Sequence[NodeInfo],
        req: Requirements,
        score: ScoreKey,
        paths: Sequence[tuple[str, ...]] = (),
    ) -> None:
        """``paths[i]`` are the preference values of ``nodes[i]`` (see :func:`preference_paths`)."""
        self.req = req
        self.score = score
        self.service = svc = req.service
        prefs = req.preferences
        if score is spread_key:  # the default: build the entries without a call per node
            entries = [(n.tasks_by_service.get(svc, 0), n.total_tasks, n.node_id, n) for n in nodes]
        else:
            entries = [(*score(n, svc), n.node_id, n) for n in nodes]
        if not prefs:
            leaf = _Leaf()
            leaf.heap = entries
            self.root: _Branch | _Leaf = leaf
            heapq.heapify(entries)
            return
        # bucket by preference path first (few distinct paths), then build the branches once per path
        buckets: dict[tuple[str, ...], list[tuple[int, int, str, NodeInfo]]] = {}
        counts: dict[tuple[str, ...], int] = {}
        spread = score is spread_key
        for entry, path in zip(entries, paths, strict=True):
            bucket = buckets.get(path)
            if bucket is None:
                bucket = buckets[path] = []
                counts[path] = 0
            bucket.append(entry)
            counts[path] += entry[0] if spread else entry[3].tasks_by_service.get(svc, 0)
        self.root = root = _Branch()
        last = len(prefs) - 1
        for path in sorted(buckets):
            cur: _Branch | _Leaf = root
            for level, value in enumerate(path):
                assert isinstance(cur, _Branch)
                child = cur.children.get(value)
                if child is None:
                    child = cur.children[value] = _Branch() if level < last else _Leaf()
                    cur.counts[value] = 0
                cur.counts[value] += counts[path]
                cur = child
            assert isinstance(cur, _Leaf)
            cur.heap = buckets[path]
        self._heapify(root)

    def _heapify(self, cur: _Branch | _Leaf) -> None:
        if isinstance(cur, _Leaf):
            heapq.heapify(cur.heap)
            return
        cur.heap = sorted((c, v) for v, c in cur.counts.items())
        for child in cur.children.values():
            self._heapify(child)

    def pick(
        self, dynamic: Sequence[Filter], rejected: Rejections
    ) -> tuple[NodeInfo, _Leaf, list[tuple[_Branch, str]]] | None:
        """Pop the best node passing the dynamic filters; nodes failing them are dropped for good."""
        path: list[tuple[_Branch, str]] = []
        found = self._pick(self.root, dynamic, rejected, path)
        if found is None:
            return None
        node, leaf = found
        return node, leaf, path

    def _pick(
        self,
        cur: _Branch | _Leaf,
        dynamic: Sequence[Filter],
        rejected: Rejections,
        path: list[tuple[_Branch, str]],
    ) -> tuple[NodeInfo, _Leaf] | None:
        req = self.req
        if isinstance(cur, _Leaf):
            nodes = cur.heap
            while nodes:
                node = heapq.heappop(nodes)[3]
                for f in dynamic:
                    reason = f.reject(node, req)
                    if reason is not None:
                        rejected.add(reason)
                        break
                else:
                    return node, cur
            return None
        branches = cur.heap
        while branches:
            count, value = branches[0]
            if cur.counts.get(value) != count:
                heapq.heappop(branches)  # stale entry, or a branch already emptied
                continue
            found = self._pick(cur.children[value], dynamic, rejected, path)
            if found is None:
                heapq.heappop(branches)
                del cur.children[value]
                del cur.counts[value]
                continue
            path.append((cur, value))
            return found
        return None

    def placed(self, node: NodeInfo, leaf: _Leaf, path: list[tuple[_Branch, str]]) -> None:
        """Re-insert ``node`` (already updated) after it received a task of the service."""
        for branch, value in path:
            branch.counts[value] += 1
            heapq.heappush(branch.heap, (branch.counts[value], value))
        k1, k2 = self.score(node, self.service)
        heapq.heappush(leaf.heap, (k1, k2, node.node_id, node))


def preference_paths(nodes: Sequence[NodeInfo], preferences: Sequence[str]) -> list[tuple[str, ...]]:
    """Per node, its values of the preference attributes (missing label -> "")."""
    return [tuple(node_attribute(n, a) or "" for a in preferences) for n in nodes]


class _Group:
    __slots__ = ("spec", "pin", "task_ids")

    def __init__(self, spec: ServiceSpec, pin: str | None) -> None:
        self.spec = spec
        self.pin = pin
        self.task_ids: list[str] = []


def _group(tasks: Sequence[TaskRequest]) -> list[_Group]:
    """Consecutive-or-not tasks of one service with an equal spec and pin share a group (first-seen order)."""
    order: list[_Group] = []
    latest: dict[tuple[str, str | None], _Group] = {}
    for t in tasks:
        key = (t.spec.name, t.node_id)
        g = latest.get(key)
        if g is None or not (g.spec is t.spec or g.spec == t.spec):
            g = _Group(t.spec, t.node_id)
            latest[key] = g
            order.append(g)
        g.task_ids.append(t.task_id)
    return order


def processing_order(tasks: Sequence[TaskRequest]) -> list[TaskRequest]:
    """The order in which ``schedule`` places tasks: grouped by service (and pin), first-seen order."""
    by_id = {t.task_id: t for t in tasks}
    return [by_id[task_id] for g in _group(tasks) for task_id in g.task_ids]


def schedule(
    tasks: Sequence[TaskRequest],
    nodes: Sequence[NodeInfo],
    *,
    pipeline: Pipeline | None = None,
    in_place: bool = False,
) -> ScheduleResult:
    """Place ``tasks`` on ``nodes``; returns (assignments, unschedulable explanations).

    Tasks are handled service by service in first-seen order; within one service in input order.
    Deterministic: the same input always gives the same output. With ``in_place`` the NodeInfos are
    updated with the placed tasks (useful to chain calls); otherwise they are left untouched.
    """
    pipe = pipeline or Pipeline()
    infos = sorted(nodes if in_place else (n.copy() for n in nodes), key=lambda n: n.node_id)
    by_id = {n.node_id: n for n in infos}
    placed: dict[str, str] = {}
    failed: dict[str, str] = {}
    static_cache: dict[tuple[Any, ...], tuple[list[NodeInfo], Rejections]] = {}
    paths_cache: dict[tuple[Any, ...], list[tuple[str, ...]]] = {}
    req_cache: dict[int, Requirements] = {}

    for group in _group(tasks):
        req = req_cache.get(id(group.spec))
        if req is None:
            req = req_cache[id(group.spec)] = Requirements.from_spec(group.spec)
        if group.pin is not None:
            _schedule_pinned(group, req, by_id, pipe, placed, failed)
            continue
        static, dynamic = pipe.split(req)
        cache_key = (static, req.constraints, req.min_engine)
        cached = static_cache.get(cache_key)
        if cached is None:
            cached = static_cache[cache_key] = pipe.static_pass(infos, static, req)
        candidates, static_rejected = cached
        paths: list[tuple[str, ...]] = []
        if req.preferences:
            paths_key = (*cache_key, req.preferences)
            paths = paths_cache.get(paths_key) or []
            if not paths:
                paths = paths_cache[paths_key] = preference_paths(candidates, req.preferences)
        tree = _Tree(candidates, req, SCORERS[req.strategy], paths)
        rejected = Rejections()
        ports = req.host_ports
        for i, task_id in enumerate(group.task_ids):
            found = tree.pick(dynamic, rejected)
            if found is None:
                why = static_rejected.merged(rejected).explain(len(infos))
                for rest in group.task_ids[i:]:
                    failed[rest] = why
                break
            node, leaf, path = found
            node.add_task(req.service, req.cpu_nanos, req.memory_bytes, ports)
            tree.placed(node, leaf, path)
            placed[task_id] = node.node_id

    assignments = {t.task_id: placed[t.task_id] for t in tasks if t.task_id in placed}
    unschedulable = {t.task_id: failed[t.task_id] for t in tasks if t.task_id in failed}
    return ScheduleResult(assignments, unschedulable)


def _schedule_pinned(
    group: _Group,
    req: Requirements,
    by_id: dict[str, NodeInfo],
    pipe: Pipeline,
    placed: dict[str, str],
    failed: dict[str, str],
) -> None:
    node = by_id.get(group.pin or "")
    for task_id in group.task_ids:
        if node is None:
            failed[task_id] = f"pinned node {group.pin} is not in the cluster"
            continue
        reason = pipe.rejection(node, req)
        if reason is not None:
            failed[task_id] = f"pinned node {node.name}: {reason}"
            continue
        node.add_task(req.service, req.cpu_nanos, req.memory_bytes, req.host_ports)
        placed[task_id] = node.node_id
