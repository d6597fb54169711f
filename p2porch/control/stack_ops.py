"""Stack operations behind the API: deploy a resolved stack, list stacks, their tasks, remove a stack.

Owns the stack-level view of services (a stack is the set of services labelled ``p2porch.stack=<name>``)
and the redeploy diff: a deploy validates every service before writing anything, then creates missing
services, updates only services whose canonical spec changed and removes services of the stack that the
file no longer has (``prune``, on by default). Every write goes through :class:`ServiceOps`; this module
never writes Raft commands itself and never places tasks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..api.server import Endpoint
from ..errors import ConfigError, ConflictError, NotAllowedError, NotFoundError
from ..model import ServiceSpec
from ..model.health_rules import check_off_checks, off_check_kept
from ..model.job_defaults import with_job_defaults
from ..model.metadata_limits import check_labels, check_spec
from ..model.rollback_point import changed_fields
from ..model.spec import check_update_allowed
from ..raft import command_gate
from ..raft.spec_size import check_spec_size
from ..stack.names import STACK_LABEL, check_stack_name, service_name, stack_membership
from ..vault import KINDS
from .network_ops import NetworkOps
from .secret_ops import Follow, kept_refs, resolve_file_refs
from .service_ops import ServiceOps, updated_spec_dict, validate_spec

if TYPE_CHECKING:
    from ..stack.compose import StackDefinition
    from ..stack.networks import StackNetwork
    from ..stack.object_plan import ObjectRef

# The Compose model (stack.compose, stack.networks), the object plan and stack_plan are loaded on a
# stack's first deploy, plan or prune: an idle daemon never runs them (issue 19, the twenty-ninth round).

UPDATED, UNCHANGED, REMOVED = "updated", "unchanged", "removed"  # CREATED: object_plan's


MAX_STACK_SERVICES = 1000


@contextmanager
def refusal_named(short: str) -> Iterator[None]:
    """A refusal of one of the stack's services named by its Compose key (``services.web.secrets``,
    ``health.interval`` as ``services.web.healthcheck.interval``), as the CLI shows it (in the file it
    read); a spec field with no Compose key of its own is named under the service as it is."""
    try:
        yield
    except (ConfigError, NotFoundError, ConflictError, NotAllowedError) as exc:
        from ..stack.service import compose_field  # the Compose model: loaded on a refusal only

        where = compose_field(f"services.{short}", exc.field)
        if exc.field and where == f"services.{short}":
            where += f".{exc.field}"
        raise type(exc)(f"services.{short}: {exc.message}", field=where) from exc


def parse_deploy_body(stack: str, body: Mapping[str, Any]) -> tuple[StackDefinition, bool]:
    """Validate ``{"services": [{"short": NAME, "spec": SPEC}, ...], "networks": [...], "prune": bool}``.

    The CLI resolves the Compose files (YAML, interpolation, merge) on the user's machine and sends
    the services in creation order; the daemon never parses YAML. Each spec goes through
    ``ServiceSpec.from_dict`` and must carry the stack's labels and name.
    """
    from ..stack.compose import StackDefinition, StackService  # the Compose model: loaded on first deploy
    from ..stack.networks import StackNetwork

    check_stack_name(stack)
    if "compose" in body and "services" not in body:
        raise ConfigError(
            "compose: the daemon does not read Compose files: send the resolved services "
            "(p2porch stack deploy does; p2porch stack config shows them)",
            field="compose",
        )
    entries = body.get("services")
    if not isinstance(entries, list) or not entries:
        raise ConfigError("services: expected a non-empty list of {short, spec}", field="services")
    if len(entries) > MAX_STACK_SERVICES:
        raise ConfigError(f"services: at most {MAX_STACK_SERVICES} services per stack", field="services")
    prune = body.get("prune", True)
    if isinstance(prune, str):
        prune = prune.lower() not in ("0", "false", "no")
    if not isinstance(prune, bool):
        raise ConfigError("prune: expected true or false", field="prune")
    services: list[StackService] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"services[{i}]"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("short"), str):
            raise ConfigError(f"{where}: expected {{short, spec}}", field=where)
        short = entry["short"]
        spec_data = entry.get("spec")
        if not isinstance(spec_data, Mapping):
            raise ConfigError(f"{where}.spec: expected a service spec", field=f"{where}.spec")
        try:
            spec = with_job_defaults(ServiceSpec.from_dict(spec_data)).to_dict()  # as the create stores it
        except ConfigError as exc:
            raise ConfigError(f"services.{short}: {exc.message}", field=f"services.{short}") from None
        expected = service_name(stack, short, fieldname=f"services.{short}")
        if spec["name"] != expected or stack_membership(spec["labels"]) != (stack, short):
            raise ConfigError(
                f"services.{short}: the spec must be named {expected!r} and carry the labels of stack "
                f"{stack!r}",
                field=f"services.{short}",
            )
        if short in seen:
            raise ConfigError(f"services.{short}: given twice", field=f"services.{short}")
        seen.add(short)
        services.append(StackService(short, spec))
    raw_networks = body.get("networks") or []
    if not isinstance(raw_networks, list) or len(raw_networks) > MAX_STACK_SERVICES:
        raise ConfigError("networks: expected a list of networks", field="networks")
    networks = tuple(StackNetwork.from_dict(n, f"networks[{i}]") for i, n in enumerate(raw_networks))
    return StackDefinition(stack, tuple(services), networks=networks), prune


def parse_follow(
    body: Mapping[str, Any], secrets: Mapping[str, Any], stack: str
) -> frozenset[tuple[str, str]]:
    """``follow`` of a deploy body: ``[{"kind": "config", "name": N}, ...]``, the secrets and configs the
    CLI just gave a new version without rolling their services (``defer_roll``): each service of the
    deploy that references one takes its current version in its one update, with its other changes.
    Only existing objects of this stack are kept (``secrets``: the state's records): following a shared
    or external one would move the stack's services to its version, undoing a deliberate rollback. Any
    other entry is dropped, not refused (a CLI before session 51 names every object it versioned; the
    CLI's roll_to rolls their users after the deploy); a malformed one is refused."""
    raw = body.get("follow") or []
    if not isinstance(raw, list) or len(raw) > MAX_STACK_SERVICES:
        raise ConfigError("follow: expected a list of {kind, name}", field="follow")
    out = set()
    for i, entry in enumerate(raw):
        if (
            not isinstance(entry, Mapping)
            or entry.get("kind") not in KINDS
            or not isinstance(entry.get("name"), str)
        ):
            raise ConfigError(f"follow[{i}]: expected {{kind: secret|config, name}}", field=f"follow[{i}]")
        kind, name = str(entry["kind"]), str(entry["name"])
        record = secrets.get(f"{kind}:{name}")
        if record is not None and record.labels.get(STACK_LABEL) == stack:
            out.add((kind, name))
    return frozenset(out)


def _compose_keys(short: str) -> dict[str, str]:
    """The Compose keys a service spec's labels, environment and volume labels come from."""
    where = f"services.{short}"
    return {
        "labels": f"{where}.labels",
        "service_labels": f"{where}.deploy.labels",
        "env": f"{where}.environment",
        "mounts": f"{where}.volumes",
        "sidecars": f"{where}.x-p2porch-sidecars",  # by position in the task group
        "init_containers": f"{where}.x-p2porch-init-containers",
        "member_env": "environment",
        "member_mounts": "volumes",
    }


class StackOps:
    """Stacks as groups of labelled services; all reads and writes go through ``ServiceOps``."""

    def __init__(self, services: ServiceOps, networks: NetworkOps | None = None) -> None:
        self.services = services
        self.networks = networks or NetworkOps(services.manager, clock=services.clock)

    # ----- reads
    def _members(self, stack: str | None = None) -> list[dict[str, Any]]:
        """Service views of every stack member (of ``stack`` only when given), sorted by name."""
        out = []
        for view in self.services.list_all():
            member = stack_membership(view["spec"].get("labels"))
            if member is not None and (stack is None or member[0] == stack):
                out.append(view)
        return out

    def _require(self, stack: str) -> list[dict[str, Any]]:
        check_stack_name(stack)
        members = self._members(stack)
        if not members:
            raise NotFoundError(f"no stack {stack!r}", field="NAME")
        return members

    def ls(self) -> list[dict[str, Any]]:
        """One row per stack: name, number of services, running and desired tasks."""
        rows: dict[str, dict[str, Any]] = {}
        for view in self._members():
            member = stack_membership(view["spec"].get("labels"))
            assert member is not None
            row = rows.setdefault(member[0], {"name": member[0], "services": 0, "running": 0, "desired": 0})
            row["services"] += 1
            row["running"] += view["running"]
            row["desired"] += view["desired"]
        return [rows[name] for name in sorted(rows)]

    def services_of(self, stack: str) -> list[dict[str, Any]]:
        """Service views of a stack (``service ls`` rows)."""
        return self._require(stack)

    def ps(self, stack: str, include_history: bool = True) -> list[dict[str, Any]]:
        """Tasks of every service of a stack, each with its ``service`` name."""
        tasks = []
        for view in self._require(stack):
            for task in self.services.tasks(view["id"], include_history=include_history):
                tasks.append({**task, "service": view["name"]})
        return tasks

    # ----- writes
    def _checked_ports(self, short: str, spec: ServiceSpec) -> ServiceSpec:
        """``ServiceOps.check_ports`` before any write, its refusal named as the Compose file's key
        (``services.api.ports``), not the CLI flag ``--publish``."""
        try:
            return self.services.check_ports(spec)
        except (ConfigError, ConflictError) as exc:
            field = exc.field or ""
            if field != "--publish" and not field.startswith("publish["):  # publish[i]: a dnsrr service's
                raise
            where = f"services.{short}.ports{field.removeprefix('--publish').removeprefix('publish')}"
            message = exc.message.removeprefix("--publish: ").removeprefix(f"{field}: ")
            raise type(exc)(f"{where}: {message}", field=where) from exc

    def plan(
        self,
        definition: StackDefinition,
        prune: bool = True,
        creating: Collection[tuple[str, str]] = (),
        follow: Follow = (),
    ) -> list[dict[str, Any]]:
        """What a deploy would do, per service: ``{"name", "short", "action", "id"}`` and, for an update,
        ``fields`` (the spec keys it changes). Nothing written. Raises what the deploy would be refused
        with, before its first write: ConflictError (a name taken outside the stack, an ingress port
        published twice or owned), NotFoundError (a secret or config missing: ``creating`` names those
        a dry run would create first), ConfigError (a service becoming a job, a health check off with
        settings), NotAllowedError (a spec field some member does not read yet). ``follow``: objects
        whose references take their current version (parse_follow)."""
        from ..stack.object_plan import CREATED

        state = self.services.manager.snapshot()
        readers = self.services.manager.require_store().command_readers  # a newer spec field's gate
        steps: list[dict[str, Any]] = []
        ingress: dict[tuple[str, int], str] = {}  # within the stack: checked before any write too
        for service in definition.services:
            spec = self._checked_ports(service.short_name, ServiceSpec.from_dict(service.spec))
            for port in spec.ingress_ports:
                if port.published is None:
                    continue  # assigned by the FSM, never twice
                first = ingress.setdefault((port.protocol, port.published), service.short_name)
                if first != service.short_name:
                    raise ConflictError(
                        f"services.{service.short_name}: ingress port {port.published}/{port.protocol} is "
                        f"also published by service {first!r}",
                        field=f"services.{service.short_name}",
                    )
            # compared as it would be stored: a secret/config reference the file leaves unpinned is
            # stored with the object's current version (a new value rolls the service by itself), or, for
            # an existing service, the version it references (kept, as the update that applies it keeps
            # it: a `service rollback` of a new version is no change to redeploy)
            record = state.service_by_name(service.name)
            kept = kept_refs(record.spec, {}, follow) if record is not None else None
            with refusal_named(service.short_name):
                stored = resolve_file_refs(state, spec, creating, kept=kept)
            check_spec(spec, record.spec if record is not None else None, _compose_keys(service.short_name))
            if record is None:
                check_spec_size(stored, f"services.{service.short_name}")  # as the create stores it
                with refusal_named(service.short_name):
                    check_off_checks(stored)  # as the create checks it (model/health_rules.py)
                    command_gate.admit_spec(stored, None, readers)
                steps.append(
                    {"name": service.name, "short": service.short_name, "action": CREATED, "id": None}
                )
                continue
            member = stack_membership(record.spec.labels_dict())
            if member is None or member[0] != definition.name:
                owner = f"stack {member[0]!r}" if member else "no stack"
                raise ConflictError(
                    f"services.{service.short_name}: a service named {service.name!r} already exists and "
                    f"belongs to {owner}",
                    field=f"services.{service.short_name}",
                )
            with refusal_named(service.short_name):
                check_update_allowed(record.name, record.spec, stored)
                # the size as the update stores it: the file's whole spec, references resolved
                merged = validate_spec(updated_spec_dict(record.spec, dict(service.spec), whole=True))
                updated = off_check_kept(record.spec, resolve_file_refs(state, merged, creating, kept=kept))
            check_spec_size(updated, f"services.{service.short_name}")
            with refusal_named(service.short_name):
                check_off_checks(updated, record.spec)  # as the update checks the merged spec
                command_gate.admit_spec(updated, record.spec, readers)
            # a file has no force_update (`service update --force`'s counter) and the update keeps the
            # service's: compared with it, so a redeploy after a --force is not "updated" with no change
            stored = dataclasses.replace(stored, force_update=record.spec.force_update)
            stored = off_check_kept(record.spec, stored)  # as the update keeps it (health_rules.py)
            fields = changed_fields(record.spec, stored)
            step: dict[str, Any] = {
                "name": service.name,
                "short": service.short_name,
                "id": record.service_id,
            }
            steps.append(
                {**step, "action": UNCHANGED}
                if not fields
                else {**step, "action": UPDATED, "fields": list(fields)}
            )
        if prune:
            wanted = definition.by_name()
            for view in self._members(definition.name):
                if view["name"] not in wanted:
                    member = stack_membership(view["spec"].get("labels"))
                    short = member[1] if member else view["name"]
                    steps.append({"name": view["name"], "short": short, "action": REMOVED, "id": view["id"]})
        return steps

    def check_networks(self, definition: StackDefinition) -> list[StackNetwork]:
        """The stack's networks still to create; refuses (before anything is written) an external one
        that does not exist, a name taken by a network that is not this stack's, a stack network whose
        ``internal``/``attachable`` changed, and labels past the limits whether the network exists or not
        (before: only when it was to be created, so a file refused on its first deploy passed a redeploy).
        Labels that differ from an existing stack network's are warned (``relabelled_networks``)."""
        state = self.services.manager.snapshot()
        missing = []
        for net in definition.networks:
            record = state.network_by_name(net.name)
            if net.external:
                if record is None and net.name != "p2porch":
                    raise NotFoundError(
                        f"networks.{net.key}: external network {net.name!r} not found: create it first "
                        "(p2porch network create)",
                        field=f"networks.{net.key}",
                    )
                continue
            check_labels(net.labels, f"networks.{net.key}.labels")  # the same verdict, created or not
            if record is None:
                missing.append(net)
            elif record.labels.get(STACK_LABEL) != definition.name:
                raise ConflictError(
                    f"networks.{net.key}: a network named {net.name!r} already exists outside stack "
                    f"{definition.name!r} (use external: true to attach to it)",
                    field=f"networks.{net.key}",
                )
            else:
                for option in ("internal", "attachable"):  # as Swarm: a network has no update
                    if getattr(record, option) != getattr(net, option):
                        raise ConflictError(
                            f"networks.{net.key}: network {net.name!r} exists with {option}="
                            f"{getattr(record, option)}; a network cannot change: remove the stack first",
                            field=f"networks.{net.key}.{option}",
                        )
        return missing

    async def _prune_networks(self, definition: StackDefinition) -> list[str]:
        """Remove the stack's own networks that the definition no longer names and no service uses."""
        from .stack_plan import unused_stack_networks

        state = self.services.manager.snapshot()
        wanted = {n.name for n in definition.networks}
        specs = [s.spec for s in state.services.values()]
        removed = unused_stack_networks(state, definition.name, wanted, specs)
        for name in removed:
            await self.networks.remove(name)
        return removed

    def dry_run(
        self, definition: StackDefinition, *, prune: bool = True, objects: Sequence[ObjectRef] = ()
    ) -> dict[str, Any]:
        """What :meth:`apply` (after the CLI's objects) would do, computed against the committed state
        without writing: the same checks in the same order raise what the deploy would be refused with.
        ``warnings``: what the deploy accepts but will not run (services no node can run now)."""
        from ..stack.object_plan import CREATED, object_actions
        from .stack_plan import (
            named_volumes,
            placement_warning,
            relabelled_networks,
            specs_after,
            unused_stack_networks,
        )

        state = self.services.manager.snapshot()
        existing = {kind: {r.name for r in state.secrets.values() if r.kind == kind} for kind in KINDS}
        object_steps = object_actions(objects, existing)
        creating = {(obj.kind, obj.name) for obj, action in object_steps if action == CREATED}
        steps = self.plan(definition, prune, creating)
        networks = [{"name": net.name, "action": CREATED} for net in self.check_networks(definition)]
        specs = {s.name: ServiceSpec.from_dict(s.spec) for s in definition.services}
        if prune:
            removed = {step["name"] for step in steps if step["action"] == REMOVED}
            wanted = {n.name for n in definition.networks}
            after = specs_after(state, specs, removed)
            networks += [
                {"name": name, "action": REMOVED}
                for name in unused_stack_networks(state, definition.name, wanted, after)
            ]
        changing = {step["name"] for step in steps if step["action"] in (CREATED, UPDATED)}
        warnings: list[str | None] = [*relabelled_networks(state, definition.name, definition.networks)]
        warnings += [
            placement_warning(state, s.short_name, specs[s.name])
            for s in definition.services
            if s.name in changing
        ]
        return {
            "stack": definition.name,
            "dry_run": True,
            "services": steps,
            "networks": networks,
            "objects": [
                {"kind": obj.kind, "name": obj.name, "key": obj.key, "action": action}
                for obj, action in object_steps
            ],
            "volumes": named_volumes(specs),
            "warnings": [w for w in warnings if w is not None],
        }

    async def apply(
        self, definition: StackDefinition, *, prune: bool = True, follow: Follow = ()
    ) -> dict[str, Any]:
        """Bring the cluster to ``definition`` (already validated); see :meth:`plan`. The stack's networks
        are created first; with ``prune``, its networks no service uses any more are removed last. Each
        changed service is one update, carrying the new versions of ``follow`` too."""
        from ..stack.object_plan import CREATED
        from .stack_plan import relabelled_networks

        steps = self.plan(definition, prune, follow=follow)
        state = self.services.manager.snapshot()
        relabelled = relabelled_networks(state, definition.name, definition.networks)
        created = self.check_networks(definition)
        for net in created:
            await self.networks.create(
                {
                    "name": net.name,
                    "internal": net.internal,
                    "attachable": net.attachable,
                    "labels": {**net.labels, STACK_LABEL: definition.name},
                }
            )
        specs = definition.by_name()
        results = []
        for step in steps:
            action = step["action"]
            if action == CREATED:
                view = await self.services.create(dict(specs[step["name"]].spec))
            elif action == UPDATED:
                # the whole spec, as docker stack deploy's: what the file no longer sets goes
                view = await self.services.update(
                    step["id"], dict(specs[step["name"]].spec), follow, whole=True
                )
            elif action == REMOVED:
                await self.services.remove(step["id"])
                results.append({**step, "version": None})
                continue
            else:
                view = self.services.view(self.services.find(step["id"]))
            results.append({**step, "id": view["id"], "version": view["version"]})
        out: dict[str, Any] = {"stack": definition.name, "services": results}
        if relabelled:  # an optional key: a deploy without such a network answers as before
            out["warnings"] = relabelled
        if created:  # optional too: the CLI says a deploy that wrote nothing did so
            out["created_networks"] = [net.name for net in created]
        if prune:
            out["removed_networks"] = await self._prune_networks(definition)
        return out

    async def rm(self, stack: str) -> dict[str, Any]:
        """Remove every service of a stack (their tasks stop and their containers are removed), then the
        networks the stack created (external networks stay, and those other services still use: said in
        ``kept_networks``); a stack with no service left but networks labelled with it: those networks."""
        check_stack_name(stack)
        members = self._members(stack)
        own = [
            r
            for r in self.services.manager.snapshot().networks.values()
            if r.labels.get(STACK_LABEL) == stack
        ]
        if not members and not own:  # nothing of the stack left (its secrets and configs: the CLI's)
            raise NotFoundError(f"no stack {stack!r}", field="NAME")
        removed = []
        for view in members:  # none left: its networks still go (another stack's services left them)
            await self.services.remove(view["id"])
            removed.append(view["name"])
        from ..stack.compose import StackDefinition
        from .stack_plan import networks_kept_in_use

        networks = await self._prune_networks(StackDefinition(stack, ()))
        kept = networks_kept_in_use(self.services.manager.snapshot(), stack)
        return {"stack": stack, "removed": removed, "removed_networks": networks, "kept_networks": kept}


def stack_endpoints(ops: StackOps) -> list[Endpoint]:
    """The API routes of stacks, for the daemon to add to its endpoint list."""

    async def deploy(body: dict[str, Any], params: dict[str, str]) -> Any:
        definition, prune = parse_deploy_body(params["stack"], body)
        follow = parse_follow(body, ops.services.manager.snapshot().secrets, definition.name)
        return await ops.apply(definition, prune=prune, follow=follow)

    async def dry_run(body: dict[str, Any], params: dict[str, str]) -> Any:
        from .stack_plan import parse_objects

        definition, prune = parse_deploy_body(params["stack"], body)
        return ops.dry_run(definition, prune=prune, objects=parse_objects(body.get("objects")))

    async def listing(body: dict[str, Any], params: dict[str, str]) -> Any:
        return ops.ls()

    async def services(body: dict[str, Any], params: dict[str, str]) -> Any:
        return ops.services_of(params["stack"])

    async def tasks(body: dict[str, Any], params: dict[str, str]) -> Any:
        return ops.ps(params["stack"], include_history=str(body.get("all", "true")).lower() != "false")

    async def remove(body: dict[str, Any], params: dict[str, str]) -> Any:
        return await ops.rm(params["stack"])

    return [
        Endpoint("POST", "/stacks/{stack}", deploy, "Deploy or update a stack from its resolved services"),
        Endpoint(
            "POST",
            "/stacks/{stack}/plan",
            dry_run,
            "What deploying a stack would change, computed without writing (stack deploy --dry-run)",
        ),
        Endpoint("GET", "/stacks", listing, "List stacks with service and task counts"),
        Endpoint("GET", "/stacks/{stack}/services", services, "The services of a stack"),
        Endpoint("GET", "/stacks/{stack}/tasks", tasks, "The tasks of every service of a stack"),
        Endpoint("DELETE", "/stacks/{stack}", remove, "Remove every service of a stack"),
    ]
