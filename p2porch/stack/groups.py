"""Compose services that share another's network namespace -> that service's task group (pure).

``network_mode: service:X`` puts a Compose service into X's task: each of X's tasks runs it beside X's own
container, on X's address (docs/task-groups.md). It becomes an *init container* when X waits for it with
``depends_on: {S: {condition: service_completed_successfully}}`` (X starts after it completed, as Compose
does), a *sidecar* otherwise. Its image, command, entrypoint, environment, user, working directory, ports,
health check, resources, ``privileged``, ``cap_add`` and ``cap_drop`` go into the group; its volumes join
X's (a group shares its mounts), except one at a path the group mounts otherwise, which is that container's
own (each Compose service mounts its own volumes); the rest of its settings (replicas, placement, restart,
networks...) are X's. Other network modes: ``host`` is ignored as ``docker stack deploy`` does, ``none`` and
``container:...`` are refused.
A sidecar of a service on the host network binds its ports on the node, each as its container port (as
the service's own, ``networks.host_ports``).
``pid: service:X`` / ``ipc: service:X`` need the two containers on one node: a member of X's group joins
X's main container's namespace (``pid``/``ipc`` = main); a service that shares only them is co-scheduled
into X's group as a sidecar, its Compose name an alias of X's tasks on its networks (``plan_joins``),
only when that runs it as it ran on its own; otherwise it deploys on its own and the key is ignored with a
warning saying why (``_join_refusal``), as ``docker stack deploy`` ignores them.
Never does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from ..errors import ConfigError
from ..model import ServiceSpec
from ..model.group import MAIN_NAME
from ..model.spec import check_endpoint_ports
from .names import STACK_LABEL
from .networks import HOST_NETWORK, host_ports
from .problems import Problems

SERVICE_PREFIX = "service:"
NAMESPACE_KEYS = ("pid", "ipc")  # the namespaces a group member may share with the main container
#: canonical ServiceSpec keys a co-scheduled service brings into the group
_MEMBER_KEYS = (
    "command",
    "entrypoint",
    "env",
    "user",
    "workdir",
    "publish",
    "health",
    "reserve_cpu_nanos",
    "reserve_memory_bytes",
    "limit_cpu_nanos",
    "limit_memory_bytes",
)
_INIT_ONLY_DROPS = ("publish", "health")
#: merged into the target's spec with the mounts (the group's containers share them)
_SHARED_FILE_KEYS = ("secrets", "configs")
_STACK_LABEL_PREFIX = STACK_LABEL + "."  # the labels every stack service gets (its own names)
_CARRIED = {"name", "image", "mounts", *_MEMBER_KEYS, *_SHARED_FILE_KEYS}
#: container options a member takes as its own (its GroupContainer's privileged, cap_add, cap_drop)
_OWN_OPTIONS = ("privileged", "cap_add", "cap_drop")
_CARRIED_OPTIONS = {f"container.{key}" for key in _OWN_OPTIONS}
_JOINER_OPTIONS = {*_OWN_OPTIONS, "labels"}  # a pid/ipc joiner's options that leave it in X's task
_UNSHAREABLE_IPC = ("private", "none")  # a main container's IPC modes no other container can join
COMPLETED, STARTED = "service_completed_successfully", "service_started"


def _dropped(spec: Mapping[str, Any], target_spec: Mapping[str, Any]) -> list[str]:
    """A folded service's own settings its target's task does not take. A member's container options are
    never applied (its container gets none of them), even those equal to its target's (``pid: host`` on
    both: the member still runs in its own PID namespace)."""
    defaults = ServiceSpec.from_dict({"name": "x", "image": "x"}).to_dict()
    dropped = []
    for key, value in spec.items():
        theirs = {} if key == "container" else target_spec.get(key)
        if key in _CARRIED or value in (defaults.get(key), theirs):
            continue
        if isinstance(value, dict):  # e.g. container options: name the keys that differ
            base, theirs = defaults.get(key) or {}, theirs or {}
            dropped += [
                f"{key}.{k}"
                for k, v in value.items()
                if v not in (base.get(k), theirs.get(k))
                and not k.startswith(_STACK_LABEL_PREFIX)
                and f"{key}.{k}" not in _CARRIED_OPTIONS
            ]
        else:
            dropped.append(key)
    return sorted(dropped)


def _warn_dropped(
    short: str, target: str, spec: Mapping[str, Any], target_spec: Mapping[str, Any], problems: Problems
) -> None:
    """Say which of a folded service's own settings its target's task does not take (never silent)."""
    dropped = _dropped(spec, target_spec)
    if dropped:
        problems.warn(
            f"services.{short}: runs in {target}'s task; its own {', '.join(dropped)} "
            f"{'is' if len(dropped) == 1 else 'are'} not applied (the task's are {target}'s)"
        )


def network_mode(value: Any, path: str) -> str:
    """The target service of ``service:X``, "" for a mode that is ignored (host, bridge, none); an error
    otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{path}: expected host, none or service:NAME", field=path)
    mode = value.strip()
    if mode.startswith(SERVICE_PREFIX) and mode[len(SERVICE_PREFIX) :].strip():
        return mode[len(SERVICE_PREFIX) :].strip()
    if mode in ("host", "bridge", "default", "none"):
        return ""
    if mode.startswith("container:"):
        raise ConfigError(
            f"{path}: a cluster cannot name one engine's container; use service:NAME to run this service "
            "in NAME's task (a task group)",
            field=path,
        )
    raise ConfigError(
        f"{path}: {mode!r} is not supported: every task is on the cluster network (service:NAME puts this "
        "service in NAME's task)",
        field=path,
    )


def ignored_network_mode(value: str) -> tuple[str, str]:
    """The warning's key and reason for a ``network_mode`` that is accepted and ignored."""
    if value.strip() == "none":  # a backup or batch job's isolation, which a task cannot have
        return "network_mode: none", (
            "the tasks are NOT isolated: every task is on the cluster network (Swarm ignores it too)"
        )
    return "network_mode", "every task is on the cluster network (Swarm ignores it too)"


def _warner(problems: Problems, short: str) -> Callable[[str, str], None]:
    """A note about service ``short`` as one warning line (``KEY (service S): TEXT``)."""
    return lambda key, text: problems.warn(f"{key} (service {short}): {text}")


def member_name(short: str) -> str:
    """A Compose service's name in a task group: lowercase, ``_`` as ``-`` (a DNS label)."""
    return short.lower().replace("_", "-").replace(".", "-")


def namespace_targets(conf: Mapping[str, Any]) -> dict[str, str]:
    """``{"pid": X, "ipc": Y}`` for a Compose service's ``pid: service:X`` / ``ipc: service:Y``."""
    out = {}
    for key in NAMESPACE_KEYS:
        mode = conf.get(key)
        if isinstance(mode, str) and mode.strip().startswith(SERVICE_PREFIX):
            out[key] = mode.strip()[len(SERVICE_PREFIX) :].strip()
    return out


class Joins(NamedTuple):
    """What ``plan_joins`` decided: services to co-schedule into a group (short -> target), the
    namespaces each member joins, and the ``(key, short, reason)`` of those ignored."""

    shares: dict[str, str]
    joined: dict[str, tuple[str, ...]]
    ignored: list[tuple[str, str, str]]


class _Stack(NamedTuple):
    """What a join is judged against: the specs by short name, the network_mode folds, the services others
    share namespaces with, every service's ``depends_on`` (dependency -> condition), the services others
    link to under another name, and the joins planned so far."""

    specs: Mapping[str, Mapping[str, Any]]
    shares: Mapping[str, str]
    hosts: set[str]
    depends: Mapping[str, Mapping[str, str]]
    linked: set[str]
    planned: Mapping[str, str]


def plan_joins(
    specs: Mapping[str, Mapping[str, Any]],
    confs: Mapping[str, Any],
    shares: Mapping[str, str],
    depends: Mapping[str, Mapping[str, str]],
) -> Joins:
    """Decide each ``pid``/``ipc: service:X`` (``specs`` by short name, ``shares`` the network_mode folds,
    ``depends`` every service's ``depends_on`` as dependency -> condition). A member of X's group
    (``network_mode: service:X``) joins X's namespaces. A service sharing only them goes into X's group as
    a sidecar only when that runs it as it ran on its own (``_join_refusal``); otherwise the key is
    ignored, saying why, and it deploys on its own."""
    out = Joins({}, {}, [])
    wanted = {s: namespace_targets(c) for s, c in confs.items() if s in specs and isinstance(c, Mapping)}
    wanted = {s: t for s, t in wanted.items() if t}
    hosts = set(shares.values()) | {x for t in wanted.values() for x in t.values()}
    stack = _Stack(specs, shares, hosts, depends, _linked(confs), out.shares)
    for short, targets in sorted(wanted.items()):
        target = shares.get(short) or next(iter(targets.values()))
        why = _join_refusal(short, target, targets, stack)
        refused = {}  # key -> why it is ignored; a network_mode member stays in the group all the same
        for key, named in targets.items():
            if named != target:
                refused[key] = why or f"it runs in {target}'s task (network_mode), not beside {named}"
            elif why or (key == "ipc" and _ipc_refusal(target, specs)):
                refused[key] = why or _ipc_refusal(target, specs)
        for key, reason in refused.items():
            out.ignored.append((f"{key}: service:{targets[key]}", short, reason))
        keys = tuple(k for k in targets if k not in refused)
        if keys:
            out.joined[short] = keys
            if short not in shares:
                out.shares[short] = target
    return out


def _linked(confs: Mapping[str, Any]) -> set[str]:
    """The services some service's ``links`` name under an alias of their own (``web: links: [agent:ag``)."""
    out = set()
    for conf in confs.values():
        links = conf.get("links") if isinstance(conf, Mapping) else None
        for entry in links if isinstance(links, list) else ():
            if isinstance(entry, str):
                name, _, alias = entry.partition(":")
                if alias and alias.lower() != name.lower():
                    out.add(name)
    return out


def _join_refusal(short: str, target: str, targets: Mapping[str, str], stack: _Stack) -> str:
    """Why ``short`` cannot join ``target``'s namespaces ("" when it can)."""
    specs, shares, depends = stack.specs, stack.shares, stack.depends
    if depends.get(target, {}).get(short) == COMPLETED:
        return f"{target} waits for it to complete: it runs before {target}'s container exists"
    if short in shares:
        return ""  # already in the group: it joins the namespaces its group's main container owns
    if target not in specs:
        return f"{target} is not deployed (a task cannot join another container's namespace)"
    if target in shares or target in stack.planned:
        return (
            f"{target} itself runs in {shares.get(target) or stack.planned[target]}'s task: point at that one"
        )
    if len(set(targets.values())) > 1:
        return "the pid and ipc namespaces of two services cannot both be joined (one task group)"
    if short in stack.hosts or specs[short].get("sidecars") or specs[short].get("init_containers"):
        return "it has a task group of its own (others share its namespaces)"
    return (
        _network_refusal(specs[short], specs[target], target)
        or _lifecycle_refusal(short, target, specs[short], stack)
        or _container_refusal(short, target, targets, specs[short], specs[target], stack)
        or _loss_refusal(specs[short], specs[target], target)
    )


def _ipc_refusal(target: str, specs: Mapping[str, Mapping[str, Any]]) -> str:
    """Why no container can join ``target``'s main container's IPC namespace ("" when one can)."""
    mode = ((specs.get(target) or {}).get("container") or {}).get("ipc_mode")
    return f"{target}'s IPC namespace is not shareable (ipc: {mode})" if mode in _UNSHAREABLE_IPC else ""


def _loss_refusal(spec: Mapping[str, Any], target_spec: Mapping[str, Any], target: str) -> str:
    """A join that would lose what the service had on its own: a network ``target`` is not on (and its
    name there), or a setting of its own ``target``'s task does not take (replicas, mode, ...)."""
    theirs = {n.get("target") for n in target_spec.get("networks", [])}
    lost = sorted({n.get("target") for n in spec.get("networks", [])} - theirs)
    if lost:
        return f"it is on {', '.join(lost)}, which {target} is not on: as a sidecar it would not be"
    dropped = [k for k in _dropped(spec, target_spec) if k != "networks"]
    if dropped:
        return f"its own {', '.join(dropped)} would not apply in {target}'s task"
    return ""


def _network_refusal(spec: Mapping[str, Any], target_spec: Mapping[str, Any], target: str) -> str:
    """A join that would move a service on or off the host network, or clash over a container port."""
    if _on_host(target_spec) != _on_host(spec):
        if _on_host(target_spec):
            return f"{target} is on the host network: its task would put this service on its node's network"
        return f"it is on the host network: {target}'s task would take it off its node's network"
    ports = {(p.get("protocol", "tcp"), p.get("target")) for p in target_spec.get("publish", [])}
    for sidecar in target_spec.get("sidecars") or []:
        ports |= {(p.get("protocol", "tcp"), p.get("target")) for p in sidecar.get("publish", [])}
    clash = [p for p in spec.get("publish", []) if (p.get("protocol", "tcp"), p.get("target")) in ports]
    if clash:
        port = clash[0].get("target")
        return f"its container port {port} is also {target}'s (a task group shares one network)"
    return ""


def _lifecycle_refusal(short: str, target: str, spec: Mapping[str, Any], stack: _Stack) -> str:
    """A join that would change when the service runs or what its exit, health or dependents do: a
    sidecar runs as long as the task and any exit of it replaces the task, its failing health check takes
    the task out of service, and it has no start order of its own."""
    if spec.get("mode", "replicated") not in ("replicated", "global") or spec.get("replicas", 1) == 0:
        return f"it is a job or has 0 replicas: as a sidecar it would run in every {target} task"
    if (spec.get("restart") or {}).get("condition", "any") != "any":
        return f"it is not restarted on every exit: as a sidecar its exit would replace {target}'s task"
    health = spec.get("health")
    if health and list(health.get("cmd") or ()) != ["NONE"]:
        return f"it has a health check: as a sidecar its failing would take {target}'s task out of service"
    if short in stack.depends.get(target, {}):
        return f"{target} depends on it: it would start with {target}'s task, not before it"
    for other, deps in sorted(stack.depends.items()):
        if deps.get(short, STARTED) != STARTED and other != short:
            return f"{other} waits for it ({deps[short]}), which a sidecar cannot say"
    condition = stack.depends.get(short, {}).get(target, STARTED)
    if condition != STARTED:
        return f"it waits for {target} ({condition}): a sidecar starts with {target}'s main container"
    own = sorted(d for d in stack.depends.get(short, {}) if d != target)
    if own:
        return f"it depends on {', '.join(own)}: a sidecar starts with {target}'s task"
    if short in stack.linked:
        return "another service links to it under another name (a sidecar answers to its own name only)"
    return ""


def _container_refusal(
    short: str,
    target: str,
    targets: Mapping[str, str],
    spec: Mapping[str, Any],
    target_spec: Mapping[str, Any],
    stack: _Stack,
) -> str:
    """A join whose container would lose its own options, name or files, or could not join X's IPC."""
    options = sorted(
        k for k, v in (spec.get("container") or {}).items() if v not in (None, "", 0, [], {}, False)
    )
    options = [k for k in options if k not in _JOINER_OPTIONS]
    if options:
        return (
            f"a sidecar takes none of its container options ({', '.join(options)}) but privileged, "
            "cap_add and cap_drop"
        )
    if "ipc" in targets and _ipc_refusal(target, stack.specs):
        return _ipc_refusal(target, stack.specs)
    name = member_name(short)
    taken = {MAIN_NAME} | {
        member_name(s) for s, t in (*stack.shares.items(), *stack.planned.items()) if t == target
    }
    taken |= {c["name"] for key in ("sidecars", "init_containers") for c in target_spec.get(key) or []}
    if name in taken:
        return f"{name!r} is already the name of a container of {target}'s task"
    for key in _SHARED_FILE_KEYS:
        theirs = {ref["target"]: ref for ref in target_spec.get(key, [])}
        for ref in spec.get(key, []):
            if theirs.get(ref["target"], ref) != ref:
                return f"its {key} file {ref['target']} is another in {target}'s task (one file system)"
    return ""


def alias_member(
    target: Mapping[str, Any], member: Mapping[str, Any], short: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``target``, ``member``) specs for service ``short`` co-scheduled into the group of ``target``'s
    service: ``short`` becomes an alias of its tasks on each network both were on (its processes listen on
    the task's address), and so is each of its own aliases there; the member takes the target's networks
    (a member on a network the target is not on is never co-scheduled: ``_loss_refusal``)."""
    theirs = [dict(n) for n in target.get("networks", [])]
    name = short.lower()
    aliases = {n["target"]: [name, *n.get("aliases", [])] for n in member.get("networks", [])}
    for attachment in theirs:
        for alias in aliases.get(attachment["target"], []):
            if alias not in attachment.get("aliases", []):
                attachment["aliases"] = [*attachment.get("aliases", []), alias]
    return {**target, "networks": theirs}, {**member, "networks": theirs}


def _on_host(spec: Mapping[str, Any]) -> bool:
    return any(n.get("target") == HOST_NETWORK for n in spec.get("networks", []))


def group_member(
    short: str,
    spec: Mapping[str, Any],
    *,
    init: bool,
    own_mounts: list[dict[str, Any]] | None = None,
    joined: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The ``sidecars``/``init_containers`` entry for a mapped (canonical) service spec; ``own_mounts`` are
    the mounts it alone has at their targets (the group mounts something else there); ``joined`` the
    namespaces (``pid``, ``ipc``) it shares with the main container."""
    member: dict[str, Any] = {"name": member_name(short), "image": spec["image"]}
    for key in joined:
        member[key] = MAIN_NAME
    if own_mounts:
        member["mounts"] = own_mounts
    for key in _MEMBER_KEYS:
        value = spec.get(key)
        if value in (None, "", 0, [], {}) or (init and key in _INIT_ONLY_DROPS):
            continue
        member[key] = value
    for key in _OWN_OPTIONS:  # its own, as Compose runs each service's container
        value = (spec.get("container") or {}).get(key)
        if value:
            member[key] = value
    return member


def fold_groups(
    specs: dict[str, dict[str, Any]],
    targets: Mapping[str, str],
    waits: Mapping[str, list[str]],
    problems: Problems,
    joined: Mapping[str, tuple[str, ...]] | None = None,
) -> set[str]:
    """Move every service of ``targets`` (short name -> the service whose namespace it shares) into its
    target's spec (``specs`` by short name, changed in place); returns the short names folded away.

    ``waits`` lists, per service, what it waits for with ``service_completed_successfully`` (in order);
    ``joined`` the namespaces a member shares with the main container (``plan_joins``)."""
    joined = joined or {}
    folded: set[str] = set()
    for short, target in targets.items():
        path = f"services.{short}.network_mode"
        if target not in specs:
            problems.error(path, f"service {target!r} is not defined (or has errors)")
            continue
        if target in targets:
            problems.error(path, f"{target!r} itself shares {targets[target]!r}'s network: point at that one")
            continue
        if short not in specs:
            continue
        folded.add(short)
    for target in {targets[s] for s in folded}:
        spec = dict(specs[target])
        members = [s for s in targets if s in folded and targets[s] == target]
        inits = [s for s in waits.get(target, []) if s in members]
        sidecars = [s for s in members if s not in inits]
        mounts = {m["target"]: m for m in spec.get("mounts", [])}
        own: dict[str, list[dict[str, Any]]] = {}  # a member's mounts at a target the group mounts otherwise
        for s in members:
            for mount in specs[s].get("mounts", []):
                if mount["target"] in mounts and mounts[mount["target"]] != mount:
                    own.setdefault(s, []).append(mount)
                mounts.setdefault(mount["target"], mount)
        spec["mounts"] = list(mounts.values())
        spec["init_containers"] = [
            *spec.get("init_containers", []),
            *(group_member(s, specs[s], init=True, own_mounts=own.get(s, [])) for s in inits),
        ]
        joining = [
            group_member(s, specs[s], init=False, own_mounts=own.get(s, []), joined=joined.get(s, ()))
            for s in sidecars
        ]
        if any(n.get("target") == HOST_NETWORK for n in spec.get("networks", [])):
            for member, s in zip(joining, sidecars, strict=True):  # in the node's namespace: ports on it
                if member.get("publish"):
                    member["publish"] = host_ports(
                        [dict(p) for p in member["publish"]],
                        _warner(problems, s),
                    )
        spec["sidecars"] = [*spec.get("sidecars", []), *joining]
        for key in _SHARED_FILE_KEYS:  # a member's secrets/configs are files in the shared task
            files = {ref["target"]: ref for ref in spec.get(key, [])}
            for s in members:
                for ref in specs[s].get(key, []):
                    if ref["target"] in files and files[ref["target"]] != ref:
                        problems.error(
                            f"services.{s}.{key}", f"{ref['target']} is different in {target!r}'s task"
                        )
                    files.setdefault(ref["target"], ref)
            spec[key] = list(files.values())
        for s in members:
            _warn_dropped(s, target, specs[s], specs[target], problems)
        try:
            specs[target] = check_endpoint_ports(ServiceSpec.from_dict(spec)).to_dict()
        except ConfigError as exc:
            problems.error(f"services.{target}", f"its task group: {exc.message}")
    for s in folded:
        del specs[s]
    return folded
