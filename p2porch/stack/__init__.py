"""Compose stacks: a Compose v3 file -> the p2porch services of one stack (pure; see docs/stack.md).

Entry point: :func:`load_stack`, used by `p2porch stack deploy` (cli/stack.py) and the control API
(control/stack_ops.py).
"""

from .compose import ReadFile, StackDefinition, StackService, load_stack, parse_env_file, parse_yaml
from .names import (
    STACK_LABEL,
    STACK_SERVICE_LABEL,
    check_stack_name,
    service_name,
    stack_dns_aliases,
    stack_dns_search,
    stack_labels,
    stack_membership,
    stack_of_spec,
)

__all__ = [
    "STACK_LABEL",
    "STACK_SERVICE_LABEL",
    "ReadFile",
    "StackDefinition",
    "StackService",
    "check_stack_name",
    "load_stack",
    "parse_env_file",
    "parse_yaml",
    "service_name",
    "stack_dns_aliases",
    "stack_dns_search",
    "stack_labels",
    "stack_membership",
    "stack_of_spec",
]
