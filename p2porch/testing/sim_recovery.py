"""What a simulated ``recover --force-new-cluster`` learns by asking the recorded voters (pure; tests only).

``lost_voters`` does for the cluster simulator what ``ClusterManager._lost_voters`` does over the join
port: each other recorded voter that runs and is reachable answers with the Raft generation its store
runs and no leader (the cluster lost its quorum), the others do not answer; the real rule
(``membership/recovery.recover_refusal``) refuses the recovery, else the silent ones are returned for
``voter_role.recovered_state`` to record down. It never writes.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConflictError
from ..membership.recovery import recover_refusal
from ..membership.voter_role import recorded_voters

# the ClusterSim and one of its SimNodes (not imported: cluster_sim imports this module)
ClusterSim = Any
SimNode = Any


def lost_voters(sim: ClusterSim, node: SimNode) -> frozenset[str]:
    """Raft addresses of the recorded voters that do not answer ``node``; ConflictError (as the daemon
    raises it) when those that answer say the recovery must not run."""
    voters = tuple(sorted(set(recorded_voters(sim.state)) | set(sim.raft.voters)))
    by_addr = {n.raft_addr: n for n in sim.nodes.values()}
    answers: dict[str, dict[str, Any] | None] = {}
    for voter in voters:
        if voter == node.raft_addr:
            continue
        peer = by_addr.get(voter)
        if peer is not None and peer.running and not peer.isolated and not node.isolated:
            answers[voter] = {"generation": peer.generation, "leader": None}
        else:
            answers[voter] = None
    reason = recover_refusal(node.raft_addr, voters, sim.state.generation, answers)
    if reason is not None:
        raise ConflictError(f"{reason}; nothing was changed", field="--force-new-cluster")
    return frozenset(voter for voter, answer in answers.items() if answer is None)
