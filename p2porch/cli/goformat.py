"""``--format`` and ``--pretty`` of the inspect commands, and ``--format`` of the lists (``service ls|ps``,
``stack ls|services|ps``, ``node ls|ps``, ``network ls``, ``secret|config ls``): Go's whole
text/template language (model/gotemplate.py) with Docker's functions (``json join split lower upper
title pad truncate``) and its ``table`` directive.

A template runs over the API's JSON view (inspect) or over one row's columns (a list: ``{{.Name}}
{{.Node}} {{.DesiredState}}``, with Docker's names where a column's header differs: ``CurrentState``,
``Error``, ``Hostname``). A field matches a key case-insensitively with CamelCase read as snake_case
(``.UpdateStatus`` is ``update_status``); a missing one is an error naming the fields there are.
``service inspect`` also answers Docker's own paths (``.Spec.TaskTemplate.ContainerSpec.Env``,
``.Endpoint.Ports``: docker_paths.py). A template Go would refuse is a usage error naming ``--format``
with Go's message; nothing is guessed. A list's template is parsed, and its fields checked against the
columns, while the command line is parsed, so a bad one never waits for a daemon.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import P2POrchError
from ..model.gotemplate import (
    MISSING,
    ExecError,
    FuncError,
    GoMap,
    Method,
    NilPointer,
    ParseError,
    Template,
    go_json,
    go_text,
    go_type,
    method_of,
    parse,
)
from .tabwriter import tabwrite
from .util import EXIT_OK, Failures, UsageError, each_name, emit, table, wants_json

#: a command's own paths (Docker's, docker_paths.py): ``(True, value)`` for a path it answers
Paths = Callable[[Any, str], tuple[bool, Any]]

#: a row field's Docker name where it is not the field's words capitalized (``created_at``: ``CreatedAt``)
_CAMEL = {"id": "ID", "ipv4": "IPv4", "ipv6": "IPv6", "tls_status": "TLSStatus"}


def _camel(field: str) -> str:
    return _CAMEL.get(field) or "".join(word.capitalize() for word in field.split("_"))


def _snake(name: str) -> str:
    """``EngineVersion`` -> ``engine_version``; an acronym stays one word: ``TLSStatus`` -> ``tls_status``."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])|(?<=[A-Z])([A-Z])(?=[a-z]{2})", r"_\1\2", name).lower()


def _json(value: Any) -> str:
    """Docker's ``json``: compact, a map's keys sorted, a struct's fields in order, no HTML escaping; ""
    where Go's encoder fails (NaN), as Docker ignores the error."""
    try:
        return go_json(value)
    except ValueError:
        return ""


def _join(items: Any, sep: str) -> str:
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise FuncError(f"wrong type for value; expected []string; got {go_type(items)}")
    return sep.join(items)


def _string_func(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` of a string first (Go's strings functions), refusing another type as Go does."""

    def call(text: Any, *args: Any) -> Any:
        if not isinstance(text, str):
            raise FuncError(f"wrong type for value; expected string; got {go_type(text)}")
        return function(text, *args)

    return call


#: Docker's template functions (``docker/cli`` templates.go) beside Go's built-ins
DOCKER_FUNCS: dict[str, Callable[..., Any]] = {
    "json": _json,
    "join": _join,
    "split": _string_func(lambda s, sep: s.split(sep) if sep else list(s)),
    "title": _string_func(lambda s: re.sub(r"(?<!\w)\w", lambda m: m.group(0).upper(), s)),
    "lower": _string_func(str.lower),
    "upper": _string_func(str.upper),
    "pad": _string_func(lambda s, before, after: " " * before + s + " " * after if s else ""),  # "" stays
    "truncate": _string_func(lambda s, length: s[:length]),
}


def _fields_error(walked: str, name: str, value: Any) -> FuncError:
    """Go's "can't evaluate field NAME in type T" (``row``: a list's row; ``view.Spec``: where in an
    inspect view; a Docker struct's Go type), with the fields a template may name there by their public
    names (``CreatedAt``, ``ID``, as Docker's), never p2porch's own keys."""
    if not isinstance(value, dict):
        return FuncError(f"can't evaluate field {name} in type {go_type(value)}")
    named = getattr(value, "go_type", None)  # one of Docker's structs (docker_paths): its Go type
    where = "row" if isinstance(value, _Row) else named if isinstance(named, str) else f"view{walked}"
    fields = ", ".join(sorted({_camel(str(k)) for k in value} | set(getattr(value, "go_methods", {}))))
    return FuncError(f"can't evaluate field {name} in type {where} (fields: {fields})")


class FormatError(P2POrchError):
    """A ``--format`` template that parsed but cannot be executed (a field there is not): exit 1, in
    Docker's words (``template parsing error: template: :1:2: executing "" at <.Nope>: ...``)."""


class _ViewMap(dict[str, Any]):
    """A map of p2porch's own view: printed as JSON (as ``--format`` always printed them), not Go's
    ``map[k:v]``, which Docker's paths (docker_paths.py) give."""

    def go_text(self) -> str:
        return json.dumps(self, sort_keys=True)


class _ViewList(list[Any]):
    """A list of p2porch's own view, printed as JSON (see :class:`_ViewMap`)."""

    def go_text(self) -> str:
        return json.dumps(self, sort_keys=True)


def _reader(data: Any, paths: Paths | None) -> Callable[[Any, tuple[str, ...]], Any]:
    """How a field chain is read: from ``data`` (the root) first by ``paths`` (Docker's, the longest
    prefix it answers), then key by key, a name matching a key case-insensitively with CamelCase read
    as snake_case (``.UpdateStatus`` is ``update_status``); a missing key is an error, except a Go map's
    (Docker's typed maps, ``.Actor.Attributes``): ``<no value>``, as Go's default ``missingkey``."""

    def resolve(receiver: Any, names: tuple[str, ...]) -> Any:
        value, done = receiver, 0
        if receiver is data and paths is not None:
            for cut in range(len(names), 0, -1):
                mapped, found = paths(data, "." + ".".join(names[:cut]))
                if mapped:
                    value, done = found, cut
                    break
        for i in range(done, len(names)):
            name = names[i]
            walked = "".join("." + n for n in names[:i])
            if isinstance(value, Method):  # a method in a chain: called with no arguments
                value = value.invoke(())
            method = method_of(value, name)
            if method is not None:  # the executor calls it with the command's arguments
                value = method
                continue
            if isinstance(value, NilPointer):
                raise value.field_error(name)
            if not isinstance(value, dict):
                raise _fields_error(walked, name, value)
            wanted = {name.lower(), _snake(name)}
            keys = [k for k in value if str(k).lower() in wanted]
            if not keys and isinstance(value, GoMap):
                return MISSING  # a Go map's absent key: <no value> (and so is anything under it)
            if not keys:
                raise _fields_error(walked, name, value)
            value = value[keys[0]]
        if done == 0 and type(value) is dict:
            return _ViewMap(value)
        return _ViewList(value) if done == 0 and type(value) is list else value

    return resolve


def parse_error(template: str) -> str | None:
    """Go's parse error for ``template`` (``template: :1: unclosed action``), or None."""
    try:
        parse(template, DOCKER_FUNCS)
    except ParseError as exc:
        return str(exc)
    return None


def parsed_template(template: str) -> Template:
    """``template`` parsed with Docker's functions; a UsageError naming ``--format`` if it does not parse."""
    try:
        return parse(template, DOCKER_FUNCS)
    except ParseError as exc:
        raise UsageError(f"--format: template parsing error: {exc}", field="--format") from None


def execute(parsed: Template, data: Any, paths: Paths | None = None) -> str:
    """``parsed`` run over ``data`` (``paths`` first, see :func:`render`); a FormatError if it fails."""
    try:
        return parsed.execute(data, _reader(data, paths))
    except ExecError as exc:
        raise FormatError(f"--format: template parsing error: {exc}", field="--format") from None


def render(template: str, data: Any, paths: Paths | None = None) -> str:
    """``template`` (Go's text/template with Docker's functions) over ``data``, a field read from
    ``paths`` where it answers (printed as Go prints it); naming ``--format`` with Go's message, a
    UsageError for a template that does not parse (exit 2), a FormatError for one that cannot be
    executed (exit 1, as Docker's)."""
    return execute(parsed_template(template), data, paths)


def _inspect_template(text: str) -> str | None:
    """Docker's ``--format pretty`` is ``--pretty``: the text, the default here (None)."""
    return None if text.strip() == "pretty" else text


def add_inspect_output(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--pretty`` (the text, already the default) and ``--format/-f TEMPLATE`` of an inspect command
    (``--format pretty``: the text, as Docker's)."""
    p.add_argument("--pretty", action="store_true", help="human-readable text (the default)")
    p.add_argument(
        "--format",
        "-f",
        type=_inspect_template,
        metavar="TEMPLATE",
        help="Go template over the JSON view, e.g. '{{.Spec.Name}}' ('pretty': the text)",
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
    ``--format`` line each, or with --json (or ``--format json``) one list. A name that fails (or that
    ``--format`` cannot be run over) is said on stderr after the others are shown, as docker/cli's
    ``inspect.Inspect`` collects them; the exit code is the worst failure's (2 for bad input, 1
    otherwise). A daemon that cannot be reached stops at once."""
    if len(names) == 1:
        emit_inspected(args, fetch(names[0]), describe, paths)
        return EXIT_OK
    _check_format_alone(args)
    template = getattr(args, "format", None)
    as_list = wants_json(args) or (template is not None and template.strip() == "json")
    failures, found = Failures(), list[Any]()
    for _, data in each_name(names, fetch, failures):
        if not as_list and template is None and found:
            print()
        found.append(data)
        if not as_list:
            try:
                emit_inspected(args, data, describe, paths)
            except FormatError as exc:  # as docker/cli's inspect.Inspect: kept, and the others still shown
                failures.add(exc)
    if as_list:
        print(json.dumps(found, indent=2, sort_keys=True))
    return failures.report()


#: a list's column header -> the field Docker's ``--format`` names it by, where the two differ
_DOCKER_NAMES = {"desired": "desired_state", "error / explanation": "error"}
#: a column's field also under Docker's name (``secret|config ls``: ``{{.CreatedAt}}``, ``{{.UpdatedAt}}``)
_DOCKER_ALSO = {"created": "created_at", "updated": "updated_at"}


def labels_text(labels: dict[str, str] | None) -> str:
    """A row's labels as Docker's list ``{{.Labels}}`` prints them: ``k=v,k2=v2`` (sorted here)."""
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))


def add_list_format(
    p: argparse.ArgumentParser, columns: list[str], extra: tuple[str, ...] = (), labelled: bool = False
) -> argparse.ArgumentParser:
    """``--format TEMPLATE`` of a list command (no ``-f``: that is ``--filter``, as in Docker), over rows
    of ``columns`` and the ``extra`` fields a template may name beside them (``labelled``: the rows have
    docker/cli's ``{{.Label "k"}}`` method too): a template that cannot be parsed is refused while
    parsing (exit 2 naming ``--format``); one that names a field no row has is Docker's ``template parsing
    error`` (exit 1) once argparse's own checks passed (:class:`_Template`); both before any
    daemon is asked."""
    p.add_argument(
        "--format",
        type=_list_template(columns, extra, labelled),
        metavar="TEMPLATE",
        help="Go template per row, e.g. '{{.Name}}\\t{{.Node}}'",
    )
    return p


def _split_table(template: str) -> tuple[bool, str]:
    """``table TEMPLATE`` (Docker's directive): (True, TEMPLATE); else (False, the template); spaces
    around it trimmed and ``\\t``, ``\\n`` read as a tab and a newline, as docker/cli's formatter does."""
    as_table = template.startswith("table")
    body = (template[len("table") :] if as_table else template).strip(" ")
    return as_table, body.replace("\\t", "\t").replace("\\n", "\n")


class _Template(str):
    """A list's ``--format`` as argparse read it, carrying the FormatError of a field no row has, which
    ``cli.main`` raises once argparse's own checks (an unknown flag, a missing argument, ``--help``)
    passed: raised in argparse's ``type`` it pre-empted them."""

    error: FormatError | None = None


def _list_template(columns: list[str], extra: tuple[str, ...], labelled: bool) -> Callable[[str], str]:
    """argparse ``type`` of a list's ``--format``: the template parsed (a UsageError: exit 2 naming it),
    and run over an empty row to find a field no row has, a FormatError carried on the text (a
    :class:`_Template`); other execution errors wait for the rows (an empty row is not one)."""
    empty_row = _Row(_row_data(columns, [""] * len(columns)) | dict.fromkeys(extra, ""))
    if labelled:
        empty_row.go_methods = _label_method({})

    def checked(text: str) -> str:
        template = _Template(text)
        try:
            render(_split_table(text)[1], empty_row)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(exc.message.removeprefix("--format: ")) from None
        except FormatError as exc:
            if "can't evaluate field" in exc.message:
                template.error = exc
        return template

    return checked


class _Row(dict[str, Any]):
    """One row of a list by its fields' names; as JSON (``{{json .}}``, ``--format json``) an object of
    Docker's field names (``CreatedAt``; ``json_keys``: only those docker/cli's row has, where the command
    is Docker's), its keys sorted, every value text but a bool, HTML escaped (``*:8080-\\u003e80/tcp``), as
    docker/cli's list contexts marshal themselves (``json.Marshal`` of their methods without arguments).
    ``go_methods``: its methods with arguments (``{{.Label "k"}}``)."""

    json_keys: tuple[str, ...] | None = None
    go_methods: dict[str, Method] = {}

    def json_text(self) -> str:
        keys = self if self.json_keys is None else [k for k in self.json_keys if k in self]
        fields = {
            _camel(k): v if isinstance(v, bool) else go_text(v, top=True) for k in keys for v in [self[k]]
        }
        return go_json(fields, escape_html=True)


def _label_method(labels: Mapping[str, str]) -> dict[str, Method]:
    """docker/cli's ``Label(name string) string`` of a network's, secret's or config's row: the label's
    value, "" for one it does not have."""
    return {"Label": Method("Label", ("string",), lambda name: str(labels.get(name, "")))}


def _row_data(columns: list[str], cells: list[Any]) -> _Row:
    """One row by its columns' names, with Docker's names where they differ."""
    data = _Row(
        (_DOCKER_NAMES.get(c, re.sub(r"[^a-z0-9]+", "_", c.lower())), cell)
        for c, cell in zip(columns, cells, strict=True)
    )
    for column, docker_name in _DOCKER_ALSO.items():  # Docker's name beside this list's own
        if column in data:
            data[docker_name] = data[column]
    if "state" in data and "since" in data:
        data["current_state"] = f"{data['state']} {data['since']}"
    return data


#: a field's header where it is not its words in capitals (docker/cli's ``CreatedAt``: ``CREATED``)
_HEADERS = {"created_at": "CREATED", "updated_at": "UPDATED"}
#: docker/cli's ``HeaderFunctions``: in the header these print their text unchanged (``{{upper .Name}}``
#: heads its column ``NAME``); ``pad`` and Go's own stay, to keep the header aligned with its column
HEADER_FUNCS: dict[str, Callable[..., Any]] = DOCKER_FUNCS | {
    name: lambda text, *_: text for name in ("json", "split", "join", "title", "lower", "upper", "truncate")
}


def listing(
    args: argparse.Namespace,
    columns: list[str],
    rows: list[list[Any]],
    extra_names: tuple[str, ...] = (),
    extra_rows: list[tuple[Any, ...]] | None = None,
    *,
    docker_json: tuple[str, ...] | None = None,
    labels: Sequence[Mapping[str, str] | None] | None = None,
    headers: Mapping[str, str] | None = None,
) -> str:
    """The table, or with ``--format`` one rendered line per row over its columns (by header name) and
    the ``extra_names`` fields (not in the table, as :func:`add_list_format`'s ``extra``; each row's
    values in ``extra_rows``, taking the place of a column's of the same name); ``table TEMPLATE``
    (Docker's directive) puts the template run over the fields' header names first (up to an error, as
    docker/cli ignores the header's) and aligns the tab-separated cells as docker/cli's tabwriter does.
    ``docker_json``: the fields a row's JSON has (docker/cli's row's, by their snake_case names);
    ``labels``: each row's labels, for docker/cli's ``{{.Label "k"}}``; ``headers``: a field's ``table``
    header where docker/cli's for this command differs (``network ls``'s ``NETWORK ID``)."""
    template = getattr(args, "format", None)
    if template is None or template.strip() == "table":  # Docker's bare `table`: the default table
        return table(columns, rows)
    if template.strip() == "json":  # Docker's `--format json`: `{{json .}}`
        template = "{{json .}}"
    as_table, template = _split_table(template)
    extras = extra_rows if extra_rows is not None else [()] * len(rows)
    data = [
        _Row(_row_data(columns, cells) | dict(zip(extra_names, more, strict=True)))
        for cells, more in zip(rows, extras, strict=True)
    ]
    for i, row in enumerate(data):
        row.json_keys = docker_json
        if labels is not None:
            row.go_methods = _label_method(labels[i] or {})
    parsed = parsed_template(template)
    lines = [execute(parsed, row) for row in data]
    if not as_table:
        return "\n".join(lines)
    keys = (*_row_data(columns, [""] * len(columns)), *extra_names)
    known = {**_HEADERS, **(headers or {})}
    names = {key: known.get(key, key.replace("_", " ").upper()) for key in keys}
    header = parse(template, HEADER_FUNCS).execute(names, _reader(names, None), partial=True)
    return tabwrite("\n".join([header, *lines]))
