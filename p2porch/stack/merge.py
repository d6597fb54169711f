"""Compose merge rules: several files (and ``extends``) into one model (pure).

Owns the rules of the Compose specification's "Merge and override" chapter: mappings merge key by key,
sequences append, ``command``/``entrypoint``/``healthcheck.test`` are replaced, ``ports``, ``volumes``,
``secrets`` and ``configs`` merge by their unique key (target; ports by ip/target/published/protocol),
``environment``/``labels``/... merge by variable whatever their syntax, ``!reset`` removes and
``!override`` replaces; and compose-go's rules for what the chapter leaves open: a null keeps the earlier
value (but for a service's ``command``, ``entrypoint`` and ``healthcheck.test``), ``logging`` of another
driver and each ``ulimits`` entry replace, ``tmpfs``/``dns``/``extra_hosts`` written as one string (or a
mapping) append as sequences. Values are never mutated: merging builds new containers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .yamlsafe import RESET, Override, Reset

#: service keys whose list or ``K=V`` forms are turned into mappings before merging
_KEYED_LISTS = ("environment", "labels", "sysctls", "annotations")
#: keys whose value replaces the earlier one instead of appending
_REPLACED = ("command", "entrypoint", "test")
#: a service's own keys a null in a later file replaces (compose-go's ``override`` rule): the image's
#: command or entrypoint again
_NULL_REPLACED = ("command", "entrypoint")
#: sequences merged by a unique key
_UNIQUE = ("ports", "volumes", "secrets", "configs")
#: keys taking one string or a list, merged as lists (compose-go's ``mergeToSequence``: ``tmpfs: /tmp``
#: then ``tmpfs: /run`` mounts both); ``extra_hosts`` also in its mapping form, as ``HOST=IP`` entries
_SEQUENCES = ("tmpfs", "dns", "dns_search", "dns_opt", "extra_hosts")


def key_value_map(value: Any, separator: str = "=", bare: str | None = None) -> Any:
    """``["K=V", "K2"]`` -> ``{"K": "V", "K2": bare}``; a mapping or anything else is returned as is.
    ``bare`` is what a key without a separator holds: ``None`` (unset) for ``environment``, ``""`` for
    labels and the other string mappings, as compose-go reads them (``MappingWithEquals`` vs ``Mapping``).
    In those string mappings a key loses the blanks around it (``APP = X`` is the key ``APP``, value
    `` X``): compose-go and Swarm keep ``"APP "``, a label key no service spec takes (values.key_values)."""
    if not isinstance(value, list):
        return value
    out: dict[str, Any] = {}
    for item in value:
        if not isinstance(item, str):
            return value  # left for validation to report
        key, sep, val = item.partition(separator)
        out[key if bare is None else key.strip()] = val if sep else bare
    return out


def _depends_map(value: Any) -> Any:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return {name: {"condition": "service_started"} for name in value}
    return value


def _networks_map(value: Any) -> Any:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return {name: None for name in value}
    return value


def normalize_service(conf: Any) -> Any:
    """The forms of a service definition that merge by key (list syntaxes turned into mappings)."""
    if not isinstance(conf, Mapping):
        return conf
    out = dict(conf)
    for key in _KEYED_LISTS:
        if key in out:
            out[key] = key_value_map(out[key], bare=None if key == "environment" else "")
    if "depends_on" in out:
        out["depends_on"] = _depends_map(out["depends_on"])
    if "networks" in out:
        out["networks"] = _networks_map(out["networks"])
    for key in ("env_file", "label_file"):
        if isinstance(out.get(key), str):
            out[key] = [out[key]]
    deploy = out.get("deploy")
    if isinstance(deploy, Mapping) and "labels" in deploy:
        out["deploy"] = {**deploy, "labels": key_value_map(deploy["labels"], bare="")}
    return out


def _unique_key(name: str, item: Any) -> Any:
    """The identity of one entry of ports/volumes/secrets/configs (unhashable entries: their repr)."""
    if name == "ports":
        if isinstance(item, Mapping):
            return (
                "map",
                str(item.get("host_ip", "")),
                str(item.get("target")),
                str(item.get("published", "")),
                str(item.get("protocol", "tcp")),
            )
        return ("str", str(item))
    if name == "volumes":
        if isinstance(item, Mapping):
            return str(item.get("target"))
        if isinstance(item, str):
            parts = item.split(":")
            return parts[1] if len(parts) > 1 else parts[0]
    if name in ("secrets", "configs"):
        if isinstance(item, Mapping):
            return str(item.get("target") or item.get("source"))
        return str(item)
    return repr(item)


def _merge_unique(name: str, base: list[Any], override: list[Any]) -> list[Any]:
    merged: dict[Any, Any] = {}
    for item in [*base, *override]:
        key = _unique_key(name, item)
        previous = merged.get(key)
        if isinstance(previous, Mapping) and isinstance(item, Mapping):
            merged[key] = merge_values(previous, item, name)
        else:
            merged.pop(key, None)  # re-insert: the later file's entry comes last
            merged[key] = item
    return list(merged.values())


def _as_sequence(value: Any) -> Any:
    """One string as a list of it, an ``extra_hosts`` mapping as ``HOST=IP`` entries; else as is."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [
            f"{host}={address}"
            for host, addresses in value.items()
            for address in (addresses if isinstance(addresses, list) else [addresses])
        ]
    return value


def merge_values(base: Any, override: Any, key: str = "") -> Any:
    """``override`` merged onto ``base`` under the rules above (``key`` is the last path segment).

    A null (``ports:`` or ``restart:`` with nothing, or only comments) keeps the earlier value, as
    compose-go's ``mergeYaml`` merges it, whatever its key (a network or volume named ``test`` too). The
    nulls that replace are merge_service's (``command``, ``entrypoint``) and _merge_healthcheck's."""
    if isinstance(override, Override):
        return override.value
    if isinstance(override, Reset):
        return RESET
    if override is None:
        return base
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        out = dict(base)
        for k, v in override.items():
            out[k] = merge_values(out[k], v, str(k)) if k in out else v
        return out
    if isinstance(base, list) and isinstance(override, list):
        if key in _REPLACED:
            return list(override)
        if key in _UNIQUE:
            return _merge_unique(key, base, override)
        out_list = list(base)
        for item in override:
            if item not in out_list:
                out_list.append(item)
        return out_list
    return override


def _merge_logging(base: Any, override: Any) -> Any:
    """``logging`` naming another driver replaces the earlier one, options included (they are the other
    driver's); with the same driver, or one side without, they merge (compose-go's ``mergeLogging``)."""
    both = isinstance(base, Mapping) and isinstance(override, Mapping)
    if both and "driver" in base and "driver" in override and base["driver"] != override["driver"]:
        return override
    return merge_values(base, override, "logging")


def _merge_ulimits(base: Any, override: Any) -> Any:
    """Each ``ulimits`` entry is replaced whole (compose-go's ``mergeUlimit``)."""
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        return {**base, **override}
    return override


def _merge_healthcheck(base: Any, override: Any) -> Any:
    """``healthcheck`` merges key by key; a null ``test`` is kept, to be refused as Compose's schema
    refuses it."""
    if isinstance(base, Mapping) and isinstance(override, Mapping) and override.get("test", 0) is None:
        rest = {k: v for k, v in override.items() if k != "test"}
        return {**merge_values(base, rest, "healthcheck"), "test": None}
    return merge_values(base, override, "healthcheck")


def _merge_sequence(key: str) -> Callable[[Any, Any], Any]:
    def merge(base: Any, override: Any) -> Any:
        if isinstance(base, Mapping) and isinstance(override, Mapping):
            return merge_values(base, override, key)  # extra_hosts mappings: by host name
        return merge_values(_as_sequence(base), _as_sequence(override), key)

    return merge


#: a service's keys with a merge rule of their own (compose-go's ``mergeSpecials``)
_SERVICE_RULES: dict[str, Callable[[Any, Any], Any]] = {
    "logging": _merge_logging,
    "ulimits": _merge_ulimits,
    "healthcheck": _merge_healthcheck,
    **{key: _merge_sequence(key) for key in _SEQUENCES},
}


def merge_service(base: Any, override: Any) -> Any:
    """One service's definition (normalised) merged onto an earlier one: another file's, or the service
    it ``extends``. A null ``command`` or ``entrypoint`` replaces the earlier value and a null
    ``healthcheck.test`` is kept to be refused naming the key, as Compose's schema refuses the merged
    model; merge_values keeps the earlier value for any other null (``environment:`` and ``env_file:``
    too: compose-go's ``mergeToSequence`` keeps the base)."""
    if not (isinstance(base, Mapping) and isinstance(override, Mapping)):
        return merge_values(base, override)
    out = dict(base)
    for k, v in override.items():
        rule = _SERVICE_RULES.get(k)
        if k not in out:
            out[k] = v
        elif v is None and k in _NULL_REPLACED:
            out[k] = None
        elif rule is not None and v is not None and not isinstance(v, Override | Reset):
            out[k] = rule(out[k], v)
        else:
            out[k] = merge_values(out[k], v, str(k))
    return out


def merge_documents(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Two whole Compose documents (services normalised first so list syntaxes merge by key)."""
    out = dict(base)
    for key, value in override.items():
        if key == "services" and isinstance(value, Mapping) and not isinstance(out.get(key), Mapping):
            out[key] = {name: normalize_service(conf) for name, conf in value.items()}
        elif key == "services" and isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            services = dict(out[key])
            for name, conf in value.items():
                conf = normalize_service(conf)
                services[name] = (
                    merge_service(normalize_service(services[name]), conf) if name in services else conf
                )
            out[key] = services
        elif key in out:
            out[key] = merge_values(out[key], value, key)
        else:
            out[key] = value
    return out


def strip_markers(value: Any) -> Any:
    """The model without ``!reset`` keys and entries, and with ``!override`` values unwrapped."""
    if isinstance(value, Override):
        return strip_markers(value.value)
    if isinstance(value, Mapping):
        return {k: strip_markers(v) for k, v in value.items() if not isinstance(v, Reset)}
    if isinstance(value, list):
        return [strip_markers(v) for v in value if not isinstance(v, Reset)]
    return value
