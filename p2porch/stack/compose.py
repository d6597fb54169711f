"""Compose v3 file -> the p2porch service specs of one stack (pure).

Owns the supported Compose subset (docs/stack.md) and its mapping onto ``ServiceSpec``: every key it
does not support, at any level, is a ``ConfigError`` whose ``field`` is the key's path
(``services.web.privileged``); nothing is silently ignored except what docs/stack.md lists (``version``,
``networks``, ``x-*`` extension fields). Files named by ``env_file`` are read through a callable the
caller passes in, so this module does no I/O itself; YAML is parsed from a string.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from ..errors import ConfigError
from ..model import (
    HealthSpec,
    RestartPolicy,
    ServiceSpec,
    UpdateConfig,
    parse_mount,
    parse_port,
)
from .names import RESERVED_LABEL_PREFIX, check_stack_name, service_name, stack_labels

#: reads the file named by an ``env_file`` entry (the path as written in the Compose file) -> its text;
#: raises OSError or KeyError when it cannot
ReadFile = Callable[[str], str]

TOP_LEVEL_KEYS = ("version", "services", "volumes", "networks")
SERVICE_KEYS = (
    "image",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "labels",
    "ports",
    "volumes",
    "healthcheck",
    "deploy",
    "networks",
    "user",
    "working_dir",
    "stop_grace_period",
)
DEPLOY_KEYS = ("replicas", "mode", "placement", "resources", "restart_policy", "update_config")
PLACEMENT_KEYS = ("constraints", "preferences", "max_replicas_per_node")
RESOURCES_KEYS = ("limits", "reservations")
RESOURCE_KEYS = ("cpus", "memory")
RESTART_KEYS = ("condition", "delay", "max_attempts", "window")
UPDATE_KEYS = ("parallelism", "delay", "order", "failure_action", "monitor")
HEALTH_KEYS = ("test", "interval", "timeout", "retries", "start_period", "disable")
PORT_KEYS = ("target", "published", "protocol", "mode")
VOLUME_MOUNT_KEYS = ("type", "source", "target", "read_only")
TOP_VOLUME_KEYS = ("driver", "external", "name")
TOP_NETWORK_KEYS = ("driver", "external", "name", "attachable")
ENV_FILE_KEYS = ("path", "required")
SHORT_VOLUME_MODES = ("ro", "rw")

# ServiceSpec field (first segment of a ConfigError field) -> where it came from in a Compose service
_COMPOSE_PATH_OF_FIELD = {
    "image": "image",
    "entrypoint": "entrypoint",
    "command": "command",
    "user": "user",
    "workdir": "working_dir",
    "env": "environment",
    "labels": "labels",
    "mode": "deploy.mode",
    "replicas": "deploy.replicas",
    "constraints": "deploy.placement.constraints",
    "placement_preferences": "deploy.placement.preferences",
    "placement_prefs": "deploy.placement.preferences",
    "max_replicas_per_node": "deploy.placement.max_replicas_per_node",
    "reserve_cpu": "deploy.resources.reservations.cpus",
    "reserve_memory": "deploy.resources.reservations.memory",
    "limit_cpu": "deploy.resources.limits.cpus",
    "limit_memory": "deploy.resources.limits.memory",
    "mounts": "volumes",
    "publish": "ports",
    "health": "healthcheck",
    "restart": "deploy.restart_policy",
    "update": "deploy.update_config",
    "stop_grace_period": "stop_grace_period",
}
_HEALTH_SUBKEYS = {"cmd": "test"}


def _err(path: str, message: str) -> ConfigError:
    return ConfigError(f"{path}: {message}", field=path)


# ------------------------------------------------------------------------------------------- YAML


class _ComposeLoader(yaml.SafeLoader):
    """YAML 1.2-like scalars, as Compose reads them: ``8080:80`` is a string (not sexagesimal 4880),
    ``yes``/``no``/``on``/``off`` are strings, dates stay strings; duplicate keys are errors."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r}", key_node.start_mark
                    )
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


_ComposeLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag
        not in (
            "tag:yaml.org,2002:bool",
            "tag:yaml.org,2002:int",
            "tag:yaml.org,2002:float",
            "tag:yaml.org,2002:timestamp",
        )
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ComposeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_ComposeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?(?:0|[1-9][0-9]*)|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_ComposeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?[0-9]+[eE][-+]?[0-9]+"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    """Parse one YAML document the way Compose does; a syntax error is a ConfigError(field="compose")."""
    if not isinstance(text, str):
        raise _err("compose", "expected the Compose file's text")
    try:
        return yaml.load(text, Loader=_ComposeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise _err("compose", f"invalid YAML: {exc.problem or exc.context}{where}") from None
    except yaml.YAMLError as exc:
        raise _err("compose", f"invalid YAML: {exc}") from None


# ------------------------------------------------------------------------------------ result types


@dataclass(frozen=True)
class StackService:
    """One Compose service: its short name in the stack and its canonical ``ServiceSpec.to_dict()``."""

    short_name: str
    spec: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.spec["name"])


@dataclass(frozen=True)
class StackDefinition:
    """A validated stack: its services in file order and the ``env_file`` paths that were read."""

    name: str
    services: tuple[StackService, ...]
    env_files: tuple[str, ...] = ()

    def by_name(self) -> dict[str, StackService]:
        return {s.name: s for s in self.services}


# ------------------------------------------------------------------------------------- helpers


def _mapping(value: Any, path: str, allowed: Sequence[str], *, extensions: bool = False) -> Mapping[str, Any]:
    """``value`` as a mapping whose keys are all in ``allowed`` (``x-*`` too if ``extensions``)."""
    if not isinstance(value, Mapping):
        raise _err(path or "compose", f"expected a mapping, got {_kind(value)}")
    for key in value:
        if not isinstance(key, str):
            raise _err(path, f"key {key!r} must be a string")
        if key in allowed or (extensions and key.startswith("x-")):
            continue
        raise _err(f"{path}.{key}" if path else key, "unsupported key")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise _err(path, f"expected a list, got {_kind(value)}")
    return list(value)


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _err(path, f"expected a string, got {_kind(value)}")
    return value


def _scalar_text(value: Any, path: str) -> str:
    """A YAML scalar as the string Compose would use (``true`` -> "true", ``3`` -> "3")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    raise _err(path, f"expected a string or number, got {_kind(value)}")


_INTERPOLATION_RE = re.compile(r"\$(\$|\{[^}]*\}?|[A-Za-z_][A-Za-z0-9_]*|)")


def _uninterpolate(text: str, path: str) -> str:
    """Compose's ``$$`` escape -> ``$``; any variable reference is an error (no interpolation here)."""
    if "$" not in text:
        return text

    def repl(m: re.Match[str]) -> str:
        if m.group(1) == "$":
            return "$"
        raise _err(
            path,
            f"variable interpolation ({m.group(0) or '$'}) is not supported: write the value out, "
            "or $$ for a literal $",
        )

    return _INTERPOLATION_RE.sub(repl, text)


def _strings_unescaped(value: Any, path: str) -> Any:
    """Apply :func:`_uninterpolate` to every string value under ``value`` (keys are left alone)."""
    if isinstance(value, str):
        return _uninterpolate(value, path)
    if isinstance(value, Mapping):
        return {k: _strings_unescaped(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strings_unescaped(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _words(value: Any, path: str) -> list[str]:
    """``command``/``entrypoint``: a string is split like a shell would; a list is taken as is."""
    if value is None:
        return []
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise _err(path, f"cannot split {value!r} into words: {exc}") from None
    items = _list(value, path)
    out = []
    for i, item in enumerate(items):
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise _err(f"{path}[{i}]", f"expected a string, got {_kind(item)}")
        out.append(str(item))
    return out


_ENV_KEY_RE = re.compile(r"^[^=\s]+$")


def _env_key(key: Any, path: str) -> str:
    if not isinstance(key, str) or not _ENV_KEY_RE.match(key):
        raise _err(path, f"invalid variable name {key!r}")
    return key


def _environment(value: Any, path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{key}"
            _env_key(key, where)
            if item is None:
                raise _err(
                    where,
                    "has no value (taking it from the environment of the machine running the CLI is not "
                    "supported): write KEY: VALUE",
                )
            out[key] = _scalar_text(item, where)
        return out
    for i, item in enumerate(_list(value, path)):
        where = f"{path}[{i}]"
        text = _string(item, where)
        key, sep, val = text.partition("=")
        if not sep:
            raise _err(
                where,
                f"{text!r} has no value (taking it from the environment of the machine running the CLI "
                "is not supported): write KEY=VALUE",
            )
        _env_key(key, where)
        if key in out:
            raise _err(where, f"variable {key!r} given twice")
        out[key] = val
    return out


def parse_env_file(text: str, path: str, filename: str) -> dict[str, str]:
    """``KEY=VALUE`` lines (``#`` comments, blank lines, optional ``export``, quoted values) -> dict.

    Values are taken literally (no variable interpolation); a line without ``=`` is an error.
    """
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        where = f"{filename} line {number}"
        if not sep:
            raise _err(path, f"{where}: {line!r} has no value (write KEY=VALUE)")
        if not _ENV_KEY_RE.match(key):
            raise _err(path, f"{where}: invalid variable name {key!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        out[key] = value
    return out


def _env_files(value: Any, path: str, read_file: ReadFile | None, read: list[str]) -> dict[str, str]:
    entries = [value] if isinstance(value, str) else _list(value, path)
    out: dict[str, str] = {}
    for i, entry in enumerate(entries):
        where = path if isinstance(value, str) else f"{path}[{i}]"
        required = True
        if isinstance(entry, Mapping):
            entry = _mapping(entry, where, ENV_FILE_KEYS)
            if "path" not in entry:
                raise _err(f"{where}.path", "is required")
            required_value = entry.get("required", True)
            if not isinstance(required_value, bool):
                raise _err(f"{where}.required", "expected true or false")
            required = required_value
            entry = entry["path"]
        filename = _string(entry, where)
        if read_file is None:
            raise _err(where, f"cannot read {filename!r}: no files were given with the Compose file")
        try:
            text = read_file(filename)
        except (OSError, KeyError) as exc:
            if not required:
                continue
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not found"
            raise _err(where, f"cannot read {filename!r}: {reason}") from None
        if filename not in read:
            read.append(filename)
        out.update(parse_env_file(text, where, filename))
    return out


def _labels(value: Any, path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(value, Mapping):
        pairs = [(k, v, f"{path}.{k}") for k, v in value.items()]
    else:
        pairs = []
        for i, item in enumerate(_list(value, path)):
            key, _, val = _string(item, f"{path}[{i}]").partition("=")
            pairs.append((key, val, f"{path}[{i}]"))
    for key, val, where in pairs:
        _env_key(key, where)
        if key.startswith(RESERVED_LABEL_PREFIX):
            raise _err(where, f"label keys starting with {RESERVED_LABEL_PREFIX!r} are reserved")
        if key in out:
            raise _err(where, f"label {key!r} given twice")
        out[key] = "" if val is None else _scalar_text(val, where)
    return out


def _port(item: Any, path: str) -> dict[str, Any]:
    if isinstance(item, Mapping):
        item = _mapping(item, path, PORT_KEYS)
        mode = item.get("mode", "host")
        if mode != "host":
            raise _err(
                f"{path}.mode",
                f"{mode!r} is not supported: p2porch has no routing mesh; a port is published on the node "
                "running the task (mode: host)",
            )
        data = {k: v for k, v in item.items() if k != "mode"}
        if "target" not in data:
            raise _err(f"{path}.target", "is required")
        return parse_port(data, fieldname=path).to_dict()
    if isinstance(item, bool) or not isinstance(item, str | int):
        raise _err(path, f"expected HOST:CONTAINER[/PROTO] or a mapping, got {_kind(item)}")
    if isinstance(item, str):
        text = item.strip().partition("/")[0]
        if "-" in text:
            raise _err(path, f"{item!r}: port ranges are not supported")
        if text.count(":") > 1:
            raise _err(path, f"{item!r}: publishing on one host IP is not supported")
    return parse_port(item, fieldname=path).to_dict()


@dataclass(frozen=True)
class _Volume:
    """A top-level named volume: the Docker volume name it maps to and its driver."""

    docker_name: str
    driver: str = ""


def _top_volumes(value: Any, stack: str) -> dict[str, _Volume]:
    if value is None:
        return {}
    volumes: dict[str, _Volume] = {}
    for name, conf in _mapping(value, "volumes", tuple(value) if isinstance(value, Mapping) else ()).items():
        path = f"volumes.{name}"
        conf = {} if conf is None else _mapping(conf, path, TOP_VOLUME_KEYS)
        external = conf.get("external", False)
        if not isinstance(external, bool):
            raise _err(f"{path}.external", "expected true or false (use name: to give the volume's name)")
        driver = conf.get("driver", "") or ""
        if external and driver:
            raise _err(f"{path}.driver", "an external volume has no driver here")
        explicit = conf.get("name")
        if explicit is not None:
            docker_name = _string(explicit, f"{path}.name")
        else:
            docker_name = name if external else f"{stack}_{name}"
        volumes[name] = _Volume(docker_name, _string(driver, f"{path}.driver"))
    return volumes


def _top_networks(value: Any) -> set[str]:
    """Validated, then ignored: every task is on the cluster overlay network."""
    if value is None:
        return set()
    names = _mapping(value, "networks", tuple(value) if isinstance(value, Mapping) else ())
    for name, conf in names.items():
        if conf is not None:
            _mapping(conf, f"networks.{name}", TOP_NETWORK_KEYS)
    return set(names)


def _mount_source(
    kind: str, source: str, path: str, volumes: Mapping[str, _Volume], base_dir: str
) -> tuple[str, str]:
    """(source, volume driver) of a mount: relative bind paths join ``base_dir``, names map to volumes."""
    if kind == "bind":
        if source.startswith("~"):
            raise _err(path, f"{source!r}: '~' paths are not supported (write an absolute path)")
        if source.startswith("."):
            if not base_dir.startswith("/"):
                raise _err(path, f"{source!r}: a relative path needs the Compose file's directory")
            return posixpath.normpath(posixpath.join(base_dir, source)), ""
        return source, ""
    if kind == "volume" and source:
        if source not in volumes:
            raise _err(path, f"volume {source!r} is not declared in the top-level volumes")
        return volumes[source].docker_name, volumes[source].driver
    return source, ""


def _volume(item: Any, path: str, volumes: Mapping[str, _Volume], base_dir: str) -> dict[str, Any]:
    if isinstance(item, Mapping):
        item = _mapping(item, path, VOLUME_MOUNT_KEYS)
        kind = item.get("type", "volume")
        source = _string(item.get("source", "") or "", f"{path}.source")
        read_only = item.get("read_only", False)
        if kind not in ("bind", "volume", "tmpfs"):
            raise _err(f"{path}.type", f"must be bind, volume or tmpfs (got {kind!r})")
    else:
        text = _string(item, path)
        parts = text.split(":")
        if len(parts) > 3 or not all(parts):
            raise _err(path, f"{text!r}: expected [SOURCE:]TARGET[:ro|rw]")
        if len(parts) == 1:
            parts = ["", parts[0], ""]
        source, target, mode = (parts + [""])[:3]
        modes = [m for m in mode.split(",") if m]
        for m in modes:
            if m not in SHORT_VOLUME_MODES:
                raise _err(path, f"{text!r}: mode {m!r} is not supported (ro or rw)")
        read_only = "ro" in modes
        kind = "bind" if source.startswith(("/", ".", "~")) else "volume"
        item = {"target": target}
    resolved, driver = _mount_source(kind, source, f"{path}.source", volumes, base_dir)
    data: dict[str, Any] = {"type": kind, "target": item.get("target", ""), "readonly": read_only}
    if resolved:
        data["source"] = resolved
    if driver:
        data["volume_driver"] = driver
    return parse_mount(data, fieldname=path).to_dict()


def _nested(build: Callable[[], Any], canonical: str, path: str) -> dict[str, Any]:
    """``build().to_dict()``; a ConfigError named ``<canonical>.<key>`` is renamed to ``<path>.<key>``."""
    try:
        return dict(build().to_dict())
    except ConfigError as exc:
        if not exc.field or not exc.field.startswith(canonical + "."):
            raise
        key = exc.field[len(canonical) + 1 :]
        key = _HEALTH_SUBKEYS.get(key, key) if canonical == "health" else key
        message = exc.message.removeprefix(f"{exc.field}: ")
        raise _err(f"{path}.{key}", message) from None


def _healthcheck(value: Any, path: str) -> dict[str, Any]:
    conf = _mapping(value, path, HEALTH_KEYS)
    disable = conf.get("disable", False)
    if not isinstance(disable, bool):
        raise _err(f"{path}.disable", "expected true or false")
    if disable:
        return HealthSpec(test=("NONE",)).to_dict()
    if "test" not in conf:
        raise _err(
            f"{path}.test",
            "is required (p2porch does not merge a healthcheck with the image's HEALTHCHECK)",
        )
    test = conf["test"]
    if isinstance(test, list) and test and test[0] not in ("CMD", "CMD-SHELL", "NONE"):
        raise _err(f"{path}.test", "a list must start with CMD, CMD-SHELL or NONE")
    data = {k: v for k, v in conf.items() if k != "disable"}
    return _nested(lambda: HealthSpec.from_dict(data, prefix=path), "health", path)


def _service_networks(value: Any, path: str, declared: set[str]) -> None:
    """Validated, then ignored (every task is on the cluster overlay)."""
    if isinstance(value, Mapping):
        names = list(value)
        for name, conf in value.items():
            if conf is not None:
                _mapping(conf, f"{path}.{name}", ())
    else:
        names = [_string(n, f"{path}[{i}]") for i, n in enumerate(_list(value, path))]
    for name in names:
        if name != "default" and name not in declared:
            raise _err(f"{path}.{name}", "network is not declared in the top-level networks")


def _deploy(value: Any, path: str, spec: dict[str, Any]) -> None:
    conf = _mapping(value, path, DEPLOY_KEYS)
    for key in ("replicas", "mode"):
        if key in conf:
            spec[key] = conf[key]
    if "placement" in conf:
        where = f"{path}.placement"
        placement = _mapping(conf["placement"], where, PLACEMENT_KEYS)
        if "constraints" in placement:
            spec["constraints"] = _list(placement["constraints"], f"{where}.constraints")
        if "preferences" in placement:
            prefs = []
            for i, pref in enumerate(_list(placement["preferences"], f"{where}.preferences")):
                item = _mapping(pref, f"{where}.preferences[{i}]", ("spread",))
                if "spread" not in item:
                    raise _err(f"{where}.preferences[{i}]", "expected spread: node.labels.KEY")
                prefs.append(f"spread={_string(item['spread'], f'{where}.preferences[{i}].spread')}")
            spec["placement_prefs"] = prefs
        if "max_replicas_per_node" in placement:
            spec["max_replicas_per_node"] = placement["max_replicas_per_node"]
    if "resources" in conf:
        where = f"{path}.resources"
        resources = _mapping(conf["resources"], where, RESOURCES_KEYS)
        for section, prefix in (("limits", "limit"), ("reservations", "reserve")):
            if section in resources:
                values = _mapping(resources[section], f"{where}.{section}", RESOURCE_KEYS)
                if "cpus" in values:
                    spec[f"{prefix}_cpu"] = values["cpus"]
                if "memory" in values:
                    spec[f"{prefix}_memory"] = values["memory"]
    if "restart_policy" in conf:
        where = f"{path}.restart_policy"
        restart = _mapping(conf["restart_policy"], where, RESTART_KEYS)
        spec["restart"] = _nested(lambda: RestartPolicy.from_dict(restart, prefix=where), "restart", where)
    if "update_config" in conf:
        where = f"{path}.update_config"
        update = _mapping(conf["update_config"], where, UPDATE_KEYS)
        spec["update"] = _nested(lambda: UpdateConfig.from_dict(update, prefix=where), "update", where)


def _compose_field(service_path: str, field: str | None) -> str:
    """Translate a ServiceSpec error field (``update.order``, ``publish[1]``) to a Compose path."""
    if not field:
        return service_path
    m = re.match(r"^([a-z_]+)(.*)$", field)
    if m is None or m.group(1) not in _COMPOSE_PATH_OF_FIELD:
        return service_path
    rest = m.group(2)
    if m.group(1) == "health" and rest.startswith("."):
        sub = rest[1:].split("[")[0]
        rest = "." + _HEALTH_SUBKEYS.get(sub, sub.removesuffix("_s")) + rest[1 + len(sub) :]
    elif m.group(1) in ("restart", "update") and rest.startswith("."):
        rest = rest.removesuffix("_s")
    return f"{service_path}.{_COMPOSE_PATH_OF_FIELD[m.group(1)]}{rest}"


# ------------------------------------------------------------------------------------------ loader


def load_stack(
    stack: str,
    compose_text: str,
    read_file: ReadFile | None = None,
    *,
    base_dir: str = "",
) -> StackDefinition:
    """Validate a whole Compose file for stack ``stack``; raises ConfigError naming the key's path.

    ``read_file`` reads ``env_file`` entries (paths as written); ``base_dir`` is the absolute directory
    of the Compose file on the CLI's machine, used for relative bind mount sources (``./data``).
    """
    check_stack_name(stack)
    doc = parse_yaml(compose_text)
    if doc is None:
        raise _err("services", "the Compose file is empty")
    top = _mapping(doc, "", TOP_LEVEL_KEYS, extensions=True)
    version = top.get("version")
    if version is not None and not _scalar_text(version, "version").startswith("3"):
        raise _err("version", f"Compose file format {version!r} is not supported (use 3.x or omit it)")
    volumes = _top_volumes(_strings_unescaped(top.get("volumes"), "volumes"), stack)
    networks = _top_networks(top.get("networks"))
    services_conf = top.get("services")
    if not isinstance(services_conf, Mapping) or not services_conf:
        raise _err("services", "at least one service is required")
    read: list[str] = []
    services: list[StackService] = []
    for short, conf in services_conf.items():
        path = f"services.{short}"
        name = service_name(stack, short, fieldname=path)
        conf = _strings_unescaped(_mapping(conf, path, SERVICE_KEYS, extensions=True), path)
        spec = _service_spec(stack, short, name, conf, path, volumes, networks, read_file, base_dir, read)
        services.append(StackService(short, spec))
    return StackDefinition(stack, tuple(services), tuple(read))


def _service_spec(
    stack: str,
    short: str,
    name: str,
    conf: Mapping[str, Any],
    path: str,
    volumes: Mapping[str, _Volume],
    networks: set[str],
    read_file: ReadFile | None,
    base_dir: str,
    read: list[str],
) -> dict[str, Any]:
    if "image" not in conf:
        raise _err(f"{path}.image", "is required (building images is not supported)")
    spec: dict[str, Any] = {"name": name, "image": _string(conf["image"], f"{path}.image")}
    for key in ("command", "entrypoint"):
        if key in conf:
            spec[key] = _words(conf[key], f"{path}.{key}")
    env: dict[str, str] = {}
    if "env_file" in conf:
        env.update(_env_files(conf["env_file"], f"{path}.env_file", read_file, read))
    if "environment" in conf:
        env.update(_environment(conf["environment"], f"{path}.environment"))
    spec["env"] = env
    labels = _labels(conf["labels"], f"{path}.labels") if "labels" in conf else {}
    spec["labels"] = {**labels, **stack_labels(stack, short)}
    if "ports" in conf:
        spec["publish"] = [
            _port(p, f"{path}.ports[{i}]") for i, p in enumerate(_list(conf["ports"], f"{path}.ports"))
        ]
    if "volumes" in conf:
        spec["mounts"] = [
            _volume(v, f"{path}.volumes[{i}]", volumes, base_dir)
            for i, v in enumerate(_list(conf["volumes"], f"{path}.volumes"))
        ]
    if "healthcheck" in conf:
        spec["health"] = _healthcheck(conf["healthcheck"], f"{path}.healthcheck")
    if "networks" in conf:
        _service_networks(conf["networks"], f"{path}.networks", networks)
    if "user" in conf:
        spec["user"] = _scalar_text(conf["user"], f"{path}.user")
    if "working_dir" in conf:
        spec["workdir"] = _string(conf["working_dir"], f"{path}.working_dir")
    if "stop_grace_period" in conf:
        spec["stop_grace_period"] = conf["stop_grace_period"]
    if "deploy" in conf:
        _deploy(conf["deploy"], f"{path}.deploy", spec)
    try:
        return ServiceSpec.from_dict(spec).to_dict()
    except ConfigError as exc:
        where = _compose_field(path, exc.field)
        message = exc.message
        if exc.field and message.startswith(f"{exc.field}: "):
            message = message[len(exc.field) + 2 :]
        raise _err(where, message) from None
