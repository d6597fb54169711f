"""``p2porch service ...``: the service commands of the CLI (shell).

Owns sending the service commands (create, update, ls, scale, rollback, rebalance, rm) and what they
print; the flags of create/update and their validation are service_spec_flags.py's (a bad flag fails
with exit code 2 and its name before anything reaches the daemon), inspect/ps/logs service_read.py's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
from typing import Any

from ..errors import NO_SUCH, ConfigError, ConflictError, NotFoundError, P2POrchError
from ..model.netrefs import parse_attachments
from .autoscale import add_autoscale_flags, cmd_service_autoscale
from .filters import SERVICE_FILTERS, add_filter, apply_filters
from .goformat import add_list_format
from .names import generated_name
from .progress import Watch, add_wait_options, wait_after, waits_for
from .sent_again import sent_again_once
from .service_read import add_read_commands
from .service_rows import SERVICE_COLUMNS, SERVICE_EXTRA, service_listing
from .service_spec_flags import (
    add_spec_flags,
    drop_driverless_log_opts,
    flag_for,
    spec_changes,
    validated_spec,
)
from .stats import add_service_stats
from .update_edits import edit_changes, edits_given, refuse_settings_of_an_off_check
from .util import (
    EXIT_OK,
    Failures,
    UsageError,
    add_ids_only,
    as_given,
    client_for,
    deleter,
    emit,
    held,
    noun_actions,
    remove_each,
    wants_json,
)

#: a spec list whose entries name other objects (missing ones: NotFoundError with this field)
REFERENCE_LISTS = ("secrets", "configs", "networks")
GENERATED_NAME_TRIES = 8  # service create without --name: names tried before a conflict is reported
EDIT_RUNS = 5  # --env-add...: runs of read, edit and send while the service changes meanwhile (as the API's)


def _post_naming_flag(client: Any, path: str, body: dict[str, Any]) -> Any:
    """``client.post(path, body)``; a secret, config or network the spec names that does not exist is
    still refused as not found (exit 1, as Docker's ``secret not found: nosuch``), its message now
    starting with the flag that named it (``--secret``, or ``--secret-add`` on update). A spec field the
    daemon refuses (update: the merged spec, ``replicas: must be at least 0``) is named by its flag as
    create names it (``--replicas: replicas: ...``), exit 2."""
    try:
        return client.post(path, body)
    except ConfigError as exc:  # the daemon's check of the merged spec (update): named by the flag too
        flag = "--image" if exc.field == "image" else flag_for(exc.field)
        if not flag or not flag.startswith("-") or exc.message.startswith(flag):
            raise
        raise UsageError(f"{flag}: {exc.message}", field=flag) from exc
    except NotFoundError as exc:
        head = (exc.field or "").split("[", 1)[0].split(".", 1)[0]
        if head not in REFERENCE_LISTS:
            raise
        flag = "--" + head.removesuffix("s") + ("-add" if body.get(f"{head}_add") else "")
        raise NotFoundError(f"{flag}: {exc.message}", field=flag) from exc


def _post_update(args: argparse.Namespace, client: Any, changes: dict[str, Any]) -> Any:
    """The update sent. With --env-add/--publish-rm... the lists read are edited and sent at the version
    read: a write to the service between the read and the commit (the leader's bookkeeping, another
    user's update) is read again and the edit redone, up to EDIT_RUNS runs; never with --if-version,
    the user's own condition (its conflict is the answer)."""
    path = f"/services/{args.service}"
    if not edits_given(args):
        refuse_settings_of_an_off_check(args, changes, lambda: client.get(path))
        return sent_again_once(lambda body: _post_naming_flag(client, f"{path}/update", body), changes)
    for _ in range(1, EDIT_RUNS):
        try:
            return _post_naming_flag(client, f"{path}/update", edit_changes(args, changes, client.get(path)))
        except ConflictError as exc:
            if args.if_version is not None or exc.field != "expected_version":
                raise
    return _post_naming_flag(client, f"{path}/update", edit_changes(args, changes, client.get(path)))


# ----------------------------------------------------------------------------- commands


def cmd_service_create(args: argparse.Namespace) -> int:
    drop_driverless_log_opts(args)
    changes = spec_changes(args)
    if "replicas" in changes and str(changes.get("mode", "")).startswith("global"):
        raise UsageError(  # as Docker: not silently one task per node instead of the count asked for
            f"--replicas: a {changes['mode']} service runs one task per node; --replicas is for "
            "replicated and replicated-job services",
            field="--replicas",
        )
    named = "name" in changes  # an empty --name is refused as before; none: a placeholder until generated
    spec = validated_spec(changes if named else {**changes, "name": "unnamed"})
    client = client_for(args)
    service = _post_naming_flag(client, "/services", spec) if named else _create_generated(client, spec)
    emit(args, service, lambda s: s["id"])
    wait_after(args, client, _watches([service], created=True))
    return EXIT_OK


def _create_generated(client: Any, spec: dict[str, Any]) -> Any:
    """POST ``spec`` under a generated name (no ``--name``, as Docker makes one up), a taken one tried
    again under another; the name is in the answer (``service ls``, ``--json``)."""
    rng = random.SystemRandom()
    for attempt in range(GENERATED_NAME_TRIES - 1):
        with contextlib.suppress(ConflictError):
            return _post_naming_flag(client, "/services", {**spec, "name": generated_name(rng, attempt)})
    last = generated_name(rng, GENERATED_NAME_TRIES - 1)  # its conflict is the user's error
    return _post_naming_flag(client, "/services", {**spec, "name": last})


def _watches(views: list[dict[str, Any]], *, created: bool = False) -> list[Watch]:
    """What to wait for after writes that answered with these service views (a removed one: nothing);
    ``created``: the writes created the services."""
    return [Watch(v["name"], int(v["version"]), created=created) for v in views if waits_for(v)]


def cmd_service_update(args: argparse.Namespace) -> int:
    if args.rollback:  # docker service update --rollback S: alone (with --detach/--quiet), as Docker's
        if spec_changes(args) or args.force or edits_given(args) or args.if_version is not None:
            raise UsageError(
                "--rollback: other flags may not be combined with --rollback", field="--rollback"
            )
        return cmd_service_rollback(args)
    drop_driverless_log_opts(args)
    changes = spec_changes(args)
    if args.force:
        changes["force"] = True  # re-run a job (a new execution)
    if changes.get("networks_add"):
        try:
            parse_attachments(changes["networks_add"], "networks_add")
        except ConfigError as exc:
            raise UsageError(f"--network-add: {exc.message}", field="--network-add") from exc
    if args.if_version is not None:
        if args.if_version < 1:
            raise UsageError(
                "--if-version: must be a service version (a positive integer)", field="--if-version"
            )
        changes["expected_version"] = args.if_version  # compare-and-set: refused (409) when stale
    client = client_for(args)
    service = _post_update(args, client, changes)
    emit(args, service, lambda s: args.service)  # the SERVICE given, as `docker service update` prints
    for warning in service.get("ignored", ()):  # a -rm of an object it does not use, as Docker ignores it
        print(f"warning: {warning}", file=sys.stderr)
    if service.get("already"):  # a resend whose first send committed: its rollout is waited for
        print(
            f"{service['name']}: the update was already written (its first send committed)", file=sys.stderr
        )
    elif service.get("changed") == []:  # nothing written: nothing to wait for
        print(f"{service['name']}: nothing changed (no rollback point recorded)", file=sys.stderr)
        return EXIT_OK
    say_execution(service)
    if service.get("changed") == ["resumed"]:  # a paused update going on: waited for as any update
        print(f"{service['name']}: update resumed", file=sys.stderr)
    wait_after(args, client, _watches([service]))
    return EXIT_OK


def say_execution(service: dict[str, Any]) -> None:
    """On stderr, the execution a job's update or scale started (it runs the job again: not waited for)."""
    if "execution" in service.get("changed", ()) and service.get("job"):
        print(f"{service['name']}: execution {service['job']['iteration']} started", file=sys.stderr)


def cmd_service_ls(args: argparse.Namespace) -> int:
    rows = apply_filters(client_for(args).get("/services"), args.filters, SERVICE_FILTERS)
    emit(args, rows, lambda rows: service_listing(args, rows))
    return EXIT_OK


UINT64_MAX = 2**64 - 1  # docker/cli reads REPLICAS with Go's strconv.ParseUint(s, 10, 64)


def _replicas_error(count: str) -> str | None:
    """docker/cli's words for a REPLICAS that is not a count (``invalid replicas value x: strconv.
    ParseUint: parsing "x": invalid syntax``), or None."""
    if count.isascii() and count.isdigit():
        digits = count.lstrip("0")  # int() of thousands of digits is refused (and slow): length first
        if len(digits) <= len(str(UINT64_MAX)) and int(digits or "0") <= UINT64_MAX:
            return None
        why = "value out of range"
    else:
        why = "invalid syntax"
    quoted = json.dumps(count, ensure_ascii=False)  # Go's %q of the text, as strconv's error quotes it
    return f"invalid replicas value {count}: strconv.ParseUint: parsing {quoted}: {why}"


def _scale_line(name: str, exc: P2POrchError) -> str:
    """A failed SERVICE=REPLICAS as docker/cli's ``service scale`` says it: the SERVICE as given before
    the error (``nosuch: Error: No such service: nosuch``, ``3f2a: scale can only be used ...``)."""
    if isinstance(exc, NotFoundError) and exc.message.startswith(NO_SUCH):
        return f"{name}: Error: {exc.message}"
    return exc.message if exc.message.startswith(f"{name}: ") else f"{name}: {exc.message}"


def _wait_line(name: str, view: dict[str, Any], exc: P2POrchError) -> str:
    """A wait that failed, said with the SERVICE as given (docker/cli's ``fmt.Errorf("%s: %w", ...)``),
    not twice when the message starts with the service's own name."""
    return f"{name}: {exc.message.removeprefix(str(view.get('name')) + ': ')}"


def cmd_service_scale(args: argparse.Namespace) -> int:
    """As docker/cli's ``service scale a=1 nosuch=2 b=x c=3``: an argument without ``=`` or either side is
    refused before anything is sent (exit 2); then each SERVICE is scaled in turn (``a scaled to 1`` as it
    is done), then each scaled one waited for in turn; one that fails (missing, global, REPLICAS not a
    count, not converged) is said on stderr, the SERVICE as given first, after the others are scaled and
    waited for (exit 1, 2 when a REPLICAS was bad input). Anything else (a daemon gone, Ctrl-C) stops at
    once, after the failures before it are said."""
    for item in args.scales:
        name, sep, count = item.partition("=")
        if not name or not sep or not count:
            raise UsageError(
                f"invalid scale specifier '{item}'.\nSee 'p2porch service scale --help'.\n\n"
                "Usage:  p2porch service scale SERVICE=REPLICAS [SERVICE=REPLICAS...]",
                field="SERVICE=REPLICAS",
            )
    client = client_for(args)
    failures, scaled = Failures(), list[tuple[str, Any]]()
    for item in args.scales:
        name, _, count = item.partition("=")
        bad = _replicas_error(count)
        if bad is not None:
            failures.add(UsageError(bad, field="SERVICE=REPLICAS"), f"{name}: {bad}")
            continue
        try:
            scaled.append((name, client.post(f"/services/{name}/scale", {"replicas": int(count)})))
        except BaseException as exc:
            if not held(exc):
                failures.report()
                raise
            failures.add(exc, _scale_line(name, exc))
            continue
        if not wants_json(args):  # each SERVICE as given, as `docker service scale` prints it
            print(f"{name} scaled to {int(count)}", flush=True)
            say_execution(scaled[-1][1])
        if "already_at" in scaled[-1][1]:  # nothing written (--json: ``already_at``, ``changed: []``)
            print(f"{name}: already at {int(count)} replicas (nothing changed)", file=sys.stderr, flush=True)
        elif scaled[-1][1].get("changed") == ["resumed"]:  # at its count, a paused update resumed
            print(f"{scaled[-1][1].get('name') or name}: update resumed", file=sys.stderr, flush=True)
    if wants_json(args):
        print(json.dumps([view for _, view in scaled], indent=2, sort_keys=True))
    for name, view in scaled:  # each in turn, as docker/cli's WaitOnService: one failing stops none
        try:
            wait_after(args, client, _watches([view]))
        except BaseException as exc:
            if not held(exc):
                failures.report()
                raise
            failures.add(exc, _wait_line(name, view, exc))
    return failures.report()


def _service_action(args: argparse.Namespace, action: str, done: Any) -> int:
    """POST /services/S/<action> and print ``done(service view)``."""
    emit(args, client_for(args).post(f"/services/{args.service}/{action}"), done)
    return EXIT_OK


def cmd_service_rollback(args: argparse.Namespace) -> int:
    """As ``docker service rollback``: the SERVICE given (stdout), then, unless ``-d``, ``-q`` or
    ``--json``, the progress (stderr) from Docker's first line, ``rollback: manually requested
    rollback``; the spec fields changed back are in ``--json`` (``changed``), not in the text."""
    client = client_for(args)
    service = client.post(f"/services/{args.service}/rollback")
    emit(args, service, lambda s: args.service)
    if not (args.detach or args.quiet or wants_json(args)):
        print("rollback: manually requested rollback", file=sys.stderr, flush=True)
    wait_after(args, client, _watches([service]))
    return EXIT_OK


def cmd_service_rebalance(args: argparse.Namespace) -> int:
    return _service_action(
        args,
        "rebalance",
        lambda s: f"{s['name']}: rebalance requested (moves are start-first, one task at a time)",
    )


def cmd_service_rm(args: argparse.Namespace) -> int:
    return remove_each(args, args.services, deleter("/services/{}"), as_given)


def add_service_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    action = noun_actions(sub, common, "service", "Manage services")

    create = action("create", "Create a service: create --name S [flags] IMAGE [CMD...]", cmd_service_create)
    add_wait_options(create)
    add_spec_flags(create, create=True)
    update = action(
        "update",
        "Change some of a service's settings (a rolling update if the task changes)",
        cmd_service_update,
    )
    update.add_argument("service", metavar="SERVICE")
    update.add_argument(
        "--force",
        action="store_true",
        help="replace every task even if nothing changed (rolling, as Docker's); a job: run it again",
    )
    update.add_argument("--rollback", action="store_true", help="as `service rollback SERVICE`")
    update.add_argument(
        "--if-version",
        type=int,
        default=None,
        metavar="VERSION",
        help="apply only if the service is still at this version (`version` in service inspect)",
    )
    add_wait_options(update)
    add_spec_flags(update, create=False)
    autoscale = action(
        "autoscale",
        "Scale a service on CPU/memory usage: autoscale S --min N --max N --cpu-percent P | --off",
        cmd_service_autoscale,
    )
    autoscale.add_argument("service", metavar="SERVICE")
    add_autoscale_flags(autoscale, default=None, prefix="--")
    autoscale.add_argument("--off", action="store_true", help="stop autoscaling (replicas stay as they are)")
    add_filter(
        add_list_format(
            add_ids_only(action("ls", "List services", cmd_service_ls)), SERVICE_COLUMNS, SERVICE_EXTRA
        ),
        SERVICE_FILTERS,
    )
    add_service_stats(action)
    scale = action("scale", "Set replicas: scale S=N [S=N...]", cmd_service_scale)
    scale.add_argument("scales", nargs="+", metavar="SERVICE=REPLICAS")
    add_wait_options(scale)
    rollback = action("rollback", "Return a service to its previous spec", cmd_service_rollback)
    rollback.add_argument("service", metavar="SERVICE")
    add_wait_options(rollback)
    action(
        "rebalance",
        "Move tasks onto nodes that joined or returned, start-first, one at a time",
        cmd_service_rebalance,
    ).add_argument("service", metavar="SERVICE")
    action("rm", "Remove services and their tasks", cmd_service_rm).add_argument(
        "services", nargs="+", metavar="SERVICE"
    )
    add_read_commands(action)
