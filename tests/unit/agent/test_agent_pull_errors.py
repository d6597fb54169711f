"""A failed pull says which image it was pulling, whatever Docker's own text (h26 walk: a service with
`nosuch/image:1.0` showed only `Get "https://registry-1.docker.io/v2/": dial tcp: ... i/o timeout`)."""

from __future__ import annotations

from typing import Any

import pytest

from p2porch.agent.docker_executor import DockerExecutor
from p2porch.engine.client import EngineError, NotFound

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


class Cache:
    """An engine holding the images in ``present``; records every pull."""

    def __init__(self, *present: str, pull_error: str = "") -> None:
        self.present, self.pulls, self.pull_error = set(present), [], pull_error

    def inspect_image(self, ref: str) -> dict[str, Any]:
        if ref not in self.present:
            raise NotFound(f"No such image: {ref}", status=404)
        return {"Id": "sha256:x"}

    def pull(self, repository: str, tag: str, auth_header: Any = None) -> Any:
        self.pulls.append(f"{repository}:{tag}")
        if self.pull_error:
            return Stream([{"error": self.pull_error}])
        self.present.add(f"{repository}:{tag}")
        return Stream([{"status": "Downloaded"}])


async def test_pull_policy_missing_pulls_only_an_absent_image():
    engine = Cache("app:1")
    executor = DockerExecutor(engine)  # type: ignore[arg-type]
    assert await executor._ensure_image("app:1") == "" and engine.pulls == []
    assert await executor._ensure_image("web:2", "missing") == "" and engine.pulls == ["web:2"]


async def test_pull_policy_always_pulls_a_present_image_and_a_failed_pull_fails_the_start():
    """As Compose's ``pull_policy: always``: ``docker compose up`` pulls every time, stops on a failure."""
    engine = Cache("app:1")
    assert await DockerExecutor(engine)._ensure_image("app:1", "always") == ""  # type: ignore[arg-type]
    assert engine.pulls == ["app:1"]
    offline = Cache("app:1", pull_error="dial tcp: connection refused")
    error = await DockerExecutor(offline)._ensure_image("app:1", "always")  # type: ignore[arg-type]
    assert error == "pulling app:1 failed: dial tcp: connection refused"


async def test_pull_policy_never_runs_only_an_image_the_node_has():
    engine = Cache("app:1")
    executor = DockerExecutor(engine)  # type: ignore[arg-type]
    assert await executor._ensure_image("app:1", "never") == ""
    error = await executor._ensure_image("web:2", "never")
    assert error == "image web:2 not found on this node and the service's pull_policy is never"
    assert engine.pulls == []
