"""Compose services that share another's network namespace -> that service's task group (pure).

``network_mode: service:X`` puts a Compose service into X's task: each of X's tasks runs it beside X's own
container, on X's address (docs/task-groups.md). It becomes an *init container* when X waits for it with
``depends_on: {S: {condition: service_completed_successfully}}`` (X starts after it completed, as Compose
does), a *sidecar* otherwise. Its image, command, entrypoint, environment, user, working directory, ports,
health check, resources and ``privileged`` go into the group; its volumes join X's (a group shares its
mounts), except one at a path the group mounts otherwise, which is that container's own (each Compose
service mounts its own volumes); the rest of its settings (replicas, placement, restart, networks...) are
X's. Other network modes: ``host`` is ignored as ``docker stack deploy`` does, ``none`` and
``container:...`` are refused.
A sidecar of a service on the host network binds its ports on the node, each as its container port (as
the service's own, ``networks.host_ports``).
``pid: service:X`` / ``ipc: service:X`` need the two containers on one node: a member of X's group joins
X's main container's namespace (``pid``/``ipc`` = main); a service that shares only them is co-scheduled
into X's group as a sidecar, its Compose name an alias of X's tasks on its networks (``plan_joins``),
unless that cannot be done (then ignored with a warning, as ``docker stack deploy`` ignores them).
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
_CARRIED_OPTIONS = {"container.privileged"}  # a container option a member takes as its own


def _warn_dropped(
    short: str, target: str, spec: Mapping[str, Any], target_spec: Mapping[str, Any], problems: Problems
) -> None:
    """Say which of a folded service's own settings its target's task does not take (never silent). A
    member's container options are never applied (its container gets none of them), even those equal to
    its target's (``pid: host`` on both: the member still runs in its own PID namespace)."""
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
    if dropped:
        problems.warn(
            f"services.{short}: runs in {target}'s task; its own {', '.join(sorted(dropped))} "
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


def plan_joins(
    specs: Mapping[str, Mapping[str, Any]],
    confs: Mapping[str, Any],
    shares: Mapping[str, str],
    waits: Mapping[str, list[str]],
) -> Joins:
    """Decide each ``pid``/``ipc: service:X`` (``specs`` by short name, ``shares`` the network_mode folds).
    A member of X's group (``network_mode: service:X``) joins X's namespaces. A service sharing only them
    goes into X's group as a sidecar when it can: X is deployed and in no one's group, the service has no
    group of its own (no one shares its namespaces), both keys name X, it is not one of X's init jobs and
    none of its container ports is already the group's (one network namespace)."""
    out = Joins({}, {}, [])
    wanted = {s: namespace_targets(c) for s, c in confs.items() if s in specs and isinstance(c, Mapping)}
    wanted = {s: t for s, t in wanted.items() if t}
    hosts = set(shares.values()) | {x for t in wanted.values() for x in t.values()}
    for short, targets in sorted(wanted.items()):
        target = shares.get(short) or next(iter(targets.values()))
        why = _join_refusal(short, target, targets, specs, shares, hosts, waits, out.shares)
        for key, named in targets.items():
            if why or named != target:
                reason = why or f"it runs in {target}'s task (network_mode), not beside {named}"
                out.ignored.append((f"{key}: service:{named}", short, reason))
        keys = tuple(k for k, named in targets.items() if not why and named == target)
        if keys:
            out.joined[short] = keys
            if short not in shares:
                out.shares[short] = target
    return out


def _join_refusal(
    short: str,
    target: str,
    targets: Mapping[str, str],
    specs: Mapping[str, Mapping[str, Any]],
    shares: Mapping[str, str],
    hosts: set[str],
    waits: Mapping[str, list[str]],
    planned: Mapping[str, str],
) -> str:
    """Why ``short`` cannot join ``target``'s namespaces ("" when it can)."""
    if short in waits.get(target, []):
        return f"{target} waits for it to complete: it runs before {target}'s container exists"
    if short in shares:
        return ""  # already in the group: it joins the namespaces its group's main container owns
    if target not in specs:
        return f"{target} is not deployed (a task cannot join another container's namespace)"
    if _on_host(specs[target]) and not _on_host(specs[short]):
        return f"{target} is on the host network: its task would put this service on its node's network"
    if target in shares or target in planned:
        return f"{target} itself runs in {shares.get(target) or planned[target]}'s task: point at that one"
    if len(set(targets.values())) > 1:
        return "the pid and ipc namespaces of two services cannot both be joined (one task group)"
    if short in hosts or specs[short].get("sidecars") or specs[short].get("init_containers"):
        return "it has a task group of its own (others share its namespaces)"
    ports = {(p.get("protocol", "tcp"), p.get("target")) for p in specs[target].get("publish", [])}
    for sidecar in specs[target].get("sidecars") or []:
        ports |= {(p.get("protocol", "tcp"), p.get("target")) for p in sidecar.get("publish", [])}
    clash = [
        p for p in specs[short].get("publish", []) if (p.get("protocol", "tcp"), p.get("target")) in ports
    ]
    if clash:
        port = clash[0].get("target")
        return f"its container port {port} is also {target}'s (a task group shares one network)"
    return ""


def alias_member(
    target: Mapping[str, Any],
    member: Mapping[str, Any],
    short: str,
    owner: str,
    warn: Callable[[str], None],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``target``, ``member``) specs for service ``short`` co-scheduled into the group of ``owner``
    (``target`` is its spec): ``short`` becomes an alias of the owner's tasks on each network both were on
    (its processes listen on the task's address) and the member takes the owner's networks; one it alone
    was on is named in a warning."""
    own = {n["target"] for n in member.get("networks", [])}
    theirs = [dict(n) for n in target.get("networks", [])]
    name = short.lower()
    for attachment in theirs:
        if attachment["target"] in own and name not in attachment.get("aliases", []):
            attachment["aliases"] = [*attachment.get("aliases", []), name]
    lost = sorted(own - {n["target"] for n in theirs})
    if lost:
        names = ", ".join(lost)
        warn(f"services.{short}: runs in {owner}'s task, on its networks; not on {names} (its own)")
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
    if (spec.get("container") or {}).get("privileged"):  # its own, as Compose runs each service's container
        member["privileged"] = True
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
