"""A member service that fails inside its nursery is logged and recorded with the error's own text."""

import logging

import trio
import trio.testing

from p2porch.errors import OverlayError
from p2porch.netoverlay.allow_set import NO_IPSET
from p2porch.supervisor import describe_failure, supervise


def test_the_error_inside_a_services_nursery_is_what_health_and_the_log_say(caplog) -> None:
    health: dict[str, str] = {}

    async def overlay() -> None:
        async def first_pass() -> None:
            raise OverlayError(f"{NO_IPSET}: [Errno 22] Invalid argument")

        async with trio.open_nursery() as nursery:  # as _run_overlay's nursery wraps its reconciler
            nursery.start_soon(first_pass)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(supervise, health, "overlay", overlay)
            while not health.get("overlay", "").startswith("failed"):
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()

    with caplog.at_level(logging.ERROR, logger="p2porch.supervisor"):
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert health["overlay"] == f"failed: OverlayError: {NO_IPSET}: [Errno 22] Invalid argument"
    assert NO_IPSET in caplog.text and "sub-exception" not in caplog.text


def test_nested_groups_name_every_error() -> None:
    group = ExceptionGroup("outer", [ValueError("a"), ExceptionGroup("inner", [KeyError("b")])])
    assert describe_failure(group) == "ValueError: a; KeyError: 'b'"
    assert describe_failure(RuntimeError("plain")) == "RuntimeError: plain"


def test_back_off_doubles_to_its_cap_and_starts_again_after_a_long_run() -> None:
    """The agent's engine went away (dockerd killed) and came back: the retries had grown to 30 s, so
    its dead containers showed as running for up to 30 s more; the agent caps them at 5 s."""
    health: dict[str, str] = {}
    calls: list[float] = []
    runs = iter([0.0] * 6 + [100.0] + [0.0] * 3)  # six quick failures, one after 100 s of work, three more

    async def body() -> None:
        calls.append(trio.current_time())
        await trio.sleep(next(runs))
        raise RuntimeError("cannot reach the Docker engine")

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: supervise(health, "agent", body, max_delay_s=5.0))
            while len(calls) < 10:
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    gaps = [round(b - a, 2) for a, b in zip(calls, calls[1:], strict=False)]
    assert gaps[:6] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]  # doubled, then capped at max_delay_s
    assert gaps[6:] == [100.5, 1.0, 2.0]  # after a long run: from the first delay again
