"""A failed pull says which image it was pulling, whatever Docker's own text (h26 walk: a service with
`nosuch/image:1.0` showed only `Get "https://registry-1.docker.io/v2/": dial tcp: ... i/o timeout`)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from p2porch.agent.docker_executor import DockerExecutor
from p2porch.agent.model import KIND_INIT, KIND_SIDECAR, MemberSpec, TaskAssignment
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


async def test_pull_policy_always_pulls_a_present_image_and_a_failed_pull_runs_the_local_one(caplog):
    """As Swarm's agent: the pull on every start (each replacement of a crash-looping task) must not fail
    tasks whose image the node has when the registry is down or rate-limits; with no image, it fails."""
    engine = Cache("app:1")
    assert await DockerExecutor(engine)._ensure_image("app:1", "always") == ""  # type: ignore[arg-type]
    assert engine.pulls == ["app:1"]
    offline = Cache("app:1", pull_error="dial tcp: connection refused")
    with caplog.at_level(logging.WARNING, logger="p2porch.agent.docker_executor"):
        assert await DockerExecutor(offline)._ensure_image("app:1", "always") == ""  # type: ignore[arg-type]
    assert offline.pulls == ["app:1"]
    warned = "pulling app:1 failed: dial tcp: connection refused; running the image this node has"
    assert warned in caplog.text
    error = await DockerExecutor(offline)._ensure_image("web:2", "always")  # type: ignore[arg-type]
    assert error == "pulling web:2 failed: dial tcp: connection refused"


async def test_pull_policy_never_runs_only_an_image_the_node_has():
    engine = Cache("app:1")
    executor = DockerExecutor(engine)  # type: ignore[arg-type]
    assert await executor._ensure_image("app:1", "never") == ""
    error = await executor._ensure_image("web:2", "never")
    assert error == "image web:2 not found on this node and the service's pull_policy is never"
    assert engine.pulls == []


@pytest.mark.parametrize(
    ("policy", "pulls", "error"),
    [
        ("never", [], "image side:1 not found on this node and the service's pull_policy is never"),
        ("always", ["app:1", "init:1", "side:1"], "pulling side:1 failed: registry down"),
    ],
)
async def test_sidecar_and_init_images_follow_the_services_pull_policy(policy, pulls, error):
    engine = Cache("app:1", "init:1", pull_error="registry down")  # the sidecar's image is not here
    members = (MemberSpec("migrate", KIND_INIT, "init:1"), MemberSpec("proxy", KIND_SIDECAR, "side:1"))
    where: dict[str, Any] = {"task_id": "t1", "service_name": "web", "service_id": "s1", "node_name": "n1"}
    task = TaskAssignment(**where, slot=1, image="app:1", options={"pull_policy": policy}, members=members)
    outcome = await DockerExecutor(engine).start(task)  # type: ignore[arg-type]
    assert (outcome.container, outcome.error) == (None, error) and engine.pulls == pulls
