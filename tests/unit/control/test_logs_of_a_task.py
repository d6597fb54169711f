"""``service logs TASK`` as Docker's ``docker service logs SERVICE|TASK`` (the h44 user walk: a task id
copied from ``service ps`` was ``no such service``): a task id, or a unique prefix of at least 4
characters, gives that task's lines alone, asked of its node only and for its container only (the node
used to send every container of the service and the API dropped the others); a service name still gives
every task's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from p2porch.agent.docker_executor import DockerExecutor
from p2porch.agent.model import LABEL_TASK_ID
from p2porch.control.logs import LogOps
from p2porch.control.routes import service_endpoints
from p2porch.control.service_ops import ServiceOps
from p2porch.errors import NotFoundError
from p2porch.model import Node, Task
from p2porch.testing.memstore import MemoryManager

TASKS = {"aaaa1111": ("n1", 1), "aaaa2222": ("n2", 2), "bbbb3333": ("n2", 3)}


class Logs:
    """Each node answers a line per task of the service it runs (of the one task the request names, if
    any), as the agents do; records who was asked what."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.requests: list[dict[str, Any]] = []

    @asynccontextmanager
    async def node_logs(self, node: Node, request: dict[str, Any]) -> AsyncIterator[AsyncIterator[Any]]:
        self.asked.append(node.name)
        self.requests.append(request)

        async def lines() -> AsyncIterator[dict[str, Any]]:
            for task_id, (on, _) in TASKS.items():
                if on == node.name and request.get("task_id", task_id) == task_id:
                    yield {"task_id": task_id, "line": f"from {task_id}"}

        yield lines()


@pytest.fixture
async def ops() -> tuple[ServiceOps, Logs]:
    logs = Logs()
    ops = ServiceOps(MemoryManager(), logs=logs)  # type: ignore[arg-type]
    await ops.create({"name": "web", "image": "x", "replicas": 3})
    state = ops._state()
    service_id = ops.find("web").service_id
    tasks = {t: Task(task_id=t, service_id=service_id, slot=s, node_id=n) for t, (n, s) in TASKS.items()}
    nodes = {n: Node(node_id=n, name=n) for n in ("n1", "n2")}
    frozen = state.evolve(nodes=nodes, tasks=tasks)
    ops._state = lambda: frozen  # type: ignore[method-assign]
    return ops, logs


async def _lines(ops: ServiceOps, ref: str) -> list[str]:
    """``GET /v1/services/REF/logs`` as the API serves it: the route resolves REF, then streams."""
    (route,) = [e for e in service_endpoints(ops) if e.path == "/services/{service}/logs"]
    async with (await route.handler({}, {"service": ref}))() as items:
        return sorted([item["line"] async for item in items])


async def test_a_task_id_or_its_unique_prefix_gives_that_task_s_lines_alone(ops) -> None:
    service_ops, logs = ops
    assert await _lines(service_ops, "aaaa2222") == ["from aaaa2222"]
    assert await _lines(service_ops, "bbbb") == ["from bbbb3333"]
    assert logs.asked == ["n2", "n2"]  # only the task's node is asked
    assert [r.get("task_id") for r in logs.requests] == ["aaaa2222", "bbbb3333"]  # for that task alone


async def test_a_service_name_still_gives_every_task_and_an_ambiguous_prefix_is_no_such_service(ops) -> None:
    service_ops, logs = ops
    assert await _lines(service_ops, "web") == ["from aaaa1111", "from aaaa2222", "from bbbb3333"]
    assert not any("task_id" in r for r in logs.requests)
    for ref in ("aaaa", "aaa", "cccc"):  # two tasks, too short, none
        with pytest.raises(NotFoundError, match=f"^No such task or service: {ref}$"):
            await _lines(service_ops, ref)


class Executor:
    """The agent's executor as the node's log reader calls it: records the task ids it was asked for."""

    def __init__(self) -> None:
        self.task_ids: list[Any] = []

    @asynccontextmanager
    async def open_logs(self, task_ids: Any = None, **options: Any) -> AsyncIterator[AsyncIterator[Any]]:
        self.task_ids.append(task_ids)

        async def lines() -> AsyncIterator[tuple[str, str]]:
            for task_id in task_ids or ("aaaa1111", "aaaa2222"):
                yield task_id, "hello"

        yield lines()


async def test_the_task_s_node_opens_that_task_s_container_alone() -> None:
    executor = Executor()
    cluster = type("Cluster", (), {"board": type("Board", (), {"executor": executor})()})()
    logs = LogOps(cluster)  # type: ignore[arg-type]
    for request in ({"service": "web"}, {"service": "web", "task_id": "aaaa2222"}):
        async with logs.local_logs(request) as items:
            assert [item async for item in items]
    assert executor.task_ids == [None, ["aaaa2222"]]


class Engine:
    """The Engine API's container list: records each call's filters, lists nothing."""

    def __init__(self) -> None:
        self.filters: list[dict[str, Any]] = []

    def containers(self, all: bool, filters: dict[str, Any]) -> list[Any]:
        self.filters.append(filters)
        return []


async def test_the_engine_lists_the_one_task_s_containers_only() -> None:
    engine = Engine()
    executor = DockerExecutor(engine)  # type: ignore[arg-type]
    async with executor.open_logs(["aaaa2222"], service_name="web") as channel:
        assert [item async for item in channel] == []
    async with executor.open_logs(service_name="web") as channel:
        assert [item async for item in channel] == []
    one, every = (f["label"] for f in engine.filters)
    assert f"{LABEL_TASK_ID}=aaaa2222" in one and not any(label.startswith(LABEL_TASK_ID) for label in every)


async def test_a_reader_that_stops_reading_holds_a_bounded_buffer_not_every_line() -> None:
    """Before: an unbounded channel: a `logs -f` client that stopped reading (suspended, or never
    reading over TLS) made the daemon keep every line its nodes sent."""
    import trio

    from p2porch.control.service_ops import LOG_BUFFER_LINES

    produced = 0

    class Chatty:
        @asynccontextmanager
        async def node_logs(self, node: Node, request: dict[str, Any]) -> AsyncIterator[AsyncIterator[Any]]:
            async def lines() -> AsyncIterator[dict[str, Any]]:
                nonlocal produced
                while produced < 100_000:
                    produced += 1
                    yield {"task_id": "aaaa1111", "line": "x" * 100}
                    await trio.lowlevel.checkpoint()

            yield lines()

    ops = ServiceOps(MemoryManager(), logs=Chatty())  # type: ignore[arg-type]
    await ops.create({"name": "web", "image": "x"})
    service_id = ops.find("web").service_id
    frozen = ops._state().evolve(
        nodes={"n1": Node(node_id="n1", name="n1")},
        tasks={"aaaa1111": Task(task_id="aaaa1111", service_id=service_id, slot=1, node_id="n1")},
    )
    ops._state = lambda: frozen  # type: ignore[method-assign]
    async with ops.logs("web", follow=True, tail=None) as items:
        first = await items.receive()
        await trio.testing.wait_all_tasks_blocked()  # the node's stream runs until the buffer is full
    assert first["line"] == "x" * 100
    assert LOG_BUFFER_LINES <= produced <= LOG_BUFFER_LINES + 2, produced
