"""Pure placement and reconciliation: filters, scoring, orchestrator, rebalancing (no I/O).

See docs/scheduler.md. Inputs are the model's committed records (``p2porch.model``: ``Node``,
``Service``, ``Task``, ``ServiceSpec``) as they are. Entry points: :class:`Orchestrator` and
:func:`schedule`, called by the leader's round (:mod:`p2porch.leader.scheduling`). Never imports raft.
"""

from .actions import CreateTask, Reconciliation, RolloutDone, ShutdownTask, UpdateFailed
from .filters import Requirements, constraint_matches, node_attribute
from .nodeinfo import NodeInfo, PlacedTask, build_node_infos, fullness_ppm
from .orchestrator import Orchestrator
from .pipeline import Pipeline, Rejections
from .placement import ScheduleResult, TaskRequest, processing_order, schedule

__all__ = [
    "CreateTask",
    "NodeInfo",
    "Orchestrator",
    "Pipeline",
    "PlacedTask",
    "Reconciliation",
    "Rejections",
    "Requirements",
    "ScheduleResult",
    "ShutdownTask",
    "TaskRequest",
    "RolloutDone",
    "UpdateFailed",
    "build_node_infos",
    "constraint_matches",
    "fullness_ppm",
    "node_attribute",
    "processing_order",
    "schedule",
]
