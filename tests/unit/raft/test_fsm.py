"""FSM unit tests: every typed command, conditional writes, error results, codec and determinism."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2porch.errors import ConfigError, ConflictError, NotFoundError, WireError
from p2porch.model import Availability, Node, NodeRole, NodeStatus, ServiceSpec, Task, TaskState
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply, apply_batch, apply_command, encode_batch
from p2porch.raft.state import EMPTY_STATE, ClusterState
from p2porch.wire import pack

AT = 1000.0


def node(i: int, **kw: object) -> Node:
    return Node(f"id{i}", f"n{i}", f"10.0.0.{i}", 7947, 7946, **kw)  # type: ignore[arg-type]


def spec(name: str, **kw: object) -> ServiceSpec:
    return ServiceSpec(name=name, image=str(kw.pop("image", "busybox")), **kw)  # type: ignore[arg-type]


def create(service_id: str, name: str, **kw: object) -> bytes:
    ev = kw.pop("expected_version", None)
    return C.CreateService(at=AT, service_id=service_id, spec=spec(name, **kw), expected_version=ev).encode()  # type: ignore[arg-type]


def update_node(node_id: str, at: float = AT, **kw: object) -> bytes:
    return C.UpdateNode(at=at, node_id=node_id, **kw).encode()  # type: ignore[arg-type]


def put(*items: C.TaskItem, expected_version: int | None = None) -> bytes:
    return C.PutTasks(at=AT, items=items, expected_version=expected_version).encode()


def lease(node_id: str, expected_version: int | None = None) -> bytes:
    return C.LeaseSubnet(at=AT, node_id=node_id, expected_version=expected_version).encode()


def init(at: float = AT, **kw: object) -> bytes:
    return C.InitCluster(at=at, **kw).encode()  # type: ignore[arg-type]


def add(n: Node, expected_version: int | None = None) -> bytes:
    return C.AddNode(at=AT, node=n, expected_version=expected_version).encode()


def run(state: ClusterState, cmd: bytes) -> tuple[ClusterState, dict]:
    new, result, _ = apply(state, cmd)
    return new, result


def ok(state: ClusterState, cmd: bytes) -> ClusterState:
    new, result = run(state, cmd)
    assert result["ok"], result
    return new


def err(state: ClusterState, cmd: bytes, kind: type) -> dict:
    new, result = run(state, cmd)
    assert not result["ok"]
    assert isinstance(C.error_of(result), kind), result
    assert new is state
    return result


@pytest.fixture
def base() -> ClusterState:
    s = ok(EMPTY_STATE, init(cluster_id="c1", cluster_cidr="10.240.0.0/22"))
    s = ok(s, add(node(1, role="voter")))
    s = ok(s, add(node(2)))
    s = ok(s, create("s1", "web", replicas=2))
    return s


def test_init_cluster_sets_fields_and_refuses_second_init() -> None:
    s, result = run(EMPTY_STATE, init(5.0, cluster_id="abc", domain="p2p"))
    assert result == {"ok": True, "version": 1, "value": "abc"}
    assert (s.cluster_id, s.domain, s.cluster_cidr, s.created_at) == ("abc", "p2p", "10.240.0.0/16", 5.0)
    err(s, init(6.0, cluster_id="xyz"), ConflictError)
    err(s, init(6.0, cluster_id="xyz", expected_version=None), ConflictError)


def test_init_cluster_validates_cidr() -> None:
    r = err(EMPTY_STATE, init(cluster_id="a", cluster_cidr="10.240.0.1/16"), ConfigError)
    assert r["field"] == "cluster_cidr"
    err(EMPTY_STATE, init(cluster_id="a", subnet_prefix_len=8), ConfigError)


def test_writes_before_init_are_conflicts() -> None:
    err(EMPTY_STATE, add(node(1)), ConflictError)
    err(EMPTY_STATE, create("s", "web"), ConflictError)


def test_add_node_and_lookup_by_name(base: ClusterState) -> None:
    n1 = base.node_by_name("n1")
    assert n1 is not None and n1.node_id == "id1" and n1.role == "voter" and n1.joined_at == AT
    assert base.node_by_name("nope") is None
    err(base, add(node(1)), ConflictError)
    dup_name = Node("other", "n1", "10.0.0.9", 7947, 7946)
    assert err(base, add(dup_name), ConflictError)["field"] == "name"
    bad = Node("x", "x", "10.0.0.9", 70000, 7946)
    assert err(base, add(bad), ConfigError)["field"] == "raft_port"


def test_update_node_fields_and_version_check(base: ClusterState) -> None:
    v = base.nodes["id2"].version
    s = ok(base, update_node("id2", node_version=v, availability=Availability.DRAIN, labels={"zone": "a"}))
    n2 = s.nodes["id2"]
    assert n2.availability == "drain" and dict(n2.labels) == {"zone": "a"} and n2.version == s.version
    err(s, update_node("id2", node_version=v, status=NodeStatus.DOWN), ConflictError)
    raw = {"at": AT, "node_id": "id2", "fields": {"availability": "sleepy"}}
    err(s, pack({"t": "update_node", "v": 1, "b": raw}), ConfigError)
    err(s, pack({"t": "update_node", "v": 1, "b": {**raw, "fields": {"joined_at": 3.0}}}), ConfigError)
    err(s, pack({"t": "update_node", "v": 1, "b": {**raw, "fields": {}}}), ConfigError)
    err(s, update_node("nope", status=NodeStatus.DOWN), NotFoundError)
    s = ok(s, update_node("id2", at=AT + 5, role=NodeRole.VOTER, status=NodeStatus.DOWN))
    assert (s.nodes["id2"].role, s.nodes["id2"].status) == ("voter", "down")
    assert s.nodes["id2"].status_at == AT + 5 and s.nodes["id2"].down_since == AT + 5


def test_remove_node_releases_its_lease(base: ClusterState) -> None:
    s = ok(base, lease("id2"))
    new, result, changes = apply(s, C.RemoveNode(at=AT, node_id="id2").encode())
    assert result["ok"] and "id2" not in new.nodes and "id2" not in new.leases
    assert new.node_by_name("n2") is None
    assert [(c.kind, c.op, c.key) for c in changes] == [("node", "delete", "id2"), ("lease", "delete", "id2")]
    err(new, C.RemoveNode(at=AT, node_id="id2").encode(), NotFoundError)


def test_service_lifecycle_with_versions(base: ClusterState) -> None:
    svc = base.service_by_name("web")
    assert svc is not None and svc.spec.image == "busybox" and svc.spec.replicas == 2
    err(base, create("s2", "web"), ConflictError)
    err(base, create("s1", "other"), ConflictError)
    b2 = C.UpdateService.of(svc, at=AT + 1, spec=spec("web", image="b2"), previous_spec=svc.spec)
    s = ok(base, b2.encode())
    new = s.services["s1"]
    assert new.spec == spec("web", image="b2") and new.previous_spec == svc.spec and new.updated_at == AT + 1
    assert new.created_at == AT and not new.update_paused and new.rebalance_requested == 0.0
    paused = ok(s, C.UpdateService.of(new, at=AT + 2, update_paused=True, rebalance_requested=AT).encode())
    assert paused.services["s1"].update_paused and paused.services["s1"].rebalance_requested == AT
    assert paused.services["s1"].spec == new.spec and paused.services["s1"].previous_spec == svc.spec
    err(s, C.UpdateService.of(svc, at=AT, spec=spec("web", image="b3")).encode(), ConflictError)
    renamed = C.UpdateService.of(new, at=AT, spec=spec("other"))
    assert err(s, renamed.encode(), ConfigError)["field"] == "name"
    stale = C.RemoveService(at=AT, service_id="s1", service_version=svc.version)
    err(s, stale.encode(), ConflictError)
    s = ok(s, C.RemoveService(at=AT, service_id="s1").encode())
    assert s.service_by_name("web") is None
    err(s, C.UpdateService(at=AT, service_id="s1", spec=spec("web")).encode(), NotFoundError)


def test_committed_specs_that_do_not_validate_are_recorded_invalid(base: ClusterState) -> None:
    """A committed entry is a fact (model/committed.py): a spec this version rejects is applied as an
    invalid service naming the field, never refused (nodes of two versions would disagree)."""
    body = {"at": AT, "service_id": "s2", "spec": {"name": "db", "image": "x", "replicas": -1}}
    s = ok(base, pack({"t": "create_service", "v": 1, "b": body}))
    assert s.services["s2"].invalid.startswith("replicas:") and s.service_by_name("db") is not None
    body = {"at": AT, "service_id": "s3", "spec": {"name": "cache"}}
    s = ok(s, pack({"t": "create_service", "v": 1, "b": body}))
    assert s.services["s3"].invalid.startswith("image:")


def task(i: int, node_id: str | None = "id1", **kw: object) -> Task:
    return Task(f"t{i}", "s1", i, node_id, **kw)  # type: ignore[arg-type]


def test_put_tasks_create_update_remove(base: ClusterState) -> None:
    s = ok(base, put(C.TaskPut(task(1), task_version=0), C.TaskPut(task(2), task_version=0)))
    assert set(s.tasks) == {"t1", "t2"} and s.tasks["t1"].version == s.version
    v1 = s.tasks["t1"].version
    # creating again with task_version=0 is a conflict; whole batch rejected
    err(
        s,
        put(C.TaskPut(task(3), task_version=0), C.TaskPut(task(1), task_version=0)),
        ConflictError,
    )
    s2 = ok(
        s,
        put(C.TaskPut(task(1, "id2"), task_version=v1), C.TaskRemove("t2", task_version=v1)),
    )
    assert s2.tasks["t1"].node_id == "id2" and "t2" not in s2.tasks
    err(s2, put(C.TaskRemove("t2", task_version=None)), NotFoundError)


def test_put_tasks_guards_against_stale_leaders(base: ClusterState) -> None:
    err(base, put(C.TaskPut(task(1, "ghost"), task_version=0)), ConflictError)
    orphan = Task("t9", "nosvc", 0, None)
    err(base, put(C.TaskPut(orphan, task_version=None)), ConflictError)
    left = ok(base, update_node("id2", status=NodeStatus.LEFT))
    err(left, put(C.TaskPut(task(1, "id2"), task_version=0)), ConflictError)
    twice = (C.TaskPut(task(1), task_version=None), C.TaskRemove("t1", task_version=None))
    err(base, put(*twice), ConfigError)
    bad_state = {"op": "put", "task": {**task(1).to_dict(), "state": "sleeping"}, "task_version": None}
    r = err(base, pack({"t": "put_tasks", "v": 1, "b": {"at": AT, "items": [bad_state]}}), ConfigError)
    assert r["field"] == "state"


def test_global_expected_version(base: ClusterState) -> None:
    err(base, create("s2", "db", expected_version=base.version - 1), ConflictError)
    s = ok(base, create("s2", "db", expected_version=base.version))
    assert s.version == base.version + 1


def test_report_task_states_only_for_own_tasks(base: ClusterState) -> None:
    s = ok(
        base,
        put(C.TaskPut(task(1), task_version=0), C.TaskPut(task(2, "id2"), task_version=0)),
    )
    reports = (
        C.TaskStatusReport("t1", state=TaskState.RUNNING, container_id="abc", state_at=7.0),
        C.TaskStatusReport("t2", state=TaskState.RUNNING),
        C.TaskStatusReport("t404", state=TaskState.RUNNING),
    )

    def report(*rs: C.TaskStatusReport) -> bytes:
        return C.ReportTaskStates(at=AT, node_id="id1", reports=rs).encode()

    new, result, changes = apply(s, report(*reports))
    assert result["value"] == {"applied": ["t1"], "skipped": ["t2", "t404"]}
    assert new.tasks["t1"].state == "running" and new.tasks["t1"].container_id == "abc"
    assert new.tasks["t1"].started_at == 7.0 and new.tasks["t1"].exit_code is None
    assert new.tasks["t2"].state == "new" and len(changes) == 1
    # repeating an identical report changes nothing and does not bump the version
    again, result2, changes2 = apply(new, report(reports[0]))
    assert again is new and changes2 == [] and result2["value"]["skipped"] == ["t1"]
    exited = ok(new, report(C.TaskStatusReport("t1", exit_code=3, reports_exit_code=True)))
    assert exited.tasks["t1"].exit_code == 3 and exited.tasks["t1"].state == "running"
    cleared = ok(exited, report(C.TaskStatusReport("t1", exit_code=None, reports_exit_code=True)))
    assert cleared.tasks["t1"].exit_code is None
    body = {"at": AT, "node_id": "id1", "reports": [{"task_id": "t1", "state": 5}]}
    err(s, pack({"t": "report_task_states", "v": 1, "b": body}), ConfigError)


def test_lease_subnet_is_deterministic_and_reuses_released(base: ClusterState) -> None:
    s, r1 = run(base, lease("id1"))
    s, r2 = run(s, lease("id2"))
    assert (r1["value"], r2["value"]) == ("10.240.0.0/24", "10.240.1.0/24")
    same, r3, ch = apply(s, lease("id1"))
    assert r3["value"] == "10.240.0.0/24" and same is s and ch == []
    s = ok(s, C.ReleaseSubnet(at=AT, node_id="id1").encode())
    s = ok(s, add(node(3)))
    s, r4 = run(s, lease("id3"))
    assert r4["value"] == "10.240.0.0/24"
    err(s, lease("ghost"), NotFoundError)


def test_lease_subnet_exhaustion(base: ClusterState) -> None:
    s = base
    for i in range(3, 6):
        s = ok(s, add(node(i)))
    for nid in ("id1", "id2", "id3", "id4"):
        s = ok(s, lease(nid))
    err(s, lease("id5"), ConflictError)


def test_malformed_inputs_are_error_results() -> None:
    for raw in (b"", b"\xc1", b"\x93\x01\x02", pack([1, 2]), pack("x")):
        new, result, changes = apply(EMPTY_STATE, raw)
        assert new is EMPTY_STATE and not result["ok"] and changes == []
        assert result["error"] in ("WireError",)
    for body in ({"op": "nope", "at": 1.0}, {"op": "noop"}, {"op": "add_node", "at": "x"}):
        _, result, _ = apply(EMPTY_STATE, pack(body))
        assert isinstance(C.error_of(result), ConfigError)
    for frame in ({"t": "noop", "v": 2, "b": {"at": 1.0}}, {"t": "noop", "v": 1, "b": [1]}, {"t": "noop"}):
        _, result, _ = apply(EMPTY_STATE, pack(frame))
        assert isinstance(C.error_of(result), WireError), frame


def test_raise_for_result_maps_errors() -> None:
    assert C.raise_for_result(C.ok(3, "v")) == "v"
    with pytest.raises(ConflictError):
        C.raise_for_result(C.error("ConflictError", "boom"))
    with pytest.raises(WireError):
        C.raise_for_result(C.error("WireError", "boom"))


def test_batch_applies_in_order_with_per_command_results(base: ClusterState) -> None:
    batch = encode_batch(
        [
            create("s2", "db"),
            create("s3", "db"),
            b"junk",
            C.Noop(at=AT, tag=7).encode(),
        ]
    )
    s, results, changes = apply_batch(base, batch)
    assert [r["ok"] for r in results] == [True, False, False, True]
    assert results[3]["value"] == 7 and s.version == base.version + 1 and len(changes) == 1
    s2, results2, _ = apply_batch(base, b"\xff\xff")
    assert s2 is base and not results2[0]["ok"]


def test_state_roundtrips_through_dict(base: ClusterState) -> None:
    s = ok(base, put(C.TaskPut(task(1), task_version=0)))
    s = ok(s, lease("id1"))
    again = ClusterState.from_dict(s.to_dict())
    assert again == s and again.node_by_name("n2") == s.node_by_name("n2")
    assert again.lease_of("id1") == s.lease_of("id1")


# --- hypothesis properties ---------------------------------------------------------------------

names = st.sampled_from(["a", "b", "c", "d"])
versions = st.one_of(st.none(), st.integers(0, 12))


@st.composite
def typed_commands(draw: st.DrawFn) -> C.Command:
    kind = draw(st.integers(0, 11))
    i = draw(st.integers(1, 4))
    ev = draw(versions)
    if kind == 0:
        return C.AddNode(at=AT, node=node(i), expected_version=ev)
    if kind == 1:
        availability = draw(st.sampled_from([Availability.ACTIVE, Availability.DRAIN]))
        return C.UpdateNode(at=AT, node_id=f"id{i}", node_version=draw(versions), availability=availability)
    if kind == 2:
        return C.RemoveNode(at=AT, node_id=f"id{i}", expected_version=ev)
    if kind == 3:
        return C.CreateService(
            at=AT, service_id=f"s{i}", spec=spec(draw(names), replicas=i), expected_version=ev
        )
    if kind == 4:
        return C.UpdateService(
            at=AT,
            service_id=f"s{i}",
            spec=spec(draw(names), replicas=draw(st.integers(0, 100))),
            update_paused=draw(st.booleans()),
            service_version=draw(versions),
        )
    if kind == 5:
        t = Task(f"t{i}", f"s{draw(st.integers(1, 4))}", i, draw(st.sampled_from([None, "id1", "id2"])))
        return C.PutTasks(at=AT, items=(C.TaskPut(t, task_version=draw(versions)),), expected_version=ev)
    if kind == 6:
        report = C.TaskStatusReport(f"t{draw(st.integers(1, 4))}", state=TaskState.RUNNING)
        return C.ReportTaskStates(at=AT, node_id=f"id{i}", reports=(report,))
    if kind == 7:
        return C.LeaseSubnet(at=AT, node_id=f"id{i}", expected_version=ev)
    if kind == 8:
        envelopes = {f"id{j}": "ZQ==" for j in range(1, i + 1)}
        return C.RotateKeys(at=AT, epoch=draw(st.integers(1, 3)), envelopes=envelopes, excluded=("id9",))
    if kind == 9:
        return C.PutSecret(
            at=AT,
            kind=draw(st.sampled_from(["secret", "config"])),
            name=f"x{i}",
            object_id=f"o{i}",
            secret_version=draw(st.integers(1, 3)),
            sealed=b"ciphertext",
            digest="d",
            size=10,
            labels={"a": "b"},
            key_epoch=draw(st.integers(0, 2)),
        )
    if kind == 10:
        return C.RemoveSecret(at=AT, kind=draw(st.sampled_from(["secret", "config"])), name=f"x{i}")
    return C.ReleaseSubnet(at=AT, node_id=f"id{i}")


@st.composite
def commands(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=20))
    return draw(typed_commands()).encode()


def replay(cmds: list[bytes]) -> tuple[ClusterState, list[dict]]:
    s = ok(EMPTY_STATE, init(cluster_id="c", cluster_cidr="10.240.0.0/22"))
    results = []
    for cmd in cmds:
        s, result, _ = apply(s, cmd)
        results.append(result)
    return s, results


REPLICA = """
import hashlib, sys
import msgpack
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE
while header := sys.stdin.buffer.read(4):
    log = msgpack.unpackb(sys.stdin.buffer.read(int.from_bytes(header, "big")), raw=False)
    state, trace = EMPTY_STATE, []
    for cmd in log:
        state, result, changes = apply(state, cmd)
        trace.append([result, [[c.kind, c.op, c.key, c.version] for c in changes]])
    body = msgpack.packb([state.to_dict(), trace], use_bin_type=True)
    sys.stdout.write(hashlib.sha256(body).hexdigest() + chr(10))
    sys.stdout.flush()
"""


def log_digest(log: list[bytes]) -> str:
    """What REPLICA prints for ``log`` (the same code, in this process)."""
    state, trace = EMPTY_STATE, []
    for cmd in log:
        state, result, changes = apply(state, cmd)
        trace.append([result, [[c.kind, c.op, c.key, c.version] for c in changes]])
    body = msgpack.packb([state.to_dict(), trace], use_bin_type=True)
    return hashlib.sha256(body).hexdigest()


@pytest.fixture(scope="module")
def replica_process() -> Iterator[subprocess.Popen[str]]:
    """A replica applying logs in another process whose string hashes differ from this one's: set or
    hash() order, object ids, clocks or randomness in the FSM would make the two states diverge."""
    hash_seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"
    proc = subprocess.Popen(
        [sys.executable, "-c", REPLICA],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONHASHSEED": hash_seed},
        text=True,
    )
    yield proc
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=10)


@settings(max_examples=150, deadline=None)
@given(st.lists(commands(), max_size=30))
def test_property_another_process_computes_the_same_state(
    replica_process: subprocess.Popen[str], cmds: list[bytes]
) -> None:
    log = [init(cluster_id="c", cluster_cidr="10.240.0.0/22"), *cmds]
    assert replica_process.stdin is not None and replica_process.stdout is not None
    frame = msgpack.packb(log, use_bin_type=True)
    replica_process.stdin.buffer.write(len(frame).to_bytes(4, "big") + frame)  # type: ignore[attr-defined]
    replica_process.stdin.flush()
    assert replica_process.stdout.readline().strip() == log_digest(log)
    s1, _ = replay(cmds)
    assert ClusterState.from_dict(s1.to_dict()) == s1


@settings(max_examples=200, deadline=None)
@given(typed_commands())
def test_property_codec_round_trips_every_command(cmd: C.Command) -> None:
    assert C.decode_command(cmd.encode()) == cmd


@settings(max_examples=150, deadline=None)
@given(st.lists(typed_commands(), max_size=30))
def test_property_bytes_and_typed_commands_apply_alike(cmds: list[C.Command]) -> None:
    # the encoded path (what a follower replays from its journal) and the typed path agree, and the
    # resulting state survives a snapshot round trip
    from_bytes, results = replay([c.encode() for c in cmds])
    typed = ok(EMPTY_STATE, init(cluster_id="c", cluster_cidr="10.240.0.0/22"))
    for i, cmd in enumerate(cmds):
        typed, result, _ = apply_command(typed, cmd)
        assert result == results[i]
    assert typed == from_bytes
    assert ClusterState.from_dict(from_bytes.to_dict()) == from_bytes


@settings(max_examples=150, deadline=None)
@given(st.lists(commands(), max_size=30))
def test_property_versions_and_invariants(cmds: list[bytes]) -> None:
    s = ok(EMPTY_STATE, init(cluster_id="c", cluster_cidr="10.240.0.0/22"))
    for cmd in cmds:
        new, result, changes = apply(s, cmd)
        if result["ok"] and changes:
            assert new.version == s.version + 1 and all(c.version == new.version for c in changes)
        else:
            assert new is s
        s = new
        # invariants: unique names, unique subnets, leases only for members
        assert len({n.name for n in s.nodes.values()}) == len(s.nodes)
        assert len({x.subnet for x in s.leases.values()}) == len(s.leases)
        assert set(s.leases) <= set(s.nodes)
        for name, node_id in s._node_names.items():
            assert s.nodes[node_id].name == name


@settings(max_examples=100, deadline=None)
@given(st.lists(commands(), min_size=1, max_size=15), st.integers(0, 40))
def test_property_stale_expected_version_is_rejected(cmds: list[bytes], stale_by: int) -> None:
    s, _ = replay(cmds)
    expected = s.version - 1 - stale_by
    new, result, changes = apply(s, create("fresh", "fresh", expected_version=expected))
    assert isinstance(C.error_of(result), ConflictError) and new is s and changes == []


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_property_garbage_bytes_never_raise(raw: bytes) -> None:
    s, _ = replay([])
    new, result, changes = apply(s, raw)
    assert isinstance(result, dict) and "ok" in result
    if not result["ok"]:
        assert new is s and changes == []
    new2, results2, _ = apply_batch(s, raw)
    assert isinstance(results2, list)


def test_restore_state_installs_a_whole_state_one_generation_on(base: ClusterState) -> None:
    restored = ok(EMPTY_STATE, C.RestoreState(at=AT, state=base).encode())
    assert restored.generation == base.generation + 1 == 1
    assert restored.version > base.version
    assert restored.nodes == base.nodes and restored.services == base.services
    assert restored.node_by_name("n2") == base.node_by_name("n2")
    # writes continue on top, with the records' versions still checked
    after = ok(restored, update_node("id2", labels={"a": "b"}, node_version=base.nodes["id2"].version))
    assert after.nodes["id2"].labels == {"a": "b"}
    # only into an empty log, and only a real state
    err(base, C.RestoreState(at=AT, state=base).encode(), ConflictError)

    def raw_restore(state: object) -> bytes:
        return pack({"t": "restore_state", "v": 1, "b": {"at": AT, "expected_version": 0, "state": state}})

    err(EMPTY_STATE, raw_restore({"nodes": []}), ConfigError)
    err(EMPTY_STATE, raw_restore({"cluster_id": "c", "nodes": ["garbage"]}), ConfigError)
    # a service spec that does not validate is a committed fact: restored, recorded invalid
    bad_service = {**base.to_dict(), "services": [{"service_id": "s9", "spec": {"name": "x"}}]}
    assert ok(EMPTY_STATE, raw_restore(bad_service)).services["s9"].invalid.startswith("image:")


def test_rotate_keys_steps_one_epoch_with_envelopes_for_known_nodes(base: ClusterState) -> None:
    def rotate(epoch: int, envelopes: dict, excluded: tuple = ()) -> bytes:
        return C.RotateKeys(at=AT, epoch=epoch, envelopes=envelopes, excluded=excluded).encode()

    assert base.key_epoch == 0
    s = ok(base, rotate(1, {"id1": "ZW52ZWxvcGU=", "id2": "ZQ=="}))
    assert (s.key_epoch, s.key_envelopes["id1"]) == (1, "ZW52ZWxvcGU=")
    err(s, rotate(1, {}), ConflictError)  # replayed epoch
    err(s, rotate(3, {}), ConflictError)  # skipped epoch
    err(s, rotate(2, {"nobody": "eA=="}), NotFoundError)
    err(s, rotate(2, {"id1": "x" * 1000, "id2": "eA=="}), ConfigError)
    assert ClusterState.from_dict(s.to_dict()).key_envelopes == s.key_envelopes


def test_node_public_key_is_recorded_and_bounded(base: ClusterState) -> None:
    s = ok(base, add(node(3, key_pub="cHVi")))
    assert s.nodes["id3"].key_pub == "cHVi"
    s = ok(s, update_node("id3", key_pub="bmV3"))
    assert s.nodes["id3"].key_pub == "bmV3"
    raw = pack({"t": "update_node", "v": 1, "b": {"at": AT, "node_id": "id3", "fields": {"key_pub": 7}}})
    err(s, raw, ConfigError)


def test_restore_records_the_version_its_founder_recovered_from(base: ClusterState) -> None:
    restored = ok(EMPTY_STATE, C.RestoreState(at=AT, state=base).encode())
    assert restored.founded_at_version == base.version
    assert ClusterState.from_dict(restored.to_dict()).founded_at_version == base.version


def test_a_joining_node_is_neither_ready_nor_down(base: ClusterState) -> None:
    s = ok(base, add(node(4, status=NodeStatus.JOINING)))
    assert s.nodes["id4"].status == NodeStatus.JOINING
    assert not s.nodes["id4"].schedulable and s.nodes["id4"].down_since is None


def test_a_rotation_that_misses_a_live_node_is_refused_unless_it_excludes_it(base: ClusterState) -> None:
    # computed before node id2 joined: applying it would silently cut id2 off
    r = err(base, C.RotateKeys(at=AT, epoch=1, envelopes={"id1": "ZQ=="}).encode(), ConflictError)
    assert r["field"] == "envelopes" and "n2" in r["message"]
    s = ok(base, C.RotateKeys(at=AT, epoch=1, envelopes={"id1": "ZQ=="}, excluded=("id2",)).encode())
    assert s.key_epoch == 1
