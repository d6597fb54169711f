"""Typed Raft commands for secrets, configs and the cluster key epoch (pure).

Values arrive sealed (ciphertext): nothing here or in the FSM ever sees plaintext or opens a key.
The FSM handlers are in ``fsm_secrets.py``; the dispatch table in ``commands.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..model.payload_template import check_driver
from . import fields as F
from .codec import Command

SECRET_KINDS = ("secret", "config")
MAX_SEALED_BYTES = 500 * 1024 + 64  # the value limit plus nonce and tag


def secret_kind(b: Mapping[str, Any]) -> str:
    """``kind`` of a body: secret or config."""
    kind = F.get(b, "kind", str)
    if kind not in SECRET_KINDS:
        raise F.invalid("kind must be secret or config", "kind")
    return kind


@dataclass(frozen=True, slots=True, kw_only=True)
class PutSecret(Command):
    """Create a secret/config (``secret_version`` 1) or add its next version; ``sealed`` is ciphertext
    only, sealed under the secrets key of cluster key epoch ``key_epoch``. ``template_driver`` ("" or
    ``golang``) is the object's at its creation; a new version must name the same one. ``defer_roll``
    (body version 2; version 1 is the same write without it) records the version as ``roll_pending``."""

    TAG = "put_secret"
    VERSION = 2
    kind: str
    name: str
    object_id: str
    secret_version: int
    sealed: bytes
    digest: str
    size: int
    labels: Mapping[str, str] = field(default_factory=dict)
    key_epoch: int = 0
    template_driver: str = ""
    defer_roll: bool = False  # a stack deploy's: the record keeps ``roll_pending`` until RollDone

    def body_version(self) -> int:
        return self.VERSION if self.defer_roll else 1

    def older_body(self, version: int) -> Command | None:
        """Version 1: the same version without the marker (a deploy that stops early then leaves its
        users unrolled until the next ``secret update``, as before the marker)."""
        return replace(self, defer_roll=False) if version >= 1 and self.defer_roll else None

    def body(self) -> dict[str, Any]:
        out = {
            "kind": self.kind,
            "name": self.name,
            "object_id": self.object_id,
            "secret_version": self.secret_version,
            "sealed": bytes(self.sealed),
            "digest": self.digest,
            "size": self.size,
            "labels": dict(self.labels),
            "key_epoch": self.key_epoch,
        }
        if self.template_driver:  # absent when none: a command of an older node decodes the same
            out["template_driver"] = self.template_driver
        if self.defer_roll:  # absent when false, as template_driver
            out["defer_roll"] = True
        return out

    @classmethod
    def from_body(cls, b: Mapping[str, Any], version: int, **common: Any) -> PutSecret:
        kind = secret_kind(b)
        sealed = F.get(b, "sealed", bytes)
        if not sealed or len(sealed) > MAX_SEALED_BYTES:
            raise F.invalid("sealed value is empty or too large", "sealed")
        return cls(
            kind=kind,
            name=F.get(b, "name", str),
            object_id=F.get(b, "object_id", str),
            secret_version=F.get(b, "secret_version", int),
            sealed=bytes(sealed),
            digest=F.get(b, "digest", str),
            size=F.get(b, "size", int),
            labels=F.labels(b.get("labels") or {}, "labels"),
            key_epoch=F.non_negative(b.get("key_epoch") or 0, "key_epoch"),
            template_driver=check_driver(b.get("template_driver"), "template_driver"),
            defer_roll=b.get("defer_roll") is True,
            **common,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RollDone(Command):
    """The users of version ``secret_version`` of a secret/config were rolled (a stack deploy's
    ``roll_to``): the record's ``roll_pending`` is cleared when it names that version."""

    TAG = "roll_done"
    kind: str
    name: str
    secret_version: int

    def body(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "secret_version": self.secret_version}

    @classmethod
    def from_body(cls, b: Mapping[str, Any], version: int, **common: Any) -> RollDone:
        kind = secret_kind(b)
        number = F.get(b, "secret_version", int)
        return cls(kind=kind, name=F.get(b, "name", str), secret_version=number, **common)


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveSecret(Command):
    """Delete a secret/config; refused (ConflictError naming them) while a service references it."""

    TAG = "remove_secret"
    kind: str
    name: str

    def body(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name}

    @classmethod
    def from_body(cls, b: Mapping[str, Any], version: int, **common: Any) -> RemoveSecret:
        return cls(kind=F.get(b, "kind", str), name=F.get(b, "name", str), **common)


@dataclass(frozen=True, slots=True, kw_only=True)
class ResealSecret(Command):
    """Replace the ciphertext (and keyed digest) of existing versions of a secret/config by the same
    values sealed under cluster key epoch ``key_epoch`` (the current one): ``versions`` holds
    ``{"version", "sealed", "digest"}`` maps. Conditional on the record's state version
    (``record_version``); version numbers do not change."""

    TAG = "reseal_secret"
    kind: str
    name: str
    object_id: str
    record_version: int
    key_epoch: int
    versions: tuple[Mapping[str, Any], ...]

    def body(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "object_id": self.object_id,
            "record_version": self.record_version,
            "key_epoch": self.key_epoch,
            "versions": [
                {"version": int(v["version"]), "sealed": bytes(v["sealed"]), "digest": str(v["digest"])}
                for v in self.versions
            ],
        }

    @classmethod
    def from_body(cls, b: Mapping[str, Any], version: int, **common: Any) -> ResealSecret:
        kind = secret_kind(b)
        items = F.get(b, "versions", list)
        if not items:
            raise F.invalid("versions must not be empty", "versions")
        versions = []
        for item in items:
            if not isinstance(item, Mapping):
                raise F.invalid("versions must hold maps", "versions")
            sealed = F.get(item, "sealed", bytes)
            if not sealed or len(sealed) > MAX_SEALED_BYTES:
                raise F.invalid("sealed value is empty or too large", "sealed")
            versions.append(
                {
                    "version": F.get(item, "version", int),
                    "sealed": sealed,
                    "digest": F.get(item, "digest", str),
                }
            )
        return cls(
            kind=kind,
            name=F.get(b, "name", str),
            object_id=F.get(b, "object_id", str),
            record_version=F.get(b, "record_version", int),
            key_epoch=F.non_negative(b.get("key_epoch") or 0, "key_epoch"),
            versions=tuple(versions),
            **common,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RotateKeys(Command):
    """Start cluster key epoch ``epoch``: its key sealed to each member that may follow it
    (``node id -> envelope``); every other live node must be named in ``excluded``."""

    TAG = "rotate_keys"
    epoch: int
    envelopes: Mapping[str, str]
    excluded: tuple[str, ...] = ()

    def body(self) -> dict[str, Any]:
        envelopes = dict(self.envelopes)
        return {"epoch": int(self.epoch), "envelopes": envelopes, "excluded": sorted(self.excluded)}

    @classmethod
    def from_body(cls, b: Mapping[str, Any], version: int, **common: Any) -> RotateKeys:
        envelopes = F.get(b, "envelopes", dict)
        for node_id, envelope in envelopes.items():
            if not isinstance(node_id, str):
                raise F.invalid("envelopes must be keyed by node id", "envelopes")
            F.key_text(envelope, "envelopes")
        excluded = F.get(b, "excluded", list, optional=True) or []
        if not all(isinstance(x, str) for x in excluded):
            raise F.invalid("excluded must be a list of node ids", "excluded")
        epoch = F.get(b, "epoch", int)
        return cls(epoch=epoch, envelopes=dict(envelopes), excluded=tuple(excluded), **common)
