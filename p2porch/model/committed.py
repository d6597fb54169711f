"""Reading a service spec back from committed state: a journal entry or a snapshot (pure).

What the log committed is a fact every node applies the same way, whatever today's validator thinks
of it: a spec written by an older version (a looser rule then) or by a node of a newer one must never
make a node refuse the entry (nodes would disagree) or fail to start (a snapshot that does not load).
``committed_spec`` validates as usual and, when that fails, returns a placeholder spec that runs
nothing plus the reason; the service is recorded as invalid, keeps its raw spec (written back
unchanged into snapshots, so a version that reads it again gets it whole), and the leader leaves it
and its tasks alone, saying why. Validation at the edges (CLI, API, Compose) is unchanged.

A spec of a version before Go's template engine may hold, in an environment value or a mount source, a
``{{`` that is no Swarm template (a Compose application's ``{{ .Entry.Image }}``), which that version
passed to the container as written and today's check refuses: :func:`stored_spec` writes each such value
so that it still expands as then (``templates.stored_text``), before the spec is validated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from .group import INIT, SIDECAR
from .spec import ServiceSpec
from .templates import stored_text

__all__ = ["PLACEHOLDER_IMAGE", "committed_spec", "stored_spec"]

PLACEHOLDER_IMAGE = "p2porch.invalid/unreadable-spec"


def committed_spec(raw: Any, service_id: str) -> tuple[ServiceSpec, str]:
    """``(spec, "")`` for a valid spec; ``(placeholder, reason)`` for one that does not validate."""
    try:
        if not isinstance(raw, Mapping):
            raise ConfigError(f"spec is a {type(raw).__name__}, not a map", field="spec")
        return ServiceSpec.from_dict(stored_spec(raw)), ""
    except ConfigError as exc:
        reason = f"{exc.field or 'spec'}: {exc.message}"
    except Exception as exc:  # a shape the field parsers did not foresee: still a fact, never a crash
        reason = f"spec: {type(exc).__name__}: {exc}"
    name = raw.get("name") if isinstance(raw, Mapping) else None
    for candidate in (name, f"invalid-{service_id}"[:63].rstrip("-"), "invalid-service"):
        try:  # keep the recorded name when it is one, so the service can still be found and removed
            return ServiceSpec(name=candidate, image=PLACEHOLDER_IMAGE, replicas=0), reason  # type: ignore[arg-type]
        except (ConfigError, TypeError):
            continue
    raise AssertionError("unreachable: 'invalid-service' is a valid name")


def stored_spec(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    """``raw`` with its environment values and mount sources, and its task group's containers', in
    today's form (``templates.stored_text``: unchanged unless an older version stored a ``{{`` Swarm's
    check refuses); any other shape is left for the validator to judge."""
    out = _stored_container(raw)
    for group in (SIDECAR, INIT):
        members = raw.get(group)
        if isinstance(members, list):
            out[group] = [_stored_container(m) if isinstance(m, Mapping) else m for m in members]
    return out


def _stored_container(raw: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(raw)
    env = raw.get("env")
    if isinstance(env, Mapping):
        out["env"] = {k: stored_text(v) if isinstance(v, str) else v for k, v in env.items()}
    elif isinstance(env, list):  # K=V items
        out["env"] = [_stored_item(item) for item in env]
    mounts = raw.get("mounts")
    if isinstance(mounts, list):
        out["mounts"] = [
            {**m, "source": stored_text(m["source"])}
            if isinstance(m, Mapping) and isinstance(m.get("source"), str)
            else m
            for m in mounts
        ]
    return out


def _stored_item(item: Any) -> Any:
    if not isinstance(item, str) or "=" not in item:
        return item
    key, _, value = item.partition("=")
    return f"{key}={stored_text(value)}"
