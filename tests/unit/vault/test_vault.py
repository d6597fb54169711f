"""Secrets and configs: sealing, names and sizes, spec references, the FSM records, reference resolution."""

from __future__ import annotations

import os

import pytest

from p2porch.control.secret_ops import file_ref_changes, resolve_file_refs, secret_view
from p2porch.errors import AuthError, ConfigError, ConflictError, NotFoundError
from p2porch.membership.token import new_token
from p2porch.model import ServiceSpec
from p2porch.model.filerefs import parse_file_ref
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE, ClusterState
from p2porch.vault import MAX_VALUE_BYTES, digest_of, open_value, seal_value, validate_name, validate_value

AT = 1000.0
KEY = new_token().derive("secrets")
VALUE = b"s3cr3t-\x00\xff-binary"


def test_seal_roundtrip_binary_and_ciphertext_hides_value() -> None:
    sealed = seal_value(KEY, "secret", "abc", 1, VALUE)
    assert VALUE not in sealed.blob
    assert "bytes" in repr(sealed) and VALUE.hex() not in repr(sealed)
    assert open_value(KEY, "secret", "abc", 1, sealed.blob) == VALUE


@pytest.mark.parametrize(
    ("key", "kind", "object_id", "version"),
    [
        (new_token().derive("secrets"), "secret", "abc", 1),  # another cluster's key
        (KEY, "config", "abc", 1),  # moved to another kind
        (KEY, "secret", "abd", 1),  # moved to another object
        (KEY, "secret", "abc", 2),  # replayed as another version
    ],
)
def test_open_refuses_wrong_key_or_moved_ciphertext(
    key: bytes, kind: str, object_id: str, version: int
) -> None:
    sealed = seal_value(KEY, "secret", "abc", 1, VALUE)
    with pytest.raises(AuthError, match="cannot decrypt"):
        open_value(key, kind, object_id, version, sealed.blob)


def test_open_refuses_tampered_and_truncated() -> None:
    blob = bytearray(seal_value(KEY, "secret", "abc", 1, VALUE).blob)
    blob[-1] ^= 1
    with pytest.raises(AuthError):
        open_value(KEY, "secret", "abc", 1, bytes(blob))
    with pytest.raises(AuthError, match="truncated"):
        open_value(KEY, "secret", "abc", 1, b"short")


def test_digest_is_keyed_and_distinguishes_values() -> None:
    import hashlib

    assert digest_of(KEY, VALUE) == digest_of(KEY, VALUE)
    assert digest_of(KEY, VALUE) != digest_of(KEY, VALUE + b"x")
    assert hashlib.sha256(VALUE).hexdigest() not in digest_of(KEY, VALUE)  # not a plain hash
    assert digest_of(new_token().derive("secrets"), VALUE) != digest_of(KEY, VALUE)


@pytest.mark.parametrize("name", ["", "-x", "a b", "x" * 65, "a/b", None])
def test_bad_names_refused(name: object) -> None:
    with pytest.raises(ConfigError):
        validate_name(name)


def test_names_and_sizes() -> None:
    assert validate_name("db_password.v2-x") == "db_password.v2-x"
    assert validate_value(b"\x00") == b"\x00"  # binary allowed
    assert len(validate_value(b"a" * MAX_VALUE_BYTES)) == MAX_VALUE_BYTES
    with pytest.raises(ConfigError, match="500 KiB"):
        validate_value(b"a" * (MAX_VALUE_BYTES + 1))
    with pytest.raises(ConfigError, match="empty"):
        validate_value(b"")


def test_file_refs_short_long_and_defaults() -> None:
    assert parse_file_ref("db", kind="secret", fieldname="s").target == "/run/secrets/db"
    assert parse_file_ref("nginx.conf", kind="config", fieldname="c").target == "/nginx.conf"
    ref = parse_file_ref("src=tls,target=key.pem,uid=101,gid=102,mode=0400", kind="secret", fieldname="s")
    assert (ref.source, ref.target, ref.uid, ref.gid, ref.mode, ref.pinned) == (
        "tls",
        "/run/secrets/key.pem",
        "101",
        "102",
        0o400,
        False,
    )
    pinned = parse_file_ref({"source": "tls", "version": 3}, kind="secret", fieldname="s")
    assert pinned.pinned and pinned.version == 3
    for bad in ("src=bad name", "src=x,mode=999", "src=x,uid=root", "src=x,bogus=1", "src=x,src=y"):
        with pytest.raises(ConfigError):
            parse_file_ref(bad, kind="secret", fieldname="secrets[0]")
    with pytest.raises(ConfigError, match="absolute"):
        parse_file_ref("src=c,target=rel", kind="config", fieldname="configs[0]")


def test_spec_refs_roundtrip_change_template_and_refuse_clashes() -> None:
    base = {"name": "web", "image": "busybox"}
    plain = ServiceSpec.from_dict(base)
    with_secret = ServiceSpec.from_dict({**base, "secrets": ["db"], "configs": ["app.conf"]})
    assert ServiceSpec.from_dict(with_secret.to_dict()) == with_secret
    assert with_secret.template_hash() != plain.template_hash()
    v2 = ServiceSpec.from_dict({**base, "secrets": [{"source": "db", "version": 2, "pinned": False}]})
    v1 = ServiceSpec.from_dict({**base, "secrets": [{"source": "db", "version": 1, "pinned": False}]})
    assert v1.template_hash() != v2.template_hash()  # a new version rolls the tasks
    with pytest.raises(ConfigError, match="used twice"):
        ServiceSpec.from_dict({**base, "secrets": ["db", "src=other,target=db"]})
    with pytest.raises(ConfigError):
        ServiceSpec.from_dict(
            {**base, "configs": ["src=c,target=/data"], "mounts": ["type=tmpfs,target=/data"]}
        )


def _state_with_secret(version_count: int = 1) -> ClusterState:
    state = apply(EMPTY_STATE, C.InitCluster(at=AT, cluster_id="c" * 16).encode())[0]
    for number in range(1, version_count + 1):
        value = f"value {number}".encode()
        sealed = seal_value(KEY, "secret", "sid", number, value)
        state, result, changes = apply(
            state,
            C.PutSecret(
                at=AT + number,
                kind="secret",
                name="db",
                object_id="sid",
                secret_version=number,
                sealed=sealed.blob,
                digest=digest_of(KEY, value),
                size=len(value),
            ).encode(),
        )
        assert result["ok"], result
        assert changes[0].kind == "secret"
    return state


def test_fsm_put_versions_and_ciphertext_only() -> None:
    state = _state_with_secret(3)
    record = state.secrets["secret:db"]
    assert record.current == 3 and [v["version"] for v in record.versions] == [1, 2, 3]
    assert b"value" not in C.RestoreState(at=0, state=state).encode()  # snapshots hold ciphertext only
    assert ClusterState.from_dict(state.to_dict()).secrets["secret:db"].current == 3
    view = secret_view(record)
    assert "sealed" not in str(view) and view["version"] == 3
    # a version that does not follow the current one, and a version 2 of a missing object, are refused
    sealed = seal_value(KEY, "secret", "sid", 9, b"x").blob
    args = {"kind": "secret", "object_id": "sid", "sealed": sealed, "digest": "d", "size": 1}
    _, result, _ = apply(state, C.PutSecret(at=AT, name="db", secret_version=9, **args).encode())
    assert isinstance(C.error_of(result), ConflictError)
    _, result, _ = apply(state, C.PutSecret(at=AT, name="other", secret_version=2, **args).encode())
    assert isinstance(C.error_of(result), NotFoundError)


def test_fsm_remove_refused_while_used_naming_services() -> None:
    state = _state_with_secret()
    spec = ServiceSpec.from_dict({"name": "web", "image": "busybox", "secrets": ["db"]})
    state = apply(state, C.CreateService(at=AT, service_id="svc1", spec=spec).encode())[0]
    _, result, _ = apply(state, C.RemoveSecret(at=AT, kind="secret", name="db").encode())
    error = C.error_of(result)
    assert isinstance(error, ConflictError) and "web" in error.message
    state = apply(state, C.RemoveService(at=AT, service_id="svc1").encode())[0]
    state, result, _ = apply(state, C.RemoveSecret(at=AT, kind="secret", name="db").encode())
    assert result["ok"] and "secret:db" not in state.secrets


def test_resolve_refs_sets_current_version_and_refuses_missing() -> None:
    state = _state_with_secret(2)
    spec = ServiceSpec.from_dict({"name": "web", "image": "busybox", "secrets": ["db"]})
    assert resolve_file_refs(state, spec).secrets[0].version == 2
    pinned = ServiceSpec.from_dict({"name": "web", "image": "busybox", "secrets": ["src=db,version=1"]})
    assert resolve_file_refs(state, pinned).secrets[0].version == 1
    with pytest.raises(NotFoundError, match="version 7"):
        resolve_file_refs(
            state, ServiceSpec.from_dict({"name": "w", "image": "b", "secrets": ["src=db,version=7"]})
        )
    with pytest.raises(NotFoundError, match="'nope' not found"):
        resolve_file_refs(state, ServiceSpec.from_dict({"name": "w", "image": "b", "secrets": ["nope"]}))


def test_secret_add_rm_changes() -> None:
    current = {
        "secrets": [{"source": "a", "target": "/run/secrets/a"}, {"source": "b", "target": "/run/secrets/b"}]
    }
    out = file_ref_changes(current, {"secrets_add": ["c"], "secrets_rm": ["a"], "replicas": 2})
    assert out["secrets"] == [{"source": "b", "target": "/run/secrets/b"}, "c"] and out["replicas"] == 2
    assert "secrets_add" not in out


def test_task_files_written_with_owner_mode_and_cleaned(tmp_path: object) -> None:
    from p2porch.member.task_files import TaskFiles
    from p2porch.model import Task

    if not os.path.isdir("/dev/shm"):
        pytest.skip("needs /dev/shm (a tmpfs)")
    root = os.path.join("/dev/shm", f"p2porch-test-{os.getpid()}")
    try:
        state = _state_with_secret(2)
        task = Task("t1", "svc", 1, node_id="n1")
        ref = parse_file_ref(
            f"src=db,version=2,uid={os.getuid()},gid={os.getgid()},mode=0440", kind="secret", fieldname="s"
        )
        files = TaskFiles(root, {0: KEY})
        mounts, error = files.prepare(state, task, [("secret", ref)])
        assert error == "" and mounts[0].target == "/run/secrets/db" and mounts[0].read_only
        st = os.stat(mounts[0].source)
        assert (st.st_mode & 0o777, st.st_uid) == (0o440, os.getuid())
        with open(mounts[0].source, "rb") as fh:
            assert fh.read() == b"value 2"
        bad = TaskFiles(root + "-other", {0: new_token().derive("secrets")})
        _, error = bad.prepare(state, Task("t2", "svc", 1, node_id="n1"), [("secret", ref)])
        assert "cannot decrypt" in error and not os.path.exists(os.path.join(root + "-other", "t2"))
        files.cleanup(keep=set())
        assert os.listdir(root) == []
    finally:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(root + "-other", ignore_errors=True)


def test_secret_events_carry_metadata_only() -> None:
    from p2porch.control.events import describe_change

    state = _state_with_secret(2)
    record = state.secrets["secret:db"]
    _, _, changes = apply(state, C.RemoveSecret(at=AT, kind="secret", name="db").encode())
    from p2porch.raft.fsm import Change

    updated = describe_change(Change("secret", "put", "secret:db", record, 9), None, state, AT)
    assert updated == {
        "at": AT,
        "type": "secret",
        "action": "updated",
        "name": "db",
        "secret_id": record.object_id,  # Docker's .Actor.ID
        "version": 2,
    }
    removed = describe_change(changes[0], record, state, AT)
    assert (removed["action"], removed["secret_id"]) == ("removed", record.object_id)


def test_a_value_sealed_under_an_epoch_the_node_lacks_fails_clearly() -> None:
    from p2porch.member.task_files import TaskFiles
    from p2porch.model import Task

    state = apply(EMPTY_STATE, C.InitCluster(at=AT, cluster_id="c" * 16).encode())[0]
    sealed = seal_value(KEY, "secret", "sid", 1, b"v").blob
    args = {"kind": "secret", "object_id": "sid", "sealed": sealed, "digest": "d", "size": 1}
    state = apply(state, C.PutSecret(at=AT, name="db", secret_version=1, key_epoch=3, **args).encode())[0]
    assert state.secrets["secret:db"].versions[0]["key_epoch"] == 3
    root = os.path.join("/dev/shm", f"p2porch-test-epoch-{os.getpid()}")
    try:
        ref = parse_file_ref("src=db,version=1", kind="secret", fieldname="s")
        _, error = TaskFiles(root, {0: KEY}).prepare(state, Task("t1", "svc", 1), [("secret", ref)])
        assert "cluster key epoch 3" in error and "secret update db" in error
        mounts, error = TaskFiles(root, {3: KEY}).prepare(state, Task("t2", "svc", 1), [("secret", ref)])
        assert error == ""
        with open(mounts[0].source, "rb") as fh:
            assert fh.read() == b"v"
    finally:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
