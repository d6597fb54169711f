"""An update is merged into the cluster's own write only (the autoscaler's step, a secret roll), never
into a user's (a reviewer's findings 1, 2 and 5 at 2e145e4d; model/update_sequence.py).

Main took any write that moved ``replicas`` alone for the autoscaler's (a user's ``service scale web=2``
committed between another's read and write of ``scale web=8`` was overwritten silently), rebased a
resend on the autoscaler's step or a roll without checking the rollback point it read (an update
rolled back in between was written again), and answered ``already`` to a request that was no resend.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from test_update_out_of_sequence import (
    SPEC,
    OtherWriterFirst,
    lost_then_sent_again,
    scale_command_of,
)

from p2porch.control.secret_ops import SecretOps
from p2porch.control.service_ops import ServiceOps
from p2porch.errors import ConflictError
from p2porch.model.autoscale_spec import AutoscaleStep
from p2porch.model.update_sequence import OUT_OF_SEQUENCE
from p2porch.raft import commands as C


async def made() -> tuple[ServiceOps, OtherWriterFirst]:
    manager = OtherWriterFirst()
    ops = ServiceOps(manager, logs=None)  # type: ignore[arg-type]
    await ops.create(dict(SPEC))
    return ops, manager


async def test_a_users_scale_in_between_is_not_taken_for_the_autoscalers() -> None:
    ops, manager = await made()
    manager.other = {"replicas": 2}  # another user's `service scale web=2`, between the read and write
    try:
        await ops.scale("web", 8)  # main: merged as the autoscaler's, 8 written, the user's 2 lost
    except ConflictError as exc:
        assert OUT_OF_SEQUENCE in exc.message
    else:
        raise AssertionError("written over another user's scale")
    assert ops.find("web").spec.replicas == 2


async def test_a_users_scale_back_to_the_autoscalers_replicas_is_not_taken_for_it() -> None:
    ops, manager = await made()
    await manager.write(scale_command_of(ops.find("web"), AutoscaleStep(1.0, 1, 3, "cpu")).encode())
    await ops.scale("web", 1)  # by hand: autoscale_last (1 -> 3) stays
    manager.other = {"replicas": 3}  # another user's scale 1 -> 3, as the autoscaler's last step
    try:
        await ops.update("web", {"image": "p2porch/busybox:2"})
    except ConflictError as exc:
        assert OUT_OF_SEQUENCE in exc.message
    else:
        raise AssertionError("merged into another user's scale")
    assert ops.find("web").spec.image == "p2porch/busybox:1"


async def test_a_resend_is_not_merged_into_an_autoscale_after_a_rollback() -> None:
    async def rolled_back_then_scaled(ops: ServiceOps) -> None:
        await ops.rollback("web")
        await ops.manager.write(scale_command_of(ops.find("web"), AutoscaleStep(3.0, 1, 3, "cpu")).encode())

    ops, answer = await lost_then_sent_again({"image": "p2porch/busybox:2"}, rolled_back_then_scaled)
    assert isinstance(answer, ConflictError) and OUT_OF_SEQUENCE in answer.message  # main: written again
    assert (ops.find("web").spec.image, ops.find("web").spec.replicas) == ("p2porch/busybox:1", 3)


async def test_a_resend_is_not_merged_into_a_secret_roll_after_a_rollback() -> None:
    async def rolled_back_then_rolled(ops: ServiceOps) -> None:
        await ops.rollback("web")
        secrets = SecretOps(ops.manager, lambda: (0, b"k" * 32))  # type: ignore[arg-type]
        await secrets.update("secret", "s1", {"data": "djI=", "defer_roll": True})
        web = ops.find("web")
        spec = dataclasses.replace(
            web.spec, secrets=tuple(dataclasses.replace(r, version=2) for r in web.spec.secrets)
        )
        await ops.manager.write(C.UpdateService.of(web, at=3.0, spec=spec, previous_spec=web.spec).encode())

    ops, answer = await lost_then_sent_again(
        {"image": "p2porch/busybox:2"}, rolled_back_then_rolled, secrets=["s1"]
    )
    assert isinstance(answer, ConflictError) and OUT_OF_SEQUENCE in answer.message  # main: written again
    web = ops.find("web").spec
    assert web.image == "p2porch/busybox:1" and [r.version for r in web.secrets] == [2]


async def test_the_same_change_made_by_another_user_is_not_answered_already() -> None:
    ops, manager = await made()
    manager.other = {"image": "p2porch/busybox:2"}
    answer: dict[str, Any] = await ops.update("web", {"image": "p2porch/busybox:2"})
    assert answer["changed"] == [] and "already" not in answer  # main: already (there was no resend)


async def test_a_redo_over_another_users_write_that_changes_nothing_is_not_answered_already() -> None:
    ops, manager = await made()
    manager.other = {"env": {"B": "2"}, "image": "p2porch/busybox:2"}  # carries this update's env too
    answer = await ops.update("web", {"env": {"B": "2"}})  # redone: the rollback point moved, base ""
    assert answer["changed"] == [] and "already" not in answer  # main: already (there was no resend)
