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
