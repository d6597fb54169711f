"""Elections that start with a pre-vote and never depose a live leader (shell over pysyncobj; the
decisions are pre_votes.py's pure :class:`PreVotes`).

A mixin for the store's SyncObj subclass. Before pysyncobj's tick checks a voter's election deadline,
:meth:`PreVoteElections._onTick` does two things when the deadline has passed:

1. it reads what is already waiting on its sockets (a poll with no wait): a Raft thread held up for
   longer than the election timeout finds the leader's heartbeats queued there, and pysyncobj would
   otherwise campaign before reading them;
2. if no leader's message reset the deadline, it sends ``pre_vote`` (``term + 1``, its last log
   term and index) to the other voters and re-arms the deadline, leaving its term alone. The real
   election (pysyncobj's: term raised, ``request_vote``) starts on the tick after a majority answered
   ``pre_vote_response`` with ``granted``; without a majority it asks again after 1-2 times
   ``_pre_vote_retry_s`` (two heartbeats), so a dead leader costs at most that much more than without.

It answers other voters' ``pre_vote`` by :meth:`PreVotes.grant` and notes every append from a leader
of the current term. An append from a leader of a lower term makes the next campaign skip the pre-vote
(pysyncobj ignores that leader; only a higher term makes it step down). A dropped connection to the
leader ends its stickiness at once (a killed leader's followers grant each other's pre-votes). A
leadership transfer (``timeout_now``) skips the pre-vote, as the leader asked.
The election timeout adapts to the gaps this voter hears between its leader's messages
(election_timeout.py's :class:`ElectionTimeout`): pysyncobj's deadline and the pre-vote hold both start at
the adapted minimum, so a leader that is slow but alive keeps its place; a dropped connection to the
leader brings the deadline back within the configured window (a killed leader fails over as before).
A refusal carries the refuser's term; an asker behind it follows that term (the one term change here: it
sends nothing, grants nothing, and deposes no leader). It owns nothing beyond the host's ``_pre_votes``
and its counters; it never raises the term past one another voter already holds, nor casts a vote.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import pysyncobj.syncobj as _pso

from .election_timeout import ElectionTimeout, lost_leader_delay_s
from .pre_votes import PreVotes

log = logging.getLogger(__name__)

PRE_VOTE = "pre_vote"
PRE_VOTE_RESPONSE = "pre_vote_response"
DRAIN_POLLS = 4  # polls with no wait before a campaign (each reads at most the transport's read budget)


class PreVoteElections:
    """Mixed in before ``SyncObj``; the host sets ``_pre_votes``, ``_election_timeout``,
    ``_pre_vote_hold_s`` and ``_pre_vote_retry_s`` before it starts."""

    _pre_votes: PreVotes
    _election_timeout: ElectionTimeout  # the adapted minimum: the deadline's and the pre-vote hold's
    _pre_vote_hold_s: float  # the configured minimum election timeout: a leader heard this recently is live
    _pre_vote_retry_s: float  # a round without a majority is asked again after 1-2 times this
    _poller: Any
    _SyncObj__raftState: int
    _SyncObj__raftCurrentTerm: int
    _SyncObj__raftElectionDeadline: float
    _SyncObj__raftLeader: Any
    _SyncObj__selfNode: Any
    _SyncObj__otherNodes: Any
    _SyncObj__transport: Any
    _SyncObj__conf: Any
    # counters (benchmarks, tests, the log)
    _campaign_allowed = True  # pysyncobj's election check passes only when this tick decided to campaign
    pre_vote_rounds = 0
    pre_votes_won = 0
    elections_avoided_by_draining = 0

    def _onTick(self, timeToWait: float = 0.0) -> None:  # noqa: N802, N803 (pysyncobj's names)
        if self._election_due():
            self._before_campaign()
        # pysyncobj checks the deadline again after its one-second timer (the journal's meta file fsync,
        # seconds under load): a deadline that passes in between would start an election without a
        # pre-vote (seen at 1,000 x 50,000). It campaigns on this tick only when we decided so above.
        self._campaign_allowed = self._election_due()
        try:
            super()._onTick(timeToWait)  # type: ignore[misc]
        finally:
            self._campaign_allowed = True

    def _SyncObj__connectedToAnyone(self) -> bool:  # noqa: N802 (pysyncobj's election check only)
        return self._campaign_allowed and bool(super()._SyncObj__connectedToAnyone())  # type: ignore[misc]

    def _election_due(self) -> bool:
        """pysyncobj's own condition for a campaign on this tick (a voter past its deadline)."""
        if self._SyncObj__selfNode is None or self._SyncObj__raftState == _pso._RAFT_STATE.LEADER:
            return False
        if getattr(self, "_SyncObj__transferInProgress", False) or not self._SyncObj__transport.ready:
            return False
        return bool(
            self._SyncObj__raftElectionDeadline < _pso.monotonicTime() and self._SyncObj__connectedToAnyone()
        )

    def _before_campaign(self) -> None:
        won_for = self._pre_votes.round_term if self._pre_votes.won else None
        if won_for is not None and won_for == self._SyncObj__raftCurrentTerm + 1:
            self._pre_votes.end_round()  # a majority granted: pysyncobj campaigns on this tick
            self.pre_votes_won += 1
            return
        if won_for is not None:  # won for a term since overtaken (we voted in or took a later term)
            self._pre_votes.end_round()
        late_s = _pso.monotonicTime() - self._SyncObj__raftElectionDeadline
        if self._pre_votes.skip_round():  # our term is ahead of a live leader's: only an election helps
            log.info("raft: a leader of a lower term is sending: campaigning without a pre-vote")
            return
        inner = getattr(self._poller, "_inner", self._poller)  # store.PacedPoller would wait
        for _ in range(DRAIN_POLLS):
            inner.poll(0)
            if not self._election_due():
                self.elections_avoided_by_draining += 1
                log.info(
                    "raft: a leader's message was waiting (the tick was %.2f s late): no election", late_s
                )
                return
        now = _pso.monotonicTime()
        term = self._SyncObj__raftCurrentTerm + 1
        self.pre_vote_rounds += 1
        silent_s = now - self._pre_votes.heard_leader_at
        log.info(
            "raft: no leader heard for %.2f s (tick %.2f s late, hold %.2f s): pre-vote for term %d",
            silent_s,
            late_s,
            self._hold_s(now),
            term,
        )
        if self._pre_votes.start(term, len(self._SyncObj__otherNodes) + 1):
            return  # alone a majority: pysyncobj campaigns on this tick
        # no majority by then: ask again soon (a round changes no term, so retrying is cheap), not a whole
        # election timeout later; a voter that refused only because it heard the dead leader just before
        # its last heartbeat grants the next round
        retry_s = self._pre_vote_retry_s * (1.0 + random.random())
        self._SyncObj__raftElectionDeadline = now + min(retry_s, self._SyncObj__generateRaftTimeout())
        message = {
            "type": PRE_VOTE,
            "term": term,
            "last_log_index": self._SyncObj__getCurrentLogIndex(),  # type: ignore[attr-defined]
            "last_log_term": self._SyncObj__getCurrentLogTerm(),  # type: ignore[attr-defined]
        }
        for node in self._SyncObj__otherNodes:
            self._SyncObj__transport.send(node, message)

    def _SyncObj__generateRaftTimeout(self) -> float:  # noqa: N802 (pysyncobj's name)
        """pysyncobj's election timeout, from the adapted minimum (the configured one, or a joining
        voter's hold, when that is longer) over the configured window's width."""
        conf = self._SyncObj__conf
        low = max(conf.raftMinTimeout, self._election_timeout.minimum(_pso.monotonicTime()))
        return low + (conf.raftMaxTimeout - conf.raftMinTimeout) * random.random()

    def leader_live(self) -> bool:
        """Whether an append from a leader of this node's term or a later one arrived within the hold
        (what leader stickiness calls a live leader): a pointer to a leader that went silent (it was
        deposed while this node was cut off) is not one."""
        now = _pso.monotonicTime()
        return now - self._pre_votes.heard_leader_at < self._hold_s(now)

    def _hold_s(self, now: float) -> float:
        """How recently heard a leader is live (a pre-vote refused): the adapted minimum timeout."""
        return max(self._pre_vote_hold_s, self._election_timeout.minimum(now))

    def _SyncObj__onMessageReceived(self, node: Any, message: Any) -> None:  # noqa: N802
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == PRE_VOTE:
            self._answer_pre_vote(node, message)
            return
        if kind == PRE_VOTE_RESPONSE:
            self._count_pre_vote(node, message)
            return
        if kind == "append_entries" and self._SyncObj__selfNode is not None:
            self._heard_append(node, message.get("term", -1))
        super()._SyncObj__onMessageReceived(node, message)  # type: ignore[misc]

    def _heard_append(self, node: Any, term: Any) -> None:
        now = _pso.monotonicTime()
        estimate = self._election_timeout
        if term >= self._SyncObj__raftCurrentTerm:
            self._pre_votes.heard_leader(now)
            estimate.heard(node, term, now)  # before pysyncobj re-arms the deadline from it
            return
        self._pre_votes.heard_older_leader()
        if estimate.leader == (node, term):  # the leader we last followed was alive: its silence was a gap
            estimate.heard(node, term, now)

    def _SyncObj__onNodeDisconnected(self, node: Any) -> None:  # noqa: N802
        if node == getattr(self, "_SyncObj__raftLeader", None):
            self._pre_votes.leader_lost()  # a leader we cannot reach is not live: grant pre-votes at once
            self._election_timeout.lost()
            if self._SyncObj__selfNode is not None:  # a dropped connection is no slowness and no gap: the
                conf = self._SyncObj__conf  # configured window's width from now (election_timeout.py)
                delay = lost_leader_delay_s(conf.raftMinTimeout, conf.raftMaxTimeout, random.random())
                now = _pso.monotonicTime()
                deadline = min(self._SyncObj__raftElectionDeadline, now + delay)
                self._SyncObj__raftElectionDeadline = deadline
                log.info(
                    "raft: the connection to the leader dropped: election deadline in %.2f s",
                    deadline - now,
                )
        super()._SyncObj__onNodeDisconnected(node)  # type: ignore[misc]

    def _answer_pre_vote(self, node: Any, message: dict[str, Any]) -> None:
        if self._SyncObj__selfNode is None:
            return  # a read-only replica never votes
        try:
            term = int(message["term"])
            candidate_log = (int(message["last_log_term"]), int(message["last_log_index"]))
        except (KeyError, TypeError, ValueError):
            return
        now = _pso.monotonicTime()
        granted = self._pre_votes.grant(
            term=term,
            current_term=self._SyncObj__raftCurrentTerm,
            candidate_log=candidate_log,
            own_log=(self._SyncObj__getCurrentLogTerm(), self._SyncObj__getCurrentLogIndex()),  # type: ignore[attr-defined]
            leading=self._SyncObj__raftState == _pso._RAFT_STATE.LEADER,
            hold_s=self._hold_s(now),
            now=now,
        )
        # our own term goes back too: an asker behind it adopts it (``_count_pre_vote``), else it would ask
        # for a term we refuse for ever
        answer = {"type": PRE_VOTE_RESPONSE, "term": term, "granted": granted}
        answer["current_term"] = self._SyncObj__raftCurrentTerm
        self._SyncObj__transport.send(node, answer)

    def _count_pre_vote(self, node: Any, message: dict[str, Any]) -> None:
        if self._SyncObj__raftState == _pso._RAFT_STATE.LEADER:
            return
        if not message.get("granted"):
            self._adopt_refusers_term(message.get("current_term"))
            return
        term = message.get("term")
        if term != self._SyncObj__raftCurrentTerm + 1:
            return  # a round for a term since overtaken
        if self._pre_votes.granted_by(node, term, len(self._SyncObj__otherNodes) + 1):
            self._SyncObj__raftElectionDeadline = 0  # the next tick campaigns
            silent_s = _pso.monotonicTime() - self._pre_votes.heard_leader_at
            log.warning(
                "raft: pre-vote for term %d won (no leader heard for %.2f s): campaigning", term, silent_s
            )

    def _adopt_refusers_term(self, their_term: Any) -> None:
        """A voter refused because its term is above ours: take that term as a follower (Raft §5.1: a
        higher term seen in any reply), as etcd does on a pre-vote refusal. Without it a voter whose term
        stayed behind (it missed a failed candidate's ``request_vote``) asks for a term the others already
        hold, and when the one voter ahead has the shorter log the two refuse each other for ever: no
        leader with a majority alive. Adopting a term that exists sends nothing and deposes no one."""
        if not isinstance(their_term, int) or their_term <= self._SyncObj__raftCurrentTerm:
            return
        log.info("raft: a pre-vote refused at term %d: following that term", their_term)
        self._SyncObj__setCurrentTerm(their_term, None)  # type: ignore[attr-defined]
        self._SyncObj__setState(_pso._RAFT_STATE.FOLLOWER)  # type: ignore[attr-defined]
        self._SyncObj__raftLeader = None
        self._pre_votes.end_round()
