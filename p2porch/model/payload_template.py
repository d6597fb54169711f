"""Swarm's templated secrets and configs (``template_driver: golang``): a value rendered per task (pure).

Owns the payload context of swarmkit's ``PayloadContext``: Go's whole text/template language (the engine
of model/gotemplate.py) over the service template context (``{{.Service.Name}}``, ``{{.Service.Labels}}``,
``{{.Task.Slot}}``, ``{{.Node.Hostname}}``... model/templates.py), with ``{{env "VAR"}}`` (the service's
environment as written; an unset variable is empty), ``{{secret "target"}}`` and ``{{config "target"}}``
(the value of another secret/config the service uses, by target, as written) and swarmkit's ``join``.
A template Swarm would fail (it does not parse, names an unknown field, a missing label, a target the
service does not use) is a :class:`TemplateError`: the task fails, as Swarm fails it. An error names the
line, column and what failed, never the template's text, a constant in it or a value it printed (a
secret's template is itself secret). Also owns the set of template drivers and their check.
Never does I/O: the agent calls :func:`render` when it writes a task's file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigError
from . import gotemplate_error
from .templates import FUNCS, PAYLOAD_TYPE, TemplateContext, swarm_context

#: the template drivers a secret or config may carry ("" = none: the value is mounted as written)
DRIVERS = ("golang",)

#: ``lookup(kind, target)``: the value of the service's secret/config with that target, None when it has none
Lookup = Callable[[str, str], "bytes | None"]

#: a payload's output is capped at Swarm's size limit of a secret's value (500 KiB), in characters
MAX_OUTPUT = 500 * 1024


class TemplateError(ValueError):
    """A template the renderer refuses: the task fails with this message (no text around the action)."""


def check_driver(driver: object, field: str) -> str:
    """``driver`` when it is "" or one of :data:`DRIVERS`, else a ConfigError naming ``field`` (bad input:
    exit 2 in the CLI, 400 in the API, a Raft command that is refused)."""
    if driver in ("", None):
        return ""
    if not isinstance(driver, str) or driver not in DRIVERS:
        raise ConfigError(
            f"{field}: unknown template driver {driver!r}: p2porch renders {', '.join(DRIVERS)} templates",
            field=field,
        )
    return driver


def names_target(kind: str, target: str, name: str) -> bool:
    """Whether ``{{secret name}}``/``{{config name}}`` names the file mounted at ``target``: its path, or
    a name relative to where Swarm puts it (``/run/secrets/`` for a secret, ``/`` for a config)."""
    base = "/run/secrets/" if kind == "secret" else "/"
    return target in (name, base + name.lstrip("/"))


def _functions(env: Mapping[str, str], lookup: Lookup) -> dict[str, Callable[..., Any]]:
    from .gotemplate import FuncError

    def env_value(name: Any) -> str:
        if not isinstance(name, str):
            raise FuncError("env takes one string")
        return env.get(name, "")

    def file_value(kind: str) -> Callable[[Any], str]:
        def read(name: Any) -> str:
            if not isinstance(name, str):
                raise FuncError(f"{kind} takes one string")
            found = lookup(kind, name)
            if found is None:
                raise FuncError(
                    f"{kind} target {name!r} not found: the service does not use a {kind} with that target"
                )
            return found.decode("utf-8", "surrogateescape")

        return read

    return {**FUNCS, "env": env_value, "secret": file_value("secret"), "config": file_value("config")}


def render(value: bytes, context: TemplateContext, env: Mapping[str, str], lookup: Lookup) -> bytes:
    """``value`` rendered for the task ``context`` names (see the module docstring); TemplateError
    when the template is one Swarm would fail."""
    from .gotemplate import parse, strict_chain  # the engine: loaded on the first payload rendered

    text = value.decode("utf-8", "surrogateescape")  # Go's strings hold any bytes: keep them all
    try:
        template = parse(text, _functions(env, lookup), name="expansion")
        out = template.execute(swarm_context(context, PAYLOAD_TYPE), strict_chain, max_output=MAX_OUTPUT)
    except gotemplate_error.TemplateError as exc:
        where = f"line {exc.line}" + (f", column {exc.column}" if exc.column is not None else "")
        raise TemplateError(f"{where}: {exc.detail}") from None
    return out.encode("utf-8", "surrogateescape")
