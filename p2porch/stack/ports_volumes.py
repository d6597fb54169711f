"""Compose ``ports``, ``volumes``, ``tmpfs`` and top-level volumes -> p2porch publish/mount dicts (pure).

Owns the short and long syntaxes of the Compose specification for ports (host IP, ranges, protocol,
``mode``) and service volumes (bind, named, anonymous, tmpfs; ``ro``/``rw``/``nocopy``/propagation
modes; ``bind``/``volume``/``tmpfs`` options) and their mapping onto ``parse_port``/``parse_mount`` dicts.
Raises ``ConfigError`` naming the Compose path; reports ignored options through ``warn``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..model import parse_mount, parse_port
from . import keys
from .values import err, kind, mapping, scalar_text, string

Warn = Callable[[str, str], None]  # (key path shown, reason)

MAX_PORTS_PER_RANGE = 1024
_PORT_RE = re.compile(
    r"^(?:(?P<ip>\[[0-9A-Fa-f:.]+\]|[0-9.]+|[0-9A-Fa-f:]*::[0-9A-Fa-f:]*)?:)??"
    r"(?:(?P<host>[0-9]*(?:-[0-9]+)?):)?(?P<target>[0-9]+(?:-[0-9]+)?)(?:/(?P<proto>[a-z]+))?$"
)
_PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")
_IGNORED_MODES = ("z", "Z", "cached", "delegated", "consistent")
_OCTAL_RE = re.compile(r"0o?[0-7]+")  # 01777 / 0o1777: an octal file mode, as go-yaml reads it
#: a Windows drive (``C:/data``, ``c:\\data``) or named pipe (``\\\\.\\pipe\\x``), as compose-go's volume
#: parser reads it (``isWindowsDrive``: one letter then ``:``, kept in the source)
_WINDOWS_RE = re.compile(r"[A-Za-z]:[\\/]|\\\\")


def windows_path(source: str) -> bool:
    """A Windows bind source: no p2porch node (all run Linux) can bind it."""
    return _WINDOWS_RE.match(source) is not None


def _refuse_windows(source: str, path: str) -> ConfigError:
    return err(path, f"{source!r} is a Windows path: p2porch nodes run Linux and cannot bind it")


def port_range(text: str, path: str) -> list[int]:
    """``8000`` or ``8000-8002`` as its ports; refused naming ``path`` past 1-65535 or 1024 ports."""
    first, sep, last = text.partition("-")
    try:
        start, end = int(first), int(last) if sep else int(first)
    except ValueError:
        raise err(path, f"invalid port {text!r}") from None
    if not 1 <= start <= end <= 65535:
        raise err(path, f"invalid port range {text!r}")
    if end - start + 1 > MAX_PORTS_PER_RANGE:
        raise err(path, f"port range {text!r} is longer than {MAX_PORTS_PER_RANGE} ports")
    return list(range(start, end + 1))


def _expand(
    target: str, published: str, host_ip: str, protocol: str, path: str, warn: Warn
) -> list[dict[str, Any]]:
    targets = port_range(target, path)
    if not published:  # ingress: the swarm assigns a port of 30000-32767 (as Swarm); bound to host_ip:
        return [  # host mode, the engine picks a free host port on each task's node (as Compose)
            {"target": t, "protocol": protocol, **({"host_ip": host_ip} if host_ip else {})}
            | {"mode": "host" if host_ip else "ingress"}
            for t in targets
        ]
    hosts = port_range(published, path)
    if len(hosts) != len(targets):
        if len(targets) != 1:
            raise err(path, f"host range {published} and container range {target} differ in length")
        warn(path, f"the host port range {published} is published as its first port {hosts[0]}")
        hosts = hosts[:1]
    out = []
    for host, t in zip(hosts, targets, strict=True):
        item: dict[str, Any] = {"target": t, "published": host, "protocol": protocol}
        if host_ip:
            item["host_ip"] = host_ip
        out.append(item)
    return out


def _checked(data: dict[str, Any], path: str) -> dict[str, Any]:
    parse_port(data, fieldname=path)  # validated here; the spec validates again
    return data


def ports(item: Any, path: str, warn: Warn) -> list[dict[str, Any]]:
    """One ``ports`` entry -> publish dicts (a range gives one per port)."""
    if isinstance(item, Mapping):
        conf = mapping(item, path, keys.PORT_KEYS)
        mode = conf.get("mode", "ingress")
        if mode not in ("host", "ingress"):
            raise err(f"{path}.mode", f"must be host or ingress (got {mode!r})")
        if "target" not in conf:
            raise err(f"{path}.target", "is required")
        protocol = scalar_text(conf.get("protocol", "tcp"), f"{path}.protocol").lower()
        host_ip = string(conf.get("host_ip", "") or "", f"{path}.host_ip").strip("[]")
        if host_ip in ("0.0.0.0", "::"):
            host_ip = ""
        published = conf.get("published")
        published_text = "" if published in (None, "") else scalar_text(published, f"{path}.published")
        target_text = scalar_text(conf["target"], f"{path}.target")
        items = _expand(target_text, published_text, host_ip, protocol, path, warn)
        if "mode" in conf:  # explicit: host binds on the task's node, ingress serves every node's address
            for item in items:
                item["mode"] = mode if "published" in item or not host_ip else "host"
        return [_checked(d, path) for d in items]
    if isinstance(item, bool) or not isinstance(item, str | int):
        raise err(path, f"expected [HOST_IP:][HOST:]CONTAINER[/PROTO] or a mapping, got {kind(item)}")
    text = str(item).strip()
    m = _PORT_RE.match(text)
    if m is None:
        raise err(path, f"invalid port {text!r} (expected [HOST_IP:][HOST:]CONTAINER[/PROTO])")
    host_ip = (m.group("ip") or "").strip("[]")
    if host_ip in ("0.0.0.0", "::"):
        host_ip = ""
    protocol = m.group("proto") or "tcp"
    return [
        _checked(d, path)
        for d in _expand(m.group("target"), m.group("host") or "", host_ip, protocol, path, warn)
    ]


# ------------------------------------------------------------------------------------------ volumes


@dataclass(frozen=True)
class TopVolume:
    """A top-level named volume: the Docker volume name it maps to, its driver and driver options."""

    docker_name: str
    driver: str = ""
    driver_opts: dict[str, str] = field(default_factory=dict)


def top_volume(name: str, conf: Any, stack: str) -> TopVolume:
    path = f"volumes.{name}"
    conf = {} if conf is None else mapping(conf, path, keys.TOP_VOLUME_KEYS)
    external = conf.get("external", False)
    if isinstance(external, Mapping):  # legacy {name: X}
        external_name = external.get("name")
        external = True
        if isinstance(external_name, str) and "name" not in conf:
            conf = {**conf, "name": external_name}
    if not isinstance(external, bool):
        raise err(f"{path}.external", "expected true or false (use name: to give the volume's name)")
    driver = string(conf.get("driver", "") or "", f"{path}.driver")
    opts_raw = conf.get("driver_opts") or {}
    opts = {
        str(k): scalar_text(v, f"{path}.driver_opts.{k}")
        for k, v in mapping(
            opts_raw,
            f"{path}.driver_opts",
            tuple(map(str, opts_raw)) if isinstance(opts_raw, Mapping) else (),
        ).items()
    }
    if external and (driver or opts):
        raise err(f"{path}.driver", "an external volume already exists: it has no driver or driver_opts here")
    explicit = conf.get("name")
    explicit = string(explicit, f"{path}.name") if explicit is not None else ""
    # an empty name (what an unset variable leaves) is the default name, as in Compose and Swarm: an
    # empty mount source would be an anonymous volume, a new one for every task
    docker_name = explicit or (name if external else f"{stack}_{name}")
    return TopVolume(docker_name, driver, opts)


def _named(source: str, path: str, volumes: Mapping[str, TopVolume]) -> dict[str, Any]:
    if source not in volumes:
        raise err(path, f"volume {source!r} is not declared in the top-level volumes")
    vol = volumes[source]
    data: dict[str, Any] = {"source": vol.docker_name}
    if vol.driver:
        data["volume_driver"] = vol.driver
    if vol.driver_opts:
        data["volume_options"] = dict(vol.driver_opts)
    return data


def _bind_source(source: str, path: str) -> str:
    if windows_path(source):
        raise _refuse_windows(source, path)
    if source.startswith("~"):
        raise err(path, f"{source!r}: '~' needs HOME in the CLI's environment")
    if not source.startswith("/"):
        raise err(path, f"{source!r}: a relative path needs the Compose file's directory")
    return source


def volume(item: Any, path: str, volumes: Mapping[str, TopVolume], warn: Warn) -> dict[str, Any]:
    """One service ``volumes`` entry -> a mount dict for ``parse_mount``."""
    if isinstance(item, Mapping):
        conf = mapping(item, path, keys.VOLUME_MOUNT_KEYS)
        kind_ = conf.get("type", "volume")
        if kind_ not in ("bind", "volume", "tmpfs"):
            raise err(
                f"{path}.type",
                f"{kind_!r} is not supported (bind, volume or tmpfs; not image, npipe or cluster)",
            )
        if "target" not in conf:
            raise err(f"{path}.target", "is required")
        data: dict[str, Any] = {"type": kind_, "target": string(conf["target"], f"{path}.target")}
        data["readonly"] = conf.get("read_only", False)
        source = string(conf.get("source", "") or "", f"{path}.source")
        if kind_ == "bind":
            data["source"] = _bind_source(source, f"{path}.source")
            bind = mapping(conf.get("bind") or {}, f"{path}.bind", keys.VOLUME_BIND_KEYS)
            if "propagation" in bind:
                data["propagation"] = bind["propagation"]
            if "create_host_path" in bind:
                data["create_host_path"] = bind["create_host_path"]
            if "selinux" in bind:
                warn("ignoring volumes bind.selinux", "SELinux relabelling is not applied")
            if bind.get("recursive") not in (None, "enabled"):
                warn(
                    "ignoring volumes bind.recursive",
                    "submounts of a bind source are always mounted recursively, as with recursive: enabled",
                )
        elif kind_ == "volume":
            if source:
                data.update(_named(source, f"{path}.source", volumes))
            vol = mapping(conf.get("volume") or {}, f"{path}.volume", keys.VOLUME_VOLUME_KEYS)
            if "nocopy" in vol:
                data["nocopy"] = vol["nocopy"]
            if vol.get("labels") is not None:
                warn("ignoring volumes volume.labels", "labels of a volume created by a mount are not set")
            if vol.get("subpath") is not None:  # a node whose engine is older than API 1.45 fails the task
                data["subpath"] = string(vol["subpath"], f"{path}.volume.subpath")
        else:
            if source:
                raise err(f"{path}.source", "a tmpfs mount has no source")
            tmpfs = mapping(conf.get("tmpfs") or {}, f"{path}.tmpfs", keys.VOLUME_TMPFS_KEYS)
            if "size" in tmpfs:
                data["tmpfs_size"] = tmpfs["size"]
            if "mode" in tmpfs:
                data["tmpfs_mode"] = _yaml_octal(tmpfs["mode"])
        for other in ("bind", "volume", "tmpfs", "image"):
            if other != kind_ and conf.get(other):
                raise err(f"{path}.{other}", f"only applies to type: {other}")
        if "consistency" in conf:
            warn("ignoring volumes consistency", "a macOS Docker Desktop option; nothing to do on Linux")
        return _mount(data, path)
    text = string(item, path)
    rest = text[2:].split(":")  # compose-go keeps a drive's colon in the source (`v:/x` stays volume v)
    if windows_path(text) and (text.startswith("\\\\") or len(rest) > 1 and rest[1].startswith("/")):
        raise _refuse_windows(text[:2] + rest[0], path)
    parts = text.split(":")
    if len(parts) > 3 or not all(parts):
        raise err(path, f"{text!r}: expected [SOURCE:]TARGET[:MODE]")
    if len(parts) == 1:
        return _mount({"type": "volume", "target": parts[0]}, path)
    source, target = parts[0], parts[1]
    modes = [m for m in (parts[2] if len(parts) == 3 else "").split(",") if m]
    is_bind = source.startswith(("/", ".", "~"))
    data = {"type": "bind" if is_bind else "volume", "target": target, "readonly": "ro" in modes}
    if is_bind:
        data["source"] = _bind_source(source, path)
        data["create_host_path"] = True  # implied by the short syntax, as in Compose
    else:
        data.update(_named(source, path, volumes))
    for m in modes:
        if m in ("ro", "rw"):
            continue
        if m == "nocopy" and not is_bind:
            data["nocopy"] = True
        elif m in _PROPAGATIONS and is_bind:
            data["propagation"] = m
        elif m in _IGNORED_MODES:
            warn(f"ignoring volumes mode {m}", "SELinux labels and macOS consistency modes are not applied")
        else:
            raise err(
                path, f"{text!r}: mode {m!r} is not supported (ro, rw, nocopy, z, Z, propagation modes)"
            )
    return _mount(data, path)


def _mount(data: dict[str, Any], path: str) -> dict[str, Any]:
    """The canonical mount; a refused subpath named as the file writes it (``volume.subpath``)."""
    try:
        return parse_mount(data, fieldname=path).to_dict()
    except ConfigError as exc:
        field = f"{path}.subpath"
        if exc.field != field:
            raise
        raise err(f"{path}.volume.subpath", exc.message.removeprefix(f"{field}: ")) from None


def _yaml_octal(value: Any) -> Any:
    """``mode: 01777`` as compose-go reads it: go-yaml takes a leading zero for octal (1023), where
    PyYAML (YAML 1.2) leaves the text; ``1777`` stays the integer 1777, as in compose-go."""
    if isinstance(value, str) and _OCTAL_RE.fullmatch(value.strip()):
        return int(value.strip().removeprefix("0o"), 8)
    return value


def tmpfs_mounts(value: Any, path: str) -> list[dict[str, Any]]:
    """``tmpfs: /run`` or ``["/run:size=64m,mode=1777,noexec,uid=1000"]`` -> tmpfs mount dicts: every option
    Docker's ``--tmpfs`` takes reaches the engine, as Compose passes it (``rw`` is the default, ``ro`` a
    read-only tmpfs); one it does not know is refused naming the entry."""
    entries = [value] if isinstance(value, str) else value
    if not isinstance(entries, list):
        raise err(path, f"expected a path or a list of paths, got {kind(value)}")
    out = []
    for i, entry in enumerate(entries):
        where = path if isinstance(value, str) else f"{path}[{i}]"
        target, _, options = string(entry, where).partition(":")
        data: dict[str, Any] = {"type": "tmpfs", "target": target}
        others: list[str] = []
        for option in filter(None, (o.strip() for o in options.split(","))):
            key, _, val = option.partition("=")
            if key == "size":
                data["tmpfs_size"] = val
            elif key == "mode":
                try:
                    data["tmpfs_mode"] = int(val, 8)
                except ValueError:
                    raise err(where, f"invalid mode {val!r} (octal, e.g. 1777)") from None
            elif option in ("ro", "rw"):
                data["readonly"] = option == "ro"
            elif not key or any(c.isspace() for c in key):
                raise err(where, f"invalid tmpfs option {option!r}")
            else:
                others.append(option)
        if others:
            data["tmpfs_options"] = others
        try:
            out.append(_mount(data, where))
        except ConfigError as exc:
            field = f"{where}.tmpfs_options"
            raise err(where, exc.message.removeprefix(f"{field}: ")) if exc.field == field else exc from None
    return out


def check_mount_error(exc: ConfigError, path: str) -> ConfigError:
    """A parse_mount/parse_port error already names ``path``; other errors are renamed onto it."""
    if exc.field and exc.field.startswith(path):
        return exc
    return err(path, exc.message)
