"""What ``stack config`` prints: the resolved Compose model as ``docker compose config`` prints it (pure).

Owns the differences between the model p2porch resolves (interpolated, merged, profiles applied) and the
one compose-go prints after normalising it: ``environment`` values as strings with ``env_file`` values
merged in, ``label_file`` labels merged into ``labels``, and the ``depends_on`` entries that ``links``,
``volumes_from`` and ``service:`` namespaces imply, every entry in the long form. Never reads files
(the values read are handed in) and never changes what is deployed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from .implied import implied_dependencies
from .values import scalar_text


def printed_model(
    model: Mapping[str, Any],
    environ: Mapping[str, str],
    environments: Mapping[str, Mapping[str, Any]],
    labels: Mapping[str, Mapping[str, str]],
) -> Mapping[str, Any]:
    """``model`` as ``docker compose config`` prints it: each service's ``environment`` values are strings
    (compose-go's ``MappingWithEquals``: ``true`` -> "true", ``8080`` -> "8080") and a key without a value
    takes the variable from ``environ``, or stays without one (null) when it is unset there. A service's
    ``env_file`` values are merged under its ``environment`` and its ``label_file`` labels under its
    ``labels``, and both keys dropped (compose-go's ``WithServicesEnvironmentResolved`` and
    ``WithServicesLabelsResolved`` with ``WithDiscardEnvFile``): ``environments`` and ``labels`` are what
    the mapping read (``StackContext``), the values the spec holds, so the two agree. ``labels``,
    ``deploy.labels`` and ``sysctls`` values are printed as those strings too (``7.2e3`` as "7200").
    ``depends_on`` is printed as compose-go normalises it (``_depends_on``)."""
    services = model.get("services")
    if not isinstance(services, Mapping):
        return model
    printed: dict[str, Any] = {}
    for short, conf in services.items():
        if not isinstance(conf, Mapping):
            printed[short] = conf
            continue
        env = conf.get("environment")
        if "env_file" in conf and short in environments:
            conf = _replaced(conf, "env_file", "environment", dict(environments[short]))
        elif isinstance(env, Mapping):
            conf = {**conf, "environment": {k: _env_text(k, v, environ) for k, v in env.items()}}
        if "label_file" in conf and short in labels:
            conf = _replaced(conf, "label_file", "labels", dict(labels[short]))
        for key in ("labels", "sysctls"):  # compose-go's string maps: 7.2e3 is printed "7200"
            if isinstance(conf.get(key), Mapping):
                conf = {**conf, key: _texts(conf[key])}
        deploy = conf.get("deploy")
        if isinstance(deploy, Mapping) and isinstance(deploy.get("labels"), Mapping):
            conf = {**conf, "deploy": {**deploy, "labels": _texts(deploy["labels"])}}
        depends_on = _depends_on(short, conf, services)
        if depends_on:
            conf = {**conf, "depends_on": depends_on}
        printed[short] = conf
    return {**model, "services": printed}


def _replaced(conf: Mapping[str, Any], files_key: str, key: str, merged: dict[str, Any]) -> dict[str, Any]:
    """``conf`` without ``files_key``, with ``merged`` as ``key`` (dropped when empty)."""
    out = {k: v for k, v in conf.items() if k != files_key}
    if merged:
        out[key] = merged
    else:
        out.pop(key, None)
    return out


def _env_text(key: Any, value: Any, environ: Mapping[str, str]) -> Any:
    if value is None:
        return environ.get(key) if isinstance(key, str) else None
    try:
        return scalar_text(value, "environment")
    except ConfigError:  # not a scalar: refused with its path by the service mapping
        return value


def _texts(mapping: Mapping[Any, Any]) -> dict[Any, Any]:
    """A mapping's scalar values as the strings the mapping gives the spec ("" for none)."""
    return {k: "" if v is None else _env_text(k, v, {}) for k, v in mapping.items()}


def _depends_on(short: str, conf: Mapping[str, Any], services: Mapping[str, Any]) -> dict[str, Any]:
    """A service's ``depends_on`` as compose-go prints it: each entry with its ``condition``
    (``service_started`` by default), ``restart`` only when true, and ``required`` (true by default); then
    the entries compose-go adds for what the service names without one, only for services of the model
    (``implied.implied_dependencies``, which the deploy's start order takes as well)."""
    out: dict[str, Any] = {}
    given = conf.get("depends_on")
    for name, entry in given.items() if isinstance(given, Mapping) else ():
        out[name] = _entry(entry) if isinstance(entry, Mapping) else entry
    for name, restart in implied_dependencies(short, conf, services).items():
        if name not in out:
            out[name] = _entry({"restart": restart})
    return out


def _entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """One ``depends_on`` entry in compose-go's order (``condition``, ``restart``, ``required``), with its
    defaults; ``restart: false`` is left out as compose-go leaves it out."""
    out: dict[str, Any] = {"condition": entry.get("condition") or "service_started"}
    if entry.get("restart"):
        out["restart"] = entry["restart"]
    out["required"] = entry.get("required", True)
    out.update({k: v for k, v in entry.items() if k not in ("condition", "restart", "required")})
    return out


__all__ = ["printed_model"]
