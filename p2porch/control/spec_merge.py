"""How an update's changes merge into a stored spec (pure helpers of ``control/service_ops.py``).

Owns the merge only: top-level keys replaced, the nested sections merged, a field named with or without
its unit replacing the stored spelling, networks and file references edited as an update takes them.
A health check turned off (test ``NONE``) replaces the whole ``health`` section, as docker/cli's
``--no-healthcheck`` replaces the Healthcheck with ``{Test: ["NONE"]}``. Validating the result is the
caller's.

A stack deploy (``whole``) sends the whole spec, as ``docker stack deploy`` sends the whole ServiceSpec:
it replaces the spec, sections included, so a setting the file no longer has goes (merged key by key, a
``read_only`` or a ``start_interval`` removed from the file stayed, and the service read "updated" at
every redeploy after). Only what the cluster owns is kept (:data:`CLUSTER_KEPT`).
"""

from __future__ import annotations

from typing import Any

from ..model import ServiceSpec
from ..model.health_rules import turns_the_check_off
from .network_ops import network_changes
from .secret_ops import file_ref_changes

__all__ = ["CLUSTER_KEPT", "merge_spec", "updated_spec_dict"]

#: what a whole-spec replace keeps of the stored spec: ``--force``'s counter (a file has none; the versions
#: of unpinned secret/config references are kept by ``resolve_file_refs``, not by the merge)
CLUSTER_KEPT = ("force_update",)

#: unit suffixes of a stored spec's keys: ``delay_s`` is what ``--update-delay`` sends as ``delay``
_UNIT_SUFFIXES = ("_s", "_bytes", "_nanos")
#: other names a change may give a stored key by (health ``test``, as Compose names it, is ``cmd``;
#: ``--placement-pref`` sends ``placement_prefs``)
_ALIASES = {"test": "cmd", "placement_prefs": "placement_preferences"}


def _field(key: str) -> str:
    """The field a spec key names, whatever its spelling (``delay``/``delay_s``, ``reserve_memory``)."""
    key = _ALIASES.get(key, key)
    for suffix in _UNIT_SUFFIXES:
        if key.endswith(suffix):
            return key[: -len(suffix)]
    return key


def _replace(merged: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key``, dropping the stored spelling of the same field (the spec refuses a field given twice)."""
    field = _field(key)
    for other in [k for k in merged if k != key and _field(k) == field]:
        del merged[other]
    merged[key] = value


def merge_spec(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``current`` with top-level keys of ``changes`` replaced; the nested maps (health, restart, update,
    rollback, container, schedule) merge. A change may name a field as a user does (``delay: 4s``) where
    the stored spec has its unit (``delay_s: 4.0``): it replaces that field. A ``health`` change that
    turns the check off (:func:`turns_the_check_off`) replaces the section, as Docker's: the interval of
    the check it ends is not kept (a check that is off takes no settings: model/health_rules.py)."""
    merged = dict(current)
    for key, value in changes.items():
        if (
            key in ("health", "restart", "update", "rollback", "container", "schedule")
            and isinstance(value, dict)
            and isinstance(merged.get(key), dict)
            and not (key == "health" and turns_the_check_off(value))
        ):
            section = dict(merged[key])
            for sub, subvalue in value.items():
                _replace(section, sub, subvalue)
            merged[key] = section
        else:
            _replace(merged, key, value)
    return merged


def updated_spec_dict(current: ServiceSpec, changes: dict[str, Any], whole: bool = False) -> dict[str, Any]:
    """The spec an update of ``current`` by ``changes`` validates: ``changes`` merged in
    (:func:`merge_spec`), its networks and file references as the update takes them. ``whole`` (a stack
    deploy): ``changes`` is the whole spec, only :data:`CLUSTER_KEPT` taken from ``current``."""
    spec = current.to_dict()
    changes = network_changes(spec, file_ref_changes(spec, changes))
    if whole:
        return merge_spec({k: spec[k] for k in CLUSTER_KEPT if k in spec}, changes)
    return merge_spec(spec, changes)
