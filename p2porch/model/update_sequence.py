"""Whether an update computed against one spec may be written over the spec a service has now (pure).

Swarm versions each service (its ``Version.Index``): an update carries the version it was computed
from and is refused with "update out of sequence" when another write came first. p2porch's update is
a change (``--image``, ``--replicas``), merged into the spec the daemon reads where it writes; a request
redone on a newer record (control/fresh_read.py) or sent again after its first answer was lost (a leader
change: the CLI's retry) would merge its change into another writer's newer spec, to the same field
the later one winning: a silent overwrite. Its base is therefore the spec it was computed against,
named by :func:`spec_digest` (``base_spec`` of an update body): the daemon's own bookkeeping (a rollout
marked done, a rebalance cleared) leaves it as it is, so such a write is no reason to refuse it.
:func:`decide` owns the rule and nothing else: a spec still at its base takes the update; one that moved
takes nothing when the update would change nothing (the retried write already committed, or the other
writer made the same change: idempotent, ``already`` to a resend), and refuses it otherwise, in Docker's
words. Three writes of the cluster itself change the spec: the autoscaler (``replicas``), the roll of a
new secret/config version (the versions of unpinned references) and the automatic rollback.
:func:`moved_by_the_cluster` tells the first two from a user's write (a hand scale included): an
update is then merged into the newer spec, not refused (a resend never into a roll), after any number
of them: the FSM keeps, per service, the state version of the last write that was not one of them
(:func:`user_version`), so an update read at an older record version than that one is refused and one
read after it is merged. A retry
also names the rollback point it read (``base_previous``, a digest): a spec that left its base and came
back (a rollback between the lost answer and the retry) is refused, not written over again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

from ..errors import ConfigError, ProposalTimeout
from .autoscale_spec import AutoscaleStep
from .records import Service
from .spec import ServiceSpec

__all__ = [
    "OUT_OF_SEQUENCE",
    "base_digest",
    "decide",
    "moved_by_the_cluster",
    "out_of_sequence",
    "outcome_unknown_at",
    "previous_digest",
    "spec_digest",
    "user_version",
]

OUT_OF_SEQUENCE = "update out of sequence"  # swarmkit's words (store.ErrSequenceConflict)
DIGEST_CHARS = 32

Decision = Literal["write", "nothing", "refuse"]


def spec_digest(spec: Mapping[str, Any]) -> str:
    """The digest of a spec in its stored form (``ServiceSpec.to_dict()``, or the ``spec`` of a service
    view: the same JSON), so the CLI and the daemon name one spec alike."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_CHARS]


def base_digest(value: Any, field: str = "base_spec") -> str:
    """``base_spec`` (or ``base_previous``) of an update body: a :func:`spec_digest`."""
    if not isinstance(value, str) or len(value) != DIGEST_CHARS or value.strip("0123456789abcdef"):
        raise ConfigError(f"{field} must be the digest of a service spec, not {value!r}", field=field)
    return value


def previous_digest(service: Service) -> str:
    """The digest of a service's rollback point (of ``{}`` when it has none)."""
    return spec_digest(service.previous_spec.to_dict() if service.previous_spec is not None else {})


def _but_a_roll_moves(spec: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(spec)
    for key in ("secrets", "configs"):  # an unpinned reference follows its object's versions
        out[key] = [
            {k: v for k, v in ref.items() if k != "version" or ref.get("pinned")}
            for ref in spec.get(key) or ()
        ]
    return out


def user_version(
    before: Service,
    spec: ServiceSpec,
    step: AutoscaleStep | None,
    version: int,
    invalid: bool,
    raw: Any = None,
) -> int | None:
    """``before.user_version`` after a write of ``spec`` at state ``version`` (the FSM's, deterministic):
    kept when the spec is the same or moved by the cluster's own work only: a new autoscale step
    (``step``) that set the replicas alone to its ``to_replicas``, or a roll (only the versions of
    unpinned references moved); ``version`` for any other change (a user's, a hand scale, the automatic
    rollback), and for a spec that does not validate on either side (``invalid``) unless it is the same
    spec as committed (``raw``: the write's spec when this node cannot read it, None when it can; a
    bookkeeping write re-sends the stored spec). Unknown (None) stays unknown through the cluster's
    moves."""
    kept = before.user_version
    if spec == before.spec and raw == before.invalid_spec:  # placeholders alike: compared as committed
        return kept
    if invalid:
        return version
    old, new = before.spec.to_dict(), spec.to_dict()
    stepped = step is not None and step != before.autoscale_last and step.to_replicas == spec.replicas
    if stepped and {**old, "replicas": spec.replicas} == new:
        return kept
    return kept if _but_a_roll_moves(old) == _but_a_roll_moves(new) else version


def moved_by_the_cluster(service: Service, base: str, previous: str | None, read_at: int | None) -> bool:
    """Whether the spec left ``base`` (read with the rollback point ``previous``, in the record of version
    ``read_at``; None: a resend, whose caller named its base) through the cluster's own work only. Read
    here: no write other than the cluster's since (``Service.user_version`` not above ``read_at``), any
    number of them. A resend: the autoscaler's last step to the ``replicas`` it has now (from the replicas
    of ``base``, its rollback point kept), or one roll of a new secret/config version (the versions of
    unpinned references; the roll makes ``base`` the rollback point). An update computed on ``base`` is
    then merged into the spec now rather than refused. A user's scale is never taken for the
    autoscaler's; a resend is never merged into a roll, whose rollback point overwrote the one the resend
    read (a rollback in between could not be told)."""
    if read_at is not None and service.user_version is not None and service.user_version <= read_at:
        return True
    resend = read_at is None
    spec = service.spec.to_dict()
    last = service.autoscale_last
    if (
        last is not None
        and last.to_replicas == service.spec.replicas
        and spec_digest({**spec, "replicas": last.from_replicas}) == base
        and (previous is None or previous == previous_digest(service))
    ):
        return True
    before = service.previous_spec.to_dict() if service.previous_spec is not None else None
    return (
        not resend
        and before is not None
        and spec_digest(before) == base
        and _but_a_roll_moves(before) == _but_a_roll_moves(spec)
    )


def decide(base: str, current: str, changes_it: bool) -> Decision:
    """``base``: the digest of the spec the update was computed against; ``current``: of the spec now;
    ``changes_it``: the update (merged into the spec now) would change it."""
    if base == current:
        return "write" if changes_it else "nothing"
    return "refuse" if changes_it else "nothing"


def out_of_sequence(name: str) -> str:
    """The refusal's message: Docker's words, then what happened and what to do."""
    return (
        f"{OUT_OF_SEQUENCE}: service {name} changed since this update read it (another update committed "
        "first); nothing was written: inspect it and run the update again if you still want it"
    )


@contextmanager
def outcome_unknown_at(base: str, previous: str) -> Iterator[None]:
    """An update's write whose outcome is unknown (ProposalTimeout) is answered with its ``base_spec``
    and the digest of the rollback point it read (``base_previous``)."""
    try:
        yield
    except ProposalTimeout as exc:
        raise ProposalTimeout(exc.message, field=exc.field, base_spec=base, base_previous=previous) from exc
