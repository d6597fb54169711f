"""Pure placement and reconciliation: service specs, filters, scoring, orchestrator (no I/O).

See docs/scheduler.md. Inputs are plain frozen types (``Node``, ``Service``, ``Task``, ``ServiceSpec``)
so the adapter from the replicated cluster state is a field-by-field copy. Entry points:
:class:`Orchestrator` and :func:`schedule`, called by the leader's round (:mod:`p2porch.leader.scheduling`).
"""

from .filters import Requirements, constraint_matches, node_attribute
from .nodeinfo import Node, NodeInfo, PlacedTask, build_node_infos, fullness_ppm
from .orchestrator import (
    CreateTask,
    Orchestrator,
    Reconciliation,
    RolloutDone,
    Service,
    ShutdownTask,
    Task,
    UpdateFailed,
)
from .pipeline import Pipeline, Rejections
from .placement import ScheduleResult, TaskRequest, processing_order, schedule
from .spec import (
    Affinity,
    Constraint,
    HealthSpec,
    Mount,
    PlacementPreference,
    PortPublish,
    RestartPolicy,
    ServiceSpec,
    UpdateConfig,
    format_bytes,
    parse_affinity,
    parse_constraint,
    parse_cpu_nanos,
    parse_duration_s,
    parse_key_values,
    parse_memory_bytes,
    parse_mount,
    parse_placement_pref,
    parse_port,
)

__all__ = [
    "Affinity",
    "Constraint",
    "CreateTask",
    "HealthSpec",
    "Mount",
    "Node",
    "NodeInfo",
    "Orchestrator",
    "Pipeline",
    "PlacedTask",
    "PlacementPreference",
    "PortPublish",
    "Reconciliation",
    "Rejections",
    "Requirements",
    "RestartPolicy",
    "ScheduleResult",
    "Service",
    "ServiceSpec",
    "ShutdownTask",
    "Task",
    "TaskRequest",
    "UpdateConfig",
    "RolloutDone",
    "UpdateFailed",
    "build_node_infos",
    "constraint_matches",
    "format_bytes",
    "fullness_ppm",
    "node_attribute",
    "parse_affinity",
    "parse_constraint",
    "parse_cpu_nanos",
    "parse_duration_s",
    "parse_key_values",
    "parse_memory_bytes",
    "parse_mount",
    "parse_placement_pref",
    "parse_port",
    "processing_order",
    "schedule",
]
