"""Raft entries and snapshots written before typed commands still load to the same state.

``fixtures/v0_journal.msgpack`` was produced by ``fixtures/make_v0_journal.py`` with the code of commit
6591852 (op-map commands from ``commands.encode(op, ...)``, services with their bookkeeping inside the
spec map). Today's code replays those exact bytes and reads that snapshot.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import msgpack
import pytest

from p2porch.model import ServiceSpec
from p2porch.model.records import LEGACY_BOOKKEEPING_KEYS
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply_batch
from p2porch.raft.state import EMPTY_STATE, ClusterState

FIXTURE = Path(__file__).with_name("fixtures") / "v0_journal.msgpack"


@pytest.fixture(scope="module")
def old() -> dict[str, Any]:
    data: dict[str, Any] = msgpack.unpackb(FIXTURE.read_bytes(), raw=False, strict_map_key=False)
    return data


def replay(entries: list[bytes]) -> tuple[ClusterState, list[list[dict[str, Any]]]]:
    state, results = EMPTY_STATE, []
    for batch in entries:
        state, batch_results, _ = apply_batch(state, batch)
        results.append(batch_results)
    return state, results


def test_the_fixture_is_in_the_old_format(old: dict[str, Any]) -> None:
    commands = [
        msgpack.unpackb(c, raw=False) for batch in old["entries"][:-1] for c in msgpack.unpackb(batch)
    ]
    assert all("op" in c and "t" not in c for c in commands)
    assert any("previous_spec" in c.get("spec", {}) for c in commands)  # bookkeeping inside the spec
    assert len(old["entries"]) == 23


def test_old_entries_give_the_same_results(old: dict[str, Any]) -> None:
    _, results = replay(old["entries"])
    assert len(results) == len(old["results"])
    for new_batch, old_batch in zip(results, old["results"], strict=True):
        assert len(new_batch) == len(old_batch)
        for new, was in zip(new_batch, old_batch, strict=True):
            keys = ("ok", "version", "value") if was["ok"] else ("ok", "error", "field", "version")
            assert {k: new[k] for k in keys} == {k: was[k] for k in keys}, (new, was)


def test_old_entries_give_the_same_state(old: dict[str, Any]) -> None:
    state, _ = replay(old["entries"])
    was = old["final_state"]
    scalars = (
        "cluster_id",
        "domain",
        "cluster_cidr",
        "subnet_prefix_len",
        "created_at",
        "version",
        "join_token",
    )
    assert {k: getattr(state, k) for k in scalars} == {k: was[k] for k in scalars}
    assert state.version == 22 and state.join_token.endswith("-newsecret")
    # fields added since: key_pub (empty), and add_node now stamps status_at with the join time (a
    # joining node counts as coming, not down since 0, for the autopilot's grace)
    nodes = [n.to_dict() for n in state.nodes.values()]
    assert [n.pop("key_pub") for n in nodes] == [""] * len(was["nodes"])
    assert all(n.join_port == n.vxlan_port == 0 for n in state.nodes.values())  # not behind a NAT
    assert [n.pop("status_at") for n in nodes] == [n["joined_at"] for n in was["nodes"]]
    assert nodes == [{k: v for k, v in n.items() if k != "status_at"} for n in was["nodes"]]
    assert [t.to_dict() for t in state.tasks.values()] == was["tasks"]
    assert [lease.to_dict() for lease in state.leases.values()] == was["leases"]
    assert len(state.services) == len(was["services"]) == 1
    (old_service,) = was["services"]
    service = state.services[old_service["service_id"]]
    stored = dict(old_service["spec"])
    bookkeeping = {k: stored.pop(k) for k in LEGACY_BOOKKEEPING_KEYS}
    assert service.spec == ServiceSpec.from_dict(stored) and service.spec.image == "nginx:2"
    assert {k: v for k, v in service.spec.to_dict().items() if k in stored and k != "update"} == {
        k: v for k, v in stored.items() if k != "update"
    }
    assert service.previous_spec == ServiceSpec.from_dict(bookkeeping["previous_spec"])
    assert service.previous_spec is not None and service.previous_spec.image == "nginx:1"
    assert service.update_paused is True and service.rebalance_requested == 12.0
    assert (service.version, service.created_at, service.updated_at) == (16, 6.0, 12.0)
    assert (state.tasks["t1"].state, state.tasks["t1"].move_to) == ("running", "id3")
    assert (state.tasks["t2"].state, state.tasks["t2"].exit_code, state.tasks["t2"].error) == (
        "failed",
        3,
        "boom",
    )


def test_old_snapshot_loads_to_the_replayed_state(old: dict[str, Any]) -> None:
    state, _ = replay(old["entries"])
    body = msgpack.unpackb(old["snapshot"], raw=False, strict_map_key=False)  # as RaftStore._read_dump does
    assert body["format"] == 1
    loaded = ClusterState.from_dict(body["state"])
    # the old code left status_at 0 on add_node; today's replay stamps the join time (nothing else differs)
    assert {n.status_at for n in loaded.nodes.values()} == {0.0}
    unstamped = {k: replace(n, status_at=0.0) for k, n in state.nodes.items()}
    # nor did it keep a service's user_version (None: unknown, model/update_sequence.py); replay sets it
    assert {s.user_version for s in loaded.services.values()} == {None}
    unknown = {k: replace(s, user_version=None) for k, s in state.services.items()}
    assert loaded == state.evolve(nodes=unstamped, services=unknown)
    assert loaded.service_by_name("web") == unknown["s1"]
    # and it is written back in the new layout, which loads to the same state again
    assert ClusterState.from_dict(loaded.to_dict()) == loaded
    assert "previous_spec" not in loaded.to_dict()["services"][0]["spec"]


def test_old_entries_decode_to_typed_commands_that_encode_in_the_new_format(old: dict[str, Any]) -> None:
    decoded = []
    for batch in old["entries"][:-2]:  # the last two are an unknown op and garbage
        for raw in msgpack.unpackb(batch):
            decoded.append(C.decode_command(raw))
    kinds = {type(c).__name__ for c in decoded}
    assert {"InitCluster", "AddNode", "UpdateNode", "CreateService", "UpdateService", "PutTasks"} <= kinds
    assert {"ReportTaskStates", "RemoveService", "LeaseSubnet", "ReleaseSubnet", "SetJoinToken"} <= kinds
    for cmd in decoded:
        frame = msgpack.unpackb(cmd.encode(), raw=False)
        assert (frame["t"], frame["v"]) == (cmd.TAG, 1)  # an old update_service stays one that applies
        assert C.decode_command(cmd.encode()) == cmd


# --- the last op-map commands main wrote: node keys, joining, secrets and configs, key rotation ---------

SECRETS_FIXTURE = Path(__file__).with_name("fixtures") / "v0_secrets_journal.msgpack"


@pytest.fixture(scope="module")
def old_secrets() -> dict[str, Any]:
    data: dict[str, Any] = msgpack.unpackb(SECRETS_FIXTURE.read_bytes(), raw=False, strict_map_key=False)
    return data


def test_newest_op_map_entries_give_the_same_results_and_state(old_secrets: dict[str, Any]) -> None:
    commands = [msgpack.unpackb(c, raw=False) for b in old_secrets["entries"] for c in msgpack.unpackb(b)]
    assert all("op" in c and "t" not in c for c in commands)
    assert {"put_secret", "remove_secret", "rotate_keys"} <= {c["op"] for c in commands}
    state, results = replay(old_secrets["entries"])
    for new_batch, old_batch in zip(results, old_secrets["results"], strict=True):
        for new, was in zip(new_batch, old_batch, strict=True):
            keys = ("ok", "version", "value") if was["ok"] else ("ok", "error", "field", "version")
            assert {k: new[k] for k in keys} == {k: was[k] for k in keys}, (new, was)
    assert state.to_dict() == ClusterState.from_dict(old_secrets["final_state"]).to_dict()
    assert (state.key_epoch, dict(state.key_envelopes)) == (1, {"id1": "ZW52MQ==", "id2": "ZW52Mg=="})
    assert [n.key_pub for n in state.nodes.values()] == ["cHViMQ==", "cHViMg==", "cHViMw=="]
    assert [n.status for n in state.nodes.values()] == ["ready", "ready", "joining"]
    (config,) = state.secrets.values()  # the secret went with its last user; the config stays
    assert (config.kind, config.name, config.current) == ("config", "cfg", 1)
    assert dict(config.labels) == {"team": "a"}
    assert config.versions[0]["sealed"] == b"sealed-1"


def test_newest_op_map_snapshot_loads_to_the_replayed_state(old_secrets: dict[str, Any]) -> None:
    state, _ = replay(old_secrets["entries"])
    body = msgpack.unpackb(old_secrets["snapshot"], raw=False, strict_map_key=False)
    assert ClusterState.from_dict(body["state"]) == state


def test_a_service_following_a_secret_replays_with_typed_file_refs(old_secrets: dict[str, Any]) -> None:
    state, _ = replay(old_secrets["entries"][:9])  # up to the update that rolled api to secret version 2
    service = state.service_by_name("api")
    assert service is not None
    assert [(r.source, r.version) for r in service.spec.secrets] == [("db", 2)]
    assert [(r.source, r.version) for r in service.spec.configs] == [("cfg", 1)]
    assert service.previous_spec is not None and service.previous_spec.secrets[0].version == 1
