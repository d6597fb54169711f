"""Whether an update computed against one spec may be written over the spec a service has now (pure).

Swarm versions each service (its ``Version.Index``): an update carries the version it was computed
from and is refused with "update out of sequence" when another write came first. p2porch's update is
a change (``--image``, ``--replicas``), merged into the spec the daemon reads where it writes; a request
redone on a newer record (control/fresh_read.py) or sent again after its first answer was lost (a leader
change: the CLI's retry) would merge its change into another writer's newer spec, to the same field
the later one winning: a silent overwrite. Its base is therefore the spec it was computed against,
named by :func:`spec_digest` (``base_spec`` of an update body): the daemon's own bookkeeping (a rollout
marked done, a rebalance cleared) leaves it as it is, so such a write is no reason to refuse.
:func:`decide` owns the rule and nothing else: a spec still at its base takes the update; one that moved
takes nothing when the update would change nothing (the retried write already committed, or the other
writer made the same change: idempotent), and refuses it otherwise, in Docker's words.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

from ..errors import ConfigError, ProposalTimeout

__all__ = ["OUT_OF_SEQUENCE", "base_digest", "decide", "out_of_sequence", "outcome_unknown_at", "spec_digest"]

OUT_OF_SEQUENCE = "update out of sequence"  # swarmkit's words (store.ErrSequenceConflict)
DIGEST_CHARS = 32

Decision = Literal["write", "nothing", "refuse"]


def spec_digest(spec: Mapping[str, Any]) -> str:
    """The digest of a spec in its stored form (``ServiceSpec.to_dict()``, or the ``spec`` of a service
    view: the same JSON), so the CLI and the daemon name one spec alike."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_CHARS]


def base_digest(value: Any) -> str:
    """``base_spec`` of an update body: a :func:`spec_digest`."""
    if not isinstance(value, str) or len(value) != DIGEST_CHARS or value.strip("0123456789abcdef"):
        raise ConfigError(f"base_spec must be the digest of a service spec, not {value!r}", field="base_spec")
    return value


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
def outcome_unknown_at(base: str) -> Iterator[None]:
    """An update's write whose outcome is unknown (ProposalTimeout) is answered with its ``base_spec``."""
    try:
        yield
    except ProposalTimeout as exc:
        raise ProposalTimeout(exc.message, field=exc.field, base_spec=base) from exc
