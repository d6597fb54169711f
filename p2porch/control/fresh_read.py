"""A request whose write is conditional on a version this node read is redone on a newer record (shell).

``node update``, ``node rm``'s demotion of a leading voter, ``service update`` / ``scale`` / ``rollback``
/ ``rebalance`` / ``rm`` read the record from this node's snapshot and write a command conditional on the
version read (``node_version``, ``service_version``): the FSM refuses it when the record changed between
the read and the commit. The user gave no version (``--if-version`` is checked against the record
before the write, and again on the redo): what they asked for is a change to whatever the record is, so
a commit to it meanwhile is no reason to refuse it, and a user typing the command got "service_version
is 7, expected 6" for nothing. The redo follows any commit to the record: the cluster's own work (the
leader marking a rollout done or a node ready, an agent recording its engine or key, the autopilot's
role change) and another user's write alike. A request whose effect depends on more of the record than
its version checks that itself: ``service update``/``scale`` are refused "update out of sequence" once
another write changed the spec they were computed against (unless they would change nothing, or only
the cluster's own work moved it: the autoscaler's replicas or a secret roll, merged into; the automatic
rollback changes it too and refuses them: model/update_sequence.py; they merged into any before),
``service rollback`` once the spec or rollback point it read changed (``ServiceOps._rollback``).
:func:`redone_on_newer_record` owns that redo only: the whole request runs again (it reads the record
again: the refused write was applied on this node, so its snapshot holds the change that came first),
at most ``attempts`` times; any other refusal is raised as it was. A refused write changed nothing, so
running the request again never writes twice.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from ..errors import ConflictError

__all__ = ["ATTEMPTS", "redone_on_newer_record"]

log = logging.getLogger(__name__)

ATTEMPTS = 5  # each redo follows a commit that changed the record: five in a row is a busy record

P = ParamSpec("P")
T = TypeVar("T")


def redone_on_newer_record(
    version_field: str, attempts: int = ATTEMPTS
) -> Callable[[Callable[P, Coroutine[Any, Any, T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """Decorate a request method: a ConflictError on ``version_field`` (the record changed after it was
    read) runs it again, up to ``attempts`` runs in all."""

    def decorate(request: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        @functools.wraps(request)
        async def redone(*args: P.args, **kwargs: P.kwargs) -> T:
            for run in range(1, attempts):
                try:
                    return await request(*args, **kwargs)
                except ConflictError as exc:
                    if exc.field != version_field:
                        raise
                    log.info("%s: %s; read again (run %d)", request.__qualname__, exc.message, run + 1)
            return await request(*args, **kwargs)  # the last run: its refusal is the answer

        return redone

    return decorate
