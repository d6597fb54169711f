"""Reading a service spec back from committed state: a journal entry or a snapshot (pure).

What the log committed is a fact every node applies the same way, whatever today's validator thinks
of it: a spec written by an older version (a looser rule then) or by a node of a newer one must never
make a node refuse the entry (nodes would disagree) or fail to start (a snapshot that does not load).
``committed_spec`` validates as usual and, when that fails, returns a placeholder spec that runs
nothing plus the reason; the service is recorded as invalid, keeps its raw spec (written back
unchanged into snapshots, so a version that reads it again gets it whole), and the leader leaves it
and its tasks alone, saying why. Validation at the edges (CLI, API, Compose) is unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from .spec import ServiceSpec

__all__ = ["PLACEHOLDER_IMAGE", "committed_spec"]

PLACEHOLDER_IMAGE = "p2porch.invalid/unreadable-spec"


def committed_spec(raw: Any, service_id: str) -> tuple[ServiceSpec, str]:
    """``(spec, "")`` for a valid spec; ``(placeholder, reason)`` for one that does not validate."""
    try:
        if not isinstance(raw, Mapping):
            raise ConfigError(f"spec is a {type(raw).__name__}, not a map", field="spec")
        return ServiceSpec.from_dict(raw), ""
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
