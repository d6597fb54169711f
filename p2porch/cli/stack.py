"""``p2porch stack ...``: deploy Compose files as a stack, show the resolved stack, list stacks, their
tasks, remove one (shell).

Owns reading the Compose files and the files they name on the CLI's machine (``p2porch.stack.source``),
resolving and validating the whole stack locally (exit code 2 listing every problem, nothing sent),
printing warnings, and sending the resolved services to the daemon in ``depends_on`` order, waiting
between waves (``p2porch.stack.rollout``). The daemon never sees YAML (``p2porch.control.stack_ops``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any

from ..errors import NOTHING_IN_STACK, ConfigError, NotFoundError, P2POrchError, StaleReadRefused
from ..model.jobspec import is_job_mode
from ..stack import ComposeError, StackDefinition, check_stack_name
from ..stack.rollout import dependency_failed, dependency_ready, deploy_waves
from ..stack.source import stack_source
from .filters import SERVICE_FILTERS, TASK_FILTERS, add_filter, apply_filters
from .goformat import add_list_format, listing
from .progress import Watch, add_wait_options, wait_after, waits_for
from .service_read import add_task_list_flags, emit_tasks
from .service_rows import SERVICE_COLUMNS, SERVICE_EXTRA, service_listing
from .stack_objects import (
    Rolled,
    deploy_objects,
    object_ref,
    object_values,
    roll_cut_short,
    roll_rest,
    undo_created_objects,
)
from .stack_rm import cmd_stack_rm
from .util import (
    EXIT_OK,
    UsageError,
    add_ids_only,
    client_for,
    emit,
    noun_actions,
    positive_seconds,
    wants_json,
)

STACK_COLUMNS = ["name", "services", "tasks"]
#: Docker's ``stack ls --format`` fields beside the columns: the orchestrator (always Swarm's model here)
#: and the Kubernetes namespace (none)
STACK_EXTRA = ("orchestrator", "namespace")
WAIT_POLL_S = 1.0


def resolve_stack(args: argparse.Namespace, stack: str) -> StackDefinition:
    """The validated stack of ``-c`` files; warnings go to stderr; every problem -> UsageError (exit 2)."""
    try:
        check_stack_name(stack)
    except ConfigError as exc:
        raise UsageError(exc.message, field="NAME") from exc
    try:
        source = stack_source(args.compose_file, args.env_file, args.profile or ())
        definition = source.load(stack)
    except ComposeError as exc:
        for line in exc.warnings:
            print(f"warning: {line}", file=sys.stderr)
        count = len(exc.problems)
        lines = "\n  ".join(p.message for p in exc.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in {', '.join(args.compose_file)}:"
        raise UsageError(f"{head}\n  {lines}", field=exc.field) from exc
    except ConfigError as exc:
        raise UsageError(exc.message, field=exc.field) from exc
    for line in definition.warnings:
        print(f"warning: {line}", file=sys.stderr)
    return definition


def deploy_body(definition: StackDefinition, services: Any, prune: bool, follow: Any = ()) -> dict[str, Any]:
    """The API body of one deploy request: the resolved services (creation order), prune and the
    objects ``follow`` (``Rolled``: their new version goes into the update of each service using them)."""
    body = {
        "services": [{"short": s.short_name, "spec": s.spec} for s in services],
        "networks": [n.to_dict() for n in definition.networks],
        "prune": prune,
    }
    own = [{"kind": r.kind, "name": r.name} for r in follow if r.own]  # the daemon follows no other
    if own:  # an optional key: a deploy without a new object version sends what it sent before
        body["follow"] = own
    return body


def _deploy_text(result: dict[str, Any]) -> str:
    width = max((len(s["action"]) for s in result["services"]), default=0)
    lines = [f"{s['action'].ljust(width)}  {s['name']}" for s in result["services"]]
    if not result.get("written", True):
        return "\n".join(lines + [f"stack {result['stack']} is up to date: nothing changed, nothing written"])
    return "\n".join(lines + [f"stack {result['stack']} deployed"])


def _condition(condition: str) -> str:
    return {"service_completed_successfully": "completed"}.get(condition, condition.removeprefix("service_"))


def _jobs(client: Any, stack: str) -> dict[str, dict[str, Any]]:
    """Each job service's ``job`` view: its current execution (``iteration``: earlier ones count for no
    ``depends_on`` wait) and its failed slots (``failed``: a failure ends the wait at once)."""
    views = client.get(f"/stacks/{stack}/services", stale="true")  # the node the deploy went through
    return {v["name"]: v["job"] for v in views if v.get("job")}


def _wait(client: Any, definition: StackDefinition, wait_for: Any, timeout_s: float) -> None:
    """Poll the stack's tasks until every ``(service, condition)`` holds; P2POrchError (exit 1) on timeout,
    or as soon as one can no longer hold (a job it waits on failed, its restart policy exhausted)."""
    replicas = {
        s.name: (1 if s.spec.get("mode") == "global" else int(s.spec.get("replicas", 1)))
        for s in definition.services
    }
    deadline = time.monotonic() + timeout_s
    pending = list(wait_for)
    if pending:  # on stderr: --json output stays clean
        print(
            "waiting for " + ", ".join(f"{n} ({_condition(c)})" for n, c in pending),
            file=sys.stderr,
        )
    jobs = {s.name for s in definition.services if is_job_mode(str(s.spec.get("mode", "")))}
    while pending:
        # this node's copy: the deploy was applied here before it was acknowledged (no read barrier)
        tasks = client.get(f"/stacks/{definition.name}/tasks", all="true", stale="true")
        views = _jobs(client, definition.name) if jobs & {n for n, _ in pending} else {}
        iterations = {n: int(job.get("iteration") or 0) for n, job in views.items()}
        pending = [
            (n, c)
            for n, c in pending
            if not dependency_ready(n, c, tasks, replicas.get(n, 1), iterations.get(n, 0))
        ]
        if not pending:
            return
        failed = [reason for n, c in pending if (reason := dependency_failed(n, c, tasks, views.get(n)))]
        if failed:
            raise P2POrchError(
                f"depends_on: {'; '.join(failed)}; the services created so far stay (see p2porch stack ps): "
                "fix it and deploy again (an unchanged one runs again with p2porch service update --force)",
                field="depends_on",
            )
        if time.monotonic() > deadline:
            names = ", ".join(f"{n} ({_condition(c)})" for n, c in pending)
            raise P2POrchError(
                f"depends_on: {names} not ready after {timeout_s:.0f}s; the services created so far stay "
                "(see p2porch stack ps); deploy again once they run",
                field="depends_on",
            )
        time.sleep(WAIT_POLL_S)


def _plan_text(plan: dict[str, Any]) -> str:
    """A dry run's plan, one line per change: action, kind, name (and what an update changes)."""
    rows = [
        (s["action"], "service", s["name"] + (f"  ({', '.join(s['fields'])})" if s.get("fields") else ""))
        for s in plan["services"]
    ]
    rows += [(n["action"], "network", n["name"]) for n in plan["networks"]]
    notes = {"exists": "  (a new version only if its value changed)", "external": "  (exists)"}
    rows += [(o["action"], o["kind"], o["name"] + notes.get(o["action"], "")) for o in plan["objects"]]
    rows += [("used", "volume", f"{v['name']}  ({', '.join(v['services'])})") for v in plan["volumes"]]
    width = max((len(action) for action, _, _ in rows), default=0)
    lines = [f"{action.ljust(width)}  {kind.ljust(7)}  {name}" for action, kind, name in rows]
    return "\n".join([*lines, f"stack {plan['stack']}: dry run, nothing written; the deploy would succeed"])


def _dry_run(args: argparse.Namespace, definition: StackDefinition) -> int:
    """Ask the daemon what the deploy would change (nothing written): exit 0 when it would succeed,
    2 naming the field when it would be refused."""
    values = object_values(definition)  # the deploy's own local checks (files readable, sizes)
    services = deploy_waves(definition)[-1].services  # waves add up: the last one has every service
    body = deploy_body(definition, services, not args.no_prune)
    body["objects"] = [dataclasses.asdict(object_ref(obj)) for obj, _ in values]  # never a value
    try:
        plan = client_for(args).post_read(f"/stacks/{args.stack}/plan", body)  # --stale: this node's copy
    except StaleReadRefused:
        raise  # no quorum to confirm the copy is current (exit 1): not a refusal of the deploy
    except P2POrchError as exc:
        if not exc.field:
            raise  # not a refusal (no daemon, no access): exit 1
        text = f"dry run: the deploy would be refused ({', '.join(args.compose_file)}):\n  {exc.message}"
        raise UsageError(text, field=exc.field) from exc
    for warning in plan["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    emit(args, plan, _plan_text)
    return EXIT_OK


REGISTRY_AUTH_WARNING = (
    "--with-registry-auth: p2porch sends no credentials from the CLI; each node pulls with its own docker "
    "login (~/.docker/config.json of its daemon's user, docs/agent.md)"
)


def cmd_stack_deploy(args: argparse.Namespace) -> int:
    if args.with_registry_auth:  # Swarm scripts pass it: taken (it was refused, exit 2), and said
        print(f"warning: {REGISTRY_AUTH_WARNING}", file=sys.stderr)
    definition = resolve_stack(args, args.stack)
    if args.dry_run:
        return _dry_run(args, definition)
    client = client_for(args)
    lines, created, rolled = deploy_objects(client, definition)
    for line in lines:
        print(line, file=sys.stderr)
    try:
        result = _deploy_services(args, client, definition, rolled, created)
    except BaseException:  # refused, a wait timed out, Ctrl-C: the new versions' users roll all the same
        roll_cut_short(client, rolled)
        raise
    others = roll_rest(client, rolled)  # the deploy's services follow already: the others now
    if others:
        result["rolled_services"] = others
        print(f"rolled {', '.join(others)} (outside the deploy)", file=sys.stderr)
    result["written"] = bool(
        lines or others or result.get("removed_networks") or result.get("created_networks")
    ) or any(r["action"] != "unchanged" for r in result["services"])
    for name in result.get("removed_networks") or ():  # (the created ones as each wave's answer came)
        print(f"removed network {name}", file=sys.stderr)
    emit(args, result, _deploy_text)
    changed = [r["name"] for r in result["services"] if r["action"] in ("created", "updated")] + others
    views = [client.get(f"/services/{name}", stale="true") for name in changed]
    wait_after(args, client, [Watch(v["name"], int(v["version"])) for v in views if waits_for(v)])
    return EXIT_OK


def _deploy_services(
    args: argparse.Namespace,
    client: Any,
    definition: StackDefinition,
    rolled: list[Rolled],
    created: list[tuple[str, str]],
) -> dict[str, Any]:
    """Deploy the services wave by wave (each waiting for the ones it depends on): the last answer, its
    ``services`` the rows of every wave. A refusal removes the objects this deploy created."""
    prune = not args.no_prune
    waves = deploy_waves(definition)
    result: dict[str, Any] = {"stack": definition.name, "services": []}
    actions: dict[str, dict[str, Any]] = {}
    warned: set[str] = set()
    created_networks: list[str] = []
    for index, wave in enumerate(waves):
        _wait(client, definition, wave.wait_for, args.wait_timeout)
        last = index == len(waves) - 1
        try:
            result = client.post(
                f"/stacks/{args.stack}",
                deploy_body(definition, wave.services, prune if last else False, rolled),
            )
        except P2POrchError as exc:  # a key the daemon refused (a port it owns, a name taken): name the file
            roll_cut_short(client, rolled)  # the new version stays: every user follows it (emptied)
            undo_created_objects(client, created)
            if not (exc.field or "").startswith("services."):
                raise
            text = f"1 problem in {', '.join(args.compose_file)}:\n  {exc.message}"
            raise (UsageError if isinstance(exc, ConfigError) else type(exc))(text, field=exc.field) from exc
        for warning in result.get("warnings") or ():  # each wave's request says it again: once
            if warning not in warned:
                warned.add(warning)
                print(f"warning: {warning}", file=sys.stderr)
        for row in result["services"]:
            if row["action"] != "unchanged" or row["name"] not in actions:
                actions[row["name"]] = row
        # said as this wave's answer arrives (on stderr as the secrets are: stdout keeps one line per
        # service): a later wave refused, they exist all the same
        for name in result.get("created_networks") or ():
            print(f"created network {name}", file=sys.stderr)
            created_networks.append(name)
    result["services"] = list(actions.values())
    if created_networks:  # each wave's answer names its own: the first wave's created the stack's
        result["created_networks"] = created_networks
    return result


def cmd_stack_config(args: argparse.Namespace) -> int:
    definition = resolve_stack(args, args.stack or "stack")
    if wants_json(args):
        print(json.dumps(definition.model, indent=2, sort_keys=False, default=str))
    else:
        import yaml  # only here: `python -m p2porch daemon` loads every CLI module, and PyYAML is ~1 MB

        print(yaml.safe_dump(dict(definition.model), sort_keys=False, default_flow_style=False).rstrip())
    return EXIT_OK


def cmd_stack_ls(args: argparse.Namespace) -> int:
    emit(
        args,
        client_for(args).get("/stacks"),
        lambda rows: listing(
            args,
            STACK_COLUMNS,
            [[r["name"], r["services"], f"{r['running']}/{r['desired']}"] for r in rows],
            STACK_EXTRA,
            [("Swarm", "")] * len(rows),
            docker_json=("name", "services"),  # docker/cli's stack row's
        ),
    )
    return EXIT_OK


def swarm_names(filters: list[str], stack: str) -> list[str]:
    """``name=STACK_SERVICE`` as Swarm names a stack's services, read as ours (``STACK-SERVICE``):
    Docker's ``stack ps -f name=voting_redis voting`` finds ``voting-redis``'s tasks."""
    prefix = f"name={stack}_"
    return [f"name={stack}-{f[len(prefix) :]}" if f.startswith(prefix) else f for f in filters]


def cmd_stack_services(args: argparse.Namespace) -> int:
    try:
        services = client_for(args).get(f"/stacks/{args.stack}/services")
    except NotFoundError:  # as Docker's: said on stderr, exit 0 (an empty list with --json)
        print(f"Nothing found in stack: {args.stack}", file=sys.stderr)
        if wants_json(args):
            print("[]")
        return EXIT_OK
    filters = swarm_names(args.filters, args.stack)
    services = apply_filters(services, filters, SERVICE_FILTERS)  # as Docker's: service ls's keys
    emit(args, services, lambda rows: service_listing(args, rows))
    return EXIT_OK


def cmd_stack_ps(args: argparse.Namespace) -> int:
    try:
        tasks = client_for(args).get(f"/stacks/{args.stack}/tasks", all="false" if args.running else "true")
    except NotFoundError as exc:  # Docker's words (exit 1)
        raise NotFoundError(f"{NOTHING_IN_STACK}{args.stack}", field=exc.field) from exc
    tasks = apply_filters(tasks, swarm_names(args.filters, args.stack), TASK_FILTERS)
    emit_tasks(args, tasks)
    return EXIT_OK


def add_stack_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    action = noun_actions(sub, common, "stack", "Deploy and manage Compose stacks")

    def files(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--compose-file",
            "-c",
            required=True,
            action="append",
            metavar="FILE",
            help="Compose file; repeat to merge override files in order",
        )
        p.add_argument(
            "--env-file",
            metavar="FILE",
            help="variables for interpolation (default: .env beside the first file)",
        )
        p.add_argument(
            "--profile", action="append", metavar="NAME", help="enable services of this profile (repeatable)"
        )

    deploy = action(
        "deploy",
        "Create or update a stack from Compose files (services named STACK-SERVICE)",
        cmd_stack_deploy,
    )
    files(deploy)
    prune = deploy.add_mutually_exclusive_group()
    prune.add_argument(
        "--no-prune", action="store_true", help="keep services of the stack that the file no longer has"
    )
    prune.add_argument(
        "--prune",
        action="store_true",
        help="remove services the file no longer has: the default here (Docker needs the flag)",
    )
    deploy.add_argument(
        "--dry-run",
        action="store_true",
        help="print what the deploy would change, computed by the daemon without writing "
        "(exit 2 naming the field when it would be refused)",
    )
    deploy.add_argument(
        "--with-registry-auth",
        action="store_true",
        help="taken as docker stack deploy takes it, with a warning: p2porch sends no credentials from "
        "the CLI; each node pulls with its own docker login (docs/agent.md)",
    )
    deploy.add_argument(
        "--wait-timeout",
        type=positive_seconds,
        default=300.0,
        metavar="SECONDS",
        help="how long to wait for depends_on conditions between creation waves (default 300)",
    )
    add_wait_options(deploy)
    deploy.add_argument("stack", metavar="NAME")
    config = action(
        "config", "Print the resolved stack (interpolated, merged) without a daemon", cmd_stack_config
    )
    files(config)
    config.add_argument(
        "stack", metavar="NAME", nargs="?", help="stack name used for volume names (default: stack)"
    )
    add_list_format(action("ls", "List stacks", cmd_stack_ls), STACK_COLUMNS, extra=STACK_EXTRA)
    services = action("services", "List the services of a stack (as service ls)", cmd_stack_services)
    add_list_format(services, SERVICE_COLUMNS, SERVICE_EXTRA).add_argument("stack", metavar="NAME")
    add_filter(add_ids_only(services), SERVICE_FILTERS)
    ps = action("ps", "List the tasks of every service of a stack", cmd_stack_ps)
    ps.add_argument("stack", metavar="NAME")
    add_task_list_flags(ps)
    rm = action("rm", "Remove every service of each stack", cmd_stack_rm)
    rm.add_argument("stacks", metavar="NAME", nargs="+")
