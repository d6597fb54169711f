"""`p2porch events` names a removed service's stopping tasks by the service's name, not its id."""

from typing import Any

import pytest
import trio
import trio.testing
from event_kit import events_member

from p2porch.control import event_feed
from p2porch.control.event_stream import open_event_stream
from p2porch.model import Node, ServiceSpec, Task
from p2porch.raft import commands as C
from p2porch.testing.memstore import MemoryRaft

A = "10.0.0.1:7947"


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_a_removed_services_tasks_are_named_by_the_service(autojump_clock: Any) -> None:
    store = MemoryRaft([A], leader=A).store(A)
    await store.write(C.InitCluster(at=1.0, cluster_id="0123456789abcdef").encode())
    await store.write(C.AddNode(at=1.0, node=Node("a", "n1", "10.0.0.1", 7947, 7946)).encode())
    spec = ServiceSpec(name="ghost", image="nosuch/image:1.0")
    await store.write(C.CreateService(at=2.0, service_id="8cf3cece1663a76a", spec=spec).encode())
    task = Task("t1", "8cf3cece1663a76a", 1, "a", state="running")
    await store.write(C.PutTasks(at=3.0, items=(C.TaskPut(task, task_version=0),)).encode())
    version = store.snapshot().services["8cf3cece1663a76a"].version

    async def remove() -> None:
        await trio.sleep(1)  # the stream has started reading (its first snapshot has the service)
        await store.write(
            C.RemoveService(at=4.0, service_id="8cf3cece1663a76a", service_version=version).encode()
        )

    async with (
        events_member(store) as member,
        open_event_stream(member.feed, store, member.clock) as events,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(remove)
        with trio.fail_after(10):
            removed = await events.__anext__()
            stopping = await events.__anext__()
    assert (removed["type"], removed["action"], removed["service"]) == ("service", "removed", "ghost")
    assert stopping["type"] == "task" and stopping["desired_state"] == "shutdown"
    assert stopping["task"] == "ghost.1"  # was "8cf3cece1663a76a.1"


def test_removed_names_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_feed, "REMOVED_NAMES_KEPT", 2)
    names: dict[str, str] = {}

    class Change:
        kind, op = "service", "delete"

        def __init__(self, key: str) -> None:
            self.key = key

    class Record:
        def __init__(self, name: str) -> None:
            self.name = name

    for i in range(4):
        event_feed.remember_removed(names, Change(f"id{i}"), Record(f"s{i}"))
    assert names == {"id2": "s2", "id3": "s3"}  # the oldest go first
