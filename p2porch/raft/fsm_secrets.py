"""FSM handlers for secrets and configs (pure): add a sealed version, remove one that nothing uses.

Values arrive sealed (ciphertext); this module never sees plaintext. A handler returns
``(state, value, [(kind, op, key, record)])`` and refuses with ConfigError/ConflictError/NotFoundError,
which :mod:`p2porch.raft.fsm` turns into error results.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..errors import ConfigError, ConflictError, NotFoundError
from .state import ClusterState, SecretRecord, secret_key

KINDS = ("secret", "config")
MAX_SEALED_BYTES = 500 * 1024 + 64  # the value limit plus nonce and tag
MAX_VERSIONS = 10  # older versions are dropped (a service pinned to one fails to start its new tasks)


def _field(body: Mapping[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ConfigError(f"field {name!r} is missing or not a {kind.__name__}", field=name)
    return value


def users_of(state: ClusterState, kind: str, name: str) -> list[str]:
    """Names of the services whose spec references this secret/config."""
    out = []
    for svc in state.services.values():
        refs = svc.spec.get(kind + "s") or ()
        if any(isinstance(r, Mapping) and r.get("source") == name for r in refs):
            out.append(svc.name)
    return sorted(out)


def put_secret(s: ClusterState, b: Mapping[str, Any], at: float, v: int) -> Any:
    kind = _field(b, "kind", str)
    if kind not in KINDS:
        raise ConfigError("kind must be secret or config", field="kind")
    name = _field(b, "name", str)
    object_id = _field(b, "object_id", str)
    number = _field(b, "secret_version", int)
    sealed = _field(b, "sealed", bytes)
    if not sealed or len(sealed) > MAX_SEALED_BYTES:
        raise ConfigError("sealed value is empty or too large", field="sealed")
    entry = {
        "version": number,
        "sealed": sealed,
        "digest": _field(b, "digest", str),
        "size": _field(b, "size", int),
        "created_at": at,
        "key_epoch": int(b.get("key_epoch") or 0),
    }
    key = secret_key(kind, name)
    current = s.secrets.get(key)
    if current is None:
        if number != 1:
            raise NotFoundError(f"no {kind} {name}", field="name")
        record = SecretRecord(
            kind,
            name,
            object_id,
            (entry,),
            dict(b.get("labels") or {}),
            created_at=at,
            updated_at=at,
            version=v,
        )
    else:
        if current.object_id != object_id or number != current.current + 1:
            raise ConflictError(
                f"{kind} {name} is at version {current.current}; write version {current.current + 1}",
                field="secret_version",
            )
        versions = (*current.versions, entry)[-MAX_VERSIONS:]
        record = replace(current, versions=versions, updated_at=at, version=v)
    secrets = dict(s.secrets)
    secrets[key] = record
    return s.evolve(secrets=secrets, version=v), number, [("secret", "put", key, record)]


def reseal_secret(s: ClusterState, b: Mapping[str, Any], at: float, v: int) -> Any:
    """Swap the ciphertext of existing versions for the same values sealed under the current key epoch
    (after `cluster rotate-keys`, so that no stored value needs an older epoch's key). Refused when the
    record changed since it was read or the epoch is not the current one; version numbers stay."""
    kind = _field(b, "kind", str)
    key = secret_key(kind, _field(b, "name", str))
    current = s.secrets.get(key)
    if current is None or current.object_id != _field(b, "object_id", str):
        raise NotFoundError(f"no {key}", field="name")
    if current.version != _field(b, "record_version", int):
        raise ConflictError(f"{key} changed since it was read: reseal it again", field="record_version")
    epoch = _field(b, "key_epoch", int)
    if epoch != s.key_epoch:
        raise ConflictError(f"key epoch is {s.key_epoch}, not {epoch}", field="key_epoch")
    news = b.get("versions")
    if not isinstance(news, list) or not news:
        raise ConfigError("versions must be a non-empty list", field="versions")
    by_number = {int(e["version"]): dict(e) for e in current.versions}
    for item in news:
        if not isinstance(item, Mapping):
            raise ConfigError("versions must hold maps", field="versions")
        number = _field(item, "version", int)
        sealed = _field(item, "sealed", bytes)
        if number not in by_number:
            raise NotFoundError(f"{key} has no version {number}", field="versions")
        if not sealed or len(sealed) > MAX_SEALED_BYTES:
            raise ConfigError("sealed value is empty or too large", field="sealed")
        by_number[number].update(sealed=sealed, digest=_field(item, "digest", str), key_epoch=epoch)
    versions = tuple(by_number[int(e["version"])] for e in current.versions)
    record = replace(current, versions=versions, version=v)
    secrets = dict(s.secrets)
    secrets[key] = record
    return s.evolve(secrets=secrets, version=v), len(news), [("secret", "put", key, record)]


def remove_secret(s: ClusterState, b: Mapping[str, Any], at: float, v: int) -> Any:
    kind = _field(b, "kind", str)
    name = _field(b, "name", str)
    key = secret_key(kind, name)
    if key not in s.secrets:
        raise NotFoundError(f"no {kind} {name}", field="name")
    users = users_of(s, kind, name)
    if users:
        raise ConflictError(f"{kind} {name} is in use by service(s): {', '.join(users)}", field="name")
    secrets = dict(s.secrets)
    del secrets[key]
    return s.evolve(secrets=secrets, version=v), name, [("secret", "delete", key, None)]
