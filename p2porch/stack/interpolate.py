"""Compose variable interpolation and ``.env`` files (pure).

Owns ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``, ``${VAR?error}``,
``${VAR:+alt}``, ``${VAR+alt}`` (operands nest: ``${A:-${B:-x}}``) and ``$$`` for a literal ``$``,
applied to every string value of a Compose file (never to keys), as the Compose specification says; and
the dotenv syntax of ``.env`` / ``--env-file`` / ``env_file`` files. An unset variable without a default
becomes "" with one warning per variable; a missing required variable is a ``ConfigError`` naming the
variable and the field. It never reads the environment itself: the caller passes a mapping.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigError
from .yamlsafe import Override

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")
#: a double-quoted dotenv value's escapes, as compose-go's dotenv reads them (Go's rune escapes and
#: ``\0NNN`` octal; ``\$`` is a literal ``$``, kept from interpolation); any other ``\X`` stays as written
_ESCAPE_RE = re.compile(r"\\(?:[abfnrtv$\"\\]|0[0-7]{3})")
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "$": "$$"}

#: called with a variable name that is not set and has no default
Unset = Callable[[str], None]


def _err(path: str, message: str) -> ConfigError:
    return ConfigError(f"{path}: {message}", field=path)


def _closing_brace(text: str, start: int, path: str) -> int:
    """Index of the ``}`` closing the expression whose body starts at ``start`` (nested ``${`` count)."""
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise _err(path, f"invalid interpolation format in {text!r}: a ${{ without its closing }}")


MAX_NESTING = 16


def substitute(
    text: str, environ: Mapping[str, str], path: str, on_unset: Unset | None = None, _depth: int = 0
) -> str:
    """``text`` with every variable reference replaced; raises ConfigError for a missing required one."""
    if "$" not in text:
        return text
    if _depth > MAX_NESTING:
        raise _err(path, f"interpolation nested deeper than {MAX_NESTING} levels")
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$":
            out.append(char)
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            end = _closing_brace(text, i + 2, path)
            out.append(_braced(text[i + 2 : end], environ, path, on_unset, _depth))
            i = end + 1
        else:
            m = _NAME_RE.match(text, i + 1)
            if m is None:
                out.append("$")  # not a variable: kept as is, as Compose does
                i += 1
                continue
            out.append(_lookup(m.group(0), environ, on_unset))
            i = m.end()
    return "".join(out)


def _lookup(name: str, environ: Mapping[str, str], on_unset: Unset | None) -> str:
    value = environ.get(name)
    if value is None:
        if on_unset is not None:
            on_unset(name)
        return ""
    return value


def _braced(body: str, environ: Mapping[str, str], path: str, on_unset: Unset | None, depth: int) -> str:
    m = _NAME_RE.match(body)
    if m is None:
        raise _err(path, f"invalid interpolation format: ${{{body}}} (a variable name is required)")
    name, rest = m.group(0), body[m.end() :]
    if not rest:
        return _lookup(name, environ, on_unset)
    op = next((o for o in _OPERATORS if rest.startswith(o)), None)
    if op is None:
        raise _err(path, f"invalid interpolation format: ${{{body}}} (only :- - :? ? :+ + are supported)")
    operand = rest[len(op) :]
    value = environ.get(name)
    unset = value is None or (op.startswith(":") and value == "")
    if op in (":-", "-"):
        return substitute(operand, environ, path, on_unset, depth + 1) if unset else str(value)
    if op in (":+", "+"):
        return "" if unset else substitute(operand, environ, path, on_unset, depth + 1)
    if unset:
        detail = substitute(operand, environ, path, on_unset, depth + 1) if operand else ""
        state = "is not set" if value is None else "is empty"
        raise _err(path, f"required variable {name} {state}" + (f": {detail}" if detail else ""))
    return str(value)


def interpolate(value: Any, environ: Mapping[str, str], path: str, on_unset: Unset | None = None) -> Any:
    """Apply :func:`substitute` to every string value under ``value`` (keys are left alone).

    Errors are raised for the first bad value; :func:`interpolate_collect` collects them all."""
    errors: list[ConfigError] = []
    result = interpolate_collect(value, environ, path, errors, on_unset)
    if errors:
        raise errors[0]
    return result


def interpolate_collect(
    value: Any,
    environ: Mapping[str, str],
    path: str,
    errors: list[ConfigError],
    on_unset: Unset | None = None,
) -> Any:
    """Like :func:`interpolate`, appending each bad value's error to ``errors`` and keeping it as is."""
    if isinstance(value, str):
        try:
            return substitute(value, environ, path, on_unset)
        except ConfigError as exc:
            errors.append(exc)
            return value
    if isinstance(value, Mapping):
        return {
            k: interpolate_collect(v, environ, f"{path}.{k}" if path else str(k), errors, on_unset)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [
            interpolate_collect(v, environ, f"{path}[{i}]", errors, on_unset) for i, v in enumerate(value)
        ]
    if isinstance(value, Override):
        return Override(interpolate_collect(value.value, environ, path, errors, on_unset))
    return value


# ---------------------------------------------------------------------------------------- dotenv


def _quoted(
    raw: str, lines: list[str], index: int, where: Callable[[int], str], quote: str
) -> tuple[str, int, str]:
    """The body of a value quoted with ``quote`` (after its opening quote; it may span lines), its last
    line and the text after its closing quote, as compose-go v2's dotenv reads it (``extractVarValue``,
    since compose-go PR #511): a backslash takes the next character with it, dropping itself before the
    quote (``\\"`` is ``"``) and staying before anything else (``\\\\`` stays a pair, so ``"a\\\\"``
    closes); the value ends at the first quote no backslash takes."""
    out: list[str] = []
    text, i = raw, 0
    while True:
        while i < len(text):
            char = text[i]
            if char == "\\" and i + 1 < len(text):
                out.append(quote if text[i + 1] == quote else text[i : i + 2])
                i += 2
                continue
            if char == quote:
                return "".join(out), index, text[i + 1 :]
            out.append(char)
            i += 1
        index += 1
        if index >= len(lines):
            kind = "double" if quote == '"' else "single"
            raise ConfigError(f"{where(index - 1)}: a {kind}-quoted value is not closed")
        out.append("\n")  # a backslash ending a line takes the line break: it stays, as written
        text, i = lines[index], 0


def _escapes(body: str) -> str:
    """A double-quoted body with its escapes read (``_ESCAPE_RE``), before interpolation."""

    def one(match: re.Match[str]) -> str:
        seq = match.group(0)[1:]
        if seq.startswith("0"):  # Go's \NNN: at most 255
            code = int(seq[1:], 8)
            return chr(code) if code <= 0xFF else match.group(0)
        return _ESCAPES.get(seq, seq)

    return _ESCAPE_RE.sub(one, body)


#: a dotenv key as compose-go's dotenv takes it: letters, digits (a leading one too), ``_``, ``.``, ``-``,
#: ``[`` and ``]``
_KEY_RE = re.compile(r"^[\w.\[\]-]+$")


def parse_dotenv(
    text: str, filename: str, environ: Mapping[str, str] | None = None, *, raw: bool = False
) -> dict[str, str]:
    """``KEY=VALUE`` (or ``KEY: VALUE``) lines as Compose reads them -> dict.

    ``#`` comment lines and blank lines are skipped, ``export`` is allowed, single quotes are literal,
    double quotes take Go's escapes (``_ESCAPE_RE``), quoted values may span lines, an unquoted value ends
    at `` #``. Unquoted and double-quoted values are interpolated from ``environ``, then the file's earlier
    keys, as compose-go's dotenv looks them up.
    A bare ``KEY`` takes its value from ``environ`` (skipped when unset). ``raw`` (``env_file`` with
    ``format: raw``) takes each value as written after ``=``: quotes, `` #`` and ``$`` included, nothing
    interpolated. Errors name the file and line (``ConfigError`` without a field: the caller adds it).
    """
    environ = environ or {}
    out: dict[str, str] = {}
    lines = text.splitlines()

    def where(i: int) -> str:
        return f"{filename} line {i + 1}"

    index = 0
    while index < len(lines):
        line = lines[index].strip()
        start = index
        index += 1
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[len("export") :].lstrip()
        # compose-go's dotenv ends a key at the first '=' or ':' ("also supports yaml-style value
        # declaration": `KEY: value`); ``raw`` keeps Compose's raw format, split at '=' only
        ends = [i for i in (line.find("="), -1 if raw else line.find(":")) if i >= 0]
        cut = min(ends) if ends else len(line)
        key, sep, value = line[:cut].strip(), line[cut : cut + 1], line[cut + 1 :]
        if not _KEY_RE.match(key):
            raise ConfigError(f"{where(start)}: invalid variable name {key!r}")
        if not sep:
            if key in environ:
                out[key] = environ[key]
            continue
        if raw:
            out[key] = value
            continue
        value = value.lstrip()
        # the environment first, then the file's earlier keys (compose-go's dotenv ExpandVariables)
        lookup = {**out, **environ}
        if value[:1] in ("'", '"'):
            body, last, rest = _quoted(value[1:], lines, start, where, value[0])
            index = last + 1
            if rest.strip():  # compose-go reads what follows the closing quote as the next statement
                lines[last], index = rest, last
            if value[0] == "'":
                out[key] = body  # as scanned: ``\'`` is the quote, any other backslash stays
                continue
            body = _escapes(body)
        else:  # a comment starts at " #" (compose-go: a space, not a tab)
            body = value.split(" #", 1)[0].rstrip()
        try:
            body = substitute(body, lookup, where(start))
        except ConfigError as exc:
            raise ConfigError(exc.message) from None
        out[key] = body
    return out
