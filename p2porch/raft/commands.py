"""Raft command encoding and result helpers (pure).

A command is a msgpack map ``{"op": name, "at": proposer wall time (s), ...arguments}``; an optional
``"expected_version"`` makes it conditional on the global state version. ``at`` comes from the
proposer, never from the applying node, so every replica computes the same state. The FSM answers
every command with a result map: ``{"ok": True, "version": v, "value": ...}`` or ``{"ok": False,
"error": "ConflictError" | "NotFoundError" | "ConfigError" | "WireError", "message": ..., "field": ...}``.
This module builds bytes and interprets results; it never applies anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgpack

from ..errors import ConfigError, ConflictError, NotFoundError, P2POrchError, RaftError, WireError
from ..wire import MAX_FRAME_BYTES, pack
from .state import NodeRecord, TaskRecord

OPS = (
    "init_cluster",
    "add_node",
    "update_node",
    "remove_node",
    "create_service",
    "update_service",
    "remove_service",
    "put_tasks",
    "report_task_states",
    "lease_subnet",
    "release_subnet",
    "set_join_token",
    "put_secret",
    "remove_secret",
    "reseal_secret",
    "rotate_keys",
    "restore_state",
    "noop",
)

_ERRORS: dict[str, type[P2POrchError]] = {
    "ConflictError": ConflictError,
    "NotFoundError": NotFoundError,
    "ConfigError": ConfigError,
    "WireError": WireError,
}


def decode(data: bytes) -> Any:
    """Decode msgpack bytes; raises only WireError (kept here so the FSM does not depend on the
    decoder options of ``wire.unpack``)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise WireError(f"expected bytes, got {type(data).__name__}")
    if len(data) > MAX_FRAME_BYTES:
        raise WireError(f"command of {len(data)} bytes exceeds {MAX_FRAME_BYTES}")
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises many types
        raise WireError(f"malformed msgpack: {type(exc).__name__}: {exc}") from exc


def encode(op: str, at: float, *, expected_version: int | None = None, **args: Any) -> bytes:
    """Encode one command; ``expected_version`` (global) makes it conditional."""
    body: dict[str, Any] = {"op": op, "at": float(at), **args}
    if expected_version is not None:
        body["expected_version"] = int(expected_version)
    return pack(body)


def init_cluster(
    at: float,
    *,
    cluster_id: str,
    domain: str = "p2p",
    cluster_cidr: str = "10.240.0.0/16",
    subnet_prefix_len: int = 24,
) -> bytes:
    return encode(
        "init_cluster",
        at,
        cluster_id=cluster_id,
        domain=domain,
        cluster_cidr=cluster_cidr,
        subnet_prefix_len=subnet_prefix_len,
        expected_version=0,
    )


def restore_state(at: float, state: Mapping[str, Any]) -> bytes:
    """Install a whole state (``ClusterState.to_dict()``) as the first entry of a recovered cluster."""
    return encode("restore_state", at, state=dict(state), expected_version=0)


def add_node(at: float, node: NodeRecord, *, expected_version: int | None = None) -> bytes:
    """Add a member; ``joined_at`` and ``version`` of ``node`` are set by the FSM."""
    return encode("add_node", at, node=node.to_dict(), expected_version=expected_version)


def update_node(
    at: float,
    node_id: str,
    *,
    node_version: int | None = None,
    expected_version: int | None = None,
    **fields: Any,
) -> bytes:
    """Change some of: labels (full replacement), availability, status, role, addr, ports, capacity."""
    args: dict[str, Any] = {"node_id": node_id, "fields": dict(fields)}
    if node_version is not None:
        args["node_version"] = node_version
    return encode("update_node", at, expected_version=expected_version, **args)


def remove_node(at: float, node_id: str, *, expected_version: int | None = None) -> bytes:
    """Delete a member and its subnet lease (its tasks are left for the orchestrator)."""
    return encode("remove_node", at, node_id=node_id, expected_version=expected_version)


def create_service(
    at: float, service_id: str, name: str, spec: Mapping[str, Any], *, expected_version: int | None = None
) -> bytes:
    return encode(
        "create_service",
        at,
        service_id=service_id,
        name=name,
        spec=dict(spec),
        expected_version=expected_version,
    )


def update_service(
    at: float,
    service_id: str,
    spec: Mapping[str, Any],
    *,
    service_version: int | None = None,
    expected_version: int | None = None,
) -> bytes:
    args: dict[str, Any] = {"service_id": service_id, "spec": dict(spec)}
    if service_version is not None:
        args["service_version"] = service_version
    return encode("update_service", at, expected_version=expected_version, **args)


def remove_service(
    at: float, service_id: str, *, service_version: int | None = None, expected_version: int | None = None
) -> bytes:
    args: dict[str, Any] = {"service_id": service_id}
    if service_version is not None:
        args["service_version"] = service_version
    return encode("remove_service", at, expected_version=expected_version, **args)


def task_put(task: TaskRecord, *, task_version: int | None) -> dict[str, Any]:
    """One put_tasks item: create (``task_version=0``), update (its current version) or blind (None)."""
    return {"op": "put", "task": task.to_dict(), "task_version": task_version}


def task_remove(task_id: str, *, task_version: int | None) -> dict[str, Any]:
    return {"op": "remove", "task_id": task_id, "task_version": task_version}


def put_tasks(at: float, items: Iterable[Mapping[str, Any]], *, expected_version: int | None = None) -> bytes:
    """All-or-nothing batch of :func:`task_put`/:func:`task_remove` items (scheduler leader loop)."""
    return encode("put_tasks", at, items=[dict(i) for i in items], expected_version=expected_version)


def report_task_states(at: float, node_id: str, reports: Iterable[Mapping[str, Any]]) -> bytes:
    """Agent status batch: each report has task_id and any of state, state_at, error, container_id,
    address, message. Reports for tasks not assigned to ``node_id`` are skipped, not errors."""
    return encode("report_task_states", at, node_id=node_id, reports=[dict(r) for r in reports])


def lease_subnet(at: float, node_id: str, *, expected_version: int | None = None) -> bytes:
    """Lease the lowest free subnet of the cluster CIDR to a node (returns the existing one if any)."""
    return encode("lease_subnet", at, node_id=node_id, expected_version=expected_version)


def release_subnet(at: float, node_id: str, *, expected_version: int | None = None) -> bytes:
    return encode("release_subnet", at, node_id=node_id, expected_version=expected_version)


def set_join_token(at: float, join_token: str) -> bytes:
    """Replace the token new nodes must present (rotation); the cluster's own keys do not change."""
    return encode("set_join_token", at, join_token=join_token)


def put_secret(
    at: float,
    *,
    kind: str,
    name: str,
    object_id: str,
    version: int,
    sealed: bytes,
    digest: str,
    size: int,
    labels: Mapping[str, str] | None = None,
    key_epoch: int = 0,
) -> bytes:
    """Create a secret/config (``version`` 1) or add its next version; ``sealed`` is ciphertext only,
    sealed under the secrets key of cluster key epoch ``key_epoch``."""
    return encode(
        "put_secret",
        at,
        kind=kind,
        name=name,
        object_id=object_id,
        secret_version=version,
        sealed=bytes(sealed),
        digest=digest,
        size=size,
        labels=dict(labels or {}),
        key_epoch=key_epoch,
    )


def remove_secret(at: float, *, kind: str, name: str) -> bytes:
    """Delete a secret/config; refused (ConflictError naming them) while a service references it."""
    return encode("remove_secret", at, kind=kind, name=name)


def reseal_secret(
    at: float,
    *,
    kind: str,
    name: str,
    object_id: str,
    record_version: int,
    key_epoch: int,
    versions: Iterable[Mapping[str, Any]],
) -> bytes:
    """Replace the ciphertext (and keyed digest) of existing versions of a secret/config by the same
    values sealed under cluster key epoch ``key_epoch`` (the current one): ``versions`` holds
    ``{"version", "sealed", "digest"}`` maps. Conditional on the record's state version."""
    return encode(
        "reseal_secret",
        at,
        kind=kind,
        name=name,
        object_id=object_id,
        record_version=int(record_version),
        key_epoch=int(key_epoch),
        versions=[
            {"version": int(v["version"]), "sealed": bytes(v["sealed"]), "digest": str(v["digest"])}
            for v in versions
        ],
    )


def rotate_keys(at: float, epoch: int, envelopes: Mapping[str, str], excluded: Iterable[str] = ()) -> bytes:
    """Start cluster key epoch ``epoch``: its key sealed to each member that may follow it
    (``node id -> envelope``); every other live node must be named in ``excluded``."""
    return encode("rotate_keys", at, epoch=int(epoch), envelopes=dict(envelopes), excluded=sorted(excluded))


def noop(at: float, *, tag: Any = None) -> bytes:
    """A write that changes nothing but its result; used by tests and the benchmark as a barrier."""
    return encode("noop", at, tag=tag)


def ok(version: int, value: Any = None) -> dict[str, Any]:
    return {"ok": True, "version": version, "value": value}


def error(kind: str, message: str, *, field: str | None = None, version: int = 0) -> dict[str, Any]:
    return {"ok": False, "error": kind, "message": message, "field": field, "version": version}


def error_of(result: Mapping[str, Any]) -> P2POrchError | None:
    """The exception a failed result stands for, or None if it succeeded."""
    if result.get("ok"):
        return None
    cls = _ERRORS.get(str(result.get("error")), RaftError)
    return cls(str(result.get("message", "command failed")), field=result.get("field"))


def raise_for_result(result: Mapping[str, Any]) -> Any:
    """Return ``result["value"]`` or raise the matching P2POrchError subclass."""
    exc = error_of(result)
    if exc is not None:
        raise exc
    return result.get("value")
