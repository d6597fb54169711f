"""Size limits on labels and environments a write may bring (pure).

Owns the bounds a new or changed service, network, secret, config or volume's labels and a service's
environment must keep, as Kubernetes and the Linux kernel set them: a labels map at most 256 KiB in
all (keys and values, UTF-8; Kubernetes' limit on an object's annotations), at most 1,024 labels, each
key at most 253 bytes (a DNS subdomain, Kubernetes' longest label prefix; values are Docker's free
text, bounded by the total); an environment at most 1 MiB in all (``KEY=VALUE`` and its NUL; half of
Linux's usual 2 MiB ``ARG_MAX``, which argv and the environment share at exec), each entry at most
128 KiB (the kernel's ``MAX_ARG_STRLEN``: a longer one fails the container's exec with E2BIG).

A sidecar's or init container's environment is checked as the container gets it: the service's with
its own added over it. An update is refused only for what it makes worse: a key or value it adds or
changes that breaks a per-item limit, a count or total past its limit that grows beyond the stored one.
Stored state with bigger values still loads, and a service that already has them can still be scaled
or have other fields (or other labels and variables) changed.
A refusal is a ConfigError naming the field and the limit (400, the CLI's exit 2). Never imports I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from .container import Mount
    from .group import GroupContainer
    from .spec import ServiceSpec

__all__ = [
    "MAX_ENV_BYTES",
    "MAX_ENV_ENTRY_BYTES",
    "MAX_LABELS",
    "MAX_LABELS_BYTES",
    "MAX_LABEL_KEY_BYTES",
    "check_env",
    "check_labels",
    "check_spec",
]

MAX_LABELS = 1024
MAX_LABEL_KEY_BYTES = 253
MAX_LABELS_BYTES = 256 * 1024
MAX_ENV_ENTRY_BYTES = 128 * 1024
MAX_ENV_BYTES = 1024 * 1024

Pairs = Mapping[str, str] | Iterable[tuple[str, str]]


def _items(pairs: Pairs) -> list[tuple[str, str]]:
    return list(pairs.items() if isinstance(pairs, Mapping) else pairs)


def _size(text: str) -> int:
    """UTF-8 bytes of ``text`` (a lone surrogate, which JSON can carry, counted as its three bytes)."""
    return len(text.encode("utf-8", "surrogatepass"))


def _cut(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "...")


def _refuse(field: str, message: str) -> ConfigError:
    return ConfigError(f"{field}: {message}", field=field)


def _grew(field: str, count: int, stored: int | None, limit: int, message: str) -> None:
    """Refuse a count or total over ``limit`` unless an update leaves it no bigger than the ``stored`` one."""
    if count > limit and (stored is None or count > stored):
        raise _refuse(field, message.format(count=count, limit=limit))


def _label_bytes(items: list[tuple[str, str]]) -> int:
    return sum(_size(key) + _size(value) for key, value in items)


def _entry_bytes(key: str, value: str) -> int:
    return _size(key) + 1 + _size(value) + 1  # KEY=VALUE and its NUL, as exec counts


def _env_bytes(items: list[tuple[str, str]]) -> int:
    return sum(_entry_bytes(key, value) for key, value in items)


def _touched(items: list[tuple[str, str]], before: Pairs | None) -> list[tuple[str, str]]:
    """The items an update sets or changes (all of them without ``before``)."""
    if before is None:
        return items
    stored = dict(_items(before))
    return [(key, value) for key, value in items if stored.get(key) != value]


def check_labels(pairs: Pairs, field: str, before: Pairs | None = None) -> None:
    """Raise ConfigError naming ``field`` when the labels pass a limit (see the module docstring); with
    ``before`` (the stored labels an update replaces) only for what the update makes worse."""
    items = _items(pairs)
    stored = _items(before) if before is not None else None
    count = "{count} labels, more than the limit of {limit}"
    _grew(field, len(items), None if stored is None else len(stored), MAX_LABELS, count)
    for key, _value in _touched(items, before):
        size = _size(key)
        if size > MAX_LABEL_KEY_BYTES:
            raise _refuse(
                field, f"label key {_cut(key)} is {size} bytes, more than the limit of {MAX_LABEL_KEY_BYTES}"
            )
    total = "the labels are {count} bytes in all, more than the limit of {limit} (256 KiB)"
    _grew(
        field, _label_bytes(items), None if stored is None else _label_bytes(stored), MAX_LABELS_BYTES, total
    )


def check_env(pairs: Pairs, field: str, before: Pairs | None = None) -> None:
    """Raise ConfigError naming ``field`` when the environment passes a limit (see the module docstring);
    with ``before`` (the stored environment an update replaces) only for what the update makes worse."""
    items = _items(pairs)
    for key, value in _touched(items, before):
        size = _entry_bytes(key, value)
        if size > MAX_ENV_ENTRY_BYTES:
            raise _refuse(
                field,
                f"variable {_cut(key)} is {size} bytes, more than the limit of "
                f"{MAX_ENV_ENTRY_BYTES} (128 KiB)",
            )
    stored = None if before is None else _env_bytes(_items(before))
    total = "the environment is {count} bytes in all, more than the limit of {limit} (1 MiB)"
    _grew(field, _env_bytes(items), stored, MAX_ENV_BYTES, total)


def _volume_labels(mounts: Iterable[Mount], before: Iterable[Mount] | None, field: str) -> None:
    """Check each mount's volume labels against the stored mount at its target (if any)."""
    stored = {mount.target: mount.volume_labels for mount in before} if before is not None else {}
    for i, mount in enumerate(mounts):
        check_labels(mount.volume_labels, field.format(i=i), stored.get(mount.target))


def _member_env(service_env: Pairs, member: GroupContainer) -> list[tuple[str, str]]:
    """The environment a sidecar or init container gets: the service's, its own added over it."""
    return list((dict(_items(service_env)) | dict(member.env)).items())


def check_spec(
    spec: ServiceSpec, before: ServiceSpec | None = None, names: Mapping[str, str] | None = None
) -> None:
    """Check a service spec's labels (its own and its containers'), environment and volume labels, and
    each sidecar's and init container's environment (as it gets it, the service's included) and volume
    labels; on an update (``before``: the stored spec it replaces) only what the update makes worse.
    ``names`` renames the fields (``labels``, ``service_labels``, ``env``, ``mounts``, ``sidecars``,
    ``init_containers``, ``member_env``, ``member_mounts``) for the request that set them."""
    named = dict(names or {})
    for attr in ("labels", "service_labels"):
        check_labels(getattr(spec, attr), named.get(attr, attr), getattr(before, attr, None))
    check_env(spec.env, named.get("env", "env"), getattr(before, "env", None))
    _volume_labels(
        spec.mounts, getattr(before, "mounts", None), named.get("mounts", "mounts[{i}].volume_labels")
    )
    for kind in ("sidecars", "init_containers"):
        stored = {m.name: m for m in getattr(before, kind, ())}
        for i, member in enumerate(getattr(spec, kind)):
            where = f"{named.get(kind, kind)}[{i}]"
            old = stored.get(member.name)
            # a new member's baseline is the service's stored environment: what it already has is not new
            old_env = None
            if before is not None:
                old_env = list(_items(before.env)) if old is None else _member_env(before.env, old)
            check_env(_member_env(spec.env, member), f"{where}.{named.get('member_env', 'env')}", old_env)
            mounts_field = f"{where}.{named.get('member_mounts', 'mounts[{i}].volume_labels')}"
            _volume_labels(member.mounts, old.mounts if old is not None else None, mounts_field)
