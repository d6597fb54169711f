"""The usage sampler through an engine outage (member/stats.py): a listing the engine does not answer skips
that sample, the book and its window stay, and sampling goes on every ``sample_s`` once the engine answers
(it used to fail the service: the book dropped, a restart backed off up to 30 s) (MockClock)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing

from p2porch.config import AutoscaleConfig
from p2porch.errors import ExecutorError
from p2porch.member.stats import serve_usage_sampler


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


class Engine:
    """Lists no container while ``up``, else fails as an engine that does not answer; counts listings."""

    def __init__(self) -> None:
        self.up, self.listings = True, 0

    async def list_containers(self) -> list[Any]:
        await trio.sleep(0)
        self.listings += 1
        if not self.up:
            raise ExecutorError("cannot list containers: connection refused")
        return []


async def test_an_engine_away_skips_samples_and_keeps_the_book(autojump_clock: Any) -> None:
    engine = Engine()
    state = SimpleNamespace(tasks={}, tasks_on_node=lambda node_id: iter(["a task"]))
    board = SimpleNamespace(health={}, executor=engine, usage=None)
    ctx = SimpleNamespace(
        board=board,
        store=SimpleNamespace(snapshot=lambda: state),
        local=SimpleNamespace(node_id="id1"),
        clock=SimpleNamespace(monotonic=trio.current_time),
    )
    section = AutoscaleConfig(sample_s=1.0, window_s=10.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_usage_sampler, ctx, section)
        await trio.sleep(2.5)
        book = board.usage
        assert book is not None and engine.listings == 2
        engine.up = False
        await trio.sleep(5)  # five samples the engine does not answer
        assert board.usage is book and board.health["stats"] == "running" and engine.listings == 7
        engine.up = True
        await trio.sleep(1)
        assert board.usage is book and engine.listings == 8  # the next sample, no back-off
        nursery.cancel_scope.cancel()
