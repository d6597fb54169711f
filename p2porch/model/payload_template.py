"""Swarm's templated secrets and configs (``template_driver: golang``): a value rendered per task (pure).

Owns the subset of Go's ``text/template`` Swarm's payload templates use: the service template fields
(``{{.Service.Name}}``, ``{{.Task.Slot}}``, ``{{.Node.Hostname}}``... of :class:`TemplateContext`),
``{{env "VAR"}}`` (the service's environment; an unset variable is empty), ``{{secret "target"}}`` and
``{{config "target"}}`` (the value of another secret/config the service uses, by target, as written),
string constants, comments (``{{/* */}}``) and the whitespace trim markers ``{{- `` and `` -}}``.
Anything else (an unknown function or field, ``if``/``range``, a pipeline, a target the service does not
use) is a :class:`TemplateError`: the task fails, as Swarm fails it. An error names the line and the
function, field or target, never the text around them or a string constant (a secret's template is
itself secret).
Never does I/O: the agent calls :func:`render` when it writes a task's file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping

from ..errors import ConfigError
from .templates import TemplateContext

#: the template drivers a secret or config may carry ("" = none: the value is mounted as written)
DRIVERS = ("golang",)

#: ``lookup(kind, target)``: the value of the service's secret/config with that target, None when it has none
Lookup = Callable[[str, str], "bytes | None"]

_FIELD_RE = re.compile(r"\.(?P<path>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)")
_CALL_RE = re.compile(
    r"(?P<func>[A-Za-z_][A-Za-z0-9_]*)(?:\s+(?P<arg>`[^`]*`|\"(?:[^\"\\]|\\.)*\"))?\s*", re.DOTALL
)
_STRING_RE = re.compile(r"`[^`]*`|\"(?:[^\"\\]|\\.)*\"", re.DOTALL)
#: Go's actions and built-in functions: Swarm renders them, p2porch does not (a clear task error)
_GO_ONLY = {
    *("if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"),
    *("and", "or", "not", "call", "html", "index", "slice", "js", "len", "print", "printf", "println"),
    *("urlquery", "eq", "ne", "lt", "le", "gt", "ge"),
}
_FUNCTIONS = ("env", "secret", "config")
_WHITESPACE = " \t\r\n"  # what Go's trim markers remove


class TemplateError(ValueError):
    """A template the renderer refuses: the task fails with this message (no text around the action)."""


def check_driver(driver: object, field: str) -> str:
    """``driver`` when it is "" or one of :data:`DRIVERS`, else a ConfigError naming ``field`` (bad input:
    exit 2 in the CLI, 400 in the API)."""
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


def _string(token: str, line: int) -> str:
    if token.startswith("`"):
        return token[1:-1]
    try:  # Go's interpreted string: JSON's escapes are a subset of it
        return str(json.loads(token))
    except ValueError:
        raise TemplateError(f"line {line}: a malformed string constant") from None


def render(value: bytes, context: TemplateContext, env: Mapping[str, str], lookup: Lookup) -> bytes:
    """``value`` rendered for the task ``context`` names (see the module docstring); TemplateError
    when the template is one Swarm would fail or p2porch does not render."""
    text = value.decode("utf-8", "surrogateescape")  # Go's strings hold any bytes: keep them all
    fields = context.values()
    out: list[str] = []
    pos, line, trim_next = 0, 1, False
    while (start := text.find("{{", pos)) >= 0:
        line += text.count("\n", pos, start)
        body_start, body_end, end = _action_bounds(text, start, line)
        chunk = text[pos:start].lstrip(_WHITESPACE) if trim_next else text[pos:start]
        out.append(chunk.rstrip(_WHITESPACE) if body_start > start + 2 else chunk)
        out.append(_action(text[body_start:body_end], line, fields, env, lookup))
        trim_next = end - body_end > 2
        line += text.count("\n", start, end)
        pos = end
    out.append(text[pos:].lstrip(_WHITESPACE) if trim_next else text[pos:])
    return "".join(out).encode("utf-8", "surrogateescape")


def _action_bounds(text: str, start: int, line: int) -> tuple[int, int, int]:
    """Where the body of the action at ``start`` begins and ends (trim markers outside it) and where the
    action ends (after ``}}``). One pass: a constant or comment may hold ``}}``; linear in its length."""
    body_start = start + 2
    if text.startswith("-", body_start) and text[body_start + 1 : body_start + 2] in tuple(_WHITESPACE):
        body_start += 2
    i = body_start
    while True:
        if i >= len(text):
            raise TemplateError(f"line {line}: unclosed action")
        if text.startswith("}}", i):
            break
        closing = {"`": "`", '"': '"', "/": "*/"}.get(text[i])
        if closing is None or (text[i] == "/" and not text.startswith("/*", i)):
            i += 1
            continue
        i = _constant_end(text, i, closing, line)
    body_end = i
    if i - 2 >= body_start and text[i - 1] == "-" and text[i - 2] in _WHITESPACE:
        body_end = i - 2
    return body_start, body_end, i + 2


def _constant_end(text: str, i: int, closing: str, line: int) -> int:
    """The index after the string constant or comment opening at ``i`` (closed by ``closing``)."""
    if closing == '"':
        j = i + 1
        while j < len(text) and text[j] not in '"\n':
            j += 2 if text[j] == "\\" else 1
        if j >= len(text) or text[j] != '"':
            raise TemplateError(f"line {line}: unterminated quoted string")
        return j + 1
    found = text.find(closing, i + 1 if closing == "`" else i + 2)
    if found < 0:
        what = "raw quoted string" if closing == "`" else "comment"
        raise TemplateError(f"line {line}: unterminated {what}")
    return found + len(closing)


def _action(body: str, line: int, fields: Mapping[str, str], env: Mapping[str, str], lookup: Lookup) -> str:
    """What one action (``{{ body }}``, trim markers removed) prints."""
    body = body.strip(_WHITESPACE)
    if body.startswith("/*") and body.endswith("*/"):
        return ""
    if not body:
        raise TemplateError(f"line {line}: missing value for command")
    if _STRING_RE.fullmatch(body):
        return _string(body, line)
    field = _FIELD_RE.fullmatch(body)
    if field is not None:
        path = field.group("path")
        if path not in fields:
            raise TemplateError(f"line {line}: can't evaluate field .{path} (no such template field)")
        return fields[path]
    first = re.match(r"[A-Za-z_][A-Za-z0-9_]*", body)
    if first is not None and first.group(0) in _GO_ONLY:
        raise TemplateError(
            f"line {line}: {first.group(0)!r} is not supported by p2porch's templates (fields, env, "
            "secret and config are)"
        )
    if first is not None and first.group(0) not in _FUNCTIONS:
        raise TemplateError(f"line {line}: function {first.group(0)!r} not defined")
    call = _CALL_RE.fullmatch(body)
    if call is None:
        raise TemplateError(f"line {line}: unsupported action (p2porch renders fields, env, secret, config)")
    func, arg = call.group("func"), call.group("arg")
    if arg is None:
        raise TemplateError(f"line {line}: {func} needs one string argument")
    name = _string(arg, line)
    if func == "env":
        return env.get(name, "")
    found = lookup(func, name)
    if found is None:
        raise TemplateError(
            f"line {line}: {func} target {name!r} not found: the service does not use a {func} with "
            f"that target"
        )
    return found.decode("utf-8", "surrogateescape")
