"""When a forced recovery may start a new Raft generation, and when a node may follow one (pure).

``recover --force-new-cluster`` throws the other nodes' logs away, so it must only run where the old
generation cannot make progress any more: ``recover_refusal`` refuses when any recorded voter still
sees a leader of the current generation, already runs a newer one, or when this node plus the voters
that answered are a majority (they can elect a leader by themselves). A partition can still hide the
majority from the recovering node; so ``may_follow`` lets a node that has a working quorum follow a
newer generation only when its founder recovered from a state at least as new as this node's (the
generation records that version): otherwise following would silently drop committed writes, and the
conflict is surfaced instead. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GenerationConflict:
    """A newer generation this node refused to follow because it would lose committed writes."""

    generation: int
    founded_at_version: int
    own_generation: int
    own_version: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "newer_generation": self.generation,
            "newer_founded_at_version": self.founded_at_version,
            "own_generation": self.own_generation,
            "own_version": self.own_version,
            "message": (
                f"generation {self.generation} was recovered from state version {self.founded_at_version}, "
                f"but this side committed up to {self.own_version} in generation {self.own_generation}: "
                "not following it (that would drop writes); recover the other side from this one, "
                "or make these nodes leave and rejoin to accept the loss"
            ),
        }


def majority(voters: int) -> int:
    return voters // 2 + 1


def recover_refusal(
    self_addr: str,
    voters: tuple[str, ...],
    generation: int,
    answers: Mapping[str, Mapping[str, Any] | None],
) -> str | None:
    """Why a forced recovery must not run now, or None when it may.

    ``answers``: each other recorded voter's membership answer (None: it did not answer)."""
    others = [v for v in voters if v != self_addr]
    reachable = 1 if self_addr in voters else 0
    for voter in others:
        answer = answers.get(voter)
        if answer is None:
            continue
        reachable += 1
        their_generation = answer.get("generation")
        if isinstance(their_generation, int) and their_generation > generation:
            return f"voter {voter} already runs Raft generation {their_generation}: this node will follow it"
        if answer.get("leader") and their_generation == generation:
            return f"voter {voter} sees leader {answer['leader']} of generation {generation}"
    if voters and reachable >= majority(len(voters)):
        return (
            f"{reachable} of {len(voters)} voters answer (a majority): they can elect a leader by themselves"
        )
    return None


def may_follow(
    has_quorum: bool, own_generation: int, own_version: int, newer_generation: int, founded_at_version: int
) -> GenerationConflict | None:
    """None when this node may follow ``newer_generation``; the conflict when it must not (it has a
    working quorum and committed past the state the newer generation was recovered from)."""
    if newer_generation <= own_generation or not has_quorum or own_version <= founded_at_version:
        return None
    return GenerationConflict(newer_generation, founded_at_version, own_generation, own_version)
