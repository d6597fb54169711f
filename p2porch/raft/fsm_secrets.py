"""FSM handlers for secrets and configs (pure): add a sealed version, remove one that nothing uses.

Values arrive sealed (ciphertext); this module never sees plaintext. A handler returns
``(state, value, [(kind, op, key, record)])`` and refuses with ConflictError/NotFoundError, which
:mod:`p2porch.raft.fsm` turns into error results (fields were validated by the command decoders).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..errors import ConflictError, NotFoundError
from ..model import ServiceSpec
from .commands_secrets import PutSecret, RemoveSecret, ResealSecret, RollDone
from .state import ClusterState, SecretRecord, copy_map, secret_key

MAX_VERSIONS = 10  # older versions are dropped (a service pinned to one fails to start its new tasks)


def users_of(state: ClusterState, kind: str, name: str) -> list[str]:
    """Names of the services whose spec references this secret/config."""
    out = []
    for svc in state.services.values():
        refs = svc.spec.secrets if kind == "secret" else svc.spec.configs
        if any(r.source == name for r in refs):
            out.append(svc.name)
    return sorted(out)


def file_refusal(state: ClusterState, spec: ServiceSpec) -> str | None:
    """Why a rollback to ``spec`` could start no task (a secret or config it names removed since, as
    `secret rm` allows once no current spec uses it: Docker's rotation by new name), None when every one
    exists: the leader pauses such a rollback."""
    for kind, refs in (("secret", spec.secrets), ("config", spec.configs)):
        for ref in refs:
            if secret_key(kind, ref.source) not in state.secrets:
                return f"its previous spec's {kind} {ref.source!r} no longer exists"
    return None


def put_secret(s: ClusterState, c: PutSecret, v: int) -> Any:
    entry = {
        "version": c.secret_version,
        "sealed": c.sealed,
        "digest": c.digest,
        "size": c.size,
        "created_at": c.at,
        "key_epoch": c.key_epoch,
    }
    key = secret_key(c.kind, c.name)
    current = s.secrets.get(key)
    if current is None:
        if c.secret_version != 1:
            raise NotFoundError(f"no {c.kind} {c.name}", field="name")
        record = SecretRecord(
            c.kind,
            c.name,
            c.object_id,
            (entry,),
            dict(c.labels),
            created_at=c.at,
            updated_at=c.at,
            version=v,
            template_driver=c.template_driver,
            roll_pending=c.secret_version if c.defer_roll else 0,
        )
    else:
        if current.object_id != c.object_id or c.secret_version != current.current + 1:
            raise ConflictError(
                f"{c.kind} {c.name} is at version {current.current}; write version {current.current + 1}",
                field="secret_version",
            )
        if c.template_driver != current.template_driver:
            raise ConflictError(
                f"{c.kind} {c.name} has template driver {current.template_driver or 'none'}, not "
                f"{c.template_driver or 'none'}: a version keeps its object's",
                field="template_driver",
            )
        versions = (*current.versions, entry)[-MAX_VERSIONS:]
        pending = c.secret_version if c.defer_roll else 0  # a version that rolled at once: none pending
        record = replace(current, versions=versions, updated_at=c.at, version=v, roll_pending=pending)
    secrets = copy_map(s.secrets)
    secrets[key] = record
    return s.evolve(secrets=secrets, version=v), c.secret_version, [("secret", "put", key, record)]


def reseal_secret(s: ClusterState, c: ResealSecret, v: int) -> Any:
    """Swap the ciphertext of existing versions for the same values sealed under the current key epoch
    (after `cluster rotate-keys`, so that no stored value needs an older epoch's key). Refused when the
    record changed since it was read or the epoch is not the current one; version numbers stay."""
    key = secret_key(c.kind, c.name)
    current = s.secrets.get(key)
    if current is None or current.object_id != c.object_id:
        raise NotFoundError(f"no {key}", field="name")
    if current.version != c.record_version:
        raise ConflictError(f"{key} changed since it was read: reseal it again", field="record_version")
    if c.key_epoch != s.key_epoch:
        raise ConflictError(f"key epoch is {s.key_epoch}, not {c.key_epoch}", field="key_epoch")
    by_number = {int(e["version"]): dict(e) for e in current.versions}
    for item in c.versions:
        number = int(item["version"])
        if number not in by_number:
            raise NotFoundError(f"{key} has no version {number}", field="versions")
        by_number[number].update(sealed=bytes(item["sealed"]), digest=item["digest"], key_epoch=c.key_epoch)
    versions = tuple(by_number[int(e["version"])] for e in current.versions)
    record = replace(current, versions=versions, version=v)
    secrets = copy_map(s.secrets)
    secrets[key] = record
    return s.evolve(secrets=secrets, version=v), len(c.versions), [("secret", "put", key, record)]


def roll_done(s: ClusterState, c: RollDone, v: int) -> Any:
    """Clear ``roll_pending`` when it names the version rolled (a newer deferred version stays pending)."""
    key = secret_key(c.kind, c.name)
    current = s.secrets.get(key)
    if current is None:
        raise NotFoundError(f"no {c.kind} {c.name}", field="name")
    if current.roll_pending != c.secret_version:
        return s, 0, []
    record = replace(current, roll_pending=0, version=v)
    secrets = copy_map(s.secrets)
    secrets[key] = record
    return s.evolve(secrets=secrets, version=v), c.secret_version, [("secret", "put", key, record)]


def remove_secret(s: ClusterState, c: RemoveSecret, v: int) -> Any:
    key = secret_key(c.kind, c.name)
    if key not in s.secrets:
        raise NotFoundError(f"no {c.kind} {c.name}", field="name")
    users = users_of(s, c.kind, c.name)
    if users:
        raise ConflictError(f"{c.kind} {c.name} is in use by service(s): {', '.join(users)}", field="name")
    secrets = copy_map(s.secrets)
    del secrets[key]
    return s.evolve(secrets=secrets, version=v), c.name, [("secret", "delete", key, None)]
