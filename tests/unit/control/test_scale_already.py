"""``service scale S=N`` of a service already at N replicas (h52left, item 3): the daemon writes nothing
(no Raft entry) and answers ``changed: []`` with ``already_at``; the CLI prints ``S scaled to N`` as
docker/cli does and says ``S: already at N replicas`` on stderr, and its ``--json`` carries
``already_at``. A paused update is resumed, as Swarm's scale does (review r52a, 3): written as an update
that changes nothing else, ``changed: ["resumed"]``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from p2porch.cli import main
from p2porch.cli import service as cli_service
from p2porch.control.service_ops import ServiceOps
from p2porch.raft import commands as C
from p2porch.testing.memstore import MemoryManager

SPEC = {"name": "web", "image": "p2porch/busybox:1", "replicas": 3}


async def test_a_scale_to_the_replicas_it_has_writes_nothing() -> None:
    manager = MemoryManager()
    ops = ServiceOps(manager, logs=None)  # type: ignore[arg-type]
    await ops.create(dict(SPEC))
    writes = manager.writes
    answer = await ops.scale("web", 3)
    assert answer["changed"] == [] and answer["already_at"] == 3
    assert manager.writes == writes
    moved = await ops.scale("web", 4)  # another count is written as before
    assert moved["changed"] == ["replicas"] and "already_at" not in moved


async def test_a_scale_to_the_replicas_it_has_resumes_a_paused_update_as_swarm() -> None:
    """docker/cli's ``service scale`` always sends the update, and swarmkit's UpdateService resets the
    update status, which resumes a paused update (review r52a, 3: the h52left main wrote nothing and
    answered ``already_at``, the update stayed paused and the CLI's wait then failed on it)."""
    manager = MemoryManager()
    ops = ServiceOps(manager, logs=None)  # type: ignore[arg-type]
    await ops.create(dict(SPEC))
    await manager.write(C.UpdateService.of(ops.find("web"), at=1.0, update_paused=True).encode())
    writes = manager.writes
    answer = await ops.scale("web", 3)
    assert answer["changed"] == ["resumed"] and "already_at" not in answer  # main: [], already_at 3
    assert manager.writes == writes + 1
    assert not ops.find("web").update_paused and ops.find("web").spec.replicas == 3
    again = await ops.scale("web", 3)  # resumed: nothing more to write
    assert again["already_at"] == 3 and manager.writes == writes + 1


class Client:
    def __init__(self, replicas: int) -> None:
        self.replicas = replicas

    def post(self, path: str, body: Any = None) -> Any:
        view = {"id": "0123456789abcdef", "name": "web", "version": 2, "changed": []}
        if body["replicas"] == self.replicas:
            return {**view, "already_at": self.replicas}
        if path == "/services/paused/scale":
            return {**view, "name": "paused", "changed": ["resumed"]}
        return {**view, "changed": ["replicas"]}


@pytest.mark.parametrize("json_out", [False, True])
def test_the_cli_says_a_service_is_already_at_its_replicas(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], json_out: bool
) -> None:
    monkeypatch.setattr(cli_service, "client_for", lambda args: Client(3))
    monkeypatch.setattr(cli_service, "wait_after", lambda args, client, watches: None)
    argv = ["service", "scale", "-d", *(["--json"] if json_out else []), "web=3", "api=2"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "web: already at 3 replicas (nothing changed)" in err  # main: nothing said
    assert "api: already" not in err
    if json_out:
        views = json.loads(out)
        assert views[0]["already_at"] == 3 and "already_at" not in views[1]
    else:
        assert out.splitlines() == ["web scaled to 3", "api scaled to 2"]  # docker/cli's words kept


def test_the_cli_says_a_scale_resumed_a_paused_update(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As ``service update`` says it (review r52d, 6): the scale to its count resumed a paused update."""
    monkeypatch.setattr(cli_service, "client_for", lambda args: Client(3))
    monkeypatch.setattr(cli_service, "wait_after", lambda args, client, watches: None)
    assert main(["service", "scale", "-d", "paused=2", "api=2"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == ["paused scaled to 2", "api scaled to 2"]
    assert err.splitlines() == ["paused: update resumed"]  # main: nothing said
