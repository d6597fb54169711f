"""How large a service spec may be: an update's two specs fit one Raft entry (pure).

An ``UpdateService`` command carries the new spec and the one before it (``previous_spec``: what a
rollback returns to) in one Raft entry, and an entry is at most ``wire.MAX_FRAME_BYTES`` (16 MiB: every
replica refuses a larger command when it applies it). A spec over ~8 MiB encoded could be created (a
``CreateService`` carries one spec) and then never updated, scaled or rolled back: each update's command
was committed and refused by every replica ("command of N bytes exceeds 16777216"). So every edge that
writes a spec (the API's service create and update, stack deploy) refuses one whose encoded form is over
:data:`MAX_SPEC_BYTES`, naming its largest field; two such specs and the bookkeeping beside them fit.
It never refuses a spec already committed (the journal and snapshots load whatever size they hold).
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..model import ServiceSpec
from ..wire import pack

__all__ = ["MAX_SPEC_BYTES", "check_spec_size", "spec_bytes"]

#: 7 MiB: the spec and the previous one (14 MiB) and an update's bookkeeping (rollout, job status,
#: autoscale step: a few KiB) stay under one 16 MiB Raft entry with room to spare
MAX_SPEC_BYTES = 7 * 1024 * 1024


def spec_bytes(spec: ServiceSpec) -> int:
    """The size of ``spec`` as a Raft command carries it (msgpack of ``to_sparse_dict``)."""
    return len(pack(spec.to_sparse_dict()))


def check_spec_size(spec: ServiceSpec, field: str = "") -> None:
    """Refuse ``spec`` (ConfigError, 400: the CLI's exit 2) when it is over :data:`MAX_SPEC_BYTES` encoded.
    The error's field is ``field`` when given (a stack's ``services.NAME``), else the spec's largest key."""
    data: dict[str, Any] = spec.to_sparse_dict()
    size = len(pack(data))
    if size <= MAX_SPEC_BYTES:
        return
    sizes = {key: len(pack(value)) for key, value in data.items()}
    largest = max(sizes, key=lambda key: sizes[key])
    raise ConfigError(
        f"the service spec is {size} bytes encoded, more than the limit of {MAX_SPEC_BYTES} (7 MiB): an "
        "update carries the spec and the one before it in one Raft entry of at most 16 MiB; its largest "
        f"field is {largest} ({sizes[largest]} bytes)",
        field=field or largest,
    )
