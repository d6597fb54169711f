"""The filter pipeline: static pass with rejection counts, dynamic re-checks, explanations (pure).

``Pipeline`` owns an ordered list of filters. For one service's requirements it splits them into the
static filters (run once over all nodes, cached per constraint set) and the dynamic ones (re-run on a
node each time it is about to receive a task). ``Rejections`` counts which reason rejected how many
nodes and renders the explanation shown to users. Nothing here chooses among feasible nodes.
"""

from __future__ import annotations

from collections.abc import Sequence

from .filters import DEFAULT_FILTERS, Filter, Requirements
from .nodeinfo import NodeInfo


class Rejections:
    """Counts of nodes per rejection reason, and the explanation text built from them."""

    __slots__ = ("counts",)

    def __init__(self, counts: dict[str, int] | None = None) -> None:
        self.counts: dict[str, int] = dict(counts) if counts else {}

    def add(self, reason: str, n: int = 1) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + n

    def merged(self, other: Rejections) -> Rejections:
        out = Rejections(self.counts)
        for reason, n in other.counts.items():
            out.add(reason, n)
        return out

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def explain(self, total_nodes: int) -> str:
        """``"3 nodes: 2 insufficient memory (need 512MiB), 1 constraint node.labels.ssd==true"``.

        Reasons are ordered by count (descending), then alphabetically, so the text is deterministic.
        """
        if total_nodes == 0:
            return "no nodes in the cluster"
        parts = [f"{n} {reason}" for reason, n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        head = f"{total_nodes} node{'s' if total_nodes != 1 else ''}"
        return f"{head}: {', '.join(parts)}" if parts else f"{head}: no node fits"


class Pipeline:
    """Ordered filters; splits them per requirements and runs the static pass."""

    def __init__(self, filters: Sequence[Filter] = DEFAULT_FILTERS) -> None:
        self.filters = tuple(filters)

    def split(self, req: Requirements) -> tuple[tuple[Filter, ...], tuple[Filter, ...]]:
        """(static, dynamic) filters that apply to ``req``, each in pipeline order."""
        static = tuple(f for f in self.filters if f.static and f.applies(req))
        dynamic = tuple(f for f in self.filters if not f.static and f.applies(req))
        return static, dynamic

    def static_pass(
        self, nodes: Sequence[NodeInfo], static: Sequence[Filter], req: Requirements
    ) -> tuple[list[NodeInfo], Rejections]:
        """Nodes passing every static filter (input order kept) and the counts of those rejected."""
        passed: list[NodeInfo] = []
        rejected = Rejections()
        for node in nodes:
            for f in static:
                reason = f.reject(node, req)
                if reason is not None:
                    rejected.add(reason)
                    break
            else:
                passed.append(node)
        return passed, rejected

    @staticmethod
    def dynamic_rejection(node: NodeInfo, dynamic: Sequence[Filter], req: Requirements) -> str | None:
        for f in dynamic:
            reason = f.reject(node, req)
            if reason is not None:
                return reason
        return None

    def rejection(self, node: NodeInfo, req: Requirements) -> str | None:
        """First reason any filter of the pipeline rejects ``node`` for ``req``."""
        for f in self.filters:
            if f.applies(req):
                reason = f.reject(node, req)
                if reason is not None:
                    return reason
        return None
