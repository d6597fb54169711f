"""Compose files -> the validated p2porch services of one stack (pure; see docs/stack.md).

Owns the whole load: resolving the files into one model (``resolve.py``: interpolation, ``extends``,
merge, profiles), the top-level sections (volumes, networks, secrets, configs), every service
(``service.py``) and the creation order given by ``depends_on``. Every problem of the files is collected
and raised at the end as one ``ComposeError`` (a ``ConfigError``); ignored keys and unset variables are
returned as warnings. No I/O: files named inside Compose files are read through ``read_file``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ConfigError
from ..model import parse_port
from ..model.payload_template import check_driver
from . import keys
from .groups import alias_member, fold_groups, plan_joins
from .implied import implied_dependencies, refused_references
from .links import link_aliases
from .names import check_stack_name
from .networks import StackNetwork, exposed_on_host, host_networking, top_networks
from .ports_volumes import TopVolume, top_volume
from .printed import printed_model
from .problems import ComposeError, Problems
from .resolve import ComposeFile, ReadFile, resolve_model
from .service import Dependency, StackContext, map_service
from .values import mapping, scalar_text, string
from .volumes_from import apply_volumes_from


@dataclass(frozen=True)
class StackService:
    """One Compose service: its short name, its canonical ``ServiceSpec.to_dict()`` and what it waits for."""

    short_name: str
    spec: dict[str, Any]
    depends_on: tuple[Dependency, ...] = ()

    @property
    def name(self) -> str:
        return str(self.spec["name"])


@dataclass(frozen=True)
class StackDefinition:
    """A validated stack: services in creation order (dependencies first), env files read, warnings, and
    the resolved Compose model (what ``stack config`` prints)."""

    name: str
    services: tuple[StackService, ...]
    env_files: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    model: Mapping[str, Any] = field(default_factory=dict)
    objects: tuple[StackObject, ...] = ()  # the secrets and configs its services use
    networks: tuple[StackNetwork, ...] = ()  # the networks its services are on (created before them)
    #: the variables its objects name with ``environment:``, from the interpolation environment (the
    #: CLI's, with its ``.env``), as Compose reads them: an unset one is absent (secret values: no repr)
    object_env: Mapping[str, str] = field(default_factory=dict, repr=False)

    def by_name(self) -> dict[str, StackService]:
        return {s.name: s for s in self.services}


def _section(model: Mapping[str, Any], key: str, problems: Problems) -> Mapping[str, Any]:
    value = model.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        problems.error(key, "expected a mapping of names")
        return {}
    return value


@dataclass(frozen=True)
class StackObject:
    """A top-level secret or config: the cluster name it gets and where its value comes from.

    ``source`` is file | environment | content | external; ``value`` is the file's absolute path, the
    variable's name or the content itself (the CLI reads it; the daemon only gets the bytes);
    ``template_driver`` ("" or ``golang``) is the object's when the deploy creates it."""

    kind: str  # secret | config
    key: str  # its name in the Compose file
    name: str  # its name in the cluster: <stack>-<key>, or ``name:``, or the external object's name
    source: str
    value: str = ""
    template_driver: str = ""


_OBJECT_IGNORED = {
    "driver": "secret and config driver plugins are not supported: the value comes from file, "
    "environment, content or an existing object",
}


def _file_objects(
    model: Mapping[str, Any],
    section: str,
    allowed: Sequence[str],
    problems: Problems,
    stack: str,
    out: list[StackObject],
) -> set[str]:
    """Top-level secrets/configs: validated (exactly one source each), appended to ``out``."""
    declared = _section(model, section, problems)
    for name, conf in declared.items():
        path = f"{section}.{name}"
        with problems.check():
            conf = mapping(conf if conf is not None else {}, path, allowed)
            sources = [
                k for k in ("file", "environment", "content", "external") if conf.get(k) not in (None, False)
            ]
            if len(sources) != 1:
                raise ConfigError(
                    f"{path}: needs exactly one of file, environment, content or external", field=path
                )
            for key in ("file", "environment", "name", "driver", "template_driver"):
                if key in conf:
                    string(conf[key], f"{path}.{key}")
            for key, reason in _OBJECT_IGNORED.items():
                if conf.get(key) is not None:
                    problems.warn(f"ignoring {path}.{key}: {reason}")
            driver = check_driver(conf.get("template_driver"), f"{path}.template_driver")
            if "content" in conf:
                scalar_text(conf["content"], f"{path}.content")
            source = sources[0]
            value = "" if source == "external" else scalar_text(conf[source], f"{path}.{source}")
            external = conf.get("external")
            cluster_name = conf.get("name") or (
                external.get("name") if isinstance(external, Mapping) and external.get("name") else None
            )
            cluster_name = cluster_name or (name if source == "external" else f"{stack}-{name}")
            out.append(StackObject(section[:-1], name, str(cluster_name), source, value, driver))
    return set(declared)


def _run_once(services: list[StackService], confs: Mapping[str, Any], ctx: StackContext) -> None:
    """Services others wait for with ``service_completed_successfully`` are one-shot jobs (migrations,
    init): without a ``restart`` or ``deploy.restart_policy`` of their own they restart only on failure,
    so that exiting 0 completes them (Swarm's default, ``any``, would run them again forever)."""
    targets = {
        d.service for s in services for d in s.depends_on if d.condition == "service_completed_successfully"
    }
    for service in services:
        if service.short_name not in targets:
            continue
        conf = confs.get(service.short_name)
        deploy = conf.get("deploy") if isinstance(conf, Mapping) else None
        if (
            not isinstance(conf, Mapping)
            or "restart" in conf
            or (isinstance(deploy, Mapping) and deploy.get("restart_policy") is not None)
        ):
            continue
        service.spec["restart"] = {**service.spec["restart"], "condition": "on-failure"}
        ctx.note(
            "depends_on condition service_completed_successfully",
            service.short_name,
            "runs once to completion before its dependents start (restart: on-failure)",
        )


def _implied_dependencies(services: list[StackService], confs: Mapping[str, Any]) -> list[StackService]:
    """Each service also waits (``service_started``) for what its ``links``, ``service:X`` namespaces and
    ``volumes_from`` name and its ``depends_on`` does not (``implied.py``: the list ``stack config``
    prints, compose-go's), so the linked or mounted-from service is created and running first (*Start
    order*). A name the stack does not deploy (an inactive profile, no such service) adds nothing:
    ``link_aliases`` and ``volumes_from.py`` warn or refuse it naming the entry."""
    deployed = {s.short_name for s in services}
    out = []
    for service in services:
        conf = confs.get(service.short_name)
        implied = (
            implied_dependencies(service.short_name, conf, deployed) if isinstance(conf, Mapping) else {}
        )
        waits = {d.service for d in service.depends_on}
        extra = tuple(Dependency(n) for n in implied if n not in waits)
        out.append(
            StackService(service.short_name, service.spec, service.depends_on + extra) if extra else service
        )
    return out


def _volumes_from(services: list[StackService], confs: Mapping[str, Any], ctx: StackContext) -> None:
    """Each service's ``volumes_from`` mounts (``volumes_from.py``)."""
    apply_volumes_from(
        {s.short_name: s.spec for s in services},
        confs,
        ctx.skipped,
        ctx.note,
        ctx.problems.add,
        inactive=ctx.inactive,
    )


def _fold_groups(
    services: list[StackService], confs: Mapping[str, Any], ctx: StackContext
) -> list[StackService]:
    """``network_mode: service:X`` services go into X's task group (``groups.py``) and leave the stack, and
    so do those that share only X's ``pid``/``ipc`` namespaces when they can (``groups.plan_joins``)."""
    specs = {s.short_name: s.spec for s in services}
    waits = {
        s.short_name: [d.service for d in s.depends_on if d.condition == "service_completed_successfully"]
        for s in services
    }
    depends = {s.short_name: {d.service: d.condition for d in s.depends_on} for s in services}
    joins = plan_joins(specs, confs, ctx.shares, depends)
    for key, short, reason in joins.ignored:
        ctx.ignored(key, short, reason)
    if not ctx.shares and not joins.shares:
        return services
    for short, target in joins.shares.items():  # its name stays: an alias of X's tasks on its networks
        specs[target], specs[short] = alias_member(specs[target], specs[short], short)
    for short, target in ctx.shares.items():  # naming no networks, it is on X's: nothing of its own dropped
        conf = confs.get(short)
        if short in specs and target in specs and isinstance(conf, Mapping) and conf.get("networks") is None:
            specs[short] = {**specs[short], "networks": specs[target]["networks"]}
    shares = {**ctx.shares, **joins.shares}
    folded = fold_groups(specs, shares, waits, ctx.problems, joins.joined)
    for short in sorted(folded):
        target = shares[short]
        kind = "an init container" if short in waits.get(target, []) else "a sidecar"
        if short in joins.shares:
            keys = " and ".join(f"{k}: service:{target}" for k in joins.joined[short])
            text = (
                f"runs in {target}'s task as a sidecar, in its namespaces (a task group; shares its network)"
            )
            ctx.note(keys, short, text)
        else:
            ctx.note("network_mode", short, f"runs in {target}'s task as {kind} (a task group)")
    return [
        StackService(s.short_name, specs[s.short_name], _redirected(s, folded, joins.shares))
        for s in services
        if s.short_name not in folded
    ]


def _redirected(service: StackService, folded: set[str], joined: Mapping[str, str]) -> tuple[Dependency, ...]:
    """``service``'s ``depends_on`` without the services folded into a task group; waiting for one that
    shares only X's ``pid``/``ipc`` (``service_started``: ``plan_joins`` refuses any other condition) is
    waiting for X, whose tasks run it."""
    out = [d for d in service.depends_on if d.service not in folded]
    for dep in service.depends_on:  # X's own entry (its condition) wins over the one a joiner gives
        name = joined.get(dep.service, "")
        if name and name != service.short_name and all(d.service != name for d in out):
            out.append(replace(dep, service=name))
    return tuple(out)


def _exposed(confs: Mapping[str, Any], networks: Mapping[str, Any]) -> dict[str, set[tuple[str, int]]]:
    """Each host-network service's ports its ``expose`` declares, as (protocol, port) (already checked)."""
    out: dict[str, set[tuple[str, int]]] = {}
    for short, conf in confs.items():
        if isinstance(conf, Mapping) and conf.get("expose") and host_networking(conf, networks):
            with contextlib.suppress(ConfigError):
                ports = exposed_on_host(conf["expose"], f"services.{short}.expose")
                out[short] = {(p["protocol"], p["published"]) for p in ports}
    return out


def _check_ingress_ports(
    services: list[StackService], problems: Problems, exposed: Mapping[str, set[tuple[str, int]]]
) -> None:
    """An ingress port is served by one service cluster-wide: a second service of the stack publishing it,
    in either mode, is an error here, before anything is written (the daemon would refuse it after
    creating the first, leaving the stack half deployed; Swarm refuses it as "already in use", Compose
    cannot bind it). Host-mode ports of different services may share a number (one task per node). A
    host-network service's port its ``expose`` declares is named so (``exposed``), not as published."""
    ingress: dict[tuple[str, int], str] = {}
    on_hosts: dict[tuple[str, int], str] = {}
    for service in services:
        for raw in service.spec.get("publish") or ():
            port = parse_port(raw)
            if port.published is None:
                continue
            key = (port.protocol, port.published)
            mine, theirs = (ingress, on_hosts) if port.ingress else (on_hosts, ingress)
            first = mine.setdefault(key, service.short_name)
            other = theirs.get(key, service.short_name)
            if port.ingress and first != service.short_name:
                problems.error(
                    f"services.{service.short_name}.ports",
                    f"ingress port {port.published}/{port.protocol} is also published by service {first!r}: "
                    "a published port is served by one service (change one host port, or use mode: host)",
                )
            elif other != service.short_name:
                mine_exposed = key in exposed.get(service.short_name, ())
                owner = (
                    f"exposed on the host network by service {other!r}"
                    if key in exposed.get(other, ())
                    else f"published by service {other!r} in {'host' if port.ingress else 'ingress'} mode"
                )
                problems.error(
                    f"services.{service.short_name}.{'expose' if mine_exposed else 'ports'}",
                    f"port {port.published}/{port.protocol} is {owner}: an ingress port is served on every "
                    "node, so no other service can publish it in either mode (change one host port)",
                )


def _order(services: list[StackService], problems: Problems) -> list[StackService]:
    """Dependencies first, file order otherwise; a cycle is an error naming it."""
    by_short = {s.short_name: s for s in services}
    done: list[StackService] = []
    state: dict[str, str] = {}

    def visit(short: str, chain: list[str]) -> None:
        if state.get(short) == "done":
            return
        if state.get(short) == "visiting":
            cycle = chain[chain.index(short) :] + [short]
            problems.error(f"services.{short}.depends_on", "circular dependency: " + " -> ".join(cycle))
            return
        state[short] = "visiting"
        for dep in by_short[short].depends_on:
            if dep.service in by_short:
                visit(dep.service, [*chain, short])
        state[short] = "done"
        done.append(by_short[short])

    for service in services:
        visit(service.short_name, [])
    return done


def load_stack(
    stack: str,
    compose: str | Sequence[ComposeFile],
    read_file: ReadFile | None = None,
    *,
    base_dir: str = "",
    environ: Mapping[str, str] | None = None,
    profiles: Sequence[str] = (),
) -> StackDefinition:
    """Validate Compose file(s) for stack ``stack``; raises ComposeError listing every problem.

    ``compose`` is one file's text (its directory ``base_dir``) or several ``ComposeFile`` merged in
    order; ``environ`` is the interpolation environment (the CLI's, with its ``.env``); ``read_file``
    reads ``env_file`` and ``extends: file:`` paths; ``profiles`` are the active profiles. The stack name
    is the project name, so ``${COMPOSE_PROJECT_NAME}`` is ``stack`` whatever the environment holds, as
    compose-go sets it for ``docker compose -p NAME``.
    """
    check_stack_name(stack)
    files = [ComposeFile("compose", compose, base_dir)] if isinstance(compose, str) else list(compose)
    environ = {**(environ or {}), "COMPOSE_PROJECT_NAME": stack}
    problems = Problems()
    model, skipped = resolve_model(files, environ, read_file, problems, profiles)
    if "services" not in model and any(
        isinstance(conf, Mapping) and ("image" in conf or "build" in conf) for conf in model.values()
    ):  # the version 1 format (services at the top level), which Compose v2 refuses as well
        problems.error(
            "services", "missing: a file of the version 1 format? put the services under services:"
        )
    with problems.check():
        mapping(model, "", (*keys.TOP_MAPPED, *keys.TOP_IGNORED))
    for key, reason in keys.TOP_IGNORED.items():
        if key in model:
            problems.warn(f"ignoring {key}: {reason}")
    version = model.get("version")
    if version is not None and not scalar_text(version, "version").startswith("3"):
        problems.warn(f"version {version!r} is obsolete: the file is read with the Compose specification")
    volumes: dict[str, TopVolume] = {}
    for name, conf in _section(model, "volumes", problems).items():
        with problems.check():
            volumes[name] = top_volume(name, conf, stack)
        # refused (its error recorded, so the load fails): still declared, so a service mounting it is not
        # also told it "is not declared in the top-level volumes"
        volumes.setdefault(name, TopVolume(f"{stack}_{name}"))
    declared_networks = top_networks(model, stack, problems)
    networks = declared_networks.networks
    objects: list[StackObject] = []
    secrets = _file_objects(model, "secrets", keys.TOP_SECRET_KEYS, problems, stack, objects)
    configs = _file_objects(model, "configs", keys.TOP_CONFIG_KEYS, problems, stack, objects)
    services_conf = _section(model, "services", problems)
    providers = _provider_services(services_conf, problems)
    services_conf = {short: conf for short, conf in services_conf.items() if short not in providers}
    if not services_conf and not problems.errors:
        problems.error(
            "services",
            "at least one service is required"
            + (" (provider services are not deployed)" if providers else ""),
        )
    ctx = StackContext(
        stack,
        volumes,
        networks,
        secrets,
        configs,
        set(services_conf),
        set(skipped) | providers,
        environ,
        read_file,
        problems,
    )
    ctx.refused_networks = declared_networks.refused
    ctx.inactive = set(skipped)
    ctx.object_names.update({f"{o.kind}s:{o.key}": o.name for o in objects})
    services: list[StackService] = []
    names: dict[str, str] = {}
    for short, conf in services_conf.items():
        spec, deps = map_service(ctx, short, conf)
        if spec is None:
            continue
        if spec["name"] in names:
            problems.error(
                f"services.{short}",
                f"both {names[spec['name']]!r} and {short!r} become the service {spec['name']!r}: rename one",
            )
            continue
        names[spec["name"]] = short
        services.append(StackService(short, spec, tuple(deps)))
    declared_networks.report_used(ctx.used_networks, problems)
    _volumes_from(services, services_conf, ctx)
    services = _implied_dependencies(services, services_conf)
    defined = set(services_conf) | ctx.skipped
    for short, conf in services_conf.items():
        for key, why in refused_references(conf, ctx.inactive, defined) if isinstance(conf, Mapping) else ():
            problems.error(f"services.{short}.{key}", why)
    services = _fold_groups(services, services_conf, ctx)
    link_aliases(services, services_conf, problems)
    _check_ingress_ports(services, problems, _exposed(services_conf, networks))
    _run_once(services, services_conf, ctx)
    ctx.flush_notices()
    ordered = _order(services, problems)
    problems.raise_if_any()
    used = {(section[:-1], key) for section, keys_used in ctx.uses_secrets.items() for key in keys_used}
    used_objects = tuple(o for o in objects if (o.kind, o.key) in used)
    return StackDefinition(
        stack,
        tuple(ordered),
        tuple(ctx.env_files_read),
        tuple(problems.warnings),
        printed_model(model, environ, ctx.environments, ctx.labels),
        used_objects,
        tuple(ctx.network(key) for key in ctx.used_networks),
        {o.value: environ[o.value] for o in used_objects if o.source == "environment" and o.value in environ},
    )


def _provider_services(services_conf: Mapping[str, Any], problems: Problems) -> set[str]:
    """The services with ``provider:`` (Compose 2.36+): their lifecycle belongs to a docker compose
    plugin (a cloud database, a model runner), there is no container to run, so they are not deployed,
    with a warning naming each; services depending on them are not made to wait for them."""
    providers = {
        short for short, conf in services_conf.items() if isinstance(conf, Mapping) and "provider" in conf
    }
    for short in sorted(providers):
        kind = services_conf[short]["provider"]
        kind = kind.get("type") if isinstance(kind, Mapping) else None
        problems.warn(
            f"services.{short}.provider"
            + (f" ({kind})" if isinstance(kind, str) and kind else "")
            + f": {short} is not deployed: a provider service is run by a docker compose plugin, not as"
            " a container (services that depend on it start without it and get none of its variables)"
        )
    return providers


__all__ = [
    "ComposeError",
    "ComposeFile",
    "ReadFile",
    "StackDefinition",
    "StackNetwork",
    "StackObject",
    "StackService",
    "load_stack",
]
