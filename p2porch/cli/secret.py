"""``p2porch secret ...`` and ``p2porch config ...``: create, ls, inspect, update, rm (shell).

Owns reading a value from a file or stdin on the CLI's machine and sending it base64-encoded to the
daemon. It never prints a value: every answer is metadata (name, id, version, size, digest).
"""

from __future__ import annotations

import argparse
import base64
import sys
from typing import Any

from ..boundedread import TooLargeError, read_bounded
from ..errors import ConfigError
from ..model.payload_template import check_driver
from ..vault import MAX_VALUE_BYTES, validate_name, validate_value
from .docker_paths import object_path
from .docker_values import human_ago
from .filters import OBJECT_FILTERS, add_filter, apply_filters
from .goformat import add_inspect_output, add_list_format, inspect_each, labels_text, listing
from .service_rows import ago
from .util import (
    EXIT_OK,
    UsageError,
    add_ids_only,
    as_given,
    client_for,
    deleter,
    emit,
    noun_actions,
    remove_each,
)

COLUMNS = ["id", "name", "version", "size", "services", "created", "updated"]
#: the fields each kind's ``ls --format`` takes beside its columns, as Docker's: a secret's ``{{.Driver}}``
#: (empty: p2porch keeps every value itself, as Docker without a secret driver) and ``{{.Labels}}``;
#: Docker's config list has no driver
#: the fields ``ls --format`` takes beside the columns, and Docker's ``{{.CreatedAt}}``/``{{.UpdatedAt}}``
#: (``17 seconds ago``, where the table's column says ``17s ago``)
EXTRA = {
    "secret": ("driver", "labels", "created_at", "updated_at"),
    "config": ("labels", "created_at", "updated_at"),
}
#: the fields of a row's ``{{json .}}``: docker/cli's secret and config rows' (a config has no driver)
DOCKER_JSON = {kind: ("id", "name", *fields) for kind, fields in EXTRA.items()}


def _extra(kind: str, view: dict[str, Any]) -> tuple[str, ...]:
    values = {
        "driver": "",
        "labels": labels_text(view.get("labels")),
        "created_at": human_ago(view["created_at"]),
        "updated_at": human_ago(view["updated_at"]),
    }
    return tuple(values[name] for name in EXTRA[kind])


def read_value(path: str, kind: str) -> bytes:
    """The bytes of ``path`` (``-`` = stdin), at most 500 KiB (read one byte more to tell)."""
    try:
        data = read_bounded(sys.stdin.buffer if path == "-" else path, MAX_VALUE_BYTES)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}", field="FILE") from exc
    except ValueError:  # open() refuses a path holding a NUL byte
        raise UsageError(f"cannot read {path!r}: a path cannot hold a NUL byte", field="FILE") from None
    except TooLargeError:
        raise UsageError(
            f"{path} is larger than the {kind} limit of 500 KiB ({MAX_VALUE_BYTES} bytes)", field="FILE"
        ) from None
    try:
        return validate_value(data, kind)
    except ConfigError as exc:
        raise UsageError(exc.message, field="FILE") from exc


def encoded(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _labels(values: list[str] | None) -> dict[str, str]:
    out = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not key:
            raise UsageError(f"--label {item!r}: expected KEY=VALUE", field="--label")
        out[key] = value
    return out


def _describe(view: dict[str, Any]) -> str:
    lines = [
        f"{view['kind']} {view['name']}",
        f"  id:       {view['id']}",
        f"  version:  {view['version']} (kept: {', '.join(str(v) for v in view['versions'])})",
        f"  size:     {view['size']} bytes",
        f"  digest:   {view['digest']}",
        f"  services: {', '.join(view.get('services') or []) or '-'}",
    ]
    if view.get("labels"):
        lines.append("  labels:   " + ", ".join(f"{k}={v}" for k, v in sorted(view["labels"].items())))
    if view.get("template_driver"):
        lines.append(f"  template: {view['template_driver']} (rendered for each task)")
    if view.get("rolled_services"):
        lines.append(f"  rolling:  {', '.join(view['rolled_services'])}")
    return "\n".join(lines)


def _cmd_create(kind: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            validate_name(args.name, kind)
        except ConfigError as exc:
            raise UsageError(exc.message, field="NAME") from exc
        driver = check_driver(args.template_driver, "--template-driver")
        body = {
            "name": args.name,
            "data": encoded(read_value(args.file, kind)),
            "labels": _labels(args.label),
        }
        if driver:
            body["template_driver"] = driver
        # the new object's id, as `docker secret create` prints it (`inspect` shows the rest)
        emit(args, client_for(args).post(f"/objects/{kind}", body), lambda obj: obj["id"])
        return EXIT_OK

    return run


def _cmd_update(kind: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        body = {"data": encoded(read_value(args.file, kind))}
        emit(args, client_for(args).post(f"/objects/{kind}/{args.name}/update", body), _describe)
        return EXIT_OK

    return run


def _cmd_ls(kind: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        rows = apply_filters(client_for(args).get(f"/objects/{kind}"), args.filters, OBJECT_FILTERS)
        emit(
            args,
            rows,
            lambda rs: listing(
                args,
                COLUMNS,
                [
                    [
                        r["id"],
                        r["name"],
                        r["version"],
                        r["size"],
                        ",".join(r["services"]) or "-",
                        ago(r["created_at"]),
                        ago(r["updated_at"]),
                    ]
                    for r in rs
                ],
                EXTRA[kind],
                [_extra(kind, r) for r in rs],
                docker_json=DOCKER_JSON[kind],
                labels=[r.get("labels") for r in rs],
            ),
        )
        return EXIT_OK

    return run


def _cmd_inspect(kind: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        client = client_for(args)
        fetch = lambda name: client.get(f"/objects/{kind}/{name}")  # noqa: E731
        return inspect_each(args, args.names, fetch, _describe, object_path)

    return run


def _cmd_rm(kind: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        return remove_each(args, args.names, deleter(f"/objects/{kind}/{{}}"), as_given)

    return run


def _add_noun(sub: Any, common: argparse.ArgumentParser, kind: str) -> None:
    action = noun_actions(sub, common, kind, f"Manage {kind}s (values are stored encrypted)")

    create = action("create", f"Create a {kind} from FILE or stdin (-), at most 500 KiB", _cmd_create(kind))
    create.add_argument("name", metavar="NAME")
    create.add_argument("file", metavar="FILE", nargs="?", default="-")
    create.add_argument("--label", "-l", action="append", metavar="KEY=VALUE", help="metadata (repeatable)")
    create.add_argument(
        "--template-driver",
        default="",
        metavar="DRIVER",
        help='golang: render the value as a Go template for each task ({{.Task.Slot}}, {{env "VAR"}}, '
        '{{secret "target"}}...; docs/secrets.md)',
    )
    update = action(
        "update", f"Give a {kind} a new version; services using it roll (unless pinned)", _cmd_update(kind)
    )
    update.add_argument("name", metavar="NAME")
    update.add_argument("file", metavar="FILE", nargs="?", default="-")
    ls = add_ids_only(action("ls", f"List {kind}s (metadata only)", _cmd_ls(kind)))
    add_filter(add_list_format(ls, COLUMNS, extra=EXTRA[kind], labelled=True), OBJECT_FILTERS)
    inspect = action(
        "inspect", f"Show a {kind}'s metadata, version and digest (never its value)", _cmd_inspect(kind)
    )
    inspect.add_argument("names", metavar="NAME", nargs="+")
    add_inspect_output(inspect)
    rm = action("rm", f"Remove {kind}s no service uses", _cmd_rm(kind))
    rm.add_argument("names", metavar="NAME", nargs="+")


def add_secret_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    _add_noun(sub, common, "secret")
    _add_noun(sub, common, "config")
