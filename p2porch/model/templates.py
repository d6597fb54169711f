"""Swarm's service templates: ``{{.Node.Hostname}}``, ``{{.Task.Slot}}``... in a task's environment values,
host name and mount sources, expanded per task as ``docker service create`` does (pure).

Owns Swarm's template context (swarmkit's ``template.Context``: ``.Service.ID/Name/Labels``,
``.Node.ID/Hostname/Platform.OS/Platform.Architecture``, ``.Task.ID/Name/Slot``) built from one task's
facts, and its expansion with the Go template engine (model/gotemplate.py) as swarmkit runs it: the whole
language, its ``join`` (separator first), a missing map key an error (``missingkey=error``). An unknown
field or a template that does not parse is an error, as Swarm's: the service is refused when its spec is
checked with stand-in values (:data:`SAMPLE`), a task whose own values fail (a missing label) fails to
start. :func:`literal` writes a text so that it expands to itself (a Compose value that is no Swarm
template). Never does I/O; the agent calls :func:`expand` when it creates a task's container. The
engine is loaded on the first text with a ``{{`` (an idle daemon never runs one: issue 19).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .gotemplate_error import TemplateError

if TYPE_CHECKING:
    from .gotemplate import Struct

__all__ = [
    "SAMPLE",
    "STORED_FIELDS",
    "TemplateContext",
    "TemplateError",
    "check",
    "expand",
    "join",
    "literal",
    "stored_text",
    "swarm_context",
]


@dataclass(frozen=True, slots=True)
class TemplateContext:
    """The facts of one task that templates may name."""

    service_id: str
    service_name: str
    node_id: str
    node_hostname: str
    task_id: str
    task_slot: int
    platform_os: str = "linux"
    platform_arch: str = "x86_64"
    service_labels: Mapping[str, str] = field(default_factory=dict)
    #: a global service's task: ``.Task.Slot`` is the node's id, as swarmkit's (its tasks have no slot)
    global_mode: bool = False


#: swarmkit's types, as Go names them (``%T``, "can't evaluate field X in type ..."): its context is a
#: pointer, its ``Service``, ``Node`` and ``Task`` anonymous structs
CONTEXT_TYPE = "*template.Context"
PAYLOAD_TYPE = "*template.PayloadContext"
SERVICE_TYPE = "struct { ID string; Name string; Labels map[string]string }"
NODE_TYPE = "struct { ID string; Hostname string; Platform template.Platform }"
TASK_TYPE = "struct { ID string; Name string; Slot string }"


def swarm_context(context: TemplateContext, go_type: str = CONTEXT_TYPE) -> Struct:
    """Swarm's ``template.Context`` of the task (``.Task.Slot`` is a string there, as here: a global
    service's the node's id, as in ``.Task.Name``, ``<service>.<slot>.<task id>``), typed as Go's
    (``go_type``: a payload's is ``*template.PayloadContext``)."""
    from .gotemplate import GoMap, Struct  # the engine: loaded on the first template

    slot = context.node_id if context.global_mode else str(context.task_slot)
    return Struct(
        go_type,
        Service=Struct(
            SERVICE_TYPE,
            ID=context.service_id,
            Name=context.service_name,
            Labels=GoMap("map[string]string", context.service_labels),
        ),
        Node=Struct(
            NODE_TYPE,
            ID=context.node_id,
            Hostname=context.node_hostname,
            Platform=Struct("template.Platform", Architecture=context.platform_arch, OS=context.platform_os),
        ),
        Task=Struct(
            TASK_TYPE,
            ID=context.task_id,
            Name=f"{context.service_name}.{slot}.{context.task_id}",
            Slot=slot,
        ),
    )


def join(*parts: Any) -> str:
    """swarmkit's ``join``: the separator first, then the strings (``{{join "-" .Node.ID .Task.Slot}}``)."""
    if not parts or not all(isinstance(p, str) for p in parts):
        from .gotemplate import FuncError

        raise FuncError("join takes a separator and strings")
    return parts[0].join(parts[1:])


#: the functions swarmkit's templates have beside Go's built-ins
FUNCS: dict[str, Callable[..., Any]] = {"join": join}

#: stand-in values to validate a templated field before any task exists (a host name, a path)
SAMPLE = TemplateContext("svcid", "service", "node", "node", "taskid", 1)


def expand(text: str, context: TemplateContext, lenient_labels: bool = False) -> str:
    """``text`` expanded for the task ``context`` names; TemplateError as Go's (``template: expansion:1:2:
    executing "expansion" at <.Nope>: can't evaluate field Nope in type *template.Context``). With
    ``lenient_labels`` a label the context lacks is ``<no value>`` (checking a spec before its task)."""
    if "{{" not in text:
        return text
    from .gotemplate import field_chain, parse, strict_chain  # the engine: loaded on the first template

    resolve = field_chain if lenient_labels else strict_chain
    return parse(text, FUNCS, name="expansion").execute(swarm_context(context), resolve)


def check(text: str, fieldname: str) -> str:
    """``text`` expanded with :data:`SAMPLE` (Swarm checks a spec so), or ConfigError naming ``fieldname``."""
    try:
        return expand(text, SAMPLE, lenient_labels=True)
    except TemplateError as exc:
        raise ConfigError(f"{fieldname}: {exc}", field=fieldname) from None


#: what :func:`literal` writes for each ``{{`` (a Go string constant: the engine prints it as is)
LITERAL_OPEN = '{{"{{"}}'


def literal(text: str) -> str:
    """``text`` written so that :func:`expand` gives it back unchanged: each ``{{`` (the only delimiter
    text/template reads outside an action) becomes the action ``{{"{{"}}``; the rest is plain text."""
    return text.replace("{{", LITERAL_OPEN)


#: the fields the placeholders of a version before Go's engine named (``{{.Task.Slot}}``); it printed a
#: string constant (``{{`x`}}``, ``{{"x"}}``) as written too, and left every other ``{{`` as written
STORED_FIELDS = frozenset(
    {"Service.ID", "Service.Name", "Node.ID", "Node.Hostname", "Node.Platform.OS"}
    | {"Node.Platform.Architecture", "Task.ID", "Task.Name", "Task.Slot"}
)
_STORED_PLACEHOLDER = re.compile(
    r"\{\{\s*(?:\.(?P<field>[A-Za-z]+(?:\.[A-Za-z]+)*)|`[^`]*`|\"(?:[^\"\\]|\\.)*\")\s*\}\}"
)


def stored_text(text: str) -> str:
    """A value (an environment value, a mount source) of a spec a version before Go's engine committed,
    in today's form: as it is when it expands as Swarm's template; else (that version stored a Compose
    application's ``{{ .Entry.Image }}``, which Swarm's check now refuses) written so that it expands as
    that version expanded it: its placeholders of :data:`STORED_FIELDS` and its string constants as
    before, every other ``{{`` as written (:func:`literal`). Never loses the text."""
    if "{{" not in text:
        return text
    try:
        expand(text, SAMPLE, lenient_labels=True)
        return text
    except TemplateError:
        pass
    out, pos = [], 0
    for match in _STORED_PLACEHOLDER.finditer(text):
        kept = (
            match.group("field") in STORED_FIELDS or match.group("field") is None and _expands(match.group(0))
        )
        out += [literal(text[pos : match.start()]), match.group(0) if kept else literal(match.group(0))]
        pos = match.end()
    out.append(literal(text[pos:]))
    return "".join(out)


def _expands(text: str) -> bool:
    try:
        expand(text, SAMPLE)
    except TemplateError:
        return False
    return True
