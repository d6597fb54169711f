"""``service logs TASK`` as Docker's ``docker service logs SERVICE|TASK`` (the h44 user walk: a task id
copied from ``service ps`` was ``no such service``): a task id, or a unique prefix of at least 4
characters, gives that task's lines alone, asked of its node only; a service name still gives every
task's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from p2porch.control.routes import service_endpoints
from p2porch.control.service_ops import ServiceOps
from p2porch.errors import NotFoundError
from p2porch.model import Node, Task
from p2porch.testing.memstore import MemoryManager

TASKS = {"aaaa1111": ("n1", 1), "aaaa2222": ("n2", 2), "bbbb3333": ("n2", 3)}


class Logs:
    """Each node answers a line per task of the service it runs, as the agents do; records who was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    @asynccontextmanager
    async def node_logs(self, node: Node, request: dict[str, Any]) -> AsyncIterator[AsyncIterator[Any]]:
        self.asked.append(node.name)

        async def lines() -> AsyncIterator[dict[str, Any]]:
            for task_id, (on, _) in TASKS.items():
                if on == node.name:
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


async def test_a_service_name_still_gives_every_task_and_an_ambiguous_prefix_is_no_such_service(ops) -> None:
    service_ops, _ = ops
    assert await _lines(service_ops, "web") == ["from aaaa1111", "from aaaa2222", "from bbbb3333"]
    for ref in ("aaaa", "aaa", "cccc"):  # two tasks, too short, none
        with pytest.raises(NotFoundError, match=f"no such service: {ref}"):
            await _lines(service_ops, ref)
