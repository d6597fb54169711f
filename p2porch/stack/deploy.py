"""Compose ``deploy``, ``restart`` and ``healthcheck`` -> ServiceSpec dict entries (pure).

Owns the Swarm-flavoured part of a service: replicas and mode, placement (``node.role==manager|worker``
mapped onto voter|replica), resources, restart policy (and the ``restart`` key when ``deploy.restart_policy``
is absent), update and rollback configs, endpoint mode and service labels. Writes into the spec dict it
is given; raises ``ConfigError`` named by the Compose path; reports ignored keys through ``warn``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigError
from ..model import HealthSpec, RestartPolicy, UpdateConfig
from ..model.health_rules import turns_the_check_off
from ..model.units import parse_cpu_nanos, parse_memory_bytes
from . import keys
from .values import boolean, duration, durations, err, key_values, list_, mapping, scalar_text, string

Warn = Callable[[str, str], None]

_ROLE_RE = re.compile(r"^\s*node\.role\s*(==|!=)\s*(manager|worker)\s*$")
_PLATFORM_RE = re.compile(r"^\s*node\.platform\.(os|arch)\s*(==|!=)\s*(\S+)\s*$")
_ENGINE_LABEL_RE = re.compile(r"^\s*engine\.labels\.")
_ROLES = {"manager": "voter", "worker": "replica"}


def _nested(build: Callable[[], Any], path: str, renames: Mapping[str, str] | None = None) -> Any:
    """``build().to_dict()``; an error named ``health.X``/``update.X``/``restart.X`` or ``<path>.X`` is
    renamed to ``<path>.X`` (with the Compose name of X)."""
    try:
        return dict(build().to_dict())
    except ConfigError as exc:
        field = exc.field or ""
        for prefix in (path, "health", "update", "restart"):
            if field.startswith(prefix + "."):
                key = field[len(prefix) + 1 :]
                key = (renames or {}).get(key, key.removesuffix("_s"))
                message = exc.message.removeprefix(f"{field}: ")
                raise err(f"{path}.{key}", message) from None
        raise


def constraint(expr: Any, path: str, warn: Warn) -> str | None:
    """One placement constraint in p2porch's terms; None when it always holds on p2porch."""
    text = string(expr, path)
    role = _ROLE_RE.match(text)
    if role:
        return f"node.role{role.group(1)}{_ROLES[role.group(2)]}"
    platform = _PLATFORM_RE.match(text)
    if platform:
        attr, op, value = platform.groups()
        if attr == "os":  # every node runs Linux: the constraint always holds (dropped) or never does
            if (value.lower() == "linux") == (op == "=="):
                return None
            raise err(path, f"{text!r}: every p2porch node runs Linux, so no node matches")
        warn(
            f"constraint node.platform.{attr}",
            "p2porch does not record node platforms: the constraint is dropped",
        )
        return None
    if _ENGINE_LABEL_RE.match(text):
        mapped = _ENGINE_LABEL_RE.sub("node.labels.", text, count=1)
        warn(
            "constraint engine.labels",
            "p2porch has node labels only: engine.labels.KEY is read as node.labels.KEY",
        )
        return mapped.strip()
    return text


#: the node attributes a p2porch spread preference can use besides node.labels.KEY
_SPREAD_ATTRS = ("node.id", "node.name", "node.hostname", "node.role")


def spread(expr: Any, path: str, warn: Warn) -> str | None:
    """One ``spread:`` attribute in p2porch's terms; None when it spreads over nothing.

    Swarm spreads over ``node.labels.KEY`` and ``engine.labels.KEY`` only: with any other attribute
    every node falls in the same group, so the preference has no effect (and Swarm accepts it)."""
    attr = string(expr, path).strip()
    if _ENGINE_LABEL_RE.match(attr):
        warn(
            "spread engine.labels",
            "p2porch has node labels only: engine.labels.KEY is read as node.labels.KEY",
        )
        return _ENGINE_LABEL_RE.sub("node.labels.", attr, count=1)
    if attr.startswith("node.labels.") or attr in _SPREAD_ATTRS:
        return attr
    warn(
        f"placement preference spread: {attr}",
        "not a node attribute: it puts every node in one group (Swarm does the same), so it is dropped",
    )
    return None


def _placement(value: Any, path: str, spec: dict[str, Any], warn: Warn) -> None:
    placement = mapping(value, path, keys.PLACEMENT_KEYS)
    if "constraints" in placement:
        constraints = []
        for i, item in enumerate(list_(placement["constraints"], f"{path}.constraints")):
            mapped = constraint(item, f"{path}.constraints[{i}]", warn)
            if mapped is not None:
                constraints.append(mapped)
        spec["constraints"] = constraints
    if "preferences" in placement:
        prefs = []
        for i, pref in enumerate(list_(placement["preferences"], f"{path}.preferences")):
            item = mapping(pref, f"{path}.preferences[{i}]", ("spread",))
            if "spread" not in item:
                raise err(f"{path}.preferences[{i}]", "expected spread: node.labels.KEY")
            attr = spread(item["spread"], f"{path}.preferences[{i}].spread", warn)
            if attr is not None:
                prefs.append(f"spread={attr}")
        spec["placement_prefs"] = prefs
    if "max_replicas_per_node" in placement:
        spec["max_replicas_per_node"] = placement["max_replicas_per_node"]


def _resources(value: Any, path: str, spec: dict[str, Any], warn: Warn) -> None:
    resources = mapping(value, path, keys.RESOURCES_KEYS)
    sections = (
        ("limits", "limit", keys.LIMITS_MAPPED, keys.LIMITS_IGNORED),
        ("reservations", "reserve", keys.RESERVATIONS_MAPPED, keys.RESERVATIONS_IGNORED),
    )
    for section, prefix, mapped, ignored in sections:
        if section not in resources or resources[section] is None:
            continue
        values = mapping(resources[section], f"{path}.{section}", (*mapped, *ignored))
        for key, reason in ignored.items():
            if key in values:
                warn(f"ignoring deploy.resources.{section}.{key}", reason)
        if "cpus" in values:
            spec[f"{prefix}_cpu"] = values["cpus"]
        if "memory" in values:
            spec[f"{prefix}_memory"] = values["memory"]


def resource_limits(deploy_conf: Any) -> Mapping[str, Any]:
    """``deploy.resources.limits`` when every level is a mapping (validated by :func:`deploy`), else {}."""
    resources = deploy_conf.get("resources") if isinstance(deploy_conf, Mapping) else None
    limits = resources.get("limits") if isinstance(resources, Mapping) else None
    return limits if isinstance(limits, Mapping) else {}


def _update(value: Any, path: str) -> dict[str, Any]:
    conf = durations(mapping(value, path, keys.UPDATE_KEYS), path, ("delay", "monitor"))
    return _nested(lambda: UpdateConfig.from_dict(conf, prefix=path), path)


def stop_grace_period(conf: Mapping[str, Any], path: str, spec: dict[str, Any]) -> None:
    """The service's ``stop_grace_period``, a Compose duration (:func:`~.values.duration`), if given."""
    if "stop_grace_period" in conf:
        spec["stop_grace_period"] = duration(conf["stop_grace_period"], f"{path}.stop_grace_period")


#: restart: words written as a deploy.restart_policy condition, which Swarm spells none | on-failure | any
_SERVICE_RESTART_WORDS = {"always": "any", "unless-stopped": "any", "no": "none"}

JOB_EXTENSION = "x-p2porch"
JOB_EXTENSION_KEYS = ("max_concurrent", "schedule", "on_site_loss")


def job_extension(value: Any, path: str) -> dict[str, Any]:
    """``deploy.x-p2porch``: what Compose has no key for (a job's ``max_concurrent`` and cron
    ``schedule``: a cron string or {cron, timezone, concurrency, history_limit, starting_deadline};
    ``on_site_loss``: keep | replace, docs/multi-site.md)."""
    conf = mapping(value, path, JOB_EXTENSION_KEYS)
    return {key: conf[key] for key in JOB_EXTENSION_KEYS if key in conf}


def deploy(value: Any, path: str, spec: dict[str, Any], warn: Warn) -> None:
    conf = mapping(value, path, keys.DEPLOY_MAPPED)
    if "replicas" in conf:
        spec["replicas"] = conf["replicas"]
    if "mode" in conf:
        spec["mode"] = conf["mode"]  # replicated-job | global-job: a job (docs/scheduler.md)
    if conf.get(JOB_EXTENSION) is not None:
        spec.update(job_extension(conf[JOB_EXTENSION], f"{path}.{JOB_EXTENSION}"))
    if conf.get("placement") is not None:
        _placement(conf["placement"], f"{path}.placement", spec, warn)
    if conf.get("resources") is not None:
        _resources(conf["resources"], f"{path}.resources", spec, warn)
    if conf.get("restart_policy") is not None:
        where = f"{path}.restart_policy"
        restart = durations(
            mapping(conf["restart_policy"], where, keys.RESTART_KEYS), where, ("delay", "window")
        )
        condition = restart.get("condition")
        if condition in _SERVICE_RESTART_WORDS:  # the words of the service-level restart: key
            restart["condition"] = _SERVICE_RESTART_WORDS[condition]
            warn(
                f"{where}.condition",
                f"{condition!r} is read as {restart['condition']!r} (Swarm: none, on-failure, any)",
            )
        spec["restart"] = _nested(lambda: RestartPolicy.from_dict(restart, prefix=where), where)
    if conf.get("update_config") is not None:
        spec["update"] = _update(conf["update_config"], f"{path}.update_config")
    if conf.get("rollback_config") is not None:
        spec["rollback"] = _update(conf["rollback_config"], f"{path}.rollback_config")
    if "endpoint_mode" in conf:
        mode = conf["endpoint_mode"]
        if mode not in ("vip", "dnsrr"):
            raise err(f"{path}.endpoint_mode", f"must be vip or dnsrr (got {mode!r})")
        spec["endpoint_mode"] = mode
    if conf.get("labels") is not None:
        spec["service_labels"] = key_values(conf["labels"], f"{path}.labels")


#: a service-level key and the ``deploy`` key it duplicates, with how both are read
_DUPLICATES: tuple[tuple[str, tuple[str, ...], Callable[[Any], object]], ...] = (
    ("scale", ("replicas",), lambda v: int(str(v))),
    ("cpus", ("resources", "limits", "cpus"), parse_cpu_nanos),
    ("mem_limit", ("resources", "limits", "memory"), parse_memory_bytes),
    ("mem_reservation", ("resources", "reservations", "memory"), parse_memory_bytes),
    ("pids_limit", ("resources", "limits", "pids"), lambda v: int(str(v))),
)


def distinct_duplicates(conf: Mapping[str, Any], path: str) -> None:
    """Refuse a service-level key and the ``deploy`` key it duplicates set to different values, as
    compose-go does ("can't set distinct values on 'scale' and 'deploy.replicas'"); equal ones pass.
    As there, only ``scale`` is compared when 0: a 0 ``cpus``/``mem_limit``/... reads as not set."""
    for key, deploy_path, read in _DUPLICATES:
        other: Any = conf.get("deploy")
        for part in deploy_path:
            other = other.get(part) if isinstance(other, Mapping) else None
        if conf.get(key) is None or other is None:
            continue
        try:
            own = read(conf[key])
            same = own == read(other) or (own == 0 and key != "scale")
        except (ConfigError, ValueError, TypeError):
            continue  # a bad value: refused where it is read
        if not same:
            where = "deploy." + ".".join(deploy_path)
            raise err(
                f"{path}.{key}",
                f"can't set distinct values on {key!r} and {where!r} ({conf[key]} and {other})",
            )


def restart(value: Any, path: str) -> dict[str, Any]:
    """``restart: no|always|unless-stopped|on-failure[:N]`` -> a restart policy dict."""
    text = scalar_text(value, path).strip()
    name, _, count = text.partition(":")
    if name in ("no", "") and not count:
        return RestartPolicy(condition="none").to_dict()
    if name in ("always", "unless-stopped") and not count:
        return RestartPolicy(condition="any").to_dict()
    if name == "on-failure":
        attempts = 0
        if count:
            if not (count.isascii() and count.isdigit() and len(count) <= 9):
                raise err(path, f"{text!r}: expected on-failure[:MAX_RETRIES]")
            attempts = int(count)
        return RestartPolicy(condition="on-failure", max_attempts=attempts).to_dict()
    raise err(path, f"{text!r}: expected no, always, unless-stopped or on-failure[:N]")


_HEALTH_RENAMES = {"cmd": "test"}


def healthcheck(value: Any, path: str, warn: Warn) -> dict[str, Any] | None:
    """A health check dict, or None when the image's HEALTHCHECK applies (no ``test`` given). A check
    that is off (``disable: true``, test ``NONE``) is ``{cmd: [NONE]}`` alone: Compose and the engine
    ignore an interval given with it, and p2porch refuses one on a check that is off; its settings are
    still checked (``interval: banana`` is refused, as compose-go refuses it)."""
    conf = mapping(value, path, keys.HEALTH_KEYS)
    off = boolean(conf.get("disable", False), f"{path}.disable") or turns_the_check_off(conf)
    if "test" not in conf and not off:
        warn("healthcheck without test", "the image's HEALTHCHECK is used, with its own timings")
        return None
    test = conf.get("test")  # with ``disable: true``, whatever it is: not run
    if not off and isinstance(test, list) and test and test[0] not in ("CMD", "CMD-SHELL", "NONE"):
        raise err(f"{path}.test", "a list must start with CMD, CMD-SHELL or NONE")
    data = {k: v for k, v in conf.items() if k != "disable" and not k.startswith("x-")}
    data = durations(data, path, ("interval", "timeout", "start_period", "start_interval"))
    if data.get("retries") in (0, "0"):  # the engine reads 0 as "the default" (3), so does Compose
        if not off:
            warn("healthcheck retries: 0", "0 means the engine's default, 3 retries")
        del data["retries"]
    if off:  # checked as given, then its settings dropped: they never run, as Compose's
        _nested(lambda: HealthSpec.from_dict({**data, "test": ["NONE"]}, prefix=path), path, _HEALTH_RENAMES)
        return HealthSpec(test=("NONE",)).to_dict()
    return _nested(lambda: HealthSpec.from_dict(data, prefix=path), path, _HEALTH_RENAMES)
