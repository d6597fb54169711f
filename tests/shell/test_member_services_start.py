"""The member services start all at once (``runtime.start_member_services``): one service's start never
waits for another's, the call returns only once every one has started, and a service that fails before
it started fails the call."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from p2porch.membership.runtime import start_member_services


async def test_a_start_does_not_wait_for_the_services_listed_before_it() -> None:
    """The first service starts only once the last has: one after another this never returns."""
    last_started = trio.Event()
    order: list[str] = []

    async def first(ctx: Any, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await last_started.wait()
        order.append("first")
        task_status.started()
        await trio.sleep_forever()

    async def last(ctx: Any, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        order.append("last")
        task_status.started()
        last_started.set()
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        with trio.fail_after(5):
            await start_member_services(nursery, [("first", first), ("last", last)], ctx=None)  # type: ignore[arg-type]
        assert order == ["last", "first"]  # both started before it returned
        nursery.cancel_scope.cancel()


async def test_it_returns_only_once_every_service_started_and_they_keep_running() -> None:
    gate = trio.Event()
    running: list[str] = []

    def service(name: str, wait: bool) -> Any:
        async def run(ctx: Any, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            if wait:
                await gate.wait()
            task_status.started()
            running.append(name)
            await trio.sleep_forever()

        return run

    returned = trio.Event()
    async with trio.open_nursery() as nursery:

        async def starter() -> None:
            services = [
                ("a", service("a", False)),
                ("slow", service("slow", True)),
                ("c", service("c", False)),
            ]
            await start_member_services(nursery, services, ctx=None)  # type: ignore[arg-type]
            returned.set()

        nursery.start_soon(starter)
        await trio.testing.wait_all_tasks_blocked()
        assert not returned.is_set()  # "slow" has not started yet
        gate.set()
        with trio.fail_after(5):
            await returned.wait()
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(running) == ["a", "c", "slow"]  # each runs on in the member nursery
        nursery.cancel_scope.cancel()


async def test_a_service_that_fails_before_it_started_fails_the_start() -> None:
    async def broken(ctx: Any, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await trio.sleep(0)
        raise RuntimeError("cannot bind")

    async def fine(ctx: Any, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep_forever()

    with pytest.raises(BaseException) as caught:
        async with trio.open_nursery() as nursery:
            await start_member_services(nursery, [("fine", fine), ("broken", broken)], ctx=None)  # type: ignore[arg-type]
    assert "cannot bind" in repr(caught.value) or any(
        "cannot bind" in repr(e) for e in getattr(caught.value, "exceptions", ())
    )
