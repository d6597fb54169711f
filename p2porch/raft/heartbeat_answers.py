"""When a follower answers the leader's empty heartbeat (pure: no pysyncobj, no clock).

pysyncobj's follower answers every append, so an idle leader receives one ``next_node_idx`` message per
follower per heartbeat (40 a second with 4 voters at 100 ms), each decrypted, unpickled and handled,
and every follower seals and sends as many. An answer to an empty heartbeat that repeats the previous
one tells the leader nothing new: its only use is the leader's ``leaderFallbackTimeout`` (it steps down
when fewer than a majority answered within it, 3 s) and the connection's read timeout (3 s).
:class:`HeartbeatAnswers` lets such a repeat through at most every ``period_s``; an answer whose term,
commit index or next index differs from the last one sent to that leader, and the first answer after
a (re)connection, always go at once. Answers to appends with entries, snapshots and refusals are never
judged here: the caller sends them at once and records them.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field


@dataclass
class HeartbeatAnswers:
    """Per leader: (term, commit index, next index, time) of the last answer sent. Owns nothing else."""

    period_s: float  # a repeated answer still goes this often (well below the leader's fallback timeout)
    _last: dict[Hashable, tuple[int, int, int, float]] = field(default_factory=dict)

    def should_answer(
        self, leader: Hashable, term: int, commit_index: int, next_index: int, now: float
    ) -> bool:
        """Whether the answer to an empty heartbeat goes now: something changed, or it is due."""
        last = self._last.get(leader)
        if last is None or last[:3] != (term, commit_index, next_index):
            return True
        return now - last[3] >= self.period_s

    def answered(self, leader: Hashable, term: int, commit_index: int, next_index: int, now: float) -> None:
        """A success answer went to ``leader`` (to a heartbeat or to an append with entries)."""
        self._last[leader] = (term, commit_index, next_index, now)

    def forget(self, leader: Hashable) -> None:
        """The next answer to ``leader`` goes at once: a refusal was sent, or the connection was
        made or lost (the leader may have reset what it knows of this node)."""
        self._last.pop(leader, None)
