"""The typed domain model every other package reads (pure; entry point ``ServiceSpec.from_dict``).

- ``states``: ``StrEnum`` task/desired/node states, roles, availability, gossip states, and the task
  state sets (terminal, failure, started).
- ``spec`` (+ ``units``, ``placement``, ``container``): the validated ``ServiceSpec`` and its parts.
- ``filerefs``: a spec's references to secrets and configs (``FileRef``).
- ``records``: the committed ``Node``, ``Service`` (spec plus controller bookkeeping), ``Task``,
  ``SubnetLease``, ``SecretRecord`` (sealed versions only) and ``AccessTokenRecord`` (digests only).

Validate at the edges once (API body, Compose file, Raft command decoder) and pass these types on.
This package imports only ``p2porch.errors``; it never does I/O or reads a clock.
"""

from .autoscale_spec import AutoscaleSpec, AutoscaleStep
from .container import HealthSpec, Mount, PortPublish, RestartPolicy, UpdateConfig, parse_mount, parse_port
from .filerefs import FileRef
from .group import GroupContainer
from .placement import (
    Affinity,
    Constraint,
    PlacementPreference,
    parse_affinity,
    parse_constraint,
    parse_placement_pref,
)
from .records import (
    AccessTokenRecord,
    NetworkRecord,
    Node,
    SecretRecord,
    Service,
    SubnetLease,
    Task,
    natural_key,
    secret_key,
)
from .rollout import Rollout, RolloutState
from .spec import TEMPLATE_FIELDS, ServiceSpec
from .states import (
    FAILURE_STATES,
    NOT_RESTARTED,
    STARTED_STATES,
    TERMINAL_STATES,
    Availability,
    DesiredState,
    GossipState,
    NodeRole,
    NodeStatus,
    TaskHealth,
    TaskState,
    node_status_text,
)
from .units import (
    format_bytes,
    format_cpus,
    parse_cpu_nanos,
    parse_duration_s,
    parse_key_values,
    parse_memory_bytes,
)

__all__ = [
    "AutoscaleSpec",
    "GroupContainer",
    "AutoscaleStep",
    "FAILURE_STATES",
    "NOT_RESTARTED",
    "STARTED_STATES",
    "TEMPLATE_FIELDS",
    "TERMINAL_STATES",
    "Affinity",
    "Availability",
    "Constraint",
    "FileRef",
    "DesiredState",
    "GossipState",
    "HealthSpec",
    "Mount",
    "NetworkRecord",
    "Node",
    "NodeRole",
    "NodeStatus",
    "PlacementPreference",
    "PortPublish",
    "SecretRecord",
    "AccessTokenRecord",
    "RestartPolicy",
    "Rollout",
    "RolloutState",
    "Service",
    "ServiceSpec",
    "SubnetLease",
    "Task",
    "TaskHealth",
    "TaskState",
    "UpdateConfig",
    "format_bytes",
    "format_cpus",
    "natural_key",
    "node_status_text",
    "parse_affinity",
    "parse_constraint",
    "parse_cpu_nanos",
    "parse_duration_s",
    "parse_key_values",
    "parse_memory_bytes",
    "parse_mount",
    "parse_placement_pref",
    "parse_port",
    "secret_key",
]
