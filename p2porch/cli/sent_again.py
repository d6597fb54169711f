"""A service update whose outcome is unknown (the Raft leader changed before it was acknowledged) sent
again once, at the base it was computed against (shell helper of ``cli/service.py``).

The daemon answers ``ProposalTimeout`` (504) when a write may or may not have committed, with the
``base_spec`` of an update: the digest of the spec it merged the change into (model/update_sequence.py).
The CLI sends the same update again with that base: the daemon then writes it (it had not committed),
takes nothing (it had, or another writer made the same change: the spec already is what the update makes
it), or refuses it "update out of sequence" (another write changed the spec meanwhile), never merging it
into that write. With the user's own ``expected_version`` (``--if-version``) nothing is sent again: that
condition is the answer. Owns only that one retry; it never reads or writes anything else.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import ProposalTimeout

__all__ = ["sent_again_once"]

T = TypeVar("T")


def sent_again_once(send: Callable[[dict[str, Any]], T], body: dict[str, Any]) -> T:
    """``send(body)``; after a ProposalTimeout naming its base, ``send`` once more at that base (its
    answer, or its refusal, is the outcome)."""
    try:
        return send(body)
    except ProposalTimeout as exc:
        if not exc.base_spec or "expected_version" in body:
            raise
        print(f"{exc.message}: the update may have committed; sending it again", file=sys.stderr)
        return send({**body, "base_spec": exc.base_spec})
