"""An update whose read and write are separated by any number of the cluster's own moves (autoscale steps,
secret/config rolls) is merged into the spec now, as one such move was; a user's write among them still
refuses it (h52left, item 2; model/update_sequence.py ``user_version``).

Main kept only the autoscaler's *last* step (``autoscale_last``) and the rollback point to tell the
cluster's moves from a user's, so two steps between a stack deploy's read and its write (a busy
autoscaler, a step and a roll) refused the deploy "update out of sequence" (409) though no user wrote.
Now the FSM keeps, per service, the state version of the last write that was not one of the cluster's
moves (``Service.user_version``); an update read at a record version not below it is merged."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from test_update_out_of_sequence import SPEC, scale_command_of

from p2porch.control.secret_ops import SecretOps
from p2porch.control.service_ops import ServiceOps
from p2porch.errors import ConflictError
from p2porch.model import Service
from p2porch.model.autoscale_spec import AutoscaleStep
from p2porch.model.spec import MAX_REPLICAS
from p2porch.model.update_sequence import OUT_OF_SEQUENCE
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE, ClusterState
from p2porch.testing.memstore import MemoryManager
from p2porch.wire import pack

Move = Callable[[Service], C.UpdateService]


class MovesFirst(MemoryManager):
    """Before the next write, each of ``moves`` (built from the service as it then is) commits."""

    def __init__(self) -> None:
        super().__init__()
        self.moves: list[Move] = []

    async def write(self, command: bytes) -> object:
        moves, self.moves = self.moves, []
        for move in moves:
            service = self.state.service_by_name("web")
            assert service is not None
            self._apply(move(service).encode())
        return await super().write(command)


def step(to: int, at: float) -> Move:
    """The autoscaler's step from the replicas the service has to ``to``."""
    return lambda s: scale_command_of(
        s, AutoscaleStep(at=at, from_replicas=s.spec.replicas, to_replicas=to, reason="cpu")
    )


def by_hand(replicas: int) -> Move:
    """Another user's `service scale` (a rollback point kept, as the API writes it)."""
    return lambda s: C.UpdateService.of(
        s, at=5.0, spec=dataclasses.replace(s.spec, replicas=replicas), previous_spec=s.spec
    )


def roll(version: int) -> Move:
    """The roll of version ``version`` of the service's unpinned secret (the spec it left is the rollback
    point, as ``SecretOps`` rolls)."""

    def move(s: Service) -> C.UpdateService:
        spec = dataclasses.replace(
            s.spec, secrets=tuple(dataclasses.replace(r, version=version) for r in s.spec.secrets)
        )
        return C.UpdateService.of(s, at=6.0, spec=spec, previous_spec=s.spec)

    return move


async def made(secret: bool = False) -> tuple[ServiceOps, MovesFirst]:
    manager = MovesFirst()
    if secret:
        secrets = SecretOps(manager, lambda: (0, b"k" * 32))  # type: ignore[arg-type]
        await secrets.create("secret", {"name": "s1", "data": "djE="})
        for data in ("djI=", "djM="):
            await secrets.update("secret", "s1", {"data": data, "defer_roll": True})  # versions 2, 3
    ops = ServiceOps(manager, logs=None)  # type: ignore[arg-type]
    await ops.create({**SPEC, **({"secrets": ["s1"]} if secret else {})})
    return ops, manager


async def test_two_autoscale_steps_between_the_read_and_the_write_are_merged_into() -> None:
    ops, manager = await made()
    manager.moves = [step(3, 1.0), step(5, 2.0)]
    answer = await ops.update("web", {"image": "p2porch/busybox:2"})  # main: 409 out of sequence
    spec = ops.find("web").spec
    assert answer["changed"] == ["image"] and (spec.image, spec.replicas) == ("p2porch/busybox:2", 5)


async def test_many_steps_and_rolls_between_the_read_and_the_write_are_merged_into() -> None:
    ops, manager = await made(secret=True)
    manager.moves = [step(3, 1.0), roll(2), step(4, 2.0), roll(3), step(2, 3.0)]
    answer = await ops.update("web", {"env": {"A": "1"}})  # main: 409
    spec = ops.find("web").spec
    assert answer["changed"] == ["env"] and spec.replicas == 2 and [r.version for r in spec.secrets] == [3]


async def test_a_scale_is_merged_over_many_steps_and_takes_the_users_count() -> None:
    ops, manager = await made()
    manager.moves = [step(3, 1.0), step(4, 2.0)]
    await ops.scale("web", 8)  # main: 409
    assert ops.find("web").spec.replicas == 8


@pytest.mark.parametrize(
    "moves",
    [
        [step(3, 1.0), by_hand(2), step(4, 2.0)],  # a user's scale between two steps
        [by_hand(2), step(4, 2.0)],
        [
            step(3, 1.0),
            lambda s: C.UpdateService.of(
                s, at=7.0, spec=dataclasses.replace(s.spec, env=(("B", "2"),)), previous_spec=s.spec
            ),
        ],
    ],
)
async def test_a_users_write_among_the_clusters_moves_still_refuses_it(moves: list[Move]) -> None:
    ops, manager = await made()
    manager.moves = moves
    with pytest.raises(ConflictError, match=OUT_OF_SEQUENCE):
        await ops.update("web", {"image": "p2porch/busybox:2"})
    assert ops.find("web").spec.image == "p2porch/busybox:1"


async def test_the_fsm_keeps_the_version_of_the_last_users_write_only() -> None:
    ops, manager = await made(secret=True)
    created = ops.find("web")
    assert created.user_version == created.version  # the create is the user's
    for move in (step(3, 1.0), roll(2)):  # the cluster's: kept
        await manager.write(move(ops.find("web")).encode())
        assert ops.find("web").user_version == created.version
    await manager.write(C.UpdateService.of(ops.find("web"), at=8.0, rebalance_requested=8.0).encode())
    assert ops.find("web").user_version == created.version  # bookkeeping: the spec is the same
    await ops.scale("web", 5)  # by hand
    web = ops.find("web")
    assert web.user_version == web.version > created.version
    assert Service.from_dict(web.to_dict()).user_version == web.user_version  # in the snapshot


async def test_a_record_stored_before_it_knows_no_user_version_and_refuses_as_before() -> None:
    ops, manager = await made()
    legacy = {k: v for k, v in ops.find("web").to_dict().items() if k != "user_version"}
    old = Service.from_dict(legacy)
    assert old.user_version is None
    manager.state = dataclasses.replace(manager.state, services={old.service_id: old})
    manager.moves = [step(3, 1.0), step(5, 2.0)]
    with pytest.raises(ConflictError, match=OUT_OF_SEQUENCE):  # unknown: only one step is told apart
        await ops.update("web", {"image": "p2porch/busybox:2"})


def test_a_bookkeeping_write_of_a_spec_this_node_cannot_read_keeps_the_user_version() -> None:
    """Review r52a, 4: a node that cannot read a service's spec (committed by a newer version) bumped
    ``user_version`` on every write to it, the leader's bookkeeping too (a rebalance cleared, a rollout
    marked done); the same spec as committed now keeps it, another spec still bumps it."""
    unreadable = {"name": "web", "image": "nginx", "replicas": MAX_REPLICAS + 1}

    def update(state: ClusterState, spec: dict[str, object], **bookkeeping: object) -> ClusterState:
        body = {"at": 3.0, "service_id": "s1", "spec": spec, "service_version": state.services["s1"].version}
        new, result, _ = apply(state, pack({"t": "update_service", "v": 2, "b": {**body, **bookkeeping}}))
        assert result["ok"], result
        return new

    state, result, _ = apply(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c").encode())
    create = {"at": 2.0, "service_id": "s1", "spec": unreadable}
    state, result, _ = apply(state, pack({"t": "create_service", "v": 1, "b": create}))
    created = state.services["s1"]
    assert created.invalid and created.user_version == created.version
    state = update(state, dict(unreadable), rebalance_requested=5.0)  # the same spec, as committed
    assert state.services["s1"].version > created.version
    assert state.services["s1"].user_version == created.version  # main: bumped to the write's version
    state = update(state, {**unreadable, "replicas": MAX_REPLICAS + 2})  # a user's: another spec
    assert state.services["s1"].user_version == state.services["s1"].version
