"""Compose stacks: Compose files -> the p2porch services of one stack (pure, except ``source`` which reads
the files on the CLI's machine; see docs/stack.md).

Entry point: :func:`load_stack` (files, environment, profiles -> a validated ``StackDefinition``), used by
`p2porch stack deploy`/`stack config` (cli/stack.py, through ``source.stack_source``). The control API
(control/stack_ops.py) receives resolved specs and only uses the names and labels helpers.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .compose import StackDefinition, StackService, load_stack
    from .interpolate import parse_dotenv, substitute
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
    from .problems import ComposeError
    from .resolve import ComposeFile, ReadFile
    from .yamlsafe import parse_yaml

#: each public name and its module, imported on first use: the daemon only needs the names helpers
#: (DNS aliases, stack labels), not the Compose loader (docs/performance.md, "Idle cost")
_MODULE_OF = {
    "StackDefinition": "compose",
    "StackService": "compose",
    "load_stack": "compose",
    "parse_dotenv": "interpolate",
    "substitute": "interpolate",
    "ComposeError": "problems",
    "ComposeFile": "resolve",
    "ReadFile": "resolve",
    "parse_yaml": "yamlsafe",
    **dict.fromkeys(
        (
            "STACK_LABEL",
            "STACK_SERVICE_LABEL",
            "check_stack_name",
            "service_name",
            "stack_dns_aliases",
            "stack_dns_search",
            "stack_labels",
            "stack_membership",
            "stack_of_spec",
        ),
        "names",
    ),
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "STACK_LABEL",
    "STACK_SERVICE_LABEL",
    "ComposeError",
    "ComposeFile",
    "ReadFile",
    "StackDefinition",
    "StackService",
    "check_stack_name",
    "load_stack",
    "parse_dotenv",
    "parse_yaml",
    "service_name",
    "stack_dns_aliases",
    "stack_dns_search",
    "stack_labels",
    "stack_membership",
    "stack_of_spec",
    "substitute",
]
