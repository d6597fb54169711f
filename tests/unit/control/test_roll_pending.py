"""A deploy's roll of a new secret/config version (``roll_to``) whose marker write fails, and the next
roll of a version left pending (a reviewer's finding 4 at 2e145e4d; control/secret_ops.py).

At 2e145e4d only NotAllowedError was suppressed on the RollDone write: a leader change turned a roll
that had completed into an error, and while the marker stayed each later ``roll_to`` moved every
unpinned user forward again, a user's ``service rollback`` made meanwhile undone.
"""

from __future__ import annotations

import pytest

from p2porch.control.secret_ops import SecretOps
from p2porch.control.service_ops import ServiceOps
from p2porch.errors import NotAllowedError, NotFoundError, NotLeaderError, P2POrchError, ProposalTimeout
from p2porch.raft import commands as C
from p2porch.testing.memstore import MemoryManager


class RollDoneFails(MemoryManager):
    """The RollDone write fails with ``error`` (None: written)."""

    error: P2POrchError | None = None

    async def write(self, command: bytes) -> object:
        if self.error is not None and isinstance(C.decode_command(command), C.RollDone):
            raise self.error
        return await super().write(command)


async def pending_v2(manager: RollDoneFails) -> tuple[SecretOps, ServiceOps]:
    """Config ``c`` at version 2 (written with defer_roll: pending), ``web`` on version 1."""
    secrets = SecretOps(manager, lambda: (0, b"k" * 32))  # type: ignore[arg-type]
    services = ServiceOps(manager, logs=None)  # type: ignore[arg-type]
    await secrets.create("config", {"name": "c", "data": "djE="})
    await services.create({"name": "web", "image": "p2porch/busybox:1", "configs": ["c"]})
    await secrets.update("config", "c", {"data": "djI=", "defer_roll": True})
    assert secrets.find("config", "c").roll_pending == 2
    return secrets, services


@pytest.mark.parametrize(
    "error",
    [
        ProposalTimeout("no answer from the Raft leader in time"),
        NotLeaderError("not the leader"),
        NotFoundError("no such config: c"),
        NotAllowedError("a node does not read roll_done yet"),
    ],
)
async def test_a_roll_whose_marker_write_fails_is_answered_as_done(error: P2POrchError) -> None:
    manager = RollDoneFails()
    secrets, services = await pending_v2(manager)
    manager.error = error
    answer = await secrets.update("config", "c", {"roll_to": 2})  # 2e145e4d: the error (but NotAllowed)
    assert answer["rolled_services"] == ["web"]
    assert [r.version for r in services.find("web").spec.configs] == [2]


async def test_a_later_roll_of_a_pending_version_keeps_a_rollback_made_by_hand() -> None:
    manager = RollDoneFails()
    secrets, services = await pending_v2(manager)
    manager.error = NotAllowedError("a node does not read roll_done yet")  # the marker stays
    await secrets.update("config", "c", {"roll_to": 2})
    await services.rollback("web")  # the user takes web back to version 1
    assert [r.version for r in services.find("web").spec.configs] == [1]
    manager.error = None
    answer = await secrets.update("config", "c", {"roll_to": 2})  # the next deploy's roll
    assert answer["rolled_services"] == []  # 2e145e4d: web rolled to 2 again, the rollback undone
    assert [r.version for r in services.find("web").spec.configs] == [1]
    assert secrets.find("config", "c").roll_pending == 0


async def test_a_plain_update_still_rolls_every_follower() -> None:
    manager = RollDoneFails()
    secrets, services = await pending_v2(manager)
    await secrets.update("config", "c", {"roll_to": 2})
    await services.rollback("web")
    await secrets.update("config", "c", {"data": "djM="})  # a new version: its users roll, as always
    assert [r.version for r in services.find("web").spec.configs] == [3]
