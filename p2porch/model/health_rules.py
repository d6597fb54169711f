"""The rule that a health check which is off takes no settings (pure; shared by the CLI and the API).

A check whose test is ``NONE`` runs nothing, so an interval, timeout, retries or start period given with
it would be stored and never used: the CLI refuses ``--health-interval`` on a ``--no-healthcheck``
service, and the API (service create and update) refuses ``{"test": ["NONE"], "interval":
"5s"}`` with 400 naming the field. A spec stored so before the rule still loads (``HealthSpec`` reads
it as it is) and an update that leaves that check as it is is not refused for it. An update that turns
a check off replaces it whole (:func:`turns_the_check_off`; control/spec_merge.py), as docker/cli's
``--no-healthcheck`` does, so the settings of the check it ends are never kept. A Compose file's
``healthcheck`` with test ``NONE`` and settings is taken, its settings dropped (stack/deploy.py), as
Compose and the engine ignore them; a stack deploy's resolved specs are checked by its plan, before
its first write (a redeploy keeps a check stored off with settings: :func:`off_check_kept`). Owns the
rule only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .container import HealthSpec
from .units import field_error

if TYPE_CHECKING:
    from .spec import ServiceSpec

__all__ = [
    "HEALTH_SETTINGS",
    "check_off_checks",
    "off_check_kept",
    "refuse_settings_of_an_off_check",
    "settings_of_an_off_check",
    "turns_the_check_off",
]

#: a health check's settings (the stored names; ``cmd`` is its test) as the user names them
HEALTH_SETTINGS = {
    "interval_s": "interval",
    "timeout_s": "timeout",
    "retries": "retries",
    "start_period_s": "start_period",
    "start_interval_s": "start_interval",
}
_OFF = HealthSpec(("NONE",))


def turns_the_check_off(health: Any) -> bool:
    """Whether a ``health`` map as given (an update's change, a Compose ``healthcheck``) has a test
    (``cmd``/``test``) of ``NONE``: ``["NONE", ...]``, or ``"NONE"`` as ``HealthSpec.from_dict`` reads a
    string. Such a check is off: none of its settings can stay (docker/cli's ``--no-healthcheck``
    replaces the whole Healthcheck with ``{Test: ["NONE"]}``)."""
    if not isinstance(health, Mapping):
        return False
    test = health.get("cmd", health.get("test"))
    if isinstance(test, str):
        return test.strip() == "NONE"
    return isinstance(test, list | tuple) and bool(test) and test[0] == "NONE"


def settings_of_an_off_check(health: HealthSpec | None) -> list[str]:
    """The settings (user names: ``interval``) a check that is off (test ``NONE``) sets to other than
    the defaults: none can run, so a request that sets them is refused (the CLI's ``--health-interval``
    on a ``--no-healthcheck`` service, the API's ``{"test": ["NONE"], "interval": "5s"}``)."""
    if health is None or not health.disabled:
        return []
    return [name for key, name in HEALTH_SETTINGS.items() if getattr(health, key) != getattr(_OFF, key)]


def off_check_kept(before: ServiceSpec, after: ServiceSpec) -> ServiceSpec:
    """``after`` with ``before``'s health check when both are off: a stack redeploy (a whole spec) of a
    service stored with settings on its check that is off (before the rule) leaves it as it is, where
    dropping settings that never run rolled every task once though the file had not changed."""
    old, new = before.health, after.health
    if old is not None and new is not None and old.disabled and new.disabled:
        return replace(after, health=old)
    return after


def refuse_settings_of_an_off_check(
    health: HealthSpec | None, before: HealthSpec | None = None, prefix: str = "health"
) -> None:
    """ConfigError naming ``{prefix}.{setting}`` for :func:`settings_of_an_off_check`; a check stored
    so (``before``, written before the rule) and left as it is stays accepted: it still loads."""
    settings = settings_of_an_off_check(health)
    if settings and health != before:
        raise field_error(
            f"{prefix}.{settings[0]}",
            f"the health check is off (test NONE), so {', '.join(settings)} would never run: give a "
            "command (test CMD or CMD-SHELL) to check with them, or leave them out",
        )


def check_off_checks(spec: ServiceSpec, before: ServiceSpec | None = None) -> None:
    """:func:`refuse_settings_of_an_off_check` for a service spec's check and each sidecar's
    (``before``: the stored spec an update replaces)."""
    refuse_settings_of_an_off_check(spec.health, before.health if before is not None else None)
    stored = {m.name: m.health for m in (before.sidecars if before is not None else ())}
    for i, member in enumerate(spec.sidecars):
        refuse_settings_of_an_off_check(member.health, stored.get(member.name), f"sidecars[{i}].health")
