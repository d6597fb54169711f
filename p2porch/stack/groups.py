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
Never does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigError
from ..model import ServiceSpec
from ..model.spec import check_endpoint_ports
from .names import STACK_LABEL
from .networks import HOST_NETWORK, host_ports
from .problems import Problems

SERVICE_PREFIX = "service:"
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


def group_member(
    short: str, spec: Mapping[str, Any], *, init: bool, own_mounts: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The ``sidecars``/``init_containers`` entry for a mapped (canonical) service spec; ``own_mounts`` are
    the mounts it alone has at their targets (the group mounts something else there)."""
    member: dict[str, Any] = {"name": member_name(short), "image": spec["image"]}
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
) -> set[str]:
    """Move every service of ``targets`` (short name -> the service whose namespace it shares) into its
    target's spec (``specs`` by short name, changed in place); returns the short names folded away.

    ``waits`` lists, per service, what it waits for with ``service_completed_successfully`` (in order)."""
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
        joining = [group_member(s, specs[s], init=False, own_mounts=own.get(s, [])) for s in sidecars]
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
