"""A service update whose outcome is unknown (the Raft leader changed before it was acknowledged) sent
again once, at the base it was computed against (shell helper of ``cli/service.py``).

The daemon answers ``ProposalTimeout`` (504) when a write may or may not have committed, with the
``base_spec`` of an update (the digest of the spec it merged the change into) and ``base_previous`` (of
the rollback point it read: model/update_sequence.py). The CLI sends the same update again with those:
the daemon then writes it (it had not committed), answers ``already`` (it had, or another writer made
the same change: the spec already is what the update makes it; the CLI waits for that rollout as for
any write), or refuses it "update out of sequence" (another write changed the spec meanwhile, a rollback
included), never merging it into that write. Not sent again: an update with the user's own
``expected_version`` (``--if-version``: that condition is the answer), with ``force`` (a job's second
send would start another execution) or with a list edit (``--secret-add``, ``--network-rm``: a second
send would add or remove twice); the outcome is then unknown and said so. Owns only that one retry; it
never reads or writes anything else.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import ProposalTimeout

__all__ = ["sent_again_once"]

T = TypeVar("T")


def _not_sent_again(body: dict[str, Any]) -> str | None:
    """Why ``body`` is not sent a second time (None: it may be)."""
    if "expected_version" in body:
        return ""  # the user's own condition: its answer stands as it is
    if body.get("force"):
        return "--force"
    edits = sorted(key for key in body if key.endswith(("_add", "_rm")))
    return f"{edits[0]} (a list edit)" if edits else None


def sent_again_once(send: Callable[[dict[str, Any]], T], body: dict[str, Any]) -> T:
    """``send(body)``; after a ProposalTimeout naming its base, ``send`` once more at that base (its
    answer, or its refusal, is the outcome), unless ``body`` is one that is never sent twice."""
    try:
        return send(body)
    except ProposalTimeout as exc:
        if not exc.base_spec:
            raise
        why = _not_sent_again(body)
        if why == "":
            raise
        if why is not None:
            raise ProposalTimeout(
                f"{exc.message}: the update may or may not have been written, and one with {why} is not "
                "sent twice: inspect the service (`p2porch service inspect`) before running it again",
                field=exc.field,
            ) from exc
        print(f"{exc.message}: the update may have committed; sending it again", file=sys.stderr)
        bases = {
            "base_spec": exc.base_spec,
            **({"base_previous": exc.base_previous} if exc.base_previous else {}),
        }
        return send({**body, **bases})
