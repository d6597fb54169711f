"""The node agent is poked only by changes that can move what it runs (member/agent.py).

Every poke makes the agent list its containers through the Engine API; a formation commits node records
and subnet leases, which no assignment reads (docs/performance.md, "Joins, tenth round").
"""

from __future__ import annotations

import math

import trio

from p2porch.member.agent import _forward, engine_is_local, moves_assignments
from p2porch.raft.fsm import Change


def change(kind: str, key: str, op: str = "put") -> Change:
    return Change(kind, op, key, None, 1)


def test_node_records_and_other_nodes_leases_do_not_move_the_assignments() -> None:
    assert not moves_assignments(change("node", "n2"), "n1")
    assert not moves_assignments(
        change("node", "n1"), "n1"
    )  # the agent reads no node record, its own neither
    assert not moves_assignments(change("lease", "n2"), "n1")
    assert not moves_assignments(change("lease", "n2", "delete"), "n1")


def test_every_other_change_moves_them() -> None:
    assert moves_assignments(change("lease", "n1"), "n1")  # its own subnet: the containers' DNS server
    for kind in ("task", "service", "cluster", "secret", "network", "reset", "something-new"):
        assert moves_assignments(change(kind, "x"), "n1"), kind


async def test_a_formation_s_changes_reach_the_agent_only_when_they_concern_it() -> None:
    send, changes = trio.open_memory_channel[Change](math.inf)
    to_agent, relevant = trio.open_memory_channel[Change](math.inf)
    formation = [change("node", f"n{i}") for i in range(2, 21)] + [
        change("lease", f"n{i}") for i in range(2, 21)
    ]
    wanted = [change("lease", "n1"), change("task", "t1"), change("reset", "")]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_forward, changes, to_agent, "n1")
        async with send:
            for item in [*formation[:10], wanted[0], *formation[10:], *wanted[1:]]:
                await send.send(item)
        received = [item async for item in relevant]  # ends when the stream does
    assert received == wanted


def test_only_a_local_engine_has_its_containers_tcp_tables_read_under_proc() -> None:
    assert engine_is_local("") and engine_is_local("unix:///var/run/p3/docker.sock")
    assert not engine_is_local("tcp://10.0.0.5:2376") and not engine_is_local("ssh://user@host")
