"""Size limits on labels and environments a write may bring (pure).

Owns the bounds a new or changed service, network, secret, config or volume's labels and a service's
environment must keep, as Kubernetes and the Linux kernel set them: a labels map at most 256 KiB in
all (keys and values, UTF-8; Kubernetes' limit on an object's annotations), at most 1,024 labels, each
key at most 253 bytes (a DNS subdomain, Kubernetes' longest label prefix; values are Docker's free
text, bounded by the total); an environment at most 1 MiB in all (``KEY=VALUE`` and its NUL; half of
Linux's usual 2 MiB ``ARG_MAX``, which argv and the environment share at exec), each entry at most
128 KiB (the kernel's ``MAX_ARG_STRLEN``: a longer one fails the container's exec with E2BIG).

Callers check only what a request sets or changes (``unchanged``): stored state with bigger values
still loads, and a service that already has them can still be scaled or have other fields changed.
A refusal is a ConfigError naming the field and the limit (400, the CLI's exit 2). Never imports I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
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


def check_labels(pairs: Pairs, field: str) -> None:
    """Raise ConfigError naming ``field`` when the labels pass a limit (see the module docstring)."""
    items = _items(pairs)
    if len(items) > MAX_LABELS:
        raise _refuse(field, f"{len(items)} labels, more than the limit of {MAX_LABELS}")
    total = 0
    for key, value in items:
        size = _size(key)
        if size > MAX_LABEL_KEY_BYTES:
            raise _refuse(
                field, f"label key {_cut(key)} is {size} bytes, more than the limit of {MAX_LABEL_KEY_BYTES}"
            )
        total += size + _size(value)
    if total > MAX_LABELS_BYTES:
        raise _refuse(
            field, f"the labels are {total} bytes in all, more than the limit of {MAX_LABELS_BYTES} (256 KiB)"
        )


def check_env(pairs: Pairs, field: str) -> None:
    """Raise ConfigError naming ``field`` when the environment passes a limit (see the module docstring)."""
    total = 0
    for key, value in _items(pairs):
        size = _size(key) + 1 + _size(value) + 1  # KEY=VALUE and its NUL, as exec counts
        if size > MAX_ENV_ENTRY_BYTES:
            raise _refuse(
                field,
                f"variable {_cut(key)} is {size} bytes, more than the limit of "
                f"{MAX_ENV_ENTRY_BYTES} (128 KiB)",
            )
        total += size
    if total > MAX_ENV_BYTES:
        raise _refuse(
            field, f"the environment is {total} bytes in all, more than the limit of {MAX_ENV_BYTES} (1 MiB)"
        )


def check_spec(
    spec: ServiceSpec, before: ServiceSpec | None = None, names: Mapping[str, str] | None = None
) -> None:
    """Check a service spec's labels (its own and its containers'), environment and volume labels, each
    unless it is unchanged from ``before`` (the stored spec an update replaces). ``names`` renames the
    fields (``labels``, ``service_labels``, ``env``, ``mounts``) for the request that set them."""
    named = dict(names or {})
    for attr, check in (("labels", check_labels), ("service_labels", check_labels), ("env", check_env)):
        value = getattr(spec, attr)
        if before is None or value != getattr(before, attr):
            check(value, named.get(attr, attr))
    kept = {mount.volume_labels for mount in before.mounts} if before is not None else set()
    for i, mount in enumerate(spec.mounts):
        if mount.volume_labels not in kept:
            check_labels(mount.volume_labels, named.get("mounts", f"mounts[{i}].volume_labels"))
