"""Compose service keys read into a task's engine options with more than a copy (pure): ``devices``,
``pids_limit`` (or ``deploy.resources.limits.pids``), ``pull_policy`` and the namespaces ``pid``, ``ipc``
and ``uts``.

Writes into the service's ``container`` options dict (``ContainerOptions.from_dict`` validates it) and
reports what it ignores through the ``ignored(key, reason)`` callback; never reads files or the environment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..model.container_opts import refresh_interval_s
from . import deploy as deploy_keys
from .values import err, list_, mapping, scalar_text, string

_PULL_POLICIES = ("always", "never", "missing", "if_not_present", "build")
#: the host namespaces each key may name (Docker's PidMode, IpcMode, UTSMode), as ``ContainerOptions``
_NAMESPACE_OPTIONS = {"pid": "pid_mode", "ipc": "ipc_mode", "uts": "uts_mode"}
JOINED = "a task cannot join another container's namespace (docker stack deploy ignores it too)"


def _devices(value: Any, path: str) -> list[str]:
    """``devices``: ``HOST[:CONTAINER[:PERMISSIONS]]`` strings or ``{source, target, permissions}``."""
    out = []
    for i, item in enumerate(list_(value, path)):
        where = f"{path}[{i}]"
        if isinstance(item, Mapping):
            conf = mapping(item, where, ("source", "target", "permissions"))
            if "source" not in conf:
                raise err(f"{where}.source", "is required")
            parts = [string(conf["source"], f"{where}.source")]
            if conf.get("target") is not None or conf.get("permissions") is not None:
                parts.append(string(conf.get("target") or parts[0], f"{where}.target"))
            if conf.get("permissions") is not None:
                parts.append(string(conf["permissions"], f"{where}.permissions"))
            out.append(":".join(parts))
        else:
            out.append(scalar_text(item, where))
    return out


def devices_pids_pull(
    conf: Mapping[str, Any], path: str, container: dict[str, Any], ignored: Callable[[str, str], None]
) -> None:
    """``devices`` (``HOST[:CONTAINER[:PERMISSIONS]]``; CDI names are ignored), ``pids_limit``, or
    ``deploy.resources.limits.pids`` when ``pids_limit`` is absent or 0, and ``pull_policy`` into the
    container options."""
    if conf.get("devices") is not None:
        devices = _devices(conf["devices"], f"{path}.devices")
        cdi = [d for d in devices if not d.startswith("/")]
        if cdi:
            ignored("devices (CDI)", f"CDI device names are not supported: {', '.join(cdi)}")
        if len(cdi) < len(devices):
            container["devices"] = [d for d in devices if d.startswith("/")]
    limits = deploy_keys.resource_limits(conf.get("deploy"))
    if not container.get("pids_limit") and limits.get("pids") is not None:  # pids_limit: 0 is not set
        container["pids_limit"] = limits["pids"]
    if conf.get("pull_policy") is not None:
        policy = pull_policy(conf["pull_policy"], f"{path}.pull_policy", ignored)
        if policy != "missing":
            container["pull_policy"] = policy


def pull_policy(value: Any, path: str, ignored: Callable[[str, str], None]) -> str:
    """Compose's ``pull_policy`` as a node's: ``always``, ``never``, ``missing`` (``if_not_present``) and
    the refresh policies ``daily``, ``weekly``, ``every_<duration>`` (the node pulls again when its image
    was pulled longer ago than that, as Compose compares the image's last tag time) as written; ``build``
    (nothing is built here: the named image is pulled when missing) and the schema's bare ``refresh``
    (no interval) as ``missing``, warned."""
    policy = string(value, path)
    if refresh_interval_s(policy) is not None:  # its bounds are checked with the container options
        return policy
    if policy == "refresh":
        ignored("pull_policy: refresh", "no interval given: a node pulls the image when it lacks it")
        return "missing"
    if policy not in _PULL_POLICIES:
        raise err(
            path, f"expected always, never, missing, build, daily, weekly or every_<duration>, got {policy!r}"
        )
    if policy == "build":
        ignored("pull_policy: build", "nothing is built: a node pulls the named image when it lacks it")
        return "missing"
    return "missing" if policy == "if_not_present" else policy


def namespaces(
    conf: Mapping[str, Any], path: str, container: dict[str, Any], ignored: Callable[[str, str], None]
) -> None:
    """``pid``, ``ipc`` and ``uts`` into the container options: ``host`` runs the task in its node's
    namespace (``docker run --pid host``: monitoring agents see the node's processes), ``ipc`` also
    ``private``, ``shareable`` and ``none``. ``container:X`` (one engine's container, which a task cannot
    join: its tasks run on any node) is ignored with a warning naming it, as ``docker stack deploy`` ignores
    it; ``service:X`` is left to ``groups.plan_joins`` (X's task group, or the same warning)."""
    for key, option in _NAMESPACE_OPTIONS.items():
        if conf.get(key) is None:
            continue
        mode = string(conf[key], f"{path}.{key}").strip()
        kind, sep, _ = mode.partition(":")
        if sep and kind == "service" and key != "uts":
            continue
        if sep and kind in ("service", "container"):
            ignored(f"{key}: {mode}", JOINED)
        elif mode:
            container[option] = mode
