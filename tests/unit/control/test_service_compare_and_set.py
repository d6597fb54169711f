"""`service update --if-version` / API ``expected_version``: a compare-and-set on a service's spec.

ServiceOps runs over the real FSM in memory (no Raft); the manager can serve a stale local view to
show that the condition is also checked where it commits, not only on the node's own copy.
"""

from __future__ import annotations

import pytest

from p2porch.cli.main import main
from p2porch.control.service_ops import ServiceOps
from p2porch.errors import ConfigError, ConflictError
from p2porch.raft import commands as C
from p2porch.testing.memstore import MemoryManager

SPEC = {"name": "web", "image": "p2porch/busybox:latest", "replicas": 0, "labels": {"h": "w0"}}


async def test_update_at_the_expected_version_applies(ops: ServiceOps, manager: MemoryManager) -> None:
    created = await ops.create(dict(SPEC))
    updated = await ops.update("web", {"labels": {"h": "w1"}, "expected_version": created["version"]})
    assert updated["spec"]["labels"] == {"h": "w1"}
    assert updated["version"] > created["version"]


async def test_stale_expected_version_is_refused_and_writes_nothing(
    ops: ServiceOps, manager: MemoryManager
) -> None:
    created = await ops.create(dict(SPEC))
    await ops.update("web", {"labels": {"h": "w1"}})
    writes = manager.writes
    with pytest.raises(ConflictError, match="changed since you read it") as info:
        await ops.update("web", {"labels": {"h": "w2"}, "expected_version": created["version"]})
    assert info.value.field == "expected_version"
    assert manager.writes == writes
    assert ops.view(ops.find("web"))["spec"]["labels"] == {"h": "w1"}


async def test_condition_is_checked_where_it_commits(ops: ServiceOps, manager: MemoryManager) -> None:
    """Two clients read version v on a node; the first CAS wins, the second is refused by the FSM even
    though the node it went through had not applied the first yet."""
    created = await ops.create(dict(SPEC))
    manager.local = manager.state  # this node's copy stops here
    await ops.update("web", {"labels": {"h": "w1"}, "expected_version": created["version"]})
    with pytest.raises(ConflictError):
        await ops.update("web", {"labels": {"h": "w2"}, "expected_version": created["version"]})
    manager.local = None
    assert ops.view(ops.find("web"))["spec"]["labels"] == {"h": "w1"}


@pytest.mark.parametrize("bad", [0, -3, "7", 2.5, True])
async def test_invalid_expected_version_names_the_field(ops: ServiceOps, bad: object) -> None:
    await ops.create(dict(SPEC))
    with pytest.raises(ConfigError) as info:
        await ops.update("web", {"replicas": 1, "expected_version": bad})
    assert info.value.field == "expected_version"


@pytest.mark.parametrize(("value", "message"), [("0", "--if-version"), ("x", "--if-version")])
def test_cli_if_version_must_be_a_positive_integer(capsys, value: str, message: str) -> None:
    try:  # argparse type errors exit; UsageError is returned as the exit code
        code = main(["service", "update", "web", "--replicas", "2", "--if-version", value])
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err


class DeletedRightAfter(MemoryManager):
    """A `service rm` from another node commits right after each write, before the API answers."""

    async def write(self, command: bytes) -> object:
        result = await super().write(command)
        service = self.state.service_by_name("web")
        if not isinstance(C.decode_command(command), C.RemoveService) and service is not None:
            self._apply(C.RemoveService(at=0.0, service_id=service.service_id).encode())
        return result


@pytest.mark.parametrize("kind", ["create", "update", "cas"])
async def test_a_committed_write_is_never_answered_as_not_found(kind: str) -> None:
    """Found by the history test: the write committed, then a concurrent delete made the answer a 404,
    which tells the client the write did not happen."""
    manager = DeletedRightAfter()
    ops = ServiceOps(manager, logs=None)  # type: ignore[arg-type]
    if kind == "create":
        answer = await ops.create(dict(SPEC))
    else:
        manager.local = None
        plain = MemoryManager()
        plain.state = manager.state
        created = await ServiceOps(plain, logs=None).create(dict(SPEC))  # type: ignore[arg-type]
        manager.state = plain.state
        changes: dict = {"labels": {"h": "w1"}}
        if kind == "cas":
            changes["expected_version"] = created["version"]
        answer = await ops.update("web", changes)
    assert answer["removed"] is True and answer["name"] == "web" and answer["version"] is None
    assert manager.state.service_by_name("web") is None
