"""Task groups in Raft (issue 21): old journals, command bytes and snapshots load without a group, and a
group survives the command codec and a snapshot. The group fields are additive in the version-1 body
(absent when unused), as networks, autoscale and schedules were: no new command version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgpack

from p2porch.model import ServiceSpec
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply_batch
from p2porch.raft.state import EMPTY_STATE, ClusterState

FIXTURES = Path(__file__).with_name("fixtures")
POD = ServiceSpec.from_dict(
    {
        "name": "pod",
        "image": "nginx:1",
        "publish": ["8080:80"],
        "sidecars": ['name=log,image=busybox,command="tail -F /x",publish=9000,reserve-memory=64M'],
        "init_containers": ["name=migrate,image=busybox,command=true"],
    }
)


def test_the_v0_journal_replays_to_services_without_a_group() -> None:
    old: dict[str, Any] = msgpack.unpackb(
        (FIXTURES / "v0_journal.msgpack").read_bytes(), raw=False, strict_map_key=False
    )
    state = EMPTY_STATE
    for batch in old["entries"]:
        state, _, _ = apply_batch(state, batch)
    assert state.services
    for service in state.services.values():
        assert service.spec.sidecars == () and service.spec.init_containers == ()
        assert "sidecars" not in service.spec.to_dict()


def test_stored_version_1_commands_decode_without_a_group_and_encode_to_the_same_bytes() -> None:
    for name in ("v1_commands.msgpack", "v1_commands_before_networks.msgpack"):
        stored = msgpack.unpackb((FIXTURES / name).read_bytes())
        specs = [
            c.spec for c in map(C.decode_command, stored) if isinstance(c, C.CreateService | C.UpdateService)
        ]
        assert specs and all(not s.is_group for s in specs)
    current = msgpack.unpackb((FIXTURES / "v1_commands.msgpack").read_bytes())
    assert [C.decode_command(b).encode() for b in current] == current


def test_a_group_survives_the_command_codec_and_a_snapshot() -> None:
    create = C.CreateService(at=1.0, service_id="s1", spec=POD)
    raw = create.encode()
    body = msgpack.unpackb(raw, raw=False)
    assert body["v"] == C.CreateService.VERSION == 1
    decoded = C.decode_command(raw)
    assert isinstance(decoded, C.CreateService) and decoded.spec == POD
    state, results, _ = apply_batch(
        EMPTY_STATE, msgpack.packb([C.InitCluster(at=0.5, cluster_id="c").encode(), raw], use_bin_type=True)
    )
    assert all(r["ok"] for r in results), results
    again = ClusterState.from_dict(state.to_dict())
    assert again == state and again.services["s1"].spec.sidecars == POD.sidecars
    assert again.services["s1"].spec.init_containers[0].command == ("true",)
