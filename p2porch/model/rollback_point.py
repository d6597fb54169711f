"""A service's rollback point: what an update records and what a rollback restores (pure).

As Docker Swarm's ``PreviousSpec``: every update that changes the spec, whatever it changes (image,
replicas, labels, update policy, ports...), keeps the spec it replaced, so `service rollback` undoes the
last update; a rollback swaps the two (a second one undoes the first). An update that changes nothing
keeps the record as it was. Only a change of what tasks run (the template) starts a rollout; a rollback
that leaves the template as it is replaces no task and is complete as soon as it is written. Never
writes anything: the API and the leader commit what these functions return.
"""

from __future__ import annotations

from dataclasses import dataclass

from .container import UpdateConfig
from .records import Service
from .rollout import Rollout
from .spec import ServiceSpec


@dataclass(frozen=True, slots=True)
class SpecChange:
    """A service's spec, rollback point and rollout after an update or a rollback; ``fields``: the spec
    keys that differ from the spec before (empty: nothing changed, nothing to write)."""

    spec: ServiceSpec
    previous_spec: ServiceSpec | None
    rollout: Rollout | None
    fields: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.fields)


def changed_fields(old: ServiceSpec, new: ServiceSpec) -> tuple[str, ...]:
    """The top-level keys of the stored spec (``ServiceSpec.to_dict``) whose values differ, sorted."""
    before, after = old.to_dict(), new.to_dict()
    return tuple(sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k)))


def updated(service: Service, spec: ServiceSpec, now: float, reason: str = "") -> SpecChange:
    """``service`` updated to ``spec``: the spec it had becomes the rollback point when anything
    changed; a new rollout (state ``updating``) when the template changed, else a paused one resumed
    (``resumed``), and never for a job (a job is not rolled: its change starts a new execution; a
    rollout no one completes said ``updating`` for ever)."""
    fields = changed_fields(service.spec, spec)
    rollout = resumed(service, now)
    if not fields:
        return SpecChange(service.spec, service.previous_spec, rollout, ())
    if spec.template_hash() != service.spec.template_hash() and not spec.is_job:
        rollout = Rollout.update(now, reason)
    return SpecChange(spec, service.spec, rollout, fields)


def resumed(service: Service, now: float) -> Rollout | None:
    """The rollout record an update of ``service`` writes when it changes no template: a paused one
    restarted at ``now`` (any update resumes it, as Swarm's), else the record as it is."""
    if not service.update_paused or service.spec.is_job:  # a job has no rollout to resume
        return service.rollout
    return Rollout.update(now, "resumed") if service.rollout is None else service.rollout.restarted(now)


def rolled_back(service: Service, now: float, reason: str, policy: UpdateConfig | None) -> SpecChange | None:
    """``service`` back to its rollback point, the spec it leaves kept as the next one (None: it has
    none). Rolled out with ``policy`` (the rollback config of the spec left) when the template changes;
    otherwise nothing is replaced and the rollout record says the rollback completed."""
    target = service.previous_spec
    if target is None:
        return None
    rollout = Rollout.rolling_back(now, policy, reason)
    if target.template_hash() == service.spec.template_hash():
        rollout = rollout.done()
    return SpecChange(target, service.spec, rollout, changed_fields(service.spec, target))


def restores_template(service: Service) -> bool:
    """Whether rolling ``service`` back would change what its tasks run (what an automatic rollback
    of a failed update needs: a rollback point with the same template would replace nothing)."""
    previous = service.previous_spec
    return previous is not None and previous.template_hash() != service.spec.template_hash()
