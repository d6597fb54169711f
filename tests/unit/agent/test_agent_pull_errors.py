"""A failed pull says which image it was pulling, whatever Docker's own text (h26 walk: a service with
`nosuch/image:1.0` showed only `Get "https://registry-1.docker.io/v2/": dial tcp: ... i/o timeout`)."""

from __future__ import annotations

from typing import Any

import pytest

from p2porch.agent.docker_executor import DockerExecutor
from p2porch.engine.client import EngineError

REGISTRY_DOWN = 'Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io: i/o timeout'


class Engine:
    def __init__(self, pull: Any) -> None:
        self._pull = pull

    def pull(self, repository: str, tag: str, auth_header: Any = None) -> Any:
        return self._pull()

    def inspect_image(self, ref: str) -> dict[str, Any]:
        return {"Id": "sha256:x"}


class Stream(list):
    def close(self) -> None:
        pass


def refused() -> Any:
    raise EngineError(REGISTRY_DOWN, status=500)


def unreachable() -> Any:
    raise ConnectionRefusedError(111, "Connection refused")


@pytest.mark.parametrize(
    ("pull", "said"),
    [
        (refused, REGISTRY_DOWN),  # the engine's HTTP error: it named no image
        (lambda: Stream([{"status": "x"}, {"error": "manifest unknown"}]), "manifest unknown"),
        (unreachable, "Connection refused"),
    ],
)
def test_a_failed_pull_names_the_image(pull, said):
    executor = DockerExecutor(Engine(pull))  # type: ignore[arg-type]
    error = executor._pull_sync("nosuch/image:1.0", "nosuch/image", "1.0")
    assert error.startswith("pulling nosuch/image:1.0 failed: ") and said in error


def test_a_pull_that_worked_is_no_error():
    executor = DockerExecutor(Engine(lambda: Stream([{"status": "Downloaded"}])))  # type: ignore[arg-type]
    assert executor._pull_sync("busybox:1", "busybox", "1") == ""
