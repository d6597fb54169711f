"""``--format`` and ``--pretty`` of the inspect commands, and ``--format`` of the lists (``service ls|ps``,
``stack ls|services|ps``, ``node ls|ps``, ``network ls``, ``secret|config ls``): the part of Go's
text/template Docker users type.

``{{.Spec.Name}}``, ``{{.ID}}``, ``{{json .Spec}}``, ``{{.}}`` and text around them, over the API's
JSON view (inspect) or over one row's columns (a list: ``{{.Name}} {{.Node}} {{.DesiredState}}``, with
Docker's names where a column's header differs: ``CurrentState``, ``Error``, ``Hostname``). A path
segment matches a key case-insensitively with CamelCase read as snake_case (``.UpdateStatus`` is
``update_status``). ``service inspect`` also answers Docker's own paths (``.Spec.TaskTemplate.
ContainerSpec.Env``, ``.Spec.Mode.Replicated.Replicas``: docker_paths.py). Anything else (pipelines,
``range``, ``index``, a missing key) is a usage error naming ``--format``; nothing is guessed. A
list's template is checked against its columns while the command line is parsed, so a bad one never
waits for a daemon.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from .docker_paths import go_text, json_ready
from .util import EXIT_OK, UsageError, each_name, emit, table, wants_json

_ACTION_RE = re.compile(r"{{-?\s*(.*?)\s*-?}}")
USABLE = "{{.Field.Sub}}, {{json .Field}} or {{.}}"
_PATH_RE = re.compile(r"^\.(?:[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)?$")


#: a row field's Docker name where it is not the field's words capitalized (``created_at``: ``CreatedAt``)
_CAMEL = {"id": "ID", "ipv4": "IPv4", "ipv6": "IPv6", "tls_status": "TLSStatus"}


def _camel(field: str) -> str:
    return _CAMEL.get(field) or "".join(word.capitalize() for word in field.split("_"))


def _snake(name: str) -> str:
    """``EngineVersion`` -> ``engine_version``; an acronym stays one word: ``TLSStatus`` -> ``tls_status``."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])|(?<=[A-Z])([A-Z])(?=[a-z]{2})", r"_\1\2", name).lower()


class _NoField(Exception):
    """A template's path names a field its data lacks (turned into Docker's message by ``render``)."""

    def __init__(self, walked: str, segment: str, fields: list[str]) -> None:
        super().__init__(segment)
        self.walked, self.segment, self.fields = walked, segment, fields


def _lookup(data: Any, path: str) -> Any:
    value = data
    walked = ""
    for segment in [s for s in path.split(".") if s]:
        if not isinstance(value, dict):
            raise _NoField(walked or ".", segment, [])
        wanted = {segment.lower(), _snake(segment)}
        keys = [k for k in value if str(k).lower() in wanted]
        if not keys:
            raise _NoField(walked or ".", segment, sorted(str(k) for k in value))
        value = value[keys[0]]
        walked += "." + segment
    return value


def _no_field_error(template: str, at: int, path: str, missing: _NoField) -> UsageError:
    """Go's execution error, as Docker prints it (``template: :1:2: executing "" at <.Nope>: can't
    evaluate field Nope``), with where it was looked for and the fields there are."""
    line = template.count("\n", 0, at) + 1
    column = at - (template.rfind("\n", 0, at) + 1)
    there = f" (fields: {', '.join(missing.fields)})" if missing.fields else " (not a map)"
    return UsageError(
        f'--format: template: :{line}:{column}: executing "" at <{path}>: can\'t evaluate field '
        f"{missing.segment} in {missing.walked}{there}",
        field="--format",
    )


def parse_error(template: str) -> str | None:
    """Go's parse error for what this subset can tell without data (``template: :1: unclosed action``:
    a ``{{`` never closed), or None."""
    start = template.find("{{")
    while start != -1:
        close = template.find("}}", start + 2)
        if close == -1:
            return f"template: :{template.count(chr(10), 0, start) + 1}: unclosed action"
        start = template.find("{{", close + 2)
    return None


def _text(value: Any) -> str:
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


#: a command's own paths (Docker's, docker_paths.py): ``(True, value)`` for a path it answers
Paths = Callable[[Any, str], tuple[bool, Any]]


def render(template: str, data: Any, paths: Paths | None = None) -> str:
    """``template`` with each ``{{...}}`` replaced from ``data``, or from ``paths`` where it answers
    (printed as Go prints it); UsageError for what it cannot read."""
    error = parse_error(template)
    if error is not None:
        raise UsageError(f"--format: template parsing error: {error}", field="--format")

    def action(match: re.Match[str]) -> str:
        words = match.group(1).split()
        path = words[-1]
        if len(words) in (1, 2) and _PATH_RE.match(path) and (len(words) == 1 or words[0] == "json"):
            mapped, value = paths(data, path) if paths is not None else (False, None)
            try:
                if len(words) == 2:
                    return json.dumps(json_ready(value) if mapped else _lookup(data, path), sort_keys=True)
                return go_text(value) if mapped else _text(_lookup(data, path))
            except _NoField as missing:
                at = match.start(1) + match.group(1).rindex(path)
                raise _no_field_error(template, at, path, missing) from None
        raise UsageError(
            f"--format: cannot read {match.group(0)!r}: use {USABLE}",
            field="--format",
        )

    return _ACTION_RE.sub(action, template)


def add_inspect_output(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--pretty`` (the text, already the default) and ``--format/-f TEMPLATE`` of an inspect command."""
    p.add_argument("--pretty", action="store_true", help="human-readable text (the default)")
    p.add_argument(
        "--format", "-f", metavar="TEMPLATE", help="Go template over the JSON view, e.g. '{{.Spec.Name}}'"
    )
    return p


def emit_inspected(
    args: argparse.Namespace, data: Any, describe: Callable[[Any], str], paths: Paths | None = None
) -> None:
    """An inspect command's output: ``--format`` applied to the JSON view (and ``paths``), else as
    ``emit``."""
    template = getattr(args, "format", None)
    if template is None:
        emit(args, data, describe)
        return
    if template.strip() == "json":  # Docker's `inspect --format json`: the object as JSON
        print(json.dumps(data, indent=2, sort_keys=True))
        return
    _check_format_alone(args)
    print(render(template, data, paths))


def _check_format_alone(args: argparse.Namespace) -> None:
    template = getattr(args, "format", None)
    mixed = wants_json(args) or getattr(args, "pretty", False)
    if template is not None and template.strip() != "json" and mixed:
        raise UsageError("--format: not with --json or --pretty", field="--format")


def inspect_each(
    args: argparse.Namespace,
    names: Sequence[str],
    fetch: Callable[[str], Any],
    describe: Callable[[Any], str],
    paths: Paths | None = None,
) -> int:
    """``inspect A B ...`` as Docker's (``inspect --format '{{.Spec.Name}}' $(... ls -q)``): one name is
    shown as ``emit_inspected`` shows it; several in turn, a text block each (a blank line between), a
    ``--format`` line each, or with --json (or ``--format json``) one list. A name that fails is reported
    on stderr and the others are still shown; the exit code is the worst failure's (2 for bad input, 1
    otherwise). A daemon that cannot be reached stops at once."""
    if len(names) == 1:
        emit_inspected(args, fetch(names[0]), describe, paths)
        return EXIT_OK
    _check_format_alone(args)
    template = getattr(args, "format", None)
    as_list = wants_json(args) or (template is not None and template.strip() == "json")
    codes, found = [EXIT_OK], list[Any]()
    for data in each_name(names, fetch, codes):
        if not as_list and template is None and found:
            print()
        found.append(data)
        if not as_list:
            emit_inspected(args, data, describe, paths)
    if as_list:
        print(json.dumps(found, indent=2, sort_keys=True))
    return max(codes)


#: a list's column header -> the field Docker's ``--format`` names it by, where the two differ
_DOCKER_NAMES = {"desired": "desired_state", "error / explanation": "error"}
#: a column's field also under Docker's name (``secret|config ls``: ``{{.CreatedAt}}``, ``{{.UpdatedAt}}``)
_DOCKER_ALSO = {"created": "created_at", "updated": "updated_at"}


def labels_text(labels: dict[str, str] | None) -> str:
    """A row's labels as Docker's list ``{{.Labels}}`` prints them: ``k=v,k2=v2`` (sorted here)."""
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))


def add_list_format(
    p: argparse.ArgumentParser, columns: list[str], extra: tuple[str, ...] = ()
) -> argparse.ArgumentParser:
    """``--format TEMPLATE`` of a list command (no ``-f``: that is ``--filter``, as in Docker), over rows
    of ``columns`` and the ``extra`` fields a template may name beside them: a template that cannot be
    parsed, or names a field no row has, is refused while parsing (exit 2 naming ``--format``), before
    any daemon is asked."""
    p.add_argument(
        "--format",
        type=_list_template(columns, extra),
        metavar="TEMPLATE",
        help="Go template per row, e.g. '{{.Name}}\\t{{.Node}}'",
    )
    return p


def _split_table(template: str) -> tuple[bool, str]:
    """``table TEMPLATE`` (Docker's directive): (True, TEMPLATE); else (False, the template)."""
    as_table = template.startswith("table")
    return as_table, (template[len("table") :].strip() if as_table else template).replace("\\t", "\t")


def _list_template(columns: list[str], extra: tuple[str, ...]) -> Callable[[str], str]:
    """argparse ``type`` of a list's ``--format``: the template checked against an empty row."""
    empty_row = _row_data(columns, [""] * len(columns)) | dict.fromkeys(extra, "")

    def checked(text: str) -> str:
        try:
            render(_split_table(text)[1], empty_row)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(exc.message.removeprefix("--format: ")) from None
        return text

    return checked


def _row_data(columns: list[str], cells: list[Any]) -> dict[str, Any]:
    """One row by its columns' names, with Docker's names where they differ."""
    data = {
        _DOCKER_NAMES.get(c, re.sub(r"[^a-z0-9]+", "_", c.lower())): cell
        for c, cell in zip(columns, cells, strict=True)
    }
    for column, docker_name in _DOCKER_ALSO.items():  # Docker's name beside this list's own
        if column in data:
            data[docker_name] = data[column]
    if "state" in data and "since" in data:
        data["current_state"] = f"{data['state']} {data['since']}"
    return data


def listing(
    args: argparse.Namespace,
    columns: list[str],
    rows: list[list[Any]],
    extra_names: tuple[str, ...] = (),
    extra_rows: list[tuple[Any, ...]] | None = None,
) -> str:
    """The table, or with ``--format`` one rendered line per row over its columns (by header name) and
    the ``extra_names`` fields (not in the table, as :func:`add_list_format`'s ``extra``; each row's
    values in ``extra_rows``); ``table TEMPLATE`` (Docker's directive) aligns the tab-separated fields
    under their names."""
    template = getattr(args, "format", None)
    if template is None or template.strip() == "table":  # Docker's bare `table`: the default table
        return table(columns, rows)
    as_table, template = _split_table(template)
    extras = extra_rows if extra_rows is not None else [()] * len(rows)
    data = [
        _row_data(columns, cells) | dict(zip(extra_names, more, strict=True))
        for cells, more in zip(rows, extras, strict=True)
    ]
    if template.strip() == "json":  # Docker's `--format json`: one object a row, by Docker's field names
        return "\n".join(json.dumps({_camel(k): _text(v) for k, v in row.items()}) for row in data)
    lines = [render(template, row) for row in data]
    if not as_table:
        return "\n".join(lines)
    keys = (*_row_data(columns, [""] * len(columns)), *extra_names)
    names = {key: key.replace("_", " ").upper() for key in keys}
    headers = render(template, names).split("\t")
    fields = [(line.split("\t") + [""] * len(headers))[: len(headers)] for line in lines]
    return table(headers, fields)
