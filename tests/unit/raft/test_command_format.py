"""The command format is frozen: the encoder writes exactly the stored bytes and reads them back.

A change to a command's body must bump that command's ``VERSION`` (and keep reading the old body); this
test then fails until the fixture is regenerated on purpose: ``P2PORCH_REGEN_FIXTURES=1 pytest this_file``.
Every command is at version 1 except ``update_service`` (version 2: the same body, refused when it changes
the service's mode; ``v1_commands.msgpack`` holds the bytes of before, each at version 1).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import msgpack

from p2porch.model import (
    Availability,
    Node,
    NodeRole,
    NodeStatus,
    Rollout,
    ServiceSpec,
    Task,
    TaskHealth,
    TaskState,
)
from p2porch.raft import commands as C
from p2porch.raft.state import EMPTY_STATE

FIXTURE = Path(__file__).with_name("fixtures") / "commands.msgpack"
#: the same commands written before ``update_service`` version 2: every command at version 1
BEFORE_UPDATE_SERVICE_V2 = Path(__file__).with_name("fixtures") / "v1_commands.msgpack"
#: the same format written before node keys, secrets and key rotation existed (the first 14 commands)
BEFORE_SECRETS = Path(__file__).with_name("fixtures") / "v1_commands_before_secrets.msgpack"
#: the same format before networks existed (the first 17 commands), written with whole specs (before
#: ``to_sparse_dict`` left their default fields out)
BEFORE_NETWORKS = Path(__file__).with_name("fixtures") / "v1_commands_before_networks.msgpack"
WEB = ServiceSpec.from_dict(
    {
        "name": "web",
        "image": "nginx:1",
        "replicas": 2,
        "publish": ["8080:80"],
        "health": "true",
        "env": ["A=1"],
    }
)


#: the same format before ``on_site_loss`` existed (the first 24 commands: byte for byte the same today)
BEFORE_SITE_LOSS = Path(__file__).with_name("fixtures") / "v1_commands_before_site_loss.msgpack"
WEB_REPLACED_ON_SITE_LOSS = ServiceSpec.from_dict(
    {"name": "web3", "image": "nginx:1", "on_site_loss": "replace"}
)
#: the same format before leader fencing existed (the first 25 commands: byte for byte the same today)
BEFORE_FENCING = Path(__file__).with_name("fixtures") / "v1_commands_before_fencing.msgpack"
WEB_ON_NETWORKS = ServiceSpec.from_dict(
    {"name": "web2", "image": "nginx:1", "networks": ["front", "name=back,alias=db-proxy"]}
)


def every_command() -> list[C.Command]:
    node = Node("id1", "n1", "10.0.0.1", 7946, 7947, role=NodeRole.VOTER, labels={"zone": "a"})
    task = Task("t1", "s1", 1, "id1", state=TaskState.ASSIGNED, restart_history=(1.0,), move_to="id2")
    report = C.TaskStatusReport(
        "t1",
        state=TaskState.RUNNING,
        state_at=5.0,
        health=TaskHealth.HEALTHY,
        exit_code=None,
        reports_exit_code=True,
    )
    return [
        C.InitCluster(at=1.0, cluster_id="c0ffee"),
        C.AddNode(at=2.0, node=node, expected_version=1),
        C.UpdateNode(
            at=3.0, node_id="id1", node_version=2, availability=Availability.DRAIN, status=NodeStatus.DOWN
        ),
        C.RemoveNode(at=4.0, node_id="id1"),
        C.CreateService(at=5.0, service_id="s1", spec=WEB),
        C.UpdateService(
            at=6.0, service_id="s1", spec=WEB, previous_spec=WEB, update_paused=True, rebalance_requested=6.0
        ),
        C.RemoveService(at=7.0, service_id="s1", service_version=5),
        C.PutTasks(at=8.0, items=(C.TaskPut(task, task_version=0), C.TaskRemove("t0", task_version=3))),
        C.ReportTaskStates(at=9.0, node_id="id1", reports=(report,)),
        C.LeaseSubnet(at=10.0, node_id="id1"),
        C.ReleaseSubnet(at=11.0, node_id="id1"),
        C.SetJoinToken(at=12.0, join_token="P2PT-1-c0ffee-x"),
        C.RestoreState(at=13.0, state=EMPTY_STATE.evolve(cluster_id="c0ffee", version=3)),
        C.Noop(at=14.0, tag="barrier"),
        C.PutSecret(
            at=15.0,
            kind="secret",
            name="db",
            object_id="o1",
            secret_version=1,
            sealed=b"ciphertext",
            digest="sha256:x",
            size=6,
            labels={"team": "a"},
            key_epoch=1,
        ),
        C.RemoveSecret(at=16.0, kind="config", name="app"),
        C.RotateKeys(at=17.0, epoch=2, envelopes={"id1": "ZW52"}, excluded=("id2",)),
        C.CreateNetwork(
            at=18.0, network_id="n1", name="back", internal=True, attachable=True, labels={"tier": "db"}
        ),
        C.RemoveNetwork(at=19.0, name="back"),
        C.CreateService(at=20.0, service_id="s2", spec=WEB_ON_NETWORKS),
        C.PutAccessToken(at=21.0, name="ci", token_id="0123456789abcdef", role="operate", digest="ab" * 32),
        C.RemoveAccessToken(at=22.0, name="ci"),
        C.ResealSecret(
            at=23.0,
            kind="secret",
            name="db",
            object_id="o1",
            record_version=4,
            key_epoch=2,
            versions=({"version": 1, "sealed": b"ciphertext2", "digest": "hmac-sha256:y"},),
        ),
        C.UpdateService(
            at=24.0,
            service_id="s1",
            spec=WEB,
            rollout=Rollout.rolling_back(24.0, WEB.rollback, "manual rollback"),
        ),
        C.CreateService(at=25.0, service_id="s3", spec=WEB_REPLACED_ON_SITE_LOSS),
        C.ClaimLeaderEpoch(at=26.0, epoch=7),
        C.PutTasks(at=27.0, items=(C.TaskRemove("t1", task_version=9),), expected_version=8, leader_epoch=7),
        C.PutSecret(  # a stack deploy's version: its users roll later (roll_pending)
            at=28.0,
            kind="config",
            name="app",
            object_id="o2",
            secret_version=2,
            sealed=b"ciphertext3",
            digest="hmac-sha256:z",
            size=3,
            defer_roll=True,
        ),
        C.RollDone(at=29.0, kind="config", name="app", secret_version=2),
    ]


def as_version_1(commands: list[C.Command]) -> list[C.Command]:
    """``commands`` as version-1 bytes decode: an ``update_service`` applied whatever its mode."""
    return [replace(c, keeps_mode=False) if isinstance(c, C.UpdateService) else c for c in commands]


def test_every_command_encodes_to_the_stored_bytes() -> None:
    encoded = [c.encode() for c in every_command()]
    if os.environ.get("P2PORCH_REGEN_FIXTURES"):
        FIXTURE.write_bytes(msgpack.packb(encoded, use_bin_type=True))
    stored = msgpack.unpackb(FIXTURE.read_bytes())
    assert {type(c) for c in every_command()} == set(C.COMMANDS.values())
    assert encoded == stored
    assert [C.decode_command(b) for b in stored] == every_command()
    versions: dict[str, int] = {}
    for b in stored:
        head = msgpack.unpackb(b, raw=False)
        versions[head["t"]] = max(versions.get(head["t"], 0), head["v"])
    assert versions == {tag: 2 if tag in ("update_service", "put_secret") else 1 for tag in C.COMMANDS}
    assert max(versions.values()) == C.COMMAND_VERSION


def test_version_1_update_service_keeps_its_body_and_applies_whatever_its_mode() -> None:
    """Version 2 of ``update_service`` changed no field: the bytes of before differ only in ``v``, they
    decode to commands that do not refuse a mode change, and such a command writes them back unchanged."""
    before = msgpack.unpackb(BEFORE_UPDATE_SERVICE_V2.read_bytes())
    count = len(before)  # the commands of then (put_secret 2 and roll_done came after)
    now = msgpack.unpackb(FIXTURE.read_bytes())[:count]
    assert count == 27 and len(now) == count
    for old, new in zip(before, now, strict=True):
        old_frame, new_frame = msgpack.unpackb(old, raw=False), msgpack.unpackb(new, raw=False)
        assert old_frame["v"] == 1
        if old_frame["t"] == "update_service":
            assert (new_frame["v"], new_frame["b"]) == (2, old_frame["b"])
        else:
            assert new == old
    decoded = [C.decode_command(b) for b in before]
    assert decoded == as_version_1(every_command()[:count])
    assert [c.encode() for c in decoded] == before


def test_version_1_bytes_written_before_secrets_still_decode_to_the_same_commands() -> None:
    stored = msgpack.unpackb(BEFORE_SECRETS.read_bytes())
    assert len(stored) == 14
    assert [C.decode_command(b) for b in stored] == as_version_1(every_command()[:14])


def test_version_1_bytes_written_before_networks_still_decode_to_the_same_commands() -> None:
    stored = msgpack.unpackb(BEFORE_NETWORKS.read_bytes())
    assert len(stored) == 17
    assert [C.decode_command(b) for b in stored] == as_version_1(every_command()[:17])
    # whole specs there, sparse ones now: different bytes, the same commands (the encoder's choice,
    # not a new body version; older version-1 readers read sparse specs too)
    assert stored != msgpack.unpackb(BEFORE_UPDATE_SERVICE_V2.read_bytes())[:17]


def test_version_1_bytes_written_before_on_site_loss_are_what_the_encoder_still_writes() -> None:
    """A spec at the default ``on_site_loss`` (keep) encodes as before the field existed; such bytes
    decode to ``keep``; only a service that asks for ``replace`` carries the key."""
    stored = msgpack.unpackb(BEFORE_SITE_LOSS.read_bytes())
    assert len(stored) == 24
    assert [c.encode() for c in as_version_1(every_command()[:24])] == stored
    decoded = [C.decode_command(b) for b in stored]
    assert all(c.spec.on_site_loss == "keep" for c in decoded if isinstance(c, C.CreateService))
    body = msgpack.unpackb(every_command()[24].encode(), raw=False)["b"]
    assert body["spec"]["on_site_loss"] == "replace"


def test_version_1_bytes_written_before_fencing_are_what_the_encoder_still_writes() -> None:
    """A command without a leader epoch (every command an agent or the API writes, and every one written
    before fencing) encodes as before and decodes unfenced; only a leader's command carries the key."""
    stored = msgpack.unpackb(BEFORE_FENCING.read_bytes())
    assert len(stored) == 25
    assert [c.encode() for c in as_version_1(every_command()[:25])] == stored
    assert all(C.decode_command(b).leader_epoch is None for b in stored)
    body = msgpack.unpackb(every_command()[26].encode(), raw=False)["b"]
    assert body["leader_epoch"] == 7
