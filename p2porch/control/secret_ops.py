"""Secrets and configs behind the API: create, update (a new version), list, inspect, remove.

Owns sealing a value before it is written (the replicated state only holds ciphertext), presenting
metadata (never a value: views carry name, id, version, size, digest and dates), resolving the
references of a service spec to versions, and rolling the services that follow a secret when it gets a
new version. Values arrive base64-encoded in the request body and are never logged or returned.
"""

from __future__ import annotations

import base64
import binascii
import logging
import posixpath
import secrets as stdlib_secrets
from collections.abc import Callable, Collection
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..api.server import Endpoint
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ConfigError, ConflictError, NotAllowedError, NotFoundError, RaftError, no_such
from ..model import Rollout, SecretRecord, ServiceSpec, secret_key
from ..model.filerefs import SECRETS_DIR, parse_file_ref
from ..model.metadata_limits import check_labels
from ..model.payload_template import check_driver
from ..raft import commands as C
from ..raft.fsm_secrets import users_of
from ..raft.state import ClusterState
from ..vault import KINDS, digest_of, seal_value, validate_name, validate_value
from .fresh_read import redone_on_newer_record

if TYPE_CHECKING:
    from ..membership.manager import ClusterManager

__all__ = ["Follow", "SecretOps", "kept_refs", "resolve_file_refs", "secret_endpoints", "secret_view"]

log = logging.getLogger(__name__)

OBJECT_ID_BYTES = 8
#: ``(kind, name)`` of the secrets/configs a stack deploy gave a new version without rolling them
Follow = Collection[tuple[str, str]]


def secret_view(record: SecretRecord) -> dict[str, Any]:
    """Metadata only: never the sealed value, never the plaintext."""
    current = record.versions[-1] if record.versions else {}
    return {
        "kind": record.kind,
        "name": record.name,
        "id": record.object_id,
        "version": record.current,
        "versions": [int(v["version"]) for v in record.versions],
        "key_epochs": sorted({int(v.get("key_epoch", 0)) for v in record.versions}),  # sealed under
        "size": current.get("size", 0),
        "digest": current.get("digest", ""),
        "labels": dict(record.labels),
        "template_driver": record.template_driver,  # "" or golang: each task gets its value rendered
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }


def resolve_file_refs(
    state: ClusterState,
    spec: ServiceSpec,
    creating: Collection[tuple[str, str]] = (),
    kept: ServiceSpec | None = None,
) -> ServiceSpec:
    """``spec`` with every unpinned secret/config reference set to the current version; a reference to a
    missing object or version is refused (naming it) before anything is written. A reference to an
    object of ``creating`` (``(kind, name)``: a stack dry run's objects still to create) stays as is.

    ``kept`` is the spec a `service update` changes: an unpinned reference to an object it already
    references keeps that version while the object still has it. The service follows the object through
    ``secret update``/``config update`` (which roll it); an update of anything else (`service scale`, a
    label) must not move it, or it would silently undo a `service rollback` of a new version."""
    resolved: dict[str, Any] = {}
    for kind in KINDS:
        had = {r.source: r.version for r in getattr(kept, kind + "s", ()) if not r.pinned}
        refs = []
        for ref in getattr(spec, kind + "s"):
            record = state.secrets.get(secret_key(kind, ref.source))
            if record is None and (kind, ref.source) in creating:
                refs.append(ref)
                continue
            if record is None:
                raise NotFoundError(f"{kind} {ref.source!r} not found: create it first", field=f"{kind}s")
            if ref.pinned:
                if record.sealed_version(ref.version) is None:
                    raise NotFoundError(
                        f"{kind} {ref.source!r} has no version {ref.version} (it has "
                        f"{', '.join(str(v['version']) for v in record.versions)})",
                        field=f"{kind}s",
                    )
                refs.append(ref)
            elif had.get(ref.source) and record.sealed_version(had[ref.source]) is not None:
                refs.append(replace(ref, version=had[ref.source]))
            else:
                refs.append(replace(ref, version=record.current))
        resolved[kind + "s"] = tuple(refs)
    return replace(spec, **resolved)


def kept_refs(current: ServiceSpec, changes: dict[str, Any], follow: Follow = ()) -> ServiceSpec:
    """The ``kept`` spec of a `service update` of ``current`` by ``changes`` (see resolve_file_refs):
    without the sources ``secrets_add``/``configs_add`` names. A reference removed and added again in
    one update (``--secret-rm S --secret-add S``) is one the update adds: it takes the current version.
    An entry that does not parse keeps nothing out: the spec's own check refuses it, naming it.
    ``follow`` (``(kind, name)``: the objects a stack deploy just gave a new version without rolling
    them) keeps nothing either: the update carries the new version with its other changes."""
    dropped: dict[str, Any] = {}
    for kind in KINDS:
        added = changes.get(f"{kind}s_add")
        names = {name for k, name in follow if k == kind}
        for entry in added if isinstance(added, list) else ():
            try:
                names.add(parse_file_ref(entry, kind=kind, fieldname=f"{kind}s_add").source)
            except ConfigError:
                continue
        if names:
            refs = getattr(current, kind + "s")
            dropped[kind + "s"] = tuple(r for r in refs if r.source not in names)
    return replace(current, **dropped) if dropped else current


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise NotFoundError(f"unknown object kind {kind!r}", field="kind")
    return kind


def _value(body: dict[str, Any], kind: str) -> bytes:
    data = body.get("data")
    if not isinstance(data, str):
        raise ConfigError(f"the {kind} value is missing (data: base64)", field="data")
    try:
        raw = base64.b64decode(data.encode(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"the {kind} value is not valid base64", field="data") from None
    return validate_value(raw, kind)


def _template_driver(body: dict[str, Any], kind: str) -> str:
    try:
        return check_driver(body.get("template_driver"), "template_driver")
    except ConfigError as exc:
        raise ConfigError(f"the {kind}'s {exc.message}", field="template_driver") from None


class SecretOps:
    """Secret and config lifecycle; ``key`` returns (key epoch, the cluster's secrets master key)."""

    def __init__(
        self, manager: ClusterManager, key: Callable[[], tuple[int, bytes]], *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.manager = manager
        self.key = key
        self.clock = clock

    def _state(self) -> ClusterState:
        return self.manager.require_store().snapshot()

    def find(self, kind: str, name: str) -> SecretRecord:
        state = self._state()
        record = state.secrets.get(secret_key(_kind(kind), name))
        if record is None:
            by_id = [r for r in state.secrets.values() if r.kind == kind and r.object_id == name]
            if len(by_id) == 1:
                return by_id[0]
            raise no_such(kind, name, field="NAME")
        return record

    def list_all(self, kind: str) -> list[dict[str, Any]]:
        state = self._state()
        views = [secret_view(r) for r in state.secrets.values() if r.kind == _kind(kind)]
        for view in views:
            view["services"] = users_of(state, kind, view["name"])
        return sorted(views, key=lambda v: v["name"])

    def inspect(self, kind: str, name: str) -> dict[str, Any]:
        record = self.find(kind, name)
        view = secret_view(record)
        view["services"] = users_of(self._state(), kind, record.name)
        return view

    async def _write_version(
        self,
        kind: str,
        name: str,
        object_id: str,
        version: int,
        value: bytes,
        labels: Any,
        driver: str,
        defer_roll: bool = False,
    ) -> None:
        epoch, master = self.key()
        sealed = seal_value(master, kind, object_id, version, value)
        await self.manager.write(
            C.PutSecret(
                at=self.clock.now(),
                kind=kind,
                name=name,
                object_id=object_id,
                secret_version=version,
                sealed=bytes(sealed.blob),
                digest=digest_of(master, value),
                size=len(value),
                labels=dict(labels or {}),
                key_epoch=epoch,
                template_driver=driver,
                defer_roll=defer_roll,
            ).encode()
        )

    async def create(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        name = validate_name(body.get("name"), _kind(kind))
        value = _value(body, kind)
        driver = _template_driver(body, kind)
        labels = body.get("labels") or {}
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise ConfigError("labels must be a map of strings", field="labels")
        check_labels(labels, "labels")
        if secret_key(kind, name) in self._state().secrets:
            raise ConflictError(f"a {kind} named {name!r} already exists (use `{kind} update`)", field="NAME")
        object_id = stdlib_secrets.token_hex(OBJECT_ID_BYTES)
        await self._write_version(kind, name, object_id, 1, value, labels, driver)
        return self.inspect(kind, name)

    async def update(self, kind: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Add a version, then roll every service that follows this object (unpinned references). A
        ``template_driver`` in ``body`` must be the object's (set at its creation, as Swarm's).

        ``defer_roll``: write the version and roll nothing (``stack deploy``: each of its services that
        changes carries the new version in its one update, ``follow`` of the deploy body); ``roll_to``
        (no value): roll the followers still below that version of the object, and write no version
        (the deploy's last step, for the services it did not update; it clears ``roll_pending``, the
        deferred version a deploy cut short left unrolled: an unchanged answer names it)."""
        record = self.find(kind, name)
        if "roll_to" in body and "data" in body:
            raise ConfigError("roll_to: give roll_to alone (no data): it writes no version", field="roll_to")
        if "roll_to" in body:
            version = body["roll_to"]
            if (
                isinstance(version, bool)
                or not isinstance(version, int)
                or record.sealed_version(version) is None
            ):
                raise ConfigError(
                    f"roll_to: {kind} {record.name!r} has no version {version!r}", field="roll_to"
                )
            rolled = await self._roll_followers(kind, record.name, version, roll_to=True)
            if record.roll_pending == version:
                await self._roll_done(kind, record.name, version)
            return {**self.inspect(kind, record.name), "rolled_services": rolled}
        value = _value(body, kind)
        if "template_driver" in body and _template_driver(body, kind) != record.template_driver:
            raise ConfigError(
                f"{kind} {record.name!r} has template driver {record.template_driver or 'none'}: it is "
                f"set when the {kind} is created (remove it and create it again to change it)",
                field="template_driver",
            )
        current = record.versions[-1].get("digest") if record.versions else None
        if body.get("if_changed") and digest_of(self.key()[1], value) == current:
            pending = {"roll_pending": record.roll_pending} if record.roll_pending else {}
            return {**self.inspect(kind, record.name), "unchanged": True, "rolled_services": [], **pending}
        version = record.current + 1
        defer = body.get("defer_roll") is True
        await self._write_version(
            kind, record.name, record.object_id, version, value, None, record.template_driver, defer
        )
        if defer:  # a stack deploy: its services carry it in their own update
            return {**self.inspect(kind, record.name), "rolled_services": []}
        rolled = await self._roll_followers(kind, record.name, version)
        view = self.inspect(kind, record.name)
        view["rolled_services"] = rolled
        return view

    async def _roll_done(self, kind: str, name: str, version: int) -> None:
        """Clear ``roll_pending`` after its roll, best effort: the roll is done whatever this write's
        outcome (a node not reading roll_done, a leader change, the object removed meanwhile); a marker
        left makes the next deploy roll again, which skips the users rolled back by hand."""
        done = C.RollDone(at=self.clock.now(), kind=kind, name=name, secret_version=version)
        try:
            await self.manager.write(done.encode())
        except (NotAllowedError, RaftError, NotFoundError) as exc:
            log.warning(
                "%s %s: version %d rolled, its pending mark not cleared: %s", kind, name, version, exc
            )

    async def _roll_followers(self, kind: str, name: str, version: int, roll_to: bool = False) -> list[str]:
        """Roll every service that follows ``name`` to ``version``; the names of those rolled. ``roll_to``
        (a deploy's roll, perhaps of a version left pending): a service whose rollback point already
        carries ``version`` was rolled back from it by hand and stays."""
        rolled = []
        for service_id in list(self._state().services):
            followed = await self._roll_follower(service_id, kind, name, version, roll_to)
            if followed is not None:
                rolled.append(followed)
        return rolled

    @redone_on_newer_record("service_version")
    async def _roll_follower(
        self, service_id: str, kind: str, name: str, version: int, roll_to: bool = False
    ) -> str | None:
        """Move one service's unpinned references to ``name`` up to ``version``, read afresh at each run:
        the write is conditional on the version read, and a commit to the service meanwhile (the
        leader's rollout or rebalance bookkeeping, an autoscale, a user's scale) is no reason to leave
        it on the old version. Its name, or None: gone, not following, or already at ``version``."""
        svc = self._state().services.get(service_id)
        if svc is None:
            return None
        refs = getattr(svc.spec, kind + "s")
        if not any(r.source == name and not r.pinned and r.version < version for r in refs):
            return None  # a newer `update` of the object already moved it: never back
        left = getattr(svc.previous_spec, kind + "s", ())
        if roll_to and any(r.source == name and not r.pinned and r.version >= version for r in left):
            return None  # rolled back by hand from this version: a later roll_to does not undo it
        followed = tuple(
            replace(r, version=version) if r.source == name and not r.pinned else r for r in refs
        )
        field: dict[str, Any] = {kind + "s": followed}  # as resolve_file_refs names the field
        spec = replace(svc.spec, **field)
        rollout = Rollout.update(self.clock.now(), f"{kind} {name} version {version}")
        update = C.UpdateService.of(
            svc, at=self.clock.now(), spec=spec, previous_spec=svc.spec, rollout=rollout
        )
        await self.manager.write(update.encode())
        return svc.name

    async def remove(self, kind: str, name: str) -> dict[str, Any]:
        record = self.find(kind, name)
        await self.manager.write(C.RemoveSecret(at=self.clock.now(), kind=kind, name=record.name).encode())
        return {"removed": record.name, "kind": kind}


def secret_endpoints(ops: SecretOps) -> list[Endpoint]:
    """Create, list, inspect, update and remove secrets and configs (``{kind}`` is secret or config)."""

    async def create(body: dict[str, Any], params: dict[str, str]) -> Any:
        return await ops.create(params["kind"], body)

    async def listing(body: dict[str, Any], params: dict[str, str]) -> Any:
        return ops.list_all(params["kind"])

    async def inspect(body: dict[str, Any], params: dict[str, str]) -> Any:
        return ops.inspect(params["kind"], params["name"])

    async def update(body: dict[str, Any], params: dict[str, str]) -> Any:
        return await ops.update(params["kind"], params["name"], body)

    async def remove(body: dict[str, Any], params: dict[str, str]) -> Any:
        return await ops.remove(params["kind"], params["name"])

    return [
        Endpoint(
            "POST", "/objects/{kind}", create, "Create a secret or config (value sealed before it is written)"
        ),
        Endpoint("GET", "/objects/{kind}", listing, "List secrets or configs (metadata only)"),
        Endpoint(
            "GET", "/objects/{kind}/{name}", inspect, "Inspect a secret or config (metadata, version, digest)"
        ),
        Endpoint("POST", "/objects/{kind}/{name}/update", update, "Add a version; following services roll"),
        Endpoint("DELETE", "/objects/{kind}/{name}", remove, "Remove a secret or config nothing uses"),
    ]


def _secret_target(kind: str, name: object) -> str:
    """A secret's target as ``--secret-rm`` may give it: relative to /run/secrets, as --secret takes it."""
    return posixpath.join(SECRETS_DIR, str(name)) if kind == "secret" else str(name)


def uses_ref(kind: str, refs: list[Any], name: object) -> bool:
    """True when a ``--secret-rm``/``--config-rm`` ``name`` names one of ``refs``: its source, or its
    target (a secret's relative to /run/secrets, as --secret takes it)."""
    named = {str(r.get(k)) for r in refs if isinstance(r, dict) for k in ("source", "target")}
    return str(name) in named or _secret_target(kind, name) in named


def file_ref_changes(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Turn ``secrets_add``/``secrets_rm`` (and the config ones) of an update into whole lists: a removal
    names a reference's source (as Docker's, by SecretName), or its target when it names no source (a
    secret rotated to another source keeps its target: removing the old source keeps the new one);
    additions are appended (an added reference whose target another keeps is refused by the spec)."""
    out = dict(changes)
    for kind in KINDS:
        key = kind + "s"
        add = out.pop(f"{key}_add", None) or []
        rm = out.pop(f"{key}_rm", None) or []
        if not add and not rm:
            continue
        if not isinstance(add, list) or not isinstance(rm, list):
            raise ConfigError(f"{key}_add and {key}_rm must be lists", field=f"{key}_add")
        refs = list(out.get(key, current.get(key) or []))
        missing = [name for name in rm if not uses_ref(kind, refs, name)]
        if missing:  # as --env-rm/--mount-rm (a typo kept the old secret mounted and said "nothing changed")
            used = ", ".join(str(r.get("source")) for r in refs if isinstance(r, dict)) or "none"
            raise ConfigError(
                f"{key}_rm: the service uses no {kind} {missing[0]!r} (its {key}: {used})", field=f"{key}_rm"
            )
        sources = {r.get("source") for r in refs if isinstance(r, dict)}
        by_target = {t for n in rm if n not in sources for t in (n, _secret_target(kind, n))}
        refs = [
            r
            for r in refs
            if not (isinstance(r, dict) and (r.get("source") in rm or r.get("target") in by_target))
        ]
        out[key] = refs + list(add)
    return out
